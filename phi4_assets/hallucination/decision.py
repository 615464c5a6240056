"""The report's decision rule (App. A.1) over graded policy samples.

- p_correct = n_correct / n_samples (Uncertain counts as not correct).
- SFT: (question, reference answer) where p_correct >= ``usually_right``; (question, refusal)
  otherwise; (bogus question, refusal) always.
- DPO: reference answer > refusal where the policy was right at least once; refusal > one of
  the policy's own wrong answers where it was wrong at least once. Both sides are cut to
  their first ``max_tokens`` tokens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..text import normalize_answer

DEFAULT_USUALLY_RIGHT = 0.5
DPO_TOKENS = 5


@dataclass(frozen=True)
class QuestionStats:
    question_id: str
    n_samples: int
    n_correct: int
    n_incorrect: int
    n_uncertain: int

    @property
    def p_correct(self) -> float:
        return self.n_correct / self.n_samples if self.n_samples else 0.0


def question_stats(grades: Iterable[tuple[str, str]]) -> dict[str, QuestionStats]:
    """(question_id, grade) pairs -> stats per question. Grades: True / False / Uncertain."""
    counts: dict[str, Counter] = {}
    for question_id, grade in grades:
        counts.setdefault(question_id, Counter())[grade] += 1
    return {
        qid: QuestionStats(qid, sum(c.values()), c["True"], c["False"], c["Uncertain"])
        for qid, c in counts.items()
    }


def sft_target(stats: QuestionStats, usually_right: float = DEFAULT_USUALLY_RIGHT) -> str:
    """``answer`` where the policy is usually right, else ``refusal``."""
    return "answer" if stats.p_correct >= usually_right else "refusal"


def needs_refusal(stats: QuestionStats) -> bool:
    """A refusal is written for every question the policy was sampled on: it is the SFT target
    where the policy is usually wrong, the chosen side of "refusal > wrong" where it was wrong at
    least once, and the rejected side of "answer > refusal" where it was right at least once."""
    return stats.n_samples > 0


def dpo_pair_kinds(stats: QuestionStats) -> list[str]:
    """``answer_over_refusal`` if right at least once; ``refusal_over_wrong`` if wrong at least once."""
    kinds = []
    if stats.n_correct >= 1:
        kinds.append("answer_over_refusal")
    if stats.n_incorrect >= 1:
        kinds.append("refusal_over_wrong")
    return kinds


def typical_wrong_answer(samples: Iterable[tuple[int, str]]) -> tuple[int, str]:
    """The policy's most common wrong answer (by normalised text), earliest sample on ties.
    ``samples``: (sample_index, text) of the samples graded False."""
    samples = sorted(samples)
    if not samples:
        raise ValueError("no wrong samples")
    counts = Counter(normalize_answer(text) for _, text in samples)
    best = max(counts.values())
    return next((i, t) for i, t in samples if counts[normalize_answer(t)] == best)


def first_tokens(text: str, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str],
                 n: int = DPO_TOKENS) -> tuple[str, list[int]]:
    """The first ``n`` tokens of ``text`` (no special tokens) and their decoded text."""
    ids = list(encode(text))[:n]
    return decode(ids), ids
