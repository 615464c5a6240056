"""DPO pairs from pivots, with both tokens taken from the rollouts already sampled at the pivot's
prefix (no extra sampling).

For a pivot that raises p(success), chosen = the pivot token and rejected = the partner: among
the other first tokens of the rollouts at that prefix seen in at least ``min_count`` of them,
the one whose rollouts succeeded least (ties: the more frequent, then the lower id). For a pivot
that lowers p(success), rejected = the pivot token and chosen = the other first token whose
rollouts succeeded most.

The partner must have the opposite effect of the pivot, measured against p_before (the success
rate at the prefix itself): below it for a raising pivot, above it for a lowering one. Comparing
with p_after instead would accept a partner that also raises p (0.6 beside a pivot at 0.3 -> 0.9):
a pair of two good tokens. A partner seen in a single rollout says nothing about its effect, so
it needs ``min_count`` rollouts (default 2). No such partner: no pair.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .memo import Estimate
from .search import Pivot


@dataclass(frozen=True)
class TokenPair:
    chosen: int
    rejected: int
    partner_rate: float  # success rate of the partner token's rollouts
    partner_count: int  # how many rollouts at the prefix began with the partner token


def first_token_rates(estimate: Estimate) -> dict[int, tuple[float, int]]:
    """first token -> (success rate, count) over the rollouts of one estimate."""
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for token, ok in zip(estimate.first_tokens, estimate.outcomes):
        if token is not None:
            counts[token][0] += int(ok)
            counts[token][1] += 1
    return {t: (s / n, n) for t, (s, n) in counts.items()}


MIN_PARTNER_ROLLOUTS = 2


def opposite_effect(pivot: Pivot, partner_rate: float) -> bool:
    """The partner moves p(success) the other way from the prefix's own p_before."""
    return partner_rate < pivot.p_before if pivot.delta > 0 else partner_rate > pivot.p_before


def pair_for_pivot(pivot: Pivot, at_prefix: Estimate, min_count: int = MIN_PARTNER_ROLLOUTS) -> TokenPair | None:
    rates = {t: v for t, v in first_token_rates(at_prefix).items() if t != pivot.token and v[1] >= min_count}
    if not rates:
        return None
    if pivot.delta > 0:
        token, (rate, count) = min(rates.items(), key=lambda kv: (kv[1][0], -kv[1][1], kv[0]))
        return TokenPair(pivot.token, token, rate, count) if opposite_effect(pivot, rate) else None
    token, (rate, count) = max(rates.items(), key=lambda kv: (kv[1][0], kv[1][1], -kv[0]))
    return TokenPair(token, pivot.token, rate, count) if opposite_effect(pivot, rate) else None
