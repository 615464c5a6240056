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

A pair one of whose tokens mostly leads to a decline ("I" opening "I'm not sure") is about
whether to answer, not how: the oracles grade answers, and score a decline as a failure, so such
a pair would teach "answer rather than say you do not know" (in a small run, 10 of 26 trivia pairs
chose an answer's first word over "I", and DPO stage 1 undid SFT's declining). Whether to answer
is the hallucination data's and the judge's call. So a token whose rollouts mostly decline is no
partner (the partner is the worst, or best, of the tokens whose rollouts mostly answer), and a
pivot token whose rollouts mostly decline makes a pair ``about_declining``, which the pairs asset
leaves out. A token's decline share is read from the rollouts that continue with it: a partner's
from those at the prefix that begin with it, the pivot token's from the estimate at prefix +
pivot token (the search's p_after) where given.
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
    # Share of each side's rollouts that declined to answer (None: not recorded).
    chosen_declines: float | None = None
    rejected_declines: float | None = None


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


def decline_share(estimate: Estimate, token: int | None = None) -> float | None:
    """The share of an estimate's rollouts (those beginning with ``token``, if given) that declined;
    None where the estimate has no decline marks or no such rollout."""
    if len(estimate.declined) != len(estimate.outcomes):
        return None
    marks = [d for t, d in zip(estimate.first_tokens, estimate.declined) if token is None or t == token]
    return sum(marks) / len(marks) if marks else None


DECLINE_MAJORITY = 0.5


def _mostly_declines(share: float | None, majority: float = DECLINE_MAJORITY) -> bool:
    return share is not None and share > majority


def pair_for_pivot(pivot: Pivot, at_prefix: Estimate, min_count: int = MIN_PARTNER_ROLLOUTS,
                   after: Estimate | None = None, skip_declining: bool = True) -> TokenPair | None:
    """The pair of a pivot found at ``at_prefix`` (see the module's text); ``after``, the estimate
    at prefix + pivot token, gives the pivot token's decline share. ``skip_declining=False`` lets
    a partner whose rollouts mostly decline be chosen (to count what the rule left out)."""
    rates = {t: v for t, v in first_token_rates(at_prefix).items() if t != pivot.token and v[1] >= min_count
             and not (skip_declining and _mostly_declines(decline_share(at_prefix, t)))}
    if not rates:
        return None
    if pivot.delta > 0:
        token, (rate, count) = min(rates.items(), key=lambda kv: (kv[1][0], -kv[1][1], kv[0]))
    else:
        token, (rate, count) = max(rates.items(), key=lambda kv: (kv[1][0], kv[1][1], -kv[0]))
    if not opposite_effect(pivot, rate):
        return None
    pivot_share = decline_share(after) if after is not None else None
    if pivot_share is None:
        pivot_share = decline_share(at_prefix, pivot.token)
    partner_share = decline_share(at_prefix, token)
    if pivot.delta > 0:
        return TokenPair(pivot.token, token, rate, count, pivot_share, partner_share)
    return TokenPair(token, pivot.token, rate, count, partner_share, pivot_share)


def about_declining(pair: TokenPair, majority: float = DECLINE_MAJORITY) -> bool:
    """Whether most of either side's rollouts decline: the pair is about whether to answer."""
    return any(_mostly_declines(share, majority) for share in (pair.chosen_declines, pair.rejected_declines))


@dataclass(frozen=True)
class PairChoice:
    pair: TokenPair | None = None  # the pair to train on
    left_out: TokenPair | None = None  # the pair there would be, left out as about declining


def choose_pair(pivot: Pivot, at_prefix: Estimate, min_count: int = MIN_PARTNER_ROLLOUTS,
                after: Estimate | None = None) -> PairChoice:
    """The pivot's pair, or the pair left out as about declining (its pivot token mostly declines,
    or its only partner would have been one that does), or neither (no partner)."""
    pair = pair_for_pivot(pivot, at_prefix, min_count, after)
    if pair is not None and not about_declining(pair):
        return PairChoice(pair=pair)
    return PairChoice(left_out=pair or pair_for_pivot(pivot, at_prefix, min_count, after, skip_declining=False))
