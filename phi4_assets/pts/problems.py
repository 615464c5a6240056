"""The problems of each PTS domain and the user message each is asked in. Pure.

One formatting for training and evaluation: PTS (``pts_difficulty``, ``pivotal_tokens``), the
judge's keyed prompts and the evaluation runner all ask a math, multiple-choice or code
problem in these words, so a model is evaluated in the format it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd


def math_message(question: str) -> str:
    return f"{question}\nGive the final answer as a number."


def mcq_message(question: str, choices: Mapping[str, str]) -> str:
    options = "\n".join(f"{k}) {v}" for k, v in sorted(choices.items()))
    return f"{question}\n{options}\nAnswer with the letter of the correct option."


def code_message(prompt: str) -> str:
    return f"Complete this Python function.\n```python\n{prompt}```"


def domain_problems(domain: str, limit: int, math_problems: pd.DataFrame | None, mcq_questions: pd.DataFrame | None,
                    trivia_seeds: pd.DataFrame | None, code_problems: pd.DataFrame | None) -> list[dict]:
    """The first ``limit`` problems of a domain: the user message to send, and what its oracle needs."""
    if domain == "math":
        return [{"id": r.id, "question": math_message(r.question), "answer": r.answer}
                for r in math_problems.sort_values("id").head(limit).itertuples()]
    if domain == "mcq":
        return [{"id": r.id, "question": mcq_message(r.question, r.choices), "answer": r.answer}
                for r in mcq_questions.sort_values("id").head(limit).itertuples()]
    if domain == "qa":
        # The hardest third first: easy capitals are always right, hard ones never; medium spreads.
        ordered = trivia_seeds.assign(_o=trivia_seeds["difficulty"].map({"medium": 0, "easy": 1, "hard": 2}))
        return [{"id": r.id, "question": r.question, "answer": r.answer, "aliases": list(r.aliases)}
                for r in ordered.sort_values(["_o", "id"]).head(limit).itertuples()]
    if domain == "code":
        return [{"id": r.id, "question": code_message(r.prompt), "prompt": r.prompt, "tests": r.tests,
                 "entry_point": r.entry_point} for r in code_problems.sort_values("id").head(limit).itertuples()]
    raise ValueError(f"unknown PTS domain {domain!r}: expected math, mcq, qa or code")
