"""The judge-guided pair rule (report App. A.2), pure.

A rated candidate pair yields a preference when one side wins by at least a margin:
- "accuracy" subset: the higher accuracy wins (margin ``min_accuracy_margin``);
- "overall" subset: the higher mean of accuracy, style and detail wins (``min_overall_margin``).
Ties and smaller margins give no pair, nor does a subset whose winner flips with the order the
judge saw the responses in. An "overall" preference never contradicts accuracy: where the
higher mean belongs to the side with the lower accuracy (a long, well-written wrong answer
against a short "I don't know", say), there is no overall pair, since on a keyed prompt that
would teach the model to guess rather than decline.

A rating whose style and detail no model judged (the rules judge scores detail by length)
offers no "overall" pair. On the small run, 26 of 54 stage-2 pairs were such rules "overall"
pairs, nearly all preferring the longer of two wrong or two rambling responses, and the model
trained on them looped on 22% of SimpleQA answers (7% before the stage).

Each rating goes to at most one subset. The configured ratio (the report: 2 accuracy : 1
overall) is a target: ratings that qualify for one subset only go there; ratings that qualify
for both are then given, one by one, to the subset furthest below its target share. No
qualifying pair is thrown away to meet the ratio (the metadata reports the ratio reached).
Ratings are taken in a fixed pseudo-random order (a hash of the rating id), so the same ratings
always give the same pairs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..core.text import loops


@dataclass(frozen=True)
class RatedPair:
    rating_id: str
    a_id: str
    b_id: str
    accuracy_a: float
    accuracy_b: float
    overall_a: float
    overall_b: float
    accuracy_consistent: bool | None = None  # False: the accuracy winner flips with the order shown
    overall_consistent: bool | None = None
    overall_rated: bool = True  # False: style and detail were not judged by a model (the rules judge)


@dataclass(frozen=True)
class Preference:
    rating_id: str
    chosen_id: str
    rejected_id: str
    subset: str  # accuracy | overall
    margin: float


def _winner(pair: RatedPair, subset: str, min_margin: float) -> Preference | None:
    a, b = (pair.accuracy_a, pair.accuracy_b) if subset == "accuracy" else (pair.overall_a, pair.overall_b)
    margin = round(abs(a - b), 9)  # means of thirds: 4.5 - 4.0 must not come out as 0.4999...
    if margin == 0 or margin < min_margin:
        return None
    if subset == "overall" and not pair.overall_rated:
        return None  # no model judged style and detail: the mean would rank by length alone
    if subset == "overall" and (a - b) * (pair.accuracy_a - pair.accuracy_b) < 0:
        return None  # the overall winner is the less accurate side
    chosen, rejected = (pair.a_id, pair.b_id) if a > b else (pair.b_id, pair.a_id)
    return Preference(pair.rating_id, chosen, rejected, subset, round(margin, 4))


def _stable(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def select_preferences(pairs: list[RatedPair], *, ratio: dict[str, float], min_accuracy_margin: float = 1.0,
                       min_overall_margin: float = 0.5, keep_inconsistent: bool = False) -> list[Preference]:
    """Preferences from rated pairs, split into subsets toward ``ratio`` (e.g. {"accuracy": 2,
    "overall": 1}). A subset whose verdict flipped with the order is not offered unless
    ``keep_inconsistent``."""
    shares = {k: v for k, v in ratio.items() if v > 0}
    unknown = set(shares) - {"accuracy", "overall"}
    if unknown:
        raise ValueError(f"judge subsets must be 'accuracy' and/or 'overall'; got {sorted(unknown)}")
    margins = {"accuracy": min_accuracy_margin, "overall": min_overall_margin}
    consistent = {"accuracy": lambda p: p.accuracy_consistent, "overall": lambda p: p.overall_consistent}
    pools: dict[str, list[Preference]] = {k: [] for k in shares}
    both: list[dict[str, Preference]] = []
    for pair in sorted(pairs, key=lambda p: _stable(p.rating_id)):
        options = {k: w for k in shares if (w := _winner(pair, k, margins[k])) is not None
                   and (keep_inconsistent or consistent[k](pair) is not False)}
        if len(options) == 1:
            (k, w), = options.items()
            pools[k].append(w)
        elif options:
            both.append(options)
    weight = sum(shares.values())
    for options in both:
        total = sum(len(v) for v in pools.values()) + 1
        subset = min(options, key=lambda k: (len(pools[k]) / total - shares[k] / weight, k))
        pools[subset].append(options[subset])
    return [p for k in shares for p in pools[k]]


def pair_kind(prompt_kind: str, chosen_outcome: str | None, rejected_outcome: str | None,
              chosen_refuses: bool, rejected_refuses: bool) -> str:
    """What a judge pair teaches, for the metadata and the checks: on keyed prompts
    ``<chosen outcome>_over_<rejected outcome>`` (``correct_over_declined``, ``declined_over_wrong``,
    ...); on safety prompts whether it prefers refusing (``safety_refuse_over_comply``, or the
    opposite) or answering a benign request; ``chat`` otherwise."""
    if chosen_outcome is not None and rejected_outcome is not None:
        return f"{chosen_outcome}_over_{rejected_outcome}"
    if prompt_kind == "safety:harmful":
        return {(True, False): "safety_refuse_over_comply", (False, True): "safety_comply_over_refuse"}.get(
            (chosen_refuses, rejected_refuses), "safety_harmful_other")
    if prompt_kind == "safety:benign":
        return {(False, True): "benign_answer_over_refusal", (True, False): "benign_refusal_over_answer"}.get(
            (chosen_refuses, rejected_refuses), "safety_benign_other")
    return "chat" if prompt_kind == "chat" else prompt_kind


def acceptable_chosen(prompt_kind: str, outcome: str | None, refuses: bool, text: str) -> bool:
    """Whether a response may be the chosen side of a pair. DPO raises the chosen side's
    likelihood, so it must be a response we want more of, whatever the judge's scores say:
    never a wrong answer to a keyed (factual) prompt (a pair of two wrong answers teaches a
    different wrong answer, not calibration), never compliance with a harmful request, never a
    refusal of a benign one, never a loop. The report's judge is GPT-4o, whose style and detail
    scores carry this; a weak or rule-based judge's do not, so the rule is kept everywhere."""
    if loops(text) or not (text or "").strip():
        return False
    if outcome is not None:
        return outcome in ("correct", "declined")
    if prompt_kind == "safety:harmful":
        return refuses
    if prompt_kind == "safety:benign":
        return not refuses
    return True
