"""From judge verdicts to one rating per candidate pair.

Beyond the report: every pair is judged in both orders (A shown first, then B shown first) to
cancel position bias. The two verdicts are averaged per response; a pair whose preferred
response changes with the order is flagged ``order_consistent = False``. Where a candidate
has an answer key, oracle-anchored mode takes its accuracy from the oracle's outcome (5
correct, 3 declined, 1 wrong: a decline is never scored like a wrong answer) and records
whether the judge's own accuracy ordering agreed with the oracle's.
"""

from __future__ import annotations

from dataclasses import dataclass

from .prompts import Scores, Verdict
from .rules import OUTCOME_ACCURACY

ORACLE_SCORE = {k: float(v) for k, v in OUTCOME_ACCURACY.items()}


@dataclass(frozen=True)
class SideScores:
    accuracy: float
    style: float
    detail: float

    @property
    def overall(self) -> float:
        return (self.accuracy + self.style + self.detail) / 3

    @classmethod
    def of(cls, s: Scores) -> "SideScores":
        return cls(float(s.accuracy), float(s.style), float(s.detail))


@dataclass(frozen=True)
class Rating:
    a: SideScores
    b: SideScores
    judge_accuracy_a: float | None  # the judge's own accuracy, before any oracle anchoring
    judge_accuracy_b: float | None
    order_consistent: bool | None  # both criteria below hold (None: fewer than two usable verdicts)
    accuracy_consistent: bool | None  # the accuracy winner is the same in both orders (or the oracle decides)
    overall_consistent: bool | None  # the winner by the mean of the three is the same in both orders
    verdicts_used: int
    accuracy_source: str  # judge | oracle
    oracle_agrees: bool | None  # the judge's accuracy ordering matches the oracle's (None: not comparable)
    faults_a: tuple[str, ...]
    faults_b: tuple[str, ...]


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def combine(ab: Verdict | None, ba: Verdict | None) -> tuple[SideScores, SideScores, dict[str, bool] | None] | None:
    """Average the verdict with A shown first (``ab``) and the one with B shown first (``ba``).

    Consistent, per criterion (accuracy; the mean of the three): the sign of (A - B) is the same
    in both orders, so a tie in one order and a win in the other counts as a flip. With one
    usable verdict it is used alone (consistency unknown: None)."""
    a_views = ([SideScores.of(ab.scores_1)] if ab else []) + ([SideScores.of(ba.scores_2)] if ba else [])
    b_views = ([SideScores.of(ab.scores_2)] if ab else []) + ([SideScores.of(ba.scores_1)] if ba else [])
    if not a_views:
        return None
    a = SideScores(*(_mean([getattr(v, c) for v in a_views]) for c in ("accuracy", "style", "detail")))
    b = SideScores(*(_mean([getattr(v, c) for v in b_views]) for c in ("accuracy", "style", "detail")))
    consistent = None
    if ab and ba:
        first = (SideScores.of(ab.scores_1), SideScores.of(ab.scores_2))
        second = (SideScores.of(ba.scores_2), SideScores.of(ba.scores_1))
        consistent = {c: _sign(getattr(first[0], c) - getattr(first[1], c)) ==
                      _sign(getattr(second[0], c) - getattr(second[1], c)) for c in ("accuracy", "overall")}
    return a, b, consistent


def rate(ab: Verdict | None, ba: Verdict | None, oracle_a: str | None, oracle_b: str | None,
         anchored: bool) -> Rating | None:
    """A pair's rating from its two verdicts (either may be None: failed), or None if both failed.

    ``oracle_a`` / ``oracle_b``: each response's outcome by its answer key (correct / declined /
    wrong; None: no key). With ``anchored`` and both known, accuracy comes from the oracle."""
    combined = combine(ab, ba)
    if combined is None:
        return None
    a, b, consistent = combined
    agrees = None
    if oracle_a is not None and oracle_b is not None and oracle_a != oracle_b:
        agrees = _sign(a.accuracy - b.accuracy) == _sign(ORACLE_SCORE[oracle_a] - ORACLE_SCORE[oracle_b])
    source = "judge"
    judge_a, judge_b = a.accuracy, b.accuracy
    accuracy_ok = consistent["accuracy"] if consistent else None
    overall_ok = consistent["overall"] if consistent else None
    if anchored and oracle_a is not None and oracle_b is not None:
        a = SideScores(ORACLE_SCORE[oracle_a], a.style, a.detail)
        b = SideScores(ORACLE_SCORE[oracle_b], b.style, b.detail)
        source = "oracle"
        accuracy_ok = True  # the key decides accuracy, whatever order the judge saw
    faults_a = tuple(dict.fromkeys((ab.faults_1 if ab else ()) + (ba.faults_2 if ba else ())))
    faults_b = tuple(dict.fromkeys((ab.faults_2 if ab else ()) + (ba.faults_1 if ba else ())))
    order_ok = None if consistent is None else bool(consistent["accuracy"] and consistent["overall"])
    return Rating(a=a, b=b, judge_accuracy_a=judge_a, judge_accuracy_b=judge_b, order_consistent=order_ok,
                  accuracy_consistent=accuracy_ok, overall_consistent=overall_ok,
                  verdicts_used=(ab is not None) + (ba is not None), accuracy_source=source, oracle_agrees=agrees,
                  faults_a=faults_a, faults_b=faults_b)
