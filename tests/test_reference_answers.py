"""Which teacher replies may stand as reference answers (``hallucination.reference``), and the
``reference_answers`` asset recording why it rejected the others.

Containing the key is not enough: the teacher is handed the key, so an echo of the request, a
hedged guess or a reply cut at its token limit all contain it too. Each was accepted before
``reference_problem`` existed; each now has its own ``rejected_reason`` and falls back to the
rules template answer.
"""

import json

import dagster as dg
import pytest

from phi4_assets.hallucination import reference, rules
from phi4_assets.hallucination import requests as requests_for
from phi4_assets.hallucination.reference import (CUT_OFF, ECHO, EMPTY, HEDGED, MID_SENTENCE, NO_KEY,
                                                 reference_problem)
from phi4_assets.config.settings import REPO_ROOT

ITALY = "What is the capital of Italy?"
ROME = ["Rome", "Roma"]


# -- the reproductions: accepted before, each rejected with its own reason now ----------------

@pytest.mark.parametrize("text, finish_reason, reason", [
    # an echo of the request: the key is in it because the prompt handed it over
    (f"I am not sure of the answer to that question. Question: {ITALY} Answer key: Rome", "stop", ECHO),
    (f"Question: {ITALY}\nAnswer key: Rome", "stop", ECHO),
    ("According to the answer key, it is Rome.", "stop", ECHO),
    ("Use the given answer key: the capital is Rome.", "stop", ECHO),
    (f"{ITALY} Rome.", "stop", ECHO),
    # hedged: a guess, where a known answer should be stated plainly
    ("I think it might be Rome.", "stop", HEDGED),
    ("It is probably Rome.", "stop", HEDGED),
    ("I'm not sure, but the capital of Italy is Rome.", "stop", HEDGED),
    ("If I recall correctly, the capital of Italy is Rome.", "stop", HEDGED),
    # cut off: by the endpoint's word, or by the text itself
    ("The capital of Italy is Rome.", "length", CUT_OFF),
    ("The capital of Italy is Rome, which was founded", "length", CUT_OFF),
    ("The capital of Italy is Rome, which was founded", "stop", MID_SENTENCE),
    ("The capital of Italy is Rome, which was founded", None, MID_SENTENCE),
    ("The capital of Italy is Rome...", "stop", MID_SENTENCE),
    ("The capital of Italy is Rome\u2026", "stop", MID_SENTENCE),
])
def test_key_is_not_enough(text, finish_reason, reason):
    assert rules.mentions_key(text, ROME)  # what the asset accepted on before
    assert reference_problem(text, ROME, ITALY, finish_reason) == reason


@pytest.mark.parametrize("text", [
    "The capital of Italy is Rome.",
    "Rome is the capital of Italy.",
    "The capital of Italy is Roma (Rome in English).",
    "Rome, founded according to legend in 753 BC, is the capital of Italy!",
    '"Rome."',
    "The capital of Italy is **Rome**.",
])
def test_plain_complete_answers_stand(text):
    assert reference_problem(text, ROME, ITALY, "stop") is None
    assert reference_problem(text, ROME, ITALY, None) is None  # finish reason unknown (an older cache row)


def test_the_other_reasons():
    assert reference_problem(None, ROME, ITALY, "stop") == EMPTY
    assert reference_problem("   ", ROME, ITALY, "stop") == EMPTY
    assert reference_problem("The capital of Italy is Milan.", ROME, ITALY, "stop") == NO_KEY
    # A decline carries no answer at all: that, not its hedging, is the reason recorded.
    assert reference_problem("I have no idea.", ROME, ITALY, "stop") == NO_KEY
    # The order: an echo is named as one even though it also hedges and ends unpunctuated.
    assert reference_problem(f"Not sure. Question: {ITALY} Answer key: Rome", ROME, ITALY, "length") == ECHO
    assert reference_problem("I think it is Rome, which was", ROME, ITALY, "length") == CUT_OFF
    assert set(reference.REASONS) == {EMPTY, ECHO, CUT_OFF, MID_SENTENCE, NO_KEY, HEDGED}


def test_a_hedge_word_inside_the_key_is_no_hedge():
    keys = ["Maybe Baby"]
    assert reference_problem('The song is "Maybe Baby".', keys, "Which Buddy Holly song ...?", "stop") is None
    assert reference_problem('It is probably "Maybe Baby".', keys, "Which Buddy Holly song ...?", "stop") == HEDGED


def test_restating_the_question_in_an_answer_is_no_echo():
    # The question's words, but not the question re-asked with its question mark.
    assert reference_problem("The capital of Italy is Rome.", ROME, ITALY, "stop") is None
    assert reference_problem("What is the capital of Italy? It is Rome.", ROME, ITALY, "stop") == ECHO


def test_scaffolding_comes_from_the_prompt_itself():
    labels, fragments = reference.prompt_scaffolding(ITALY, "Rome")
    assert labels == ["question", "answer key"]
    assert "use the given answer key" in fragments
    assert all(len(f.split()) >= 4 for f in fragments)


def test_template_answers_pass_the_same_checks():
    """The fallback is judged by the rules it stands in for: every template answer of the shipped
    seeds passes (a doubled final period, "King Jr..", still ends a sentence), except where the
    key is one letter: ``mentions_key`` never matches those, so no reply passes, teacher or
    template, as before."""
    failing = {}
    for line in (REPO_ROOT / "data" / "seeds" / "trivia.jsonl").read_text().splitlines():
        seed = json.loads(line)
        text = rules.template_reference_answer(seed["id"], seed["answer"])
        problem = reference_problem(text, requests_for.seed_keys(seed), seed["question"], None)
        if problem and len(seed["answer"].strip()) > 1:
            failing[seed["id"]] = (text, problem)
    assert failing == {}


# -- the asset, on the tiny profile, through the scripted teacher ----------------------------

def _completion(content: str, finish_reason: str) -> dict:
    return {"id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": "stub-teacher",
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 64, "total_tokens": 71}}


def reference_script(request: dict, hit: int):
    """Reference-answer replies, one fault per question; anything else as ``scripted_teacher``."""
    from scripted import scripted_teacher
    from stub_openai import StubReply

    system, user = request["messages"][0]["content"], request["messages"][-1]["content"]
    if system.startswith("Write a short, natural, correct answer"):
        if "capital of Italy" in user:
            return StubReply(f"I am not sure of the answer to that question. Question: {ITALY} Answer key: Rome")
        if "capital of Spain" in user:
            return StubReply("I think it might be Madrid.")
        if "capital of Germany" in user:
            return StubReply(body=_completion("The capital of Germany is Berlin, a city that", "length"))
        if "capital of the United Kingdom" in user:
            return StubReply("The capital of the United Kingdom is London, which")
        if "capital of Egypt" in user:
            return StubReply("Cairo is the capital of Egypt.")
    return scripted_teacher(request, hit)


def _materialize_references(instance) -> None:
    from phi4_assets.defs import hallucination as h
    from phi4_assets.defs import sources
    from phi4_assets.defs.partitions import register_seed_shards, seed_shard_keys
    from phi4_assets.defs.resources import build_resources

    assets = [sources.trivia_seeds, sources.base_model, h.reference_answers]
    register_seed_shards(instance)
    dg.materialize(assets, selection=[sources.trivia_seeds.key, sources.base_model.key],
                   resources=build_resources(), instance=instance)
    for shard in seed_shard_keys():
        dg.materialize(assets, selection=[h.reference_answers.key], partition_key=shard,
                       resources=build_resources(), instance=instance)


def test_asset_records_each_rejection_and_falls_back_to_the_template(state, monkeypatch):
    from scripted import scripted_endpoint, table

    with scripted_endpoint(reference_script, monkeypatch) as stub:
        instance = dg.DagsterInstance.ephemeral()
        _materialize_references(instance)
        first = table(state, "reference_answers").set_index("question_id")
        calls = stub.hits
        # Again, from the teacher cache: the finish reason is cached with the text, so a cut-off
        # reply read back is still rejected as one.
        _materialize_references(instance)
        again = table(state, "reference_answers").set_index("question_id")
        assert stub.hits == calls > 0

    expected = {"trivia-0001": None, "trivia-0010": None, "trivia-0004": ECHO, "trivia-0005": HEDGED,
                "trivia-0006": CUT_OFF, "trivia-0008": MID_SENTENCE, "trivia-0003": NO_KEY}
    for frame in (first, again):
        assert {q: frame.loc[q, "rejected_reason"] for q in expected} == expected
    refs = first
    assert refs.loc["trivia-0001", "answer_text"] == "The capital of France is Paris."
    assert refs.loc["trivia-0010", "generator"] == "stub-teacher"
    for qid, reason in expected.items():
        if reason is None:
            continue
        row = refs.loc[qid]
        assert row["generator"] == "rules" and row["teacher_raw"]  # the raw reply is kept for review
        seed = table(state, "trivia_seeds").set_index("id").loc[qid]
        assert row["answer_text"] == rules.template_reference_answer(qid, seed["answer"])
