"""The Pivotal Token Search of the Phi-4 report (Fig. 4), as a pure function.

For a query Q and a sampled response t1..tn, p(success | Q + t<i) is estimated by the caller's
``p_success``. Subdivide(prefix, T): stop when |T| <= 1 or |p(prefix) - p(prefix + T)| < p_gap,
else split T and recurse on both halves; single tokens whose gap is >= p_gap are pivotal.

Beyond the report and the public implementations:
- the split point is the cumulative midpoint of the segment's log-probabilities (so the
  surprising tokens, where pivots live, are isolated in few steps), clamped to the middle half
  of the segment so the recursion depth stays logarithmic: O(k log n) estimates for k pivots;
- every estimate is memoized by prefix length, so no prefix is estimated twice in one search
  (the caller's ``p_success`` can add a persistent memo across searches);
- ``accept`` lets a statistical guard veto pivots whose gap sampling noise could explain.

Limitation (shared with the report): a segment whose pivots cancel (one up, one down, same
size) shows no gap and is not searched. Every pivot is found when p(success) is monotone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pivot:
    index: int  # position in the response
    token: int
    p_before: float  # p(success | Q + t<index)
    p_after: float  # p(success | Q + t<=index)

    @property
    def delta(self) -> float:
        return self.p_after - self.p_before


@dataclass
class SearchResult:
    pivots: list[Pivot]
    estimates: dict[int, float] = field(default_factory=dict)  # prefix length -> p(success), as visited
    rejected: list[Pivot] = field(default_factory=list)  # candidates vetoed by ``accept``

    @property
    def calls(self) -> int:
        return len(self.estimates)


def split_point(logprobs: Sequence[float], start: int, end: int) -> int:
    """Where to split tokens[start:end]: the log-prob midpoint, kept in the middle half."""
    n = end - start
    lo, hi = start + max(1, n // 4), end - max(1, n // 4)
    if lo >= hi:
        return start + n // 2
    half = sum(logprobs[start:end]) / 2
    running, best, best_gap = 0.0, lo, math.inf
    for k in range(start, end - 1):
        running += logprobs[k]
        gap = abs(running - half)
        if lo <= k + 1 <= hi and gap < best_gap:
            best, best_gap = k + 1, gap
    return best


def pivotal_token_search(tokens: Sequence[int], logprobs: Sequence[float],
                         p_success: Callable[[tuple[int, ...]], float], p_gap: float,
                         accept: Callable[[Pivot], bool] | None = None) -> SearchResult:
    if len(tokens) != len(logprobs):
        raise ValueError(f"{len(tokens)} tokens but {len(logprobs)} log-probabilities")
    tokens = tuple(tokens)
    result = SearchResult(pivots=[])

    def p(length: int) -> float:
        if length not in result.estimates:
            result.estimates[length] = float(p_success(tokens[:length]))
        return result.estimates[length]

    # Iterative depth-first subdivision (left half first), so pivots come out in order.
    stack = [(0, len(tokens))]
    while stack:
        start, end = stack.pop()
        if end <= start:
            continue
        before, after = p(start), p(end)
        if abs(after - before) < p_gap:
            continue
        if end - start == 1:
            pivot = Pivot(index=start, token=tokens[start], p_before=before, p_after=after)
            (result.pivots if accept is None or accept(pivot) else result.rejected).append(pivot)
            continue
        mid = split_point(logprobs, start, end)
        stack.append((mid, end))
        stack.append((start, mid))
    return result


def find_pivotal_tokens(tokens: Sequence[int], logprobs: Sequence[float],
                        p_success: Callable[[tuple[int, ...]], float], p_gap: float,
                        accept: Callable[[Pivot], bool] | None = None) -> list[Pivot]:
    """Pivotal tokens of a response, in order. See the module docstring."""
    return pivotal_token_search(tokens, logprobs, p_success, p_gap, accept).pivots


def two_proportion_significant(p1: float, n1: int, p2: float, n2: int, z: float = 1.96) -> bool:
    """Whether two success rates from n1 and n2 Bernoulli draws differ beyond sampling noise
    (pooled two-proportion z-test; z = 1.96 is a two-sided 5% level)."""
    if n1 <= 0 or n2 <= 0:
        return False
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return p1 != p2
    return abs(p1 - p2) / se >= z
