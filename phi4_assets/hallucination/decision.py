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


@dataclass(frozen=True)
class Sample:
    """One graded policy sample of a question: ``grade`` True / False / Uncertain."""
    sample_id: str
    index: int
    text: str
    grade: str


def follows_a1(kind: str, samples: list[Sample]) -> bool:
    """Whether a pair of ``kind`` may exist for a question with these graded samples (A.1's rule)."""
    return kind in dpo_pair_kinds(_stats("", samples))


def _stats(question_id: str, samples: list[Sample]) -> QuestionStats:
    stats = question_stats((question_id, s.grade) for s in samples)
    return stats.get(question_id, QuestionStats(question_id, 0, 0, 0, 0))


def a1_pairs(questions: dict[str, str], samples: dict[str, list[Sample]], answers: dict[str, tuple[str, str]],
             refusals: dict[str, tuple[str, str]], encode: Callable[[str], list[int]],
             decode: Callable[[list[int]], str], n_tokens: int = DPO_TOKENS) -> list[dict]:
    """App. A.1's DPO pairs over graded samples of one policy.

    ``questions``: question id -> text; ``samples``: question id -> its graded samples;
    ``answers`` / ``refusals``: question id -> (text, row id) of the reference answer / refusal.
    Where the policy was right at least once: reference answer > refusal; where it was wrong at
    least once: refusal > its most common wrong answer. Both sides are cut to their first
    ``n_tokens`` tokens; a pair identical after the cut, or a question without a refusal, gives
    none. Rows: prompt, chosen, rejected, *_token_ids, kind, question_id, p_correct, chosen_from,
    rejected_from (no ``id``: the caller names rows)."""
    rows = []
    for qid in sorted(samples):
        graded = samples[qid]
        stats = _stats(qid, graded)
        if qid not in refusals:
            continue
        refusal, refusal_id = refusals[qid]
        for kind in dpo_pair_kinds(stats):
            if kind == "answer_over_refusal":
                if qid not in answers:
                    continue
                (chosen, chosen_from), (rejected, rejected_from) = answers[qid], (refusal, refusal_id)
            else:
                wrong = [s for s in graded if s.grade == "False"]
                index, text = typical_wrong_answer((s.index, s.text) for s in wrong)
                chosen, chosen_from = refusal, refusal_id
                rejected, rejected_from = text, next(s.sample_id for s in wrong if s.index == index)
            chosen_text, chosen_ids = first_tokens(chosen, encode, decode, n_tokens)
            rejected_text, rejected_ids = first_tokens(rejected, encode, decode, n_tokens)
            if chosen_ids == rejected_ids:
                continue  # identical after the cut: no preference signal
            rows.append({"prompt": questions[qid], "chosen": chosen_text, "rejected": rejected_text,
                         "chosen_token_ids": chosen_ids, "rejected_token_ids": rejected_ids, "kind": kind,
                         "question_id": qid, "p_correct": stats.p_correct, "chosen_from": chosen_from,
                         "rejected_from": rejected_from})
    return rows
