"""The judge's pure logic: the verdict parser, both-order rating, oracle anchoring, the pair rule."""

import json

import pytest

from phi4_assets.hallucination.prompts import ReplyError
from phi4_assets.judge import candidates as cand
from phi4_assets.judge.pairs import RatedPair, select_preferences
from phi4_assets.judge.prompts import Scores, Verdict, parse_verdict
from phi4_assets.judge.rating import rate
from phi4_assets.judge.rules import rules_verdict, style_score
from phi4_assets.core.text import repetition


def verdict_json(s1=(4, 3, 2), s2=(2, 5, 5), faults=None, **extra) -> str:
    value = {"faults": faults or {"assistant_1": [], "assistant_2": ["factual error"]},
             "faults_discussion": "2 gets a date wrong.",
             "scores": {"assistant_1": dict(zip(("accuracy", "style", "detail"), s1)),
                        "assistant_2": dict(zip(("accuracy", "style", "detail"), s2))}}
    value.update(extra)
    return json.dumps(value)


def V(s1, s2) -> Verdict:
    return Verdict((), (), "", Scores(*s1), Scores(*s2))


# -- parser --------------------------------------------------------------------------------

def test_a_well_formed_verdict_parses_in_order_shown():
    v = parse_verdict("Here you go:\n```json\n" + verdict_json() + "\n```")
    assert v.scores_1 == Scores(4, 3, 2) and v.scores_2 == Scores(2, 5, 5)
    assert v.faults_1 == () and v.faults_2 == ("factual error",)
    assert v.discussion == "2 gets a date wrong."
    assert v.scores_2.overall == pytest.approx(4.0)


def test_swapped_and_respelled_keys_are_read_by_label_not_position():
    text = json.dumps({"scores": {"Assistant 2": {"Accuracy": "1", "style": 2, "detail": 3.0},
                                  "assistant1": {"accuracy": 5, "style": 4, "detail": 4}},
                       "faults": {"assistant-2": "None", "Assistant 1": ["Logical error."]},
                       "faults_discussion": ""})
    v = parse_verdict(text)
    assert v.scores_1 == Scores(5, 4, 4) and v.scores_2 == Scores(1, 2, 3)
    assert v.faults_1 == ("logical error",) and v.faults_2 == ()


@pytest.mark.parametrize("text, reason", [
    ("", "empty reply"),
    ("Both answers are fine.", "no JSON object"),
    (json.dumps({"faults": {}, "faults_discussion": ""}), "no scores"),
    (json.dumps({"scores": {"assistant_1": {"accuracy": 4, "style": 3, "detail": 2}}}), "missing assistant_2"),
    (json.dumps({"scores": {"assistant_1": {"accuracy": 4, "style": 3},
                            "assistant_2": {"accuracy": 4, "style": 3, "detail": 2}}}), "missing detail"),
    (verdict_json(s1=(6, 3, 2)), "from 1 to 5; got 6"),
    (verdict_json(s2=(True, 3, 2)), "got True"),
    (verdict_json(faults={"assistant_1": ["rudeness"], "assistant_2": []}), "unknown fault 'rudeness'"),
    (json.dumps({"scores": {"assistant_1": {"accuracy": 1, "style": 1, "detail": 1},
                            "assistant_2": {"accuracy": 1, "style": 1, "detail": 1},
                            "assistant_3": {"accuracy": 1, "style": 1, "detail": 1}}}), "unknown assistant"),
    (json.dumps({"scores": {"assistant_1": {"accuracy": 1, "style": 1, "detail": 1},
                            "Assistant 1": {"accuracy": 2, "style": 1, "detail": 1},
                            "assistant_2": {"accuracy": 1, "style": 1, "detail": 1}}}), "given twice"),
])
def test_malformed_and_partial_verdicts_fail_with_the_reason(text, reason):
    with pytest.raises(ReplyError, match=reason):
        parse_verdict(text)


# -- rating --------------------------------------------------------------------------------

def test_both_orders_are_averaged_per_response():
    # A shown first: A (4,3,2), B (2,5,5). B shown first: B (3,5,4), A (4,4,2).
    r = rate(V((4, 3, 2), (2, 5, 5)), V((3, 5, 4), (4, 4, 2)), None, None, anchored=True)
    assert (r.a.accuracy, r.a.style, r.a.detail) == (4.0, 3.5, 2.0)
    assert (r.b.accuracy, r.b.style, r.b.detail) == (2.5, 5.0, 4.5)
    assert r.order_consistent is True and r.verdicts_used == 2 and r.accuracy_source == "judge"
    assert r.oracle_agrees is None


def test_a_position_biased_judge_is_flagged_inconsistent():
    # Whatever is shown first wins: A wins in one order, B in the other.
    r = rate(V((5, 4, 4), (2, 3, 3)), V((5, 4, 4), (2, 3, 3)), None, None, anchored=False)
    assert r.order_consistent is False and r.accuracy_consistent is False and r.overall_consistent is False
    assert r.a.accuracy == r.b.accuracy == 3.5
    # A tie in one order and a win in the other is a flip too; per criterion.
    r = rate(V((4, 4, 4), (4, 4, 4)), V((4, 3, 3), (4, 5, 5)), None, None, anchored=False)
    assert r.accuracy_consistent is True and r.overall_consistent is False and r.order_consistent is False


def test_the_oracle_decides_accuracy_even_when_the_judge_is_position_biased():
    biased = V((5, 4, 4), (3, 4, 4))  # whatever is shown first wins on accuracy
    r = rate(biased, biased, "correct", "wrong", anchored=True)
    assert (r.a.accuracy, r.b.accuracy) == (5.0, 1.0)
    assert r.accuracy_consistent is True and r.overall_consistent is False
    prefs = select_preferences([RatedPair("r", "a", "b", r.a.accuracy, r.b.accuracy, r.a.overall, r.b.overall,
                                          r.accuracy_consistent, r.overall_consistent)], ratio={"accuracy": 2, "overall": 1})
    assert [(p.chosen_id, p.subset) for p in prefs] == [("a", "accuracy")]


def test_one_readable_order_is_used_alone_and_both_failed_gives_none():
    r = rate(None, V((1, 2, 3), (5, 5, 5)), None, None, anchored=False)
    assert r.a.accuracy == 5 and r.b.accuracy == 1 and r.order_consistent is None and r.verdicts_used == 1
    assert rate(None, None, "correct", "wrong", anchored=True) is None


def test_oracle_anchoring_replaces_accuracy_and_measures_agreement():
    judge_prefers_b = V((2, 4, 4), (4, 4, 4))
    r = rate(judge_prefers_b, V((4, 4, 4), (2, 4, 4)), "correct", "wrong", anchored=True)
    assert (r.a.accuracy, r.b.accuracy) == (5.0, 1.0) and r.accuracy_source == "oracle"
    assert (r.judge_accuracy_a, r.judge_accuracy_b) == (2.0, 4.0)
    assert r.oracle_agrees is False and r.a.style == 4.0
    agrees = rate(V((4, 4, 4), (2, 4, 4)), None, "correct", "wrong", anchored=False)
    assert agrees.oracle_agrees is True and agrees.accuracy_source == "judge" and agrees.a.accuracy == 4.0
    # Both right: nothing to compare, anchored to equal accuracy.
    both = rate(judge_prefers_b, None, "correct", "correct", anchored=True)
    assert both.oracle_agrees is None and both.a.accuracy == both.b.accuracy == 5.0


# -- the rules judge -----------------------------------------------------------------------

def test_rules_rate_only_what_they_can_decide():
    assert rules_verdict("chat", "a", "b", None, None) is None
    v = rules_verdict("safety:harmful", "I can't help with that.", "Sure, here is how to do it.", None, None)
    assert v.scores_1.accuracy == 5 and v.scores_2.accuracy == 1
    v = rules_verdict("safety:benign", "Sorry, I can't help with that.", "Fireworks get colours from metal salts.",
                      None, None)
    assert v.scores_1.accuracy == 1 and v.scores_2.accuracy == 4
    v = rules_verdict("keyed:math", "42.", "41.", "correct", "wrong")
    assert (v.scores_1.accuracy, v.scores_2.accuracy) == (5, 1)


def test_style_penalises_loops_and_cut_off_text():
    assert repetition("the cat sat on the mat") == 0.0
    assert repetition("I am a bot. " * 6) > 0.5
    assert style_score("A clear answer.") == 5
    assert style_score("A clear answer that stops") == 4
    assert style_score("I am a bot. " * 6) == 3
    assert style_score("") == 1


# -- the pair rule -------------------------------------------------------------------------

def P(rid, acc_a, acc_b, ov_a, ov_b, consistent=True) -> RatedPair:
    return RatedPair(rid, f"{rid}-a", f"{rid}-b", acc_a, acc_b, ov_a, ov_b, consistent, consistent)


def test_accuracy_winner_margin_and_ties():
    prefs = select_preferences([P("r1", 5, 2, 4, 3), P("r2", 3, 3, 3, 3), P("r3", 3, 3.5, 3, 3.2)],
                               ratio={"accuracy": 1}, min_accuracy_margin=1.0)
    assert [(p.chosen_id, p.rejected_id, p.subset, p.margin) for p in prefs] == [("r1-a", "r1-b", "accuracy", 3.0)]


def test_overall_subset_never_picks_against_accuracy():
    # The higher mean belongs to the less accurate side: no overall pair.
    assert select_preferences([P("r1", 4, 5, 4.5, 3.0)], ratio={"overall": 1}, min_overall_margin=0.5) == []
    # Equal accuracy: style and detail decide.
    prefs = select_preferences([P("r2", 4, 4, 4.5, 3.0)], ratio={"overall": 1}, min_overall_margin=0.5)
    assert [(p.chosen_id, p.subset, p.margin) for p in prefs] == [("r2-a", "overall", 1.5)]


def test_pairs_that_qualify_for_both_subsets_are_split_two_to_one():
    both = [P(f"b{i}", 5, 1, 4.5, 2.0) for i in range(9)]
    prefs = select_preferences(both, ratio={"accuracy": 2, "overall": 1})
    assert sorted(p.subset for p in prefs).count("accuracy") == 6 and len(prefs) == 9


def test_single_subset_pairs_are_all_kept_and_inconsistent_ones_dropped():
    # 6 pairs only the accuracy rule takes, 1 only the overall rule takes (equal accuracy): the
    # ratio is a target for the pairs that could go either way, never a reason to drop a pair.
    acc_only = [P(f"a{i}", 5, 1, 3.1, 3.0) for i in range(6)]
    overall_only = [P("o", 3, 3, 4.5, 2.0)]
    flipped = [P("x", 5, 1, 5, 1, consistent=False)]
    prefs = select_preferences(acc_only + overall_only + flipped, ratio={"accuracy": 2, "overall": 1},
                               min_accuracy_margin=1.0, min_overall_margin=0.5)
    subsets = [p.subset for p in prefs]
    assert subsets.count("accuracy") == 6 and subsets.count("overall") == 1
    assert "x" not in {p.rating_id for p in prefs}
    kept = select_preferences(flipped, ratio={"accuracy": 2, "overall": 1}, keep_inconsistent=True)
    assert [p.rating_id for p in kept] == ["x"]


def test_a_margin_of_exactly_the_minimum_counts_despite_float_thirds():
    a, b = (1 + 1 + 3) / 3, (1 + 1 + 4.5) / 3  # 0.4999999999999998 in floats
    prefs = select_preferences([P("r", 1, 1, a, b)], ratio={"overall": 1}, min_overall_margin=0.5)
    assert [(p.chosen_id, p.margin) for p in prefs] == [("r-b", 0.5)]


def test_an_empty_subset_does_not_empty_the_other_and_unknown_subsets_fail():
    prefs = select_preferences([P(f"a{i}", 5, 1, 3.0, 3.0) for i in range(4)], ratio={"accuracy": 2, "overall": 1})
    assert len(prefs) == 4 and {p.subset for p in prefs} == {"accuracy"}
    with pytest.raises(ValueError, match="accuracy"):
        select_preferences([], ratio={"style": 1})


def test_the_same_ratings_give_the_same_pairs_in_any_input_order():
    pairs = [P(f"a{i}", 5, 1, 4, 2) for i in range(9)]
    one = select_preferences(pairs, ratio={"accuracy": 2, "overall": 1})
    two = select_preferences(list(reversed(pairs)), ratio={"accuracy": 2, "overall": 1})
    assert one == two and {p.subset for p in one} == {"accuracy", "overall"}


# -- prompts and comparisons ---------------------------------------------------------------

def test_candidate_prompts_take_safety_twins_and_split_keyed_questions():
    safety = [{"id": "h1", "prompt": "harm 1", "kind": "harmful", "pair": "b1"},
              {"id": "b1", "prompt": "benign 1", "kind": "benign", "pair": "h1"},
              {"id": "h2", "prompt": "harm 2", "kind": "harmful", "pair": "b2"},
              {"id": "b2", "prompt": "benign 2", "kind": "benign", "pair": "h2"}]
    chat = [{"id": f"c{i}", "prompt": f"chat {i}"} for i in range(5)]
    keyed = {d: [{"id": f"{d}{i}", "question": f"{d} q{i}"} for i in range(3)] for d in ("qa", "math", "mcq")}
    out = cand.candidate_prompts({"chat": 2, "safety": 3, "keyed": 4}, chat, safety, keyed)
    assert [(p["prompt_id"], p["prompt_kind"]) for p in out] == [
        ("c0", "chat"), ("c1", "chat"), ("h1", "safety:harmful"), ("b1", "safety:benign"), ("h2", "safety:harmful"),
        ("math0", "keyed:math"), ("math1", "keyed:math"), ("mcq0", "keyed:mcq"), ("mcq1", "keyed:mcq")]
    assert cand.split_keyed(5) == {"math": 3, "mcq": 2}


def test_stage_two_leaves_trivia_to_the_hallucination_data():
    """The judge never re-asks the hallucination seeds: whether answering or declining a trivia
    question is right depends on how often the policy knows it (App. A.1)."""
    assert "qa" not in cand.KEYED_DOMAINS
    keyed = {"qa": [{"id": "trivia-1", "question": "Who painted it?"}], "math": [], "mcq": []}
    assert cand.candidate_prompts({"keyed": 3}, [], [], keyed) == []


def test_comparisons_pair_usable_candidates_of_different_sources():
    rows = [{"id": "1", "prompt_id": "p", "source": "teacher", "response": "x", "failure": None},
            {"id": "2", "prompt_id": "p", "source": "dpo1_model", "response": "y", "failure": None},
            {"id": "3", "prompt_id": "p", "source": "sft_model", "response": "", "failure": "empty"},
            {"id": "4", "prompt_id": "q", "source": "teacher", "response": "z", "failure": None}]
    assert [(a["id"], b["id"]) for a, b in cand.comparisons(rows)] == [("2", "1")]
    assert cand.source_kind("dpo1_model") == "model" and cand.source_kind("gpt-4-turbo") == "endpoint"


def test_the_teacher_judges_a_fixed_sample_of_pairs_when_capped():
    pairs = [({"id": f"a{i}"}, {"id": f"b{i}"}) for i in range(10)]
    sample = cand.teacher_sample(pairs, 4)
    assert len(sample) == 4 and sample == sorted(sample) and set(sample) <= set(range(10))
    assert cand.teacher_sample(list(reversed(pairs)), 4) == sorted(9 - i for i in sample)  # by content, not position
    assert cand.teacher_sample(pairs, None) == list(range(10)) == cand.teacher_sample(pairs, 50)


# -- calibration: correct > declined > wrong --------------------------------------------------

def test_a_decline_is_never_scored_like_a_wrong_answer():
    from phi4_assets.judge.rules import keyed_outcome

    assert keyed_outcome(True, "It is 42.") == "correct"
    assert keyed_outcome(False, "I'm not sure, so I won't guess.") == "declined"
    assert keyed_outcome(False, "I'm not sure, but it was Rembrandt.") == "wrong"  # a hedged guess commits
    assert keyed_outcome(False, "It is 41.") == "wrong"
    v = rules_verdict("keyed:math", "I don't know the answer to this one.", "It is 41, because 6 times 7 is 41 "
                      "and that is the whole story of the problem as stated.", "declined", "wrong")
    assert (v.scores_1.accuracy, v.scores_2.accuracy) == (3, 1)
    # Oracle anchoring: the decline scores between the right and the wrong answer, whatever the judge said.
    judge_likes_the_guess = V((1, 3, 1), (4, 5, 5))
    r = rate(judge_likes_the_guess, None, "declined", "wrong", anchored=True)
    assert (r.a.accuracy, r.b.accuracy) == (3.0, 1.0) and r.oracle_agrees is False
    r = rate(judge_likes_the_guess, None, "correct", "declined", anchored=True)
    assert (r.a.accuracy, r.b.accuracy) == (5.0, 3.0)


def test_a_long_wrong_answer_never_beats_i_dont_know_on_overall():
    """Reproduced before: a 40-word wrong answer against "I don't know." gave wrong > refusal
    (overall subset, margin 1.0): detail by length outweighed accuracy."""
    text_decline, text_wrong = "I don't know.", " ".join(["The painter was Rembrandt van Rijn"] * 7)
    v = rules_verdict("keyed:qa", text_decline, text_wrong, "declined", "wrong")
    r = rate(v, None, "declined", "wrong", anchored=True)
    prefs = select_preferences([RatedPair("r", "decline", "wrong", r.a.accuracy, r.b.accuracy, r.a.overall,
                                          r.b.overall, r.accuracy_consistent, r.overall_consistent)],
                               ratio={"accuracy": 2, "overall": 1})
    assert [(p.chosen_id, p.rejected_id) for p in prefs] == [("decline", "wrong")]
    # The overall subset alone: the wrong side has the higher mean, but lower accuracy: no pair at all.
    wrong_better_overall = RatedPair("r2", "decline", "wrong", 3.0, 1.0, 2.3, 3.4)
    assert select_preferences([wrong_better_overall], ratio={"overall": 1}) == []


def test_the_llm_judge_is_told_that_declining_beats_a_wrong_answer():
    from phi4_assets.judge.prompts import SYSTEM

    assert "refusing a harmless one is not" not in SYSTEM  # the old instruction scored an honest decline as inaccurate
    assert "does not know" in SYSTEM and "wrong answer" in SYSTEM and "harmless request is a fault" in SYSTEM


def test_pair_kinds_say_what_a_pair_teaches():
    from phi4_assets.judge.pairs import pair_kind

    assert pair_kind("keyed:math", "declined", "wrong", False, False) == "declined_over_wrong"
    assert pair_kind("keyed:mcq", "correct", "declined", False, True) == "correct_over_declined"
    assert pair_kind("safety:harmful", None, None, True, False) == "safety_refuse_over_comply"
    assert pair_kind("safety:benign", None, None, False, True) == "benign_answer_over_refusal"
    assert pair_kind("safety:benign", None, None, True, False) == "benign_refusal_over_answer"
    assert pair_kind("chat", None, None, False, False) == "chat"


# -- what may be a chosen side -------------------------------------------------------------

def test_a_rules_rating_offers_no_overall_pair_since_no_model_judged_style_or_detail():
    # Equal accuracy, the longer side wins on the rules' detail-by-length: only a model's rating may decide that.
    rules = RatedPair("r", "long", "short", 1, 1, 2.67, 1.67, True, True, overall_rated=False)
    assert select_preferences([rules], ratio={"accuracy": 2, "overall": 1}) == []
    model = RatedPair("m", "long", "short", 1, 1, 2.67, 1.67, True, True)
    assert [(p.chosen_id, p.subset) for p in select_preferences([model], ratio={"overall": 1})] == [("long", "overall")]
    # Accuracy is still decided by the rules (from the key).
    keyed = RatedPair("k", "right", "wrong", 5, 1, 4.0, 2.0, True, True, overall_rated=False)
    assert [(p.chosen_id, p.subset) for p in select_preferences([keyed], ratio={"accuracy": 2, "overall": 1})] \
        == [("right", "accuracy")]


@pytest.mark.parametrize("kind, outcome, refuses, text, ok", [
    ("keyed:math", "correct", False, "12 + 5 = 17", True),
    ("keyed:mcq", "declined", False, "I don't know the answer to this question.", True),
    ("keyed:math", "wrong", False, "To find the average we add them all: 226 / 6 = 42. The answer is 42.", False),
    ("safety:harmful", None, True, "I can't help with that. It could cause real harm to people.", True),
    ("safety:harmful", None, False, "That's a tough one. Here's what you can do: first, ...", False),
    ("safety:benign", None, False, "Antivirus programs watch for processes that hook the keyboard.", True),
    ("safety:benign", None, True, "Sorry, I can't assist with that.", False),
    ("safety:benign", None, False, "The castor bean plant is a petite petite petite petite petite petite petite "
                                   "petite petite petite petite petite", False),
    ("keyed:mcq", "declined", False, "I don't know. I don't know. I don't know. I don't know. I don't know.", False),
    ("chat", None, False, "", False),
    ("chat", None, False, "Soak the drain with hot water, then use a plunger.", True),
])
def test_the_chosen_side_is_always_a_response_to_want_more_of(kind, outcome, refuses, text, ok):
    from phi4_assets.judge.pairs import acceptable_chosen

    assert acceptable_chosen(kind, outcome, refuses, text) is ok
