"""DPO pairs from pivots, with both tokens taken from the rollouts already sampled at the pivot's
prefix (no extra sampling).

For a pivot that raises p(success), chosen = the pivot token and rejected = the partner: among
the other first tokens of the rollouts at that prefix, the one whose rollouts succeeded least
(ties: the more frequent, then the lower id), if that rate is below the pivot's p_after. For a
pivot that lowers p(success), rejected = the pivot token and chosen = the other first token
whose rollouts succeeded most, if that rate is above p_after. No such partner: no pair.
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


def pair_for_pivot(pivot: Pivot, at_prefix: Estimate) -> TokenPair | None:
    rates = {t: v for t, v in first_token_rates(at_prefix).items() if t != pivot.token}
    if not rates:
        return None
    if pivot.delta > 0:
        token, (rate, count) = min(rates.items(), key=lambda kv: (kv[1][0], -kv[1][1], kv[0]))
        return TokenPair(pivot.token, token, rate, count) if rate < pivot.p_after else None
    token, (rate, count) = max(rates.items(), key=lambda kv: (kv[1][0], kv[1][1], -kv[0]))
    return TokenPair(token, pivot.token, rate, count) if rate > pivot.p_after else None
