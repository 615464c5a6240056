"""The teacher requests of the judge stage (App. A.2), built in one place: ``judge_candidates``
and ``judge_ratings`` send them, ``phi4 estimate`` counts them."""

from __future__ import annotations

from ..teacher import ChatRequest
from .prompts import JUDGE_SCHEMA, judge_messages

CANDIDATE_TEMPERATURE = 0.7


def candidate(prompt: str, source: str, max_tokens: int) -> ChatRequest:
    """One candidate response from ``source`` ("teacher", or another model at the teacher's endpoint)."""
    return ChatRequest.of([{"role": "user", "content": prompt}], task="judge_candidate",
                          temperature=CANDIDATE_TEMPERATURE, max_tokens=max_tokens,
                          model=None if source == "teacher" else source)


def verdicts(a: dict, b: dict, max_tokens: int) -> list[ChatRequest]:
    """The two verdict requests for a candidate pair: A shown first, then B shown first."""
    return [ChatRequest.of(judge_messages(a["prompt"], first["response"], second["response"]), task="judge",
                           temperature=0.0, max_tokens=max_tokens, json_schema=JUDGE_SCHEMA)
            for first, second in ((a, b), (b, a))]
