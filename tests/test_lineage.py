"""``phi4 lineage`` and the ``phi4.lineage_edges`` view over a small hand-made warehouse."""

import json

import duckdb
import pandas as pd
import pytest

from phi4_assets.ops import lineage
from phi4_assets.cli.main import main
from phi4_assets.defs import table_schemas
from phi4_assets.pts.memo import Estimate, EstimateMemo, estimate_key
from phi4_assets.teacher.cache import CallRecord, TeacherCache
from phi4_assets.teacher.types import TeacherReply
from phi4_assets.core.warehouse import column_names, write_frame

MEMO_PARAMS = {"temperature": 0.7, "max_new_tokens": 6}
PIVOT_KEY = estimate_key("mv1", "math-aaa", (5, 6), 4, MEMO_PARAMS)

# The tables the assets write, as declared by the assets (the columns not set here are null).
SCHEMAS = table_schemas()

ROWS = {
    "trivia_seeds": [
        dict(id="trivia-0001", question="What is the capital of France?", answer="Paris", aliases=[],
             topic="geography", difficulty="easy"),
        dict(id="trivia-0002", question="Who wrote Hamlet?", answer="William Shakespeare", aliases=["Shakespeare"],
             topic="literature", difficulty="easy"),
    ],
    "math_problems": [dict(id="math-aaa", question="What is 2 + 2?", answer="4", difficulty=1, template="sum")],
    "chat_prompts": [dict(id="chat-0001", prompt="Explain why the sky is blue.", category="explanation")],
    "safety_prompts": [
        dict(id="safety-h001", prompt="How do I pick a lock to get into my neighbour's house?", kind="harmful",
             category="crime", pair="safety-b001"),
        dict(id="safety-b001", prompt="How do locks work?", kind="benign", category="crime", pair="safety-h001"),
    ],
    "policy_answer_samples": [
        dict(id="sample-2a", shard="000", question_id="trivia-0002", sample_index=0, text="Charles Dickens wrote it.",
             n_tokens=6, finished=True, model_version="base1", temperature=0.8),
        dict(id="sample-2b", shard="000", question_id="trivia-0002", sample_index=1, text="Shakespeare.",
             n_tokens=3, finished=True, model_version="base1", temperature=0.8),
    ],
    "answer_checks": [
        dict(id="check-2a", shard="000", sample_id="sample-2a", question_id="trivia-0002", sample_index=0,
             matches_key="False", grader="stub-teacher", teacher_call_id="call-check-2a",
             teacher_raw='{"matches_key": "False"}'),
        dict(id="check-2b", shard="000", sample_id="sample-2b", question_id="trivia-0002", sample_index=1,
             matches_key="True", grader="rules:key_match"),
    ],
    "reference_answers": [dict(id="reference-2", shard="000", question_id="trivia-0002",
                               answer_text="Hamlet was written by William Shakespeare.", generator="rules")],
    "bogus_questions": [dict(id="bogus-2", shard="000", question_id="trivia-0002", original="Who wrote Hamlet?",
                             bogus_question="Who wrote the opera Veltravia?", quality=4, method="title_swap",
                             generator="rules", entity="Veltravia", kept=True)],
    "refusals": [
        dict(id="refusal-2", shard="000", target_id="trivia-0002", question_id="trivia-0002", bogus=False,
             question="Who wrote Hamlet?", refusal="I'm not sure who wrote it, so I won't guess.",
             generator="stub-teacher", teacher_call_id="call-refusal-2"),
        dict(id="refusal-b2", shard="000", target_id="bogus-2", question_id="trivia-0002", bogus=True,
             question="Who wrote the opera Veltravia?", refusal="I'm not aware of an opera called Veltravia.",
             generator="rules"),
    ],
    "hallucination_sft_data": [
        dict(id="hsft-answer", prompt="Who wrote Hamlet?", completion="Hamlet was written by William Shakespeare.",
             kind="answer", question_id="trivia-0002", p_correct=0.5, source_id="reference-2", generator="rules"),
        dict(id="hsft-bogus", prompt="Who wrote the opera Veltravia?",
             completion="I'm not aware of an opera called Veltravia.", kind="bogus_refusal",
             question_id="trivia-0002", source_id="refusal-b2", generator="rules"),
    ],
    "hallucination_dpo_pairs": [
        dict(id="hdpo-wrong", prompt="Who wrote Hamlet?", chosen="I'm not sure who", rejected="Charles Dickens wrote",
             chosen_token_ids=[1, 2, 3], rejected_token_ids=[4, 5], kind="refusal_over_wrong",
             question_id="trivia-0002", p_correct=0.5, chosen_from="refusal-2", rejected_from="sample-2a"),
        dict(id="hdpo-answer", prompt="Who wrote Hamlet?", chosen="Hamlet was written by", rejected="I'm not sure who",
             chosen_token_ids=[6, 7], rejected_token_ids=[1, 2, 3], kind="answer_over_refusal",
             question_id="trivia-0002", p_correct=0.5, chosen_from="reference-2", rejected_from="refusal-2"),
    ],
    "sft_dataset": [
        dict(id="sft-chat", prompt="Explain why the sky is blue.", completion="Because of Rayleigh scattering.",
             source="chat", kind="chat_response", generator="stub-teacher", source_id="chat-0001",
             teacher_call_id="call-chat", truncated=False),
        dict(id="sft-bogus", prompt="Who wrote the opera Veltravia?",
             completion="I'm not aware of an opera called Veltravia.", source="hallucination", kind="bogus_refusal",
             generator="rules", source_id="hsft-bogus", truncated=False),
        dict(id="sft-lost", prompt="How do locks work?", completion="Pins line up with the key.", source="safety",
             kind="benign_answer", generator="stub-teacher", source_id="safety-b001",
             teacher_call_id="call-not-cached", truncated=False),
    ],
    "pivotal_tokens": [dict(id="pivot-1", domain="math", problem_id="math-aaa", response_id="response-1",
                            response_text="2 + 2 = 4", index=2, token=19, token_text=" 4", prefix_ids=[5, 6],
                            prefix_text="2 + 2 =", prefix_hash="h", estimate_key=PIVOT_KEY, prompt_ids=[1, 2],
                            p_before=0.25, p_after=0.75, delta=0.5, rollouts_per_estimate=4, accepted=True,
                            model_version="mv1")],
    "pts_dpo_pairs": [
        dict(id="ptspair-1", prompt_token_ids=[1, 2, 5, 6], chosen=" 4", rejected=" 5", chosen_token_ids=[19],
             rejected_token_ids=[20], source="pts:math", pivot_id="pivot-1", problem_id="math-aaa", p_before=0.25,
             p_after=0.75, partner_rate=0.0),
        dict(id="mix-wrong", prompt="Who wrote Hamlet?", chosen="I'm not sure who", rejected="Charles Dickens wrote",
             chosen_token_ids=[1, 2, 3], rejected_token_ids=[4, 5], source="hallucination", problem_id="trivia-0002"),
    ],
    "dpo1_mix_pairs": [
        dict(id="mix-wrong", prompt="Who wrote Hamlet?", chosen="I'm not sure who", rejected="Charles Dickens wrote",
             chosen_token_ids=[1, 2, 3], rejected_token_ids=[4, 5], source="hallucination", kind="refusal_over_wrong",
             problem_id="trivia-0002", p_correct=0.0, grades="True 0 / False 8 / Uncertain 0",
             chosen_from="refusal-2", rejected_full="Charles Dickens wrote it.", model_version="sft1")],
    "dpo2_mix_pairs": [
        dict(id="mix-answer", prompt="Who wrote Hamlet?", chosen="Hamlet was written by", rejected="I'm not sure who",
             chosen_token_ids=[6, 7], rejected_token_ids=[1, 2, 3], source="hallucination",
             kind="answer_over_refusal", problem_id="trivia-0002", p_correct=0.25,
             grades="True 2 / False 0 / Uncertain 6", chosen_from="reference-2", rejected_from="refusal-2",
             model_version="dpo1")],
    "judge_candidates": [
        dict(id="candidate-t", prompt_id="chat-0001", prompt_kind="chat", prompt="Explain why the sky is blue.",
             source="teacher", generator="stub-teacher", response="Air scatters blue light the most.",
             truncated=False, teacher_call_id="call-candidate"),
        dict(id="candidate-s", prompt_id="chat-0001", prompt_kind="chat", prompt="Explain why the sky is blue.",
             source="sft_model", generator="sft_model", response="The sky is blue because it is.", truncated=False,
             model_version="sft1"),
    ],
    "judge_ratings": [dict(id="rating-1", prompt_id="chat-0001", prompt_kind="chat", candidate_a_id="candidate-s",
                           candidate_b_id="candidate-t", source_a="sft_model", source_b="teacher",
                           judge="stub-teacher", call_ab_id="call-judge-ab", call_ba_id="call-judge-ba",
                           accuracy_a=2, style_a=3, detail_a=2, accuracy_b=5, style_b=4, detail_b=4,
                           order_consistent=True, accuracy_source="judge")],
    "judge_dpo_pairs": [
        dict(id="judgepair-1", prompt_id="chat-0001", prompt="Explain why the sky is blue.",
             chosen="Air scatters blue light the most.", rejected="The sky is blue because it is.", subset="accuracy",
             margin=3.0, rating_id="rating-1", chosen_candidate_id="candidate-t", rejected_candidate_id="candidate-s",
             source="judge"),
        dict(id="mix-answer", prompt_id="trivia-0002", prompt="Who wrote Hamlet?", chosen="Hamlet was written by",
             rejected="I'm not sure who", subset="hallucination", source="hallucination"),
    ],
}

CALLS = {  # call id -> (task, user message, response)
    "call-check-2a": ("answer_check", "Question: Who wrote Hamlet?\nResponse: Charles Dickens wrote it.",
                      '{"matches_key": "False"}'),
    "call-refusal-2": ("refusal", "Who wrote Hamlet?", "I'm not sure who wrote it, so I won't guess."),
    "call-chat": ("sft_chat_response", "Explain why the sky is blue.", "Because of Rayleigh scattering."),
    "call-candidate": ("judge_candidate", "Explain why the sky is blue.", "Air scatters blue light the most."),
    "call-judge-ab": ("judge", "[Response 1] The sky is blue because it is.", '{"accuracy": [2, 5]}'),
    "call-judge-ba": ("judge", "[Response 1] Air scatters blue light the most.", '{"accuracy": [5, 2]}'),
}


def build_warehouse(paths, tables=None) -> None:
    """The hand-made warehouse (schema phi4), teacher cache and PTS memo at ``paths``."""
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS phi4")
        for name in tables or ROWS:
            frame = pd.DataFrame(ROWS[name]).reindex(columns=column_names(SCHEMAS[name]))
            write_frame(con, f"phi4.{name}", frame, SCHEMAS[name], partitioned=False, where=name)
    TeacherCache(paths.teacher_cache).store([
        CallRecord(reply=TeacherReply(call_id=cid, text=response, finish_reason="stop", prompt_tokens=30,
                                      completion_tokens=8),
                   model="stub-teacher", task=task,
                   request={"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": user}],
                            "temperature": 0.0, "max_tokens": 24})
        for cid, (task, user, response) in CALLS.items()])
    EstimateMemo(paths.pts_memo).store("mv1", "math-aaa", (5, 6), MEMO_PARAMS,
                                       Estimate(p=0.25, n=4, first_tokens=(19, 20, 20, None),
                                                outcomes=(True, False, False, False)))


@pytest.fixture
def warehouse(state):
    build_warehouse(state)
    return state


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["lineage", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys, row_id: str) -> dict:
    code, out, _ = run(capsys, row_id, "--json")
    assert code == 0
    return json.loads(out)


def edges(data: dict) -> set[tuple[str, str, str]]:
    return {(e["child"], e["parent"], e["via"]) for e in data["edges"]}


PTS_TEXT = f"""\
pts_dpo_pairs ptspair-1  source=pts:math p 0.25->0.75 chosen=' 4' rejected=' 5'
    pivot_id -> pivotal_tokens [math] pivot-1  token=' 4' (19) at 2 p 0.25->0.75 accepted prefix='2 + 2 ='
        estimate_key -> PTS estimate {PIVOT_KEY}  problem=math-aaa prefix_len=2 p=0.25 n=4 successes=1 \
first token:successes/rollouts 20:0/2, 19:1/1, end:0/1
        problem_id -> math_problems math-aaa  question='What is 2 + 2?' answer=4

seeds: math_problems:math-aaa
teacher calls: none
PTS estimates: {PIVOT_KEY}"""


def test_pts_pair_text_reaches_the_pivot_the_memo_estimate_and_the_problem(warehouse, capsys):
    code, out, err = run(capsys, "ptspair-1")
    assert code == 0 and err == ""
    assert out.rstrip("\n") == PTS_TEXT


JUDGE_TEXT = """\
judge_dpo_pairs judgepair-1  subset=accuracy margin=3.0 chosen='Air scatters blue light the most.' \
rejected='The sky is blue because it is.'
    rating_id -> judge_ratings rating-1  judge=stub-teacher A acc/style/detail=2/3/2 B=5/4/4 order_consistent=True
        candidate_a_id -> judge_candidates candidate-s  generator=sft_model source=sft_model \
response='The sky is blue because it is.'
            prompt_id -> chat_prompts chat-0001  prompt='Explain why the sky is blue.'
        candidate_b_id -> judge_candidates candidate-t  generator=stub-teacher source=teacher \
response='Air scatters blue light the most.'
            teacher_call_id -> teacher call call-candidate  task=judge_candidate model=stub-teacher tokens=30+8 \
prompt='Explain why the sky is blue.' -> 'Air scatters blue light the most.'
        call_ab_id -> teacher call call-judge-ab  task=judge model=stub-teacher tokens=30+8 \
prompt='[Response 1] The sky is blue because ...' -> '{"accuracy": [2, 5]}'
        call_ba_id -> teacher call call-judge-ba  task=judge model=stub-teacher tokens=30+8 \
prompt='[Response 1] Air scatters blue light ...' -> '{"accuracy": [5, 2]}'
    (also, shown above: judge_candidates x2)

seeds: chat_prompts:chat-0001
teacher calls: call-candidate, call-judge-ab, call-judge-ba"""


def test_judge_pair_text_and_json(warehouse, capsys):
    code, out, _ = run(capsys, "judgepair-1")
    assert code == 0
    assert out.rstrip("\n") == JUDGE_TEXT

    data = as_json(capsys, "judgepair-1")
    assert data["roots"] == ["judge_dpo_pairs:judgepair-1"]
    assert data["seeds"] == ["chat_prompts:chat-0001"]
    assert data["teacher_calls"] == ["call-candidate", "call-judge-ab", "call-judge-ba"]
    assert edges(data) == {
        ("judge_dpo_pairs:judgepair-1", "judge_ratings:rating-1", "rating_id"),
        ("judge_dpo_pairs:judgepair-1", "judge_candidates:candidate-t", "chosen_candidate_id"),
        ("judge_dpo_pairs:judgepair-1", "judge_candidates:candidate-s", "rejected_candidate_id"),
        ("judge_ratings:rating-1", "judge_candidates:candidate-s", "candidate_a_id"),
        ("judge_ratings:rating-1", "judge_candidates:candidate-t", "candidate_b_id"),
        ("judge_ratings:rating-1", "teacher_calls:call-judge-ab", "call_ab_id"),
        ("judge_ratings:rating-1", "teacher_calls:call-judge-ba", "call_ba_id"),
        ("judge_candidates:candidate-t", "teacher_calls:call-candidate", "teacher_call_id"),
        ("judge_candidates:candidate-t", "chat_prompts:chat-0001", "prompt_id"),
        ("judge_candidates:candidate-s", "chat_prompts:chat-0001", "prompt_id"),
    }
    call = next(n for n in data["nodes"] if n["key"] == "teacher_calls:call-judge-ab")
    assert call["store"] == "teacher_cache" and call["asset"] is None
    assert call["row"]["request"]["messages"][-1]["content"] == "[Response 1] The sky is blue because it is."
    assert call["row"]["response"] == '{"accuracy": [2, 5]}'


def test_hallucination_pair_reaches_checks_samples_calls_and_the_seed(warehouse, capsys):
    data = as_json(capsys, "hdpo-wrong")
    assert data["roots"] == ["hallucination_dpo_pairs:hdpo-wrong"]
    assert data["seeds"] == ["trivia_seeds:trivia-0002"]
    assert sorted(data["teacher_calls"]) == ["call-check-2a", "call-refusal-2"]
    assert {("hallucination_dpo_pairs:hdpo-wrong", "refusals:refusal-2", "chosen_from"),
            ("hallucination_dpo_pairs:hdpo-wrong", "policy_answer_samples:sample-2a", "rejected_from"),
            ("hallucination_dpo_pairs:hdpo-wrong", "answer_checks:check-2a", "question_id"),
            ("hallucination_dpo_pairs:hdpo-wrong", "answer_checks:check-2b", "question_id"),
            ("answer_checks:check-2a", "teacher_calls:call-check-2a", "teacher_call_id"),
            ("answer_checks:check-2a", "policy_answer_samples:sample-2a", "sample_id"),
            ("refusals:refusal-2", "teacher_calls:call-refusal-2", "teacher_call_id"),
            ("policy_answer_samples:sample-2a", "trivia_seeds:trivia-0002", "question_id")} <= edges(data)
    partitions = {n["key"]: n["partition"] for n in data["nodes"]}
    assert partitions["answer_checks:check-2a"] == "000" and partitions["hallucination_dpo_pairs:hdpo-wrong"] is None

    code, out, _ = run(capsys, "hdpo-wrong", "--table", "hallucination_dpo_pairs")
    assert code == 0 and out.startswith("hallucination_dpo_pairs hdpo-wrong  kind=refusal_over_wrong")
    assert "    chosen_from -> refusals [000] refusal-2  bogus=False refusal=" in out
    assert "        teacher_call_id -> teacher call call-refusal-2  task=refusal" in out
    assert "    (also, shown above: policy_answer_samples [000] sample-2a, answer_checks x2)" in out
    assert out.count("trivia_seeds trivia-0002") == 1  # a seed met again is not repeated in the tree


def test_judge_mixed_hallucination_pair_and_sft_rows(warehouse, capsys):
    data = as_json(capsys, "mix-answer")
    # The id is both a stage-2 mix pair and a judge_dpo_pairs row: the stage's pair is the root.
    assert data["roots"] == ["judge_dpo_pairs:mix-answer"]
    assert {("judge_dpo_pairs:mix-answer", "dpo2_mix_pairs:mix-answer", "id"),
            ("dpo2_mix_pairs:mix-answer", "reference_answers:reference-2", "chosen_from"),
            ("dpo2_mix_pairs:mix-answer", "refusals:refusal-2", "rejected_from"),
            ("dpo2_mix_pairs:mix-answer", "trivia_seeds:trivia-0002", "problem_id")} <= edges(data)
    assert data["seeds"] == ["trivia_seeds:trivia-0002"]
    assert set(data["teacher_calls"]) == {"call-refusal-2", "call-check-2a"}  # the refusal, and the checks behind it

    # Stage 1's pair: its rejected side is the starting model's own answer (in the row, no parent).
    mixed = as_json(capsys, "mix-wrong")
    assert mixed["roots"] == ["pts_dpo_pairs:mix-wrong"] and not any(n["missing"] for n in mixed["nodes"])
    assert {("pts_dpo_pairs:mix-wrong", "dpo1_mix_pairs:mix-wrong", "id"),
            ("dpo1_mix_pairs:mix-wrong", "refusals:refusal-2", "chosen_from")} <= edges(mixed)
    code, out, _ = run(capsys, "mix-wrong", "--table", "dpo1_mix_pairs")
    assert code == 0 and out.startswith("dpo1_mix_pairs mix-wrong  kind=refusal_over_wrong "
                                        "grades=True 0 / False 8 / Uncertain 0")

    chat = as_json(capsys, "sft-chat")
    assert chat["seeds"] == ["chat_prompts:chat-0001"] and chat["teacher_calls"] == ["call-chat"]

    bogus = as_json(capsys, "sft-bogus")
    assert [n["key"] for n in bogus["nodes"]] == [
        "sft_dataset:sft-bogus", "hallucination_sft_data:hsft-bogus", "refusals:refusal-b2",
        "bogus_questions:bogus-2", "trivia_seeds:trivia-0002"]
    assert bogus["teacher_calls"] == []  # rules all the way: no answer checks for a bogus question

    lost = as_json(capsys, "sft-lost")
    missing = [n for n in lost["nodes"] if n["missing"]]
    assert [(n["key"], n["summary"]) for n in missing] == [
        ("teacher_calls:call-not-cached", "not found in the teacher cache")]
    assert lost["seeds"] == ["safety_prompts:safety-b001"] and lost["teacher_calls"] == []
    code, out, _ = run(capsys, "sft-lost")
    assert out.rstrip().endswith("recorded but not found: teacher_calls:call-not-cached")


def test_a_teacher_call_or_a_seed_alone_and_an_unknown_id(warehouse, capsys):
    data = as_json(capsys, "call-chat")
    assert data["roots"] == ["teacher_calls:call-chat"] and len(data["nodes"]) == 1 and data["edges"] == []
    assert as_json(capsys, "trivia-0001")["seeds"] == ["trivia_seeds:trivia-0001"]

    code, out, err = run(capsys, "no-such-row")
    assert code == 1 and out == ""
    assert err.strip() == ("phi4 lineage: no row with id 'no-such-row' in any warehouse table, the teacher cache "
                           "or the PTS memo")


def test_missing_tables_are_skipped(state, capsys):
    code, _, err = run(capsys, "ptspair-1")
    assert code == 1 and "no warehouse at" in err  # nothing materialized at all
    build_warehouse(state, tables=["pts_dpo_pairs", "judge_dpo_pairs"])  # the parents are not there yet
    data = as_json(capsys, "ptspair-1")
    assert [n["key"] for n in data["nodes"]] == ["pts_dpo_pairs:ptspair-1"] and data["edges"] == []
    assert edges(as_json(capsys, "judgepair-1")) == set()


def test_lineage_view_has_the_expected_edges(warehouse, capsys):
    code, out, _ = run(capsys, "--create-view")
    assert code == 0 and "phi4.lineage_edges" in out
    with duckdb.connect(str(warehouse.warehouse), read_only=True) as con:
        view = set(con.execute("SELECT child_table, child_id, parent_table, parent_id, via_column "
                               "FROM phi4.lineage_edges").fetchall())
    expected = {
        ("pts_dpo_pairs", "ptspair-1", "pivotal_tokens", "pivot-1", "pivot_id"),
        ("pts_dpo_pairs", "mix-wrong", "dpo1_mix_pairs", "mix-wrong", "id"),
        ("dpo1_mix_pairs", "mix-wrong", "refusals", "refusal-2", "chosen_from"),
        ("dpo1_mix_pairs", "mix-wrong", "trivia_seeds", "trivia-0002", "problem_id"),
        ("dpo2_mix_pairs", "mix-answer", "reference_answers", "reference-2", "chosen_from"),
        ("dpo2_mix_pairs", "mix-answer", "refusals", "refusal-2", "rejected_from"),
        ("dpo2_mix_pairs", "mix-answer", "trivia_seeds", "trivia-0002", "problem_id"),
        ("pivotal_tokens", "pivot-1", "pts_estimates", PIVOT_KEY, "estimate_key"),
        ("pivotal_tokens", "pivot-1", "math_problems", "math-aaa", "problem_id"),
        ("judge_dpo_pairs", "judgepair-1", "judge_ratings", "rating-1", "rating_id"),
        ("judge_dpo_pairs", "judgepair-1", "judge_candidates", "candidate-t", "chosen_candidate_id"),
        ("judge_dpo_pairs", "judgepair-1", "judge_candidates", "candidate-s", "rejected_candidate_id"),
        ("judge_dpo_pairs", "mix-answer", "dpo2_mix_pairs", "mix-answer", "id"),
        ("judge_ratings", "rating-1", "judge_candidates", "candidate-s", "candidate_a_id"),
        ("judge_ratings", "rating-1", "judge_candidates", "candidate-t", "candidate_b_id"),
        ("judge_ratings", "rating-1", "teacher_calls", "call-judge-ab", "call_ab_id"),
        ("judge_ratings", "rating-1", "teacher_calls", "call-judge-ba", "call_ba_id"),
        ("judge_candidates", "candidate-t", "teacher_calls", "call-candidate", "teacher_call_id"),
        ("judge_candidates", "candidate-t", "chat_prompts", "chat-0001", "prompt_id"),
        ("judge_candidates", "candidate-s", "chat_prompts", "chat-0001", "prompt_id"),
        ("hallucination_dpo_pairs", "hdpo-wrong", "refusals", "refusal-2", "chosen_from"),
        ("hallucination_dpo_pairs", "hdpo-wrong", "policy_answer_samples", "sample-2a", "rejected_from"),
        ("hallucination_dpo_pairs", "hdpo-answer", "reference_answers", "reference-2", "chosen_from"),
        ("hallucination_dpo_pairs", "hdpo-answer", "refusals", "refusal-2", "rejected_from"),
        *{("hallucination_dpo_pairs", pair, parent, pid, "question_id")
          for pair in ("hdpo-wrong", "hdpo-answer")
          for parent, pid in (("answer_checks", "check-2a"), ("answer_checks", "check-2b"),
                              ("trivia_seeds", "trivia-0002"))},
        ("hallucination_sft_data", "hsft-answer", "reference_answers", "reference-2", "source_id"),
        ("hallucination_sft_data", "hsft-answer", "answer_checks", "check-2a", "question_id"),
        ("hallucination_sft_data", "hsft-answer", "answer_checks", "check-2b", "question_id"),
        ("hallucination_sft_data", "hsft-answer", "trivia_seeds", "trivia-0002", "question_id"),
        ("hallucination_sft_data", "hsft-bogus", "refusals", "refusal-b2", "source_id"),
        ("hallucination_sft_data", "hsft-bogus", "trivia_seeds", "trivia-0002", "question_id"),
        ("refusals", "refusal-b2", "bogus_questions", "bogus-2", "target_id"),
        ("refusals", "refusal-2", "answer_checks", "check-2a", "question_id"),
        ("refusals", "refusal-2", "answer_checks", "check-2b", "question_id"),
        ("refusals", "refusal-2", "teacher_calls", "call-refusal-2", "teacher_call_id"),
        ("refusals", "refusal-2", "trivia_seeds", "trivia-0002", "question_id"),
        ("refusals", "refusal-b2", "trivia_seeds", "trivia-0002", "question_id"),
        ("bogus_questions", "bogus-2", "trivia_seeds", "trivia-0002", "question_id"),
        ("reference_answers", "reference-2", "trivia_seeds", "trivia-0002", "question_id"),
        ("answer_checks", "check-2a", "policy_answer_samples", "sample-2a", "sample_id"),
        ("answer_checks", "check-2b", "policy_answer_samples", "sample-2b", "sample_id"),
        ("answer_checks", "check-2a", "teacher_calls", "call-check-2a", "teacher_call_id"),
        ("answer_checks", "check-2a", "trivia_seeds", "trivia-0002", "question_id"),
        ("answer_checks", "check-2b", "trivia_seeds", "trivia-0002", "question_id"),
        ("policy_answer_samples", "sample-2a", "trivia_seeds", "trivia-0002", "question_id"),
        ("policy_answer_samples", "sample-2b", "trivia_seeds", "trivia-0002", "question_id"),
        ("sft_dataset", "sft-chat", "chat_prompts", "chat-0001", "source_id"),
        ("sft_dataset", "sft-chat", "teacher_calls", "call-chat", "teacher_call_id"),
        ("sft_dataset", "sft-bogus", "hallucination_sft_data", "hsft-bogus", "source_id"),
        ("sft_dataset", "sft-lost", "safety_prompts", "safety-b001", "source_id"),
        ("sft_dataset", "sft-lost", "teacher_calls", "call-not-cached", "teacher_call_id"),
    }
    assert view == expected

    # The walk and the view come from the same spec: every edge the walk takes is in the view.
    for row_id in ("ptspair-1", "judgepair-1", "hdpo-wrong", "mix-wrong", "mix-answer", "sft-bogus", "sft-lost"):
        walked = {(c.split(":", 1)[0], c.split(":", 1)[1], p.split(":", 1)[0], p.split(":", 1)[1], v)
                  for c, p, v in edges(as_json(capsys, row_id))}
        assert walked <= view


def test_view_over_an_empty_warehouse_and_after_tables_appear(state):
    assert lineage.create_lineage_view(state.warehouse) == 0
    with duckdb.connect(str(state.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM phi4.lineage_edges").fetchone() == (0,)
    build_warehouse(state, tables=["sft_dataset", "chat_prompts"])
    assert lineage.create_lineage_view(state.warehouse) == 2  # source_id -> chat_prompts, teacher_call_id
    with duckdb.connect(str(state.warehouse), read_only=True) as con:
        rows = set(con.execute("SELECT child_id, parent_table, parent_id FROM phi4.lineage_edges").fetchall())
    assert rows == {("sft-chat", "chat_prompts", "chat-0001"), ("sft-chat", "teacher_calls", "call-chat"),
                    ("sft-lost", "teacher_calls", "call-not-cached")}


def test_every_lineage_edge_names_declared_columns():
    """The edge spec reads the tables as the assets declare them: a renamed column fails here."""
    for edge in lineage.EDGES:
        assert edge.column in column_names(SCHEMAS[edge.child]), (edge.child, edge.column)
        if edge.when:
            assert edge.when[0] in column_names(SCHEMAS[edge.child]), (edge.child, edge.when)
        for parent in edge.parents:
            if parent not in lineage.EXTERNAL_KEYS:
                assert edge.parent_key in column_names(SCHEMAS[parent]), (parent, edge.parent_key)
    partitioned = {name for name, schema in SCHEMAS.items()
                   if set(column_names(schema)) & set(lineage.PARTITION_COLUMNS)}
    assert {"policy_answer_samples", "pivotal_tokens", "pts_difficulty"} <= partitioned


def test_a_locked_duckdb_file_is_waited_for_then_named_in_the_timeout(tmp_path):
    import subprocess
    import sys
    import time

    from phi4_assets.core.duckdb_files import connect

    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
                               "print('held', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        try:
            connect(path, timeout_s=0.5)
            raise AssertionError("connected although another process holds the lock")
        except TimeoutError as e:
            assert str(path) in str(e) and time.monotonic() - started >= 0.5
    finally:
        holder.kill()
        holder.wait()
    con = connect(path, timeout_s=5)  # released: connects
    con.close()
