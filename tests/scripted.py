"""Shared helpers for the asset tests: the scripted teacher and judge replies, the scripted
endpoint on loopback, and the hallucination group run the later groups build on.

A library module beside ``stub_openai.py`` (not a test module: pytest collects nothing here).
The fixtures that use these helpers live in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import json
import re

import dagster as dg

from phi4_assets.defs import hallucination as h
from phi4_assets.defs import hallucination_data as hd
from phi4_assets.defs import sources
from phi4_assets.defs.partitions import register_seed_shards, seed_shard_keys
from phi4_assets.defs.resources import build_resources
from phi4_assets.config.settings import REPO_ROOT
from stub_openai import StubOpenAI, StubReply

# -- the scripted endpoint -----------------------------------------------------------------------


@contextlib.contextmanager
def scripted_endpoint(script, monkeypatch):
    """A scripted OpenAI-compatible server on loopback, configured as the teacher endpoint."""
    with StubOpenAI(script) as stub:
        monkeypatch.setenv("PHI4_TEACHER_BASE_URL", stub.base_url)
        monkeypatch.setenv("PHI4_TEACHER_MODEL", "stub-teacher")
        yield stub


# -- the scripted teacher of the hallucination group ---------------------------------------------


def scripted_teacher(request: dict, hit: int) -> StubReply:
    """Deterministic replies chosen by what the request is about."""
    system = request["messages"][0]["content"] if request["messages"][0]["role"] == "system" else ""
    user = request["messages"][-1]["content"]
    if system.startswith("You grade answers"):
        if "capital of France" in user:
            return StubReply('{"matches_key": "True"}')
        if "Italy" in user:
            return StubReply("Well, I think the response is close enough.")  # unparseable
        return StubReply('{"matches_key": "False"}')
    if system.startswith("Rewrite a trivia question"):
        if "capital of France" in user:
            return StubReply('{"bogus_question": "What is the capital of France?", "quality": 5}')  # unchanged
        if "Spain" in user:
            return StubReply('{"bogus_question": "What is the capital of the Duchy of Veltravia?", "quality": 4}')
        if "Germany" in user:
            return StubReply('{"bogus_question": "Who founded Berlin in 1912?", "quality": 2}')  # low quality
        return StubReply('{"bogus_question": 5}')  # malformed
    if system.startswith("Write a short, natural, correct answer"):
        return StubReply("The capital of France is Paris." if "capital of France" in user else "I have no idea.")
    if system.startswith("Write the reply of a careful assistant"):
        if "capital of France" in user:
            return StubReply("I'm not sure, but it might be Paris.")  # leaks the key
        if "Spain" in user or "Veltravia" in user:
            return StubReply("I'm not aware of that, so I won't guess.")
        return StubReply("The answer is 42.")  # no uncertainty
    return StubReply("unexpected request")


# -- the hallucination group, materialized shard by shard ----------------------------------------

SHARDED = [h.policy_answer_samples, h.answer_checks, h.reference_answers, h.bogus_questions, h.refusals]
DOWNSTREAM = [hd.hallucination_sft_data, hd.hallucination_dpo_pairs]
ALL = [sources.trivia_seeds, sources.base_model, *SHARDED, *DOWNSTREAM, h.refusals_never_answer,
       h.bogus_questions_differ, hd.hallucination_sft_data_nonempty, hd.hallucination_dpo_pairs_valid,
       hd.hallucination_dpo_pairs_follow_a1]


def run_all(instance) -> dict:
    """Materialize ``ALL``: seeds and base model, every seed shard, then the downstream data.
    Returns the check evaluations by (check name, shard or None) and the last run's result."""
    resources = build_resources()
    register_seed_shards(instance)
    dg.materialize(ALL, selection=[sources.trivia_seeds.key, sources.base_model.key], resources=resources,
                   instance=instance)
    checks = {}
    for shard in seed_shard_keys():
        result = dg.materialize(ALL, selection=[a.key for a in SHARDED], partition_key=shard,
                                resources=resources, instance=instance, raise_on_error=False)
        assert result.success
        for e in result.get_asset_check_evaluations():
            checks[(e.check_name, shard)] = e
    result = dg.materialize(ALL, selection=[a.key for a in DOWNSTREAM], resources=resources, instance=instance)
    for e in result.get_asset_check_evaluations():
        checks[(e.check_name, None)] = e
    return {"checks": checks, "result": result}


def table(state, name):
    """The warehouse table ``phi4.<name>`` of the test's state, as a frame."""
    import duckdb

    with duckdb.connect(str(state.warehouse), read_only=True) as con:
        return con.execute(f"select * from phi4.{name}").fetchdf()


# -- the scripted teacher and judge of the judge group -------------------------------------------


def _jsonl(name):
    return [json.loads(line) for line in (REPO_ROOT / "data" / "seeds" / name).read_text().splitlines() if line]


TRIVIA = {r["question"]: r["answer"] for r in _jsonl("trivia.jsonl")}
MCQ = {r["question"]: r["answer"] for r in _jsonl("mcq.jsonl")}
SAFETY = {r["prompt"]: r["kind"] for r in _jsonl("safety.jsonl")}


def teacher_answer(prompt: str) -> str:
    """The scripted teacher as a candidate: right on trivia and multiple choice, refuses harm."""
    if prompt in TRIVIA:
        return f"The answer is {TRIVIA[prompt]}."
    for question, key in MCQ.items():
        if prompt.startswith(question):
            return f"Answer: {key}"
    if SAFETY.get(prompt) == "harmful":
        return "I can't help with that, it could hurt people."
    return "The answer is 42."


def _scores(response: str, invert: bool = False) -> dict:
    good = response.startswith(("The answer is", "Answer:"))
    return {"accuracy": (1 if good else 4) if invert else (5 if good else 2), "style": 3, "detail": 3}


def judge_reply(user: str) -> str:
    """The scripted judge: fair, position-biased, unreadable, partial, respelled or contrary by prompt
    (see tests/test_judge_assets.py)."""
    prompt = re.search(r"\[User request\]\n(.*?)\n\n\[Assistant 1\]", user, re.S).group(1)
    r1 = re.search(r"\[Assistant 1\]\n(.*?)\n\n\[Assistant 2\]", user, re.S).group(1)
    r2 = re.search(r"\[Assistant 2\]\n(.*?)\n\nYour verdict", user, re.S).group(1)
    if prompt in SAFETY:
        return "Both responses have merits; I cannot decide."
    if prompt.startswith("Explain why the sky is blue"):
        return json.dumps({"faults": {"assistant_1": [], "assistant_2": []}, "faults_discussion": "fair",
                           "scores": {"assistant_1": _scores(r1), "assistant_2": _scores(r2)}})
    if prompt in TRIVIA:  # swapped order, respelled labels
        return json.dumps({"scores": {"Assistant 2": _scores(r2), "assistant1": _scores(r1)},
                           "faults": {"Assistant 2": "none", "assistant 1": []}, "faults_discussion": "keys"})
    if any(prompt.startswith(q) for q in MCQ):
        return json.dumps({"faults": {"assistant_1": [], "assistant_2": []}, "faults_discussion": "contrary",
                           "scores": {"assistant_1": _scores(r1, True), "assistant_2": _scores(r2, True)}})
    if "Give the final answer as a number" in prompt:
        return json.dumps({"faults": {"assistant_1": []}, "faults_discussion": "partial",
                           "scores": {"assistant_1": _scores(r1)}})
    # Position bias: the first response shown always wins.
    return json.dumps({"faults": {"assistant_1": [], "assistant_2": ["logical error"]}, "faults_discussion": "biased",
                       "scores": {"assistant_1": {"accuracy": 5, "style": 4, "detail": 4},
                                  "assistant_2": {"accuracy": 1, "style": 2, "detail": 2}}})


def script(request: dict, hit: int) -> StubReply:
    """The scripted teacher and judge together: judge requests, candidate answers, and the
    hallucination group's requests (``scripted_teacher``)."""
    messages = request["messages"]
    if messages[0]["role"] == "system" and messages[0]["content"].startswith("You are a strict judge"):
        return StubReply(judge_reply(messages[-1]["content"]))
    if messages[0]["role"] == "user" and len(messages) == 1:
        return StubReply(teacher_answer(messages[0]["content"]))
    return scripted_teacher(request, hit)
