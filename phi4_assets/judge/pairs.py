"""The judge-guided pair rule (report App. A.2), pure.

A rated candidate pair yields a preference when one side wins by at least a margin:
- "accuracy" subset: the higher accuracy wins (margin ``min_accuracy_margin``);
- "overall" subset: the higher mean of accuracy, style and detail wins (``min_overall_margin``).
Ties and smaller margins give no pair. Each rating goes to at most one subset; the subsets are
then cut to the configured ratio (the report: 2 accuracy : 1 overall), keeping as many pairs as
the scarcer subset allows (a subset with no pair at all does not empty the other), in a stable order (by rating id), so the same ratings give the same
pairs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class RatedPair:
    rating_id: str
    a_id: str
    b_id: str
    accuracy_a: float
    accuracy_b: float
    overall_a: float
    overall_b: float
    order_consistent: bool | None = None


@dataclass(frozen=True)
class Preference:
    rating_id: str
    chosen_id: str
    rejected_id: str
    subset: str  # accuracy | overall
    margin: float


def _winner(pair: RatedPair, subset: str, min_margin: float) -> Preference | None:
    a, b = (pair.accuracy_a, pair.accuracy_b) if subset == "accuracy" else (pair.overall_a, pair.overall_b)
    margin = abs(a - b)
    if margin == 0 or margin < min_margin:
        return None
    chosen, rejected = (pair.a_id, pair.b_id) if a > b else (pair.b_id, pair.a_id)
    return Preference(pair.rating_id, chosen, rejected, subset, round(margin, 4))


def _stable(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def select_preferences(pairs: list[RatedPair], *, ratio: dict[str, float], min_accuracy_margin: float = 1.0,
                       min_overall_margin: float = 0.5, keep_inconsistent: bool = False) -> list[Preference]:
    """Preferences from rated pairs, split into subsets in ``ratio`` (e.g. {"accuracy": 2, "overall": 1}).

    A pair that qualifies for both subsets is given to the one further below its share so far;
    order-inconsistent pairs are dropped unless ``keep_inconsistent``."""
    shares = {k: v for k, v in ratio.items() if v > 0}
    unknown = set(shares) - {"accuracy", "overall"}
    if unknown:
        raise ValueError(f"judge subsets must be 'accuracy' and/or 'overall'; got {sorted(unknown)}")
    margins = {"accuracy": min_accuracy_margin, "overall": min_overall_margin}
    pools: dict[str, list[Preference]] = {k: [] for k in shares}
    for pair in sorted(pairs, key=lambda p: _stable(p.rating_id)):
        if pair.order_consistent is False and not keep_inconsistent:
            continue
        options = {k: w for k in shares if (w := _winner(pair, k, margins[k])) is not None}
        if not options:
            continue
        # The subset furthest below its target share takes the pair.
        total = sum(len(v) for v in pools.values()) + 1
        subset = min(options, key=lambda k: (len(pools[k]) / total - shares[k] / sum(shares.values()), k))
        pools[subset].append(options[subset])
    # Cut to the ratio: as many as the scarcest subset allows. A subset with no pair at all is
    # left out of the cut (the metadata shows the counts) rather than emptying the other one.
    present = {k: v for k, v in shares.items() if pools[k]}
    weight = sum(present.values())
    n_total = min(len(pools[k]) / (present[k] / weight) for k in present) if present else 0
    out: list[Preference] = []
    for k in present:
        n = min(len(pools[k]), int(round(n_total * present[k] / weight)))
        out.extend(pools[k][:n])
    return out
