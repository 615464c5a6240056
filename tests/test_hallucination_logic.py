"""Exact tests of the hallucination logic: rules, parsers, the decision rule, truncation."""

from collections import Counter

import pytest

from phi4_assets.core import refusal
from phi4_assets.hallucination import decision, prompts, rules
from phi4_assets.hallucination.decision import QuestionStats


# -- rules -----------------------------------------------------------------------------------

def test_key_matching_is_normalised_and_whole_word():
    assert rules.mentions_key("The capital of Peru is LIMA.", ["Lima"])
    assert rules.mentions_key("It's the Pacific.", ["Pacific Ocean", "Pacific"])
    assert rules.mentions_key("Velazquez painted it", ["Diego Velázquez", "Velázquez"])
    assert not rules.mentions_key("Limassol is in Cyprus", ["Lima"])
    assert not rules.mentions_key("", ["Lima"])
    # A refusal is not an answer because "don't" ends in a "t" and tesla's symbol is T.
    assert not rules.mentions_key("I don't know, it would likely be wrong.", ["tesla", "teslas", "T"])
    assert rules.mentions_key("A spider has 8 legs.", ["8", "eight"])


@pytest.mark.parametrize("text, uncertain", [
    ("I'm not sure of the answer.", True),
    ("I don't know.", True),
    ("I couldn't find any record of that prize.", True),
    ("The answer is Lima.", False),
    ("Lima is the capital; I am sure.", False),
])
def test_uncertainty_detection(text, uncertain):
    assert refusal.expresses_uncertainty(text) is uncertain


def test_perturbations_follow_the_rule_order_and_are_deterministic():
    name = rules.perturb_question("Which empire was founded by Genghis Khan?", "q1")
    assert name.method == "name_swap" and name.original == "Genghis Khan" and name.quality == 4
    assert name.question == f"Which empire was founded by {name.replacement}?"
    assert name == rules.perturb_question("Which empire was founded by Genghis Khan?", "q1")

    title = rules.perturb_question('Who wrote the play "Romeo and Juliet"?', "q2")
    assert title.method == "title_swap" and title.original == "Romeo and Juliet"
    assert title.question == f'Who wrote the play "{title.replacement}"?'

    year = rules.perturb_question("Which US president was assassinated in Dallas in 1963?", "q3")
    assert year.method == "year_shift" and year.original == "1963"
    assert year.replacement != "1963" and 7 <= abs(int(year.replacement) - 1963) <= 40

    place = rules.perturb_question("Who was the last Tsar of Russia?", "q4")
    assert place.method == "place_swap" and place.original == "Russia"
    assert place.replacement in {"Turkey", "Greece", "Iran", "Iraq"}
    assert place.quality < 3  # below the default bogus_min_quality: a moved country may leave an answer


def test_no_rule_for_questions_without_a_premise_to_break():
    # Swapping the country in "capital of X" leaves an answerable question: not a bogus one.
    assert rules.perturb_question("What is the capital of France?", "q") is None
    assert rules.perturb_question("What is the largest ocean on Earth?", "q") is None
    # A four-digit number in a question about numbers is a quantity: moved, it still has an answer.
    assert rules.perturb_question("What is the base-10 logarithm of 1000?", "q") is None
    assert rules.perturb_question("Which letter represents the number 1000 in Roman numerals?", "q") is None
    # Places are not people: "the Volga River" is left alone.
    assert rules.perturb_question("Into which body of water does the Volga River flow?", "q") is None


def test_every_refusal_template_passes_the_refusal_checks():
    for i in range(60):
        for bogus, entity in ((False, None), (True, "Halvard Ostermark"), (True, None)):
            text = rules.template_refusal(f"q{i}", "history", entity, bogus=bogus)
            assert refusal.expresses_uncertainty(text), text
            if entity:
                assert entity in text
    assert len({rules.template_refusal(f"q{i}", "history") for i in range(60)}) >= 5  # varied


def test_reference_templates_contain_the_key():
    assert all(rules.mentions_key(rules.template_reference_answer(f"q{i}", "Lima"), ["Lima"]) for i in range(30))


# -- parsers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("reply, grade", [
    ('{"matches_key": "True"}', "True"),
    ('{"matches_key": "false"}', "False"),
    ('{"matches_key": true}', "True"),
    ('Sure! ```json\n{"matches_key": "Uncertain"}\n```', "Uncertain"),
    ("True. The response names Lima.", "True"),
    ("  uncertain", "Uncertain"),
    ("No, the response does not match the key.", "False"),
    ("Yes - it names Lima.", "True"),
])
def test_answer_check_parser_accepts(reply, grade):
    assert prompts.parse_answer_check(reply) == grade


@pytest.mark.parametrize("reply, reason", [
    ("", "empty reply"),
    (None, "empty reply"),
    ("The capital of France is Paris.", "neither JSON with matches_key nor a bare True/False/Uncertain"),
    ("Nope, I cannot grade this.", "neither JSON with matches_key nor a bare True/False/Uncertain"),
    ('{"matches_key": "Maybe"}', "matches_key must be one of True, False, Uncertain; got 'Maybe'"),
    ('{"grade": "True"}', "matches_key must be one of True, False, Uncertain; got None"),
    ('{"matches_key": "True"', "neither JSON with matches_key nor a bare True/False/Uncertain"),
])
def test_answer_check_parser_rejects(reply, reason):
    with pytest.raises(prompts.ReplyError) as info:
        prompts.parse_answer_check(reply)
    assert str(info.value) == reason


def test_bogus_parser():
    assert prompts.parse_bogus('{"bogus_question": " Who won the 1931 Lindqvist Prize? ", "quality": 4}') == \
        ("Who won the 1931 Lindqvist Prize?", 4)
    assert prompts.parse_bogus('Here: {"quality": "5", "bogus_question": "Q?"}') == ("Q?", 5)  # swapped keys
    for reply, reason in [
        ('{"bogus_question": "Q?"}', "quality must be an integer from 1 to 5; got None"),  # partial
        ('{"bogus_question": "Q?", "quality": 9}', "quality must be an integer from 1 to 5; got 9"),
        ('{"bogus_question": "Q?", "quality": true}', "quality must be an integer from 1 to 5; got True"),
        ('{"question": "Q?", "quality": 3}', "bogus_question must be a non-empty string"),
        ("What is the capital of Veltravia?", "no JSON object in the reply"),
    ]:
        with pytest.raises(prompts.ReplyError) as info:
            prompts.parse_bogus(reply)
        assert str(info.value) == reason


# -- the decision rule -----------------------------------------------------------------------

def test_question_stats_and_the_sft_rule():
    stats = decision.question_stats([("a", "True"), ("a", "True"), ("a", "False"), ("a", "Uncertain"),
                                     ("b", "False"), ("b", "Uncertain"), ("c", "True")])
    assert stats["a"] == QuestionStats("a", 4, 2, 1, 1) and stats["a"].p_correct == 0.5
    assert decision.sft_target(stats["a"], usually_right=0.5) == "answer"
    assert decision.sft_target(stats["a"], usually_right=0.6) == "refusal"
    assert decision.sft_target(stats["b"]) == "refusal"
    assert decision.dpo_pair_kinds(stats["a"]) == ["answer_over_refusal", "refusal_over_wrong"]
    assert decision.dpo_pair_kinds(stats["b"]) == ["refusal_over_wrong"]
    assert decision.dpo_pair_kinds(stats["c"]) == ["answer_over_refusal"]
    assert decision.dpo_pair_kinds(QuestionStats("d", 2, 0, 0, 2)) == []


def test_answers_by_frequency_rank_the_most_common_first_earliest_on_ties():
    assert decision.answers_by_frequency([(3, "Lyon."), (0, "Marseille"), (5, "lyon")]) == [(3, "Lyon."),
                                                                                            (0, "Marseille")]
    assert decision.answers_by_frequency([(4, "B"), (1, "A")]) == [(1, "A"), (4, "B")]
    assert decision.answers_by_frequency([]) == []


def test_first_tokens_with_the_policy_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    encode = lambda t: tok(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    text, ids = decision.first_tokens("I'm not sure of the answer to that question.", encode, tok.decode, n=5)
    assert len(ids) == 5 and ids == encode("I'm not sure of the answer to that question.")[:5]
    assert text == tok.decode(ids) and "question" not in text
    short, short_ids = decision.first_tokens("Paris.", encode, tok.decode, n=5)
    assert short == "Paris." and len(short_ids) < 5


@pytest.mark.parametrize("text, declined", [
    ("I don't know.", True),
    ("I'm not sure of the answer. I can't give a specific answer.", True),
    ("I don't know. I don't know. I don't know", True),
    ("Sorry, I cannot help with that.", True),
    ("I don't have enough information to provide a correct answer.", True),  # the small run's policy, a decline
    ("I can't determine the answer based on the given options.", True),
    # Declines the stage-1 model wrote on its own (small run), once graded as wrong answers:
    ("I'm not 100% sure.", True),
    ("I'm unsure.", True),
    ("I don't have any information about Egypt.", True),
    ("I can't provide a definitive answer, as there is no single definitive answer to this question.", True),
    ("I can't tell. It was Vermeer.", False),
    ("I'm not sure, but it was Vermeer.", False),  # a hedged guess commits to an answer
    ("I think it is 381, but I'm not sure.", False),
    ("I am not sure. Maybe Rembrandt?", False),
    ("The capital of France is Paris.", False),
    ("17*23 = 381", False),
    ("", False),
])
def test_a_decline_commits_to_no_answer(text, declined):
    assert refusal.declines(text) is declined


def test_every_refusal_the_pipeline_writes_is_a_decline():
    from phi4_assets.sft import data as sft_data

    for i in range(40):
        for bogus, entity in ((False, None), (True, None), (True, "the Zorblax Prize")):
            assert refusal.declines(rules.template_refusal(f"q{i}", "art", entity, bogus=bogus))
        assert refusal.declines(sft_data.template_safety_refusal(f"s{i}", "crime"))


def test_every_sampled_question_gets_a_refusal():
    """Also those the policy always gets right: the refusal is the rejected side of their
    answer > refusal pair (App. A.1), not only the SFT target of the ones it gets wrong."""
    always_right = decision.QuestionStats("q", n_samples=8, n_correct=8, n_incorrect=0, n_uncertain=0)
    mostly_right = decision.QuestionStats("q", n_samples=8, n_correct=6, n_incorrect=0, n_uncertain=2)
    assert decision.needs_refusal(always_right) and decision.needs_refusal(mostly_right)
    assert decision.dpo_pair_kinds(always_right) == ["answer_over_refusal"]
    assert not decision.needs_refusal(decision.QuestionStats("q", 0, 0, 0, 0))


@pytest.mark.parametrize("text, expected", [
    ('{"faults_discussion": "uses } braces", "x": 1}', {"faults_discussion": "uses } braces", "x": 1}),
    ('Sure! ```json\n{"a": {"b": "{"}}\n``` done', {"a": {"b": "{"}}),
    ('{not json} then {"matches_key": "True"}', {"matches_key": "True"}),
    ('[1, 2] {"k": "v"}', {"k": "v"}),
])
def test_the_first_json_object_is_found_with_braces_inside_strings(text, expected):
    from phi4_assets.hallucination.prompts import first_json_object

    assert first_json_object(text) == expected


def test_no_json_object_is_a_reply_error():
    from phi4_assets.hallucination.prompts import ReplyError, first_json_object

    with pytest.raises(ReplyError, match="no JSON object"):
        first_json_object('just prose, a "{" and [1, 2]')


def test_a1_pairs_follow_the_samples_of_the_model_given():
    S = decision.Sample
    questions = {"q-right": "Capital of France?", "q-mixed": "Who painted it?", "q-declines": "Obscure?",
                 "q-wrong": "Hard?", "q-no-refusal": "Unrefused?"}
    samples = {
        "q-right": [S("s1", 0, "Paris.", "True"), S("s2", 1, "Paris is the capital.", "True")],
        "q-mixed": [S("s3", 0, "Rembrandt painted it", "False"), S("s4", 1, "Vermeer.", "True"),
                    S("s5", 2, "rembrandt painted it", "False"), S("s6", 3, "Monet", "False")],
        # A model that already declines gets no push further toward declining, and no answer > refusal.
        "q-declines": [S("s7", 0, "I don't know.", "Uncertain"), S("s8", 1, "I'm not sure.", "Uncertain")],
        "q-wrong": [S("s9", 0, "Nobody knows that one at all", "False")],
        "q-no-refusal": [S("s10", 0, "Yes", "True")],
    }
    keys = {"q-right": ["Paris"], "q-mixed": ["Vermeer"], "q-declines": ["X"], "q-wrong": ["Y"],
            "q-no-refusal": ["Yes"]}
    answers = {q: (f"It is {keys[q][0]}.", f"ref-{q}") for q in questions}
    refusals = {q: ("I am not sure about that", f"refusal-{q}") for q in questions if q != "q-no-refusal"}
    tally = Counter()
    rows = decision.a1_pairs(questions, samples, answers, refusals, str.split, " ".join, n_tokens=3, keys=keys,
                             tally=tally)
    got = {(r["question_id"], r["kind"]): r for r in rows}
    assert set(got) == {("q-right", "answer_over_refusal"), ("q-mixed", "answer_over_refusal"),
                        ("q-mixed", "refusal_over_wrong"), ("q-wrong", "refusal_over_wrong")}
    wrong = got[("q-mixed", "refusal_over_wrong")]
    # The most common wrong answer (normalised), its earliest sample; both sides cut to 3 tokens.
    assert wrong["rejected_from"] == "s3" and wrong["rejected_token_ids"] == ["Rembrandt", "painted", "it"]
    assert wrong["chosen_from"] == "refusal-q-mixed" and wrong["chosen_token_ids"] == ["I", "am", "not"]
    assert tally == {"no_refusal": 1}
    assert wrong["p_correct"] == 0.25 and wrong["prompt"] == "Who painted it?"
    right = got[("q-right", "answer_over_refusal")]
    assert (right["chosen_from"], right["rejected_from"], right["p_correct"]) == ("ref-q-right", "refusal-q-right", 1.0)


def test_a_question_the_base_model_knew_keeps_its_answer_pair_when_the_stage_model_declines_it():
    S = decision.Sample
    questions = {"q-hidden": "What is the capital of France?", "q-declined": "What is the capital of Norway?",
                 "q-seen": "Who painted it?"}
    samples = {  # the stage's model: declines, or one odd wrong answer; never right
        "q-hidden": [S("h1", 0, "I can't answer that", "Uncertain"), S("h2", 1, "L'Etoile is the capital", "False")],
        "q-declined": [S("u1", 0, "I don't know.", "Uncertain")],
        "q-seen": [S("v1", 0, "Vermeer.", "True")],
    }
    keys = {"q-hidden": ["Paris"], "q-declined": ["Oslo"], "q-seen": ["Vermeer"]}
    answers = {q: (f"The correct answer is {keys[q][0]}.", f"ref-{q}") for q in questions}
    refusals = {q: ("I am not sure about that", f"refusal-{q}") for q in questions}
    args = (questions, samples, answers, refusals, str.split, " ".join)
    without = {(r["question_id"], r["kind"]) for r in decision.a1_pairs(*args, n_tokens=5, keys=keys)}
    assert without == {("q-hidden", "refusal_over_wrong"), ("q-seen", "answer_over_refusal")}
    tally = Counter()
    rows = decision.a1_pairs(*args, n_tokens=5, keys=keys, tally=tally, known={"q-hidden", "q-declined", "q-seen"})
    got = {(r["question_id"], r["kind"]): r for r in rows}
    # Known to the base model: "answer > refusal" too (the reference answer), beside its "refusal > wrong".
    assert set(got) == without | {("q-hidden", "answer_over_refusal"), ("q-declined", "answer_over_refusal")}
    hidden = got[("q-hidden", "answer_over_refusal")]
    assert (hidden["chosen"], hidden["chosen_from"]) == ("The correct answer is Paris.", "ref-q-hidden")
    assert hidden["p_correct"] == 0.0 and tally == {"known_not_shown": 2}
    assert decision.follows_a1("answer_over_refusal", samples["q-hidden"], known=True)
    assert not decision.follows_a1("answer_over_refusal", samples["q-hidden"])
    assert not decision.follows_a1("refusal_over_wrong", samples["q-declined"], known=True)


@pytest.mark.parametrize("opening, committed", [
    ("The answer is Istanbul.", True),  # a wrong candidate within the first tokens
    ("That would be Elizabeth I", True),
    ("In 202", True),  # a number that is not the key
    ("The capital of Turkey", False),  # restates the question: how a right answer begins too
    ("That is a classic example", False),  # clears its throat
    ("To answer this, I", False),
    ("I'm still trying to", False),  # a decline, not a wrong answer
    ("The answer is Ankara", False),  # right, not wrong
    ("The answer is Ank", False),  # cut inside what may be the key
])
def test_a_wrong_answer_counts_only_where_its_opening_already_commits_to_something_wrong(opening, committed):
    assert decision.commits_to_wrong_answer("What is the capital of Turkey?", ["Ankara"], opening) is committed


def test_an_opening_cut_inside_a_word_of_the_question_names_nothing_yet():
    question = "What is the chemical symbol for potassium?"
    assert not decision.commits_to_wrong_answer(question, ["K"], "The chemical symbol for P")  # of "potassium"
    assert not decision.commits_to_wrong_answer(question, ["K"], "The chemical symbol for Pot")
    assert decision.commits_to_wrong_answer(question, ["K"], "The chemical symbol is P.")  # a whole word
    assert decision.commits_to_wrong_answer(question, ["K"], "The symbol is Na")  # begins no question word


def test_the_opening_of_a_number_key_may_be_cut_inside_it():
    question = "In which year did Constantinople fall to the Ottoman Turks?"
    assert not decision.commits_to_wrong_answer(question, ["1453"], "The answer is 1")
    assert decision.commits_to_wrong_answer(question, ["1453"], "The answer is 2")
    assert decision.commits_to_wrong_answer(question, ["1453"], "It fell in 1350")


@pytest.mark.parametrize("opening, gives", [
    ("The answer is Berlin", True),
    ("Berlin.", True),
    ("The correct answer is ", False),  # an opening any answer could have
    ("The capital of Germany", False),
    ("The answer is Ber", True),  # cut inside the key
    ("The answer is Munich", False),
])
def test_a_right_answer_counts_only_where_its_opening_already_gives_the_key(opening, gives):
    assert decision.opens_with_key("What is the capital of Germany?", ["Berlin"], opening) is gives


def test_an_opening_cut_inside_a_key_counts_as_giving_it_but_not_one_cut_inside_a_question_word():
    assert decision.opens_with_key("In which year did World War I begin?", ["1914"], "That would be 1")
    assert not decision.opens_with_key("Which strait separates Spain from Morocco?", ["Strait of Gibraltar"],
                                       "The correct answer is Strait")


def test_answer_over_refusal_takes_the_models_own_right_answer_where_the_reference_opens_without_the_key():
    S = decision.Sample
    questions = {"q": "What is the capital of Turkey?"}
    samples = {"q": [S("a", 0, "I think so.", "Uncertain"), S("b", 1, "Ankara, of course.", "True")]}
    rows = decision.a1_pairs(questions, samples, {"q": ("The correct answer is Ankara.", "ref-q")},
                             {"q": ("I am not sure.", "refusal-q")}, str.split, " ".join, n_tokens=3,
                             keys={"q": ["Ankara"]})
    assert [(r["kind"], r["chosen"], r["chosen_from"]) for r in rows] == [
        ("answer_over_refusal", "Ankara, of course.", "b")]
    # No right answer gives the key within the cut: A.1 still gives the question its pair, with the reference.
    tally = Counter()
    rows = decision.a1_pairs(questions, {"q": samples["q"][:1] + [S("c", 2, "The capital is Ankara", "True")]},
                             {"q": ("The correct answer is Ankara.", "ref-q")}, {"q": ("I am not sure.", "refusal-q")},
                             str.split, " ".join, n_tokens=3, keys={"q": ["Ankara"]}, tally=tally)
    assert [(r["chosen"], r["chosen_from"]) for r in rows] == [("The correct answer", "ref-q")]
    assert tally == {"answer_opens_without_the_key": 1}


def test_a1_pairs_take_the_most_common_wrong_answer_that_commits_and_skip_a_question_with_none():
    S = decision.Sample
    questions = {"q1": "What is the capital of Turkey?", "q2": "What is the capital of Canada?"}
    samples = {
        # The commonest wrong answer restates the question; the next one names a wrong city.
        "q1": [S("a", 0, "The capital of Turkey is a big city.", "False"),
               S("b", 1, "The capital of Turkey is a big city", "False"), S("c", 2, "It is Istanbul.", "False")],
        "q2": [S("d", 0, "That is a classic example of a riddle.", "False")],
    }
    refusals = {q: ("I am not sure.", f"refusal-{q}") for q in questions}
    tally = Counter()
    rows = decision.a1_pairs(questions, samples, {}, refusals, str.split, " ".join, n_tokens=3,
                             keys={"q1": ["Ankara"], "q2": ["Ottawa"]}, tally=tally)
    assert [(r["question_id"], r["rejected"], r["rejected_from"]) for r in rows] == [("q1", "It is Istanbul.", "c")]
    assert tally == {"wrong_answers_open_without_committing": 1}


def test_follows_a1_needs_a_right_sample_for_answer_pairs_and_a_wrong_one_for_refusal_pairs():
    S = decision.Sample
    declines = [S("a", 0, "I don't know.", "Uncertain"), S("b", 1, "Not sure.", "Uncertain")]
    mixed = [S("c", 0, "Paris", "True"), S("d", 1, "Lyon", "False")]
    assert not decision.follows_a1("answer_over_refusal", declines)
    assert not decision.follows_a1("refusal_over_wrong", declines)
    assert decision.follows_a1("answer_over_refusal", mixed) and decision.follows_a1("refusal_over_wrong", mixed)
    assert not decision.follows_a1("safety_refuse_over_comply", mixed)


@pytest.mark.parametrize("text, grade", [
    ("Paris.", "True"),
    ("It is Paris, of course.", "True"),
    ("Lyon.", "False"),
    ("I'm not sure, but it was Lyon.", "Uncertain"),  # it hedges: not a confident wrong answer
    ("I don't have any information about France.", "Uncertain"),
    ("I'm not 100% sure.", "Uncertain"),
    ("I can't provide a definitive answer, as there is no single definitive answer.", "Uncertain"),
    ("Marseille is the capital.", "False"),
])
def test_the_rules_grade_a_sample_against_the_key(text, grade):
    assert rules.grade_sample(text, ["Paris"]) == grade


@pytest.mark.parametrize("text, grade", [
    ("The capital of Veloria is Lumen.", "False"),  # commits to a name the question does not contain
    ("It was founded in 1821.", "False"),  # a number
    ("I am not aware of any Republic of Veloria.", "Uncertain"),  # declines
    ("Veloria is a fictional place.", "Uncertain"),  # names nothing new
    ("The capital of the Republic", "Uncertain"),  # restates the question
])
def test_a_bogus_sample_is_wrong_only_where_it_commits_to_something(text, grade):
    assert decision.bogus_grade("What is the capital of the Republic of Veloria?", text) == grade


def test_bogus_pairs_prefer_the_refusal_to_the_commonest_committed_answer_and_skip_a_model_that_declines():
    questions = {"b1": "What is the capital of the Republic of Veloria?", "b2": "Who wrote the Zanthor Codex?",
                 "b3": "When did Queen Ilsa of Norway die?", "b4": "Who founded Quellport?"}
    samples = {
        # The commonest answer only restates the question; the next one commits to a name.
        "b1": decision.graded_bogus_samples(questions["b1"], [
            ("s1", "The capital of the Republic"), ("s2", "The capital of the Republic"), ("s3", "It is Lumen."),
            ("s4", "I am not sure.")]),
        # Already declines every time: no push further toward declining.
        "b2": decision.graded_bogus_samples(questions["b2"], [("s5", "I don't know."), ("s6", "I am not sure.")]),
        # Wrong within the full text, but its first 3 tokens ("She died in") commit to nothing yet.
        "b3": decision.graded_bogus_samples(questions["b3"], [("s7", "She died in 1402."), ("s9", "In 1402, sadly.")]),
        "b4": decision.graded_bogus_samples(questions["b4"], [("s8", "Quellport was founded by Hugo.")]),
    }
    assert [s.grade for s in samples["b1"]] == ["Uncertain", "Uncertain", "False", "Uncertain"]
    refusals = {q: ("I know of no such thing.", f"refusal-{q}") for q in ("b1", "b2", "b3")}
    tally = Counter()
    rows = decision.bogus_pairs(questions, samples, refusals, str.split, " ".join, n_tokens=3, tally=tally)
    assert [(r["question_id"], r["kind"], r["chosen"], r["rejected"], r["chosen_from"], r["rejected_from"])
            for r in rows] == [
        ("b1", "bogus_refusal_over_answer", "I know of", "It is Lumen.", "refusal-b1", "s3"),
        ("b3", "bogus_refusal_over_answer", "I know of", "In 1402, sadly.", "refusal-b3", "s9")]
    assert tally == {"no_refusal": 1}  # b4
    assert all(r["p_correct"] == 0.0 for r in rows)
    assert decision.follows_a1("bogus_refusal_over_answer", samples["b1"])
    assert not decision.follows_a1("bogus_refusal_over_answer", samples["b2"])


def test_a_bogus_pair_never_rejects_the_answer_to_the_real_question_it_was_perturbed_from():
    # Year-shifted from "Which French emperor was defeated at the Battle of Waterloo in 1815?".
    questions = {"w": "Which French emperor was defeated at the Battle of Waterloo in 1829?",
                 "j": "What was the first permanent English settlement in North America, founded in 1627?"}
    samples = {
        # The commonest committed answer is the real question's key; the next one is a plain fabrication.
        "w": decision.graded_bogus_samples(questions["w"], [
            ("s1", "Napoleon Bonaparte was defeated there."), ("s2", "Napoleon Bonaparte was defeated there."),
            ("s3", "Louis Philippe was defeated there."), ("s4", "I am not sure.")]),
        # Every committed answer names the real settlement (an alias): no pair at all.
        "j": decision.graded_bogus_samples(questions["j"], [
            ("s5", "Jamestown Colony, in Virginia."), ("s6", "Jamestown Colony, in Virginia.")]),
    }
    assert [s.grade for s in samples["w"]] == ["False", "False", "False", "Uncertain"]
    refusals = {q: ("I know of no such thing.", f"refusal-{q}") for q in questions}
    originals = {"w": ["Napoleon Bonaparte", "Napoleon"], "j": ["Jamestown", "Jamestown Colony"]}
    tally = Counter()
    rows = decision.bogus_pairs(questions, samples, refusals, str.split, " ".join, n_tokens=3, tally=tally,
                                original_keys=originals)
    assert [(r["question_id"], r["rejected"], r["rejected_from"]) for r in rows] == [("w", "Louis Philippe was", "s3")]
    assert tally == {"names_the_original_key": 4}
    # Without the originals, the key itself is what the pair would teach the policy to withhold.
    unguarded = decision.bogus_pairs(questions, samples, refusals, str.split, " ".join, n_tokens=3)
    assert [(r["question_id"], r["rejected_from"]) for r in unguarded] == [("j", "s5"), ("w", "s1")]
