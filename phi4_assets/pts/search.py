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
- ``accept`` lets a statistical guard veto pivots whose gap sampling noise could explain;
- the subdivision runs level by level (``search_steps``): every estimate one level needs is asked
  at once, so many searches can run in lockstep and have their estimates sampled together, several
  prefixes and problems per batch (``search_many``). Which segments are visited depends only on
  the estimates, so the order changes nothing of the result.

Limitation (shared with the report): a segment whose pivots cancel (one up, one down, same
size) shows no gap and is not searched. Every pivot is found when p(success) is monotone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
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


def search_steps(tokens: Sequence[int], logprobs: Sequence[float], p_gap: float,
                 accept: Callable[[Pivot], bool] | None = None
                 ) -> Generator[list[int], dict[int, float], SearchResult]:
    """The search as a generator: it yields the prefix lengths whose p(success) it needs next (never
    one it was already given) and is sent ``{length: p}`` for them; it returns the result, pivots
    in response order."""
    if len(tokens) != len(logprobs):
        raise ValueError(f"{len(tokens)} tokens but {len(logprobs)} log-probabilities")
    tokens = tuple(tokens)
    result = SearchResult(pivots=[])
    level = [(0, len(tokens))] if tokens else []
    while level:
        needed = sorted({x for segment in level for x in segment} - result.estimates.keys())
        if needed:
            given = yield needed
            missing = [x for x in needed if x not in (given or {})]
            if missing:
                raise ValueError(f"the search asked for the estimates at {needed} and was not given {missing}")
            result.estimates.update({x: float(given[x]) for x in needed})
        deeper = []
        for start, end in level:
            before, after = result.estimates[start], result.estimates[end]
            if abs(after - before) < p_gap:
                continue
            if end - start == 1:
                pivot = Pivot(index=start, token=tokens[start], p_before=before, p_after=after)
                (result.pivots if accept is None or accept(pivot) else result.rejected).append(pivot)
                continue
            mid = split_point(logprobs, start, end)
            deeper += [(start, mid), (mid, end)]
        level = deeper
    result.pivots.sort(key=lambda v: v.index)
    result.rejected.sort(key=lambda v: v.index)
    return result


def pivotal_token_search(tokens: Sequence[int], logprobs: Sequence[float],
                         p_success: Callable[[tuple[int, ...]], float], p_gap: float,
                         accept: Callable[[Pivot], bool] | None = None) -> SearchResult:
    """One search, its estimates from ``p_success(prefix)`` one at a time."""
    tokens = tuple(tokens)
    return search_many([(tokens, logprobs)], lambda asks: [p_success(tokens[:length]) for _, length in asks],
                       p_gap, accept)[0]


def search_many(responses: Sequence[tuple[Sequence[int], Sequence[float]]],
                estimate: Callable[[list[tuple[int, int]]], Sequence[float]], p_gap: float,
                accept: Callable[[Pivot], bool] | None = None, progress: Callable[[int, int, int], None] | None = None
                ) -> list[SearchResult]:
    """Searches of several responses (token ids, log-probabilities) in lockstep: each round,
    ``estimate`` is given every (response index, prefix length) the searches still running need
    and returns their p(success) in that order. ``progress(round, estimates asked, searches still
    running)`` is called before each round. One result per response, in order."""
    searches = [search_steps(tokens, logprobs, p_gap, accept) for tokens, logprobs in responses]
    results: list[SearchResult | None] = [None] * len(searches)
    asks: dict[int, list[int]] = {}

    def advance(i: int, given: dict[int, float] | None) -> None:
        try:
            asks[i] = searches[i].send(given)
        except StopIteration as done:
            results[i] = done.value
            asks.pop(i, None)

    for i in range(len(searches)):
        advance(i, None)
    round_ = 0
    while asks:
        flat = [(i, length) for i in sorted(asks) for length in asks[i]]
        if progress is not None:
            progress(round_, len(flat), len(asks))
        values = list(estimate(flat))
        if len(values) != len(flat):
            raise ValueError(f"estimate returned {len(values)} values for {len(flat)} prefixes")
        given: dict[int, dict[int, float]] = {}
        for (i, length), value in zip(flat, values):
            given.setdefault(i, {})[length] = value
        for i in sorted(given):
            advance(i, given[i])
        round_ += 1
    return results


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
