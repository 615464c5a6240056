"""The teacher requests of the hallucination stage (App. A.1), built in one place.

The assets send them and ``phi4 estimate`` counts them (and looks up their cache keys), so a
prompt or a sampling parameter of a teacher task changes here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..teacher import ChatRequest
from . import decision, prompts

ANSWER_CHECK_TOKENS = 24
REFERENCE_ANSWER_TOKENS = 64
BOGUS_QUESTION_TOKENS = 96
REFUSAL_TOKENS = 80


def seed_keys(seed: Mapping) -> list[str]:
    """A seed question's answer key and its aliases."""
    aliases = seed["aliases"]
    return [seed["answer"], *list(aliases if aliases is not None else [])]


def answer_check(seed: Mapping, sample_text: str) -> ChatRequest:
    """Grade one policy sample against the key (the teacher must not solve the question)."""
    return ChatRequest.of(prompts.answer_check_messages(seed["question"], seed["answer"], list(seed["aliases"]),
                                                        sample_text),
                          task="answer_check", temperature=0.0, max_tokens=ANSWER_CHECK_TOKENS,
                          json_schema=prompts.ANSWER_CHECK_SCHEMA)


def reference_answer(seed: Mapping) -> ChatRequest:
    return ChatRequest.of(prompts.reference_answer_messages(seed["question"], seed["answer"]),
                          task="reference_answer", temperature=0.3, max_tokens=REFERENCE_ANSWER_TOKENS)


def bogus_question(seed: Mapping) -> ChatRequest:
    return ChatRequest.of(prompts.bogus_messages(seed["question"]), task="bogus_question", temperature=0.7,
                          max_tokens=BOGUS_QUESTION_TOKENS, json_schema=prompts.BOGUS_SCHEMA)


def refusal(question: str, bogus: bool) -> ChatRequest:
    return ChatRequest.of(prompts.refusal_messages(question, bogus), task="refusal", temperature=0.7,
                          max_tokens=REFUSAL_TOKENS)


def refusal_targets(seeds: pd.DataFrame, answer_checks: pd.DataFrame, bogus_questions: pd.DataFrame) -> list[dict]:
    """What ``refusals`` writes a refusal for, in order: every real question the policy was
    sampled on (``decision.needs_refusal``), by id, then every kept bogus question, by its seed's
    id. ``seeds`` is indexed by id."""
    stats = decision.question_stats(zip(answer_checks["question_id"], answer_checks["matches_key"]))
    targets = []
    for qid in sorted(stats):
        if decision.needs_refusal(stats[qid]):
            q = seeds.loc[qid]
            targets.append(dict(target_id=qid, question_id=qid, bogus=False, question=q["question"],
                                keys=seed_keys(q), topic=q["topic"], entity=None))
    kept = bogus_questions[bogus_questions["kept"].astype(bool)].sort_values("question_id")
    for b in kept.itertuples():
        targets.append(dict(target_id=b.id, question_id=b.question_id, bogus=True, question=b.bogus_question,
                            keys=[], topic=seeds.loc[b.question_id]["topic"], entity=b.entity))
    return targets
