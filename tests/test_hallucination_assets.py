"""The ``hallucination`` group on the tiny profile, with a scripted teacher on loopback
(``scripted_teacher`` and ``run_all`` in tests/scripted.py)."""

import json
from collections import Counter

import dagster as dg
import pandas as pd
import pytest

from phi4_assets.defs.partitions import seed_shard_keys
from phi4_assets.hallucination import prompts
from scripted import run_all, scripted_teacher, table


def test_group_materializes_with_teacher_and_rules_and_records_failures(state, stub_teacher):
    assert seed_shard_keys() == ["000", "001"]
    run = run_all(dg.DagsterInstance.ephemeral())

    samples = table(state, "policy_answer_samples")
    assert len(samples) == 12 * 2 and samples["id"].is_unique

    checks = table(state, "answer_checks").merge(table(state, "trivia_seeds")[["id", "question"]],
                                                 left_on="question_id", right_on="id", suffixes=("", "_q"))
    by_q = {q: g for q, g in checks.groupby("question")}
    france = by_q["What is the capital of France?"]
    assert set(france["matches_key"]) == {"True"} and set(france["grader"]) == {"stub-teacher"}
    italy = by_q["What is the capital of Italy?"]
    assert italy["failure"].notna().all()  # unparseable replies recorded with their raw text...
    assert (italy["teacher_raw"] == "Well, I think the response is close enough.").all()
    assert set(italy["grader"]) == {"rules"} and set(italy["matches_key"]) <= {"False", "Uncertain"}  # ...rules grade
    failure_check = run["checks"][("answer_checks_parse_failures", "000")]
    assert failure_check.metadata["failure_share"].value == pytest.approx(2 / 12, abs=1e-3)

    bogus = table(state, "bogus_questions").set_index("original")
    assert bogus.loc["What is the capital of Spain?", "kept"]
    assert bogus.loc["What is the capital of Spain?", "generator"] == "stub-teacher"
    assert bogus.loc["What is the capital of France?", "teacher_rejected"] == "same_as_original"
    assert bogus.loc["What is the capital of Germany?", "teacher_rejected"] == "low_quality"
    assert bogus.loc["What is the capital of Italy?", "teacher_rejected"].startswith("unparseable:")
    assert not bogus.loc["What is the capital of France?", "kept"]
    assert bogus.loc["What is the capital of France?", "drop_reason"] == "no_rule_applies"

    references = table(state, "reference_answers").set_index("question_id")
    assert references.loc["trivia-0001", "answer_text"] == "The capital of France is Paris."
    assert references.loc["trivia-0004", "generator"] == "rules"
    assert references.loc["trivia-0004", "rejected_reason"] == "does not contain the key or an alias"

    refusals = table(state, "refusals").set_index("target_id")
    # Always right, and still refused once: the rejected side of its answer > refusal pair (App. A.1).
    assert refusals.loc["trivia-0001", "bogus"] == False  # noqa: E712
    spain = refusals.loc["trivia-0005"]
    assert spain["generator"] == "stub-teacher" and spain["refusal"] == "I'm not aware of that, so I won't guess."
    assert refusals.loc["trivia-0004", "rejected_reason"] == "expresses no uncertainty"
    bogus_refusal = refusals[refusals["bogus"]]
    assert list(bogus_refusal["question"]) == ["What is the capital of the Duchy of Veltravia?"]

    sft = table(state, "hallucination_sft_data")
    kinds = sft.groupby("kind")["prompt"].apply(set).to_dict()
    assert kinds["answer"] == {"What is the capital of France?"}
    assert kinds["bogus_refusal"] == {"What is the capital of the Duchy of Veltravia?"}
    assert len(kinds["refusal"]) == 11

    pairs = table(state, "hallucination_dpo_pairs")
    # France is always right: its answer > refusal pair keeps the model answering what it knows.
    france = pairs[pairs["question_id"] == "trivia-0001"]
    assert list(france["kind"]) == ["answer_over_refusal"]
    assert france["chosen"].iloc[0].startswith("The capital of France") and france["rejected_from"].iloc[0] \
        == refusals.loc["trivia-0001", "id"]
    assert set(pairs["kind"]) == {"refusal_over_wrong", "answer_over_refusal"}
    assert all(len(ids) <= 5 for ids in pairs["chosen_token_ids"]) and all(len(ids) <= 5 for ids in pairs["rejected_token_ids"])
    assert (pairs["chosen"] != pairs["rejected"]).all()
    wrong_pairs = pairs[pairs["kind"] == "refusal_over_wrong"]
    assert set(wrong_pairs["rejected_from"]) <= set(samples["id"])  # lineage back to the policy's own sample
    assert run["checks"][("hallucination_dpo_pairs_valid", None)].passed
    assert run["checks"][("hallucination_dpo_pairs_follow_a1", None)].passed
    assert run["checks"][("refusals_never_answer", "001")].passed


def _unreadable(request: dict) -> bool:
    """Whether the task's own parser cannot read the scripted teacher's reply to ``request``."""
    system, text = request["messages"][0]["content"], scripted_teacher(request, 0).content
    if system.startswith("You grade answers"):
        return prompts.answer_check_problem(text) is not None
    if system.startswith("Rewrite a trivia question"):
        return prompts.bogus_problem(text) is not None
    return False


def test_rematerializing_asks_again_only_the_replies_the_parsers_cannot_read(state, stub_teacher):
    instance = dg.DagsterInstance.ephemeral()
    run_all(instance)
    first = list(stub_teacher.requests)
    tables = {name: table(state, name) for name in ("answer_checks", "bogus_questions", "refusals")}
    unreadable = Counter(json.dumps(r["messages"]) for r in first if _unreadable(r))
    assert 0 < sum(unreadable.values()) < len(first)
    run_all(instance)
    # Readable replies (rejected for their content or not) are cache hits; unreadable ones are
    # asked again, and the assets handle them as before (the rules take over).
    assert Counter(json.dumps(r["messages"]) for r in stub_teacher.requests[len(first):]) == unreadable
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(table(state, name), frame, obj=name)


def test_rules_only_generation_makes_no_teacher_calls(state, tmp_path, monkeypatch):
    config = tmp_path / "phi4.toml"
    config.write_text('[profile.generators]\nanswer_check = "rules"\nreference_answer = "rules"\n'
                      'bogus_question = "rules"\nrefusal = "rules"\n')
    monkeypatch.setenv("PHI4_CONFIG", str(config))
    monkeypatch.setenv("PHI4_TEACHER_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens: a call would fail
    instance = dg.DagsterInstance.ephemeral()
    run_all(instance)
    assert set(table(state, "refusals")["generator"]) == {"rules"}
    assert set(table(state, "answer_checks")["grader"]) <= {"rules", "rules:key_match"}
    sft = table(state, "hallucination_sft_data")
    assert len(sft) > 0 and json.dumps(list(sft["generator"].unique())) == '["rules"]'
