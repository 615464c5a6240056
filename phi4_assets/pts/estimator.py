"""p(success | question + prefix) by sampling rollouts and checking them with an oracle,
memoized in memory and in the persistent memo.

The token budget is per response: a rollout from a prefix of k tokens samples at most
``max_new_tokens - k`` more, so prefix + rollout is never longer than the response could have
been when it was sampled. A fixed budget after every prefix would give later prefixes more room
to reach an answer, and p would drift upward along the response for that reason alone.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.refusal import declines
from .memo import Estimate, EstimateMemo, estimate_key
from .sampler import RolloutSampler


class PrefixEstimator:
    """A ``p_success`` callable for the search, for one problem."""

    def __init__(self, sampler: RolloutSampler, oracle: Callable[[str], bool], prompt_ids: list[int], n: int,
                 problem_id: str, model_version: str, memo: EstimateMemo | None = None, seed: int = 0,
                 oracle_version: str = ""):
        self.sampler, self.oracle, self.prompt_ids, self.n = sampler, oracle, prompt_ids, n
        self.problem_id, self.model_version, self.memo, self.seed = problem_id, model_version, memo, seed
        # "budget": the per-response token budget above (it changed what an estimate means).
        self.params = {**sampler.params, "seed": seed, "oracle": oracle_version, "budget": "per-response"}
        self.known: dict[str, Estimate] = memo.load(model_version, problem_id, n, self.params) if memo else {}
        self.by_prefix: dict[tuple[int, ...], Estimate] = {}
        self.rollouts = 0  # sampled in this process (memo hits excluded)
        self.memo_hits = 0

    def budget(self, prefix: tuple[int, ...]) -> int:
        """New tokens a rollout from ``prefix`` may sample (at least one)."""
        return max(1, self.sampler.max_new_tokens - len(prefix))

    def key(self, prefix: tuple[int, ...]) -> str:
        """The memo key of the estimate at ``prefix`` (what pair building looks up later)."""
        return estimate_key(self.model_version, self.problem_id, tuple(prefix), self.n, self.params)

    def estimate(self, prefix: tuple[int, ...]) -> Estimate:
        prefix = tuple(prefix)
        if prefix in self.by_prefix:
            return self.by_prefix[prefix]
        key = self.key(prefix)
        if key not in self.known:
            return self.record(prefix, self.sampler.rollouts(self.prompt_ids + list(prefix), self.n,
                                                             seed=self.rollout_seed(prefix),
                                                             max_new_tokens=self.budget(prefix)))
        self.memo_hits += 1
        self.by_prefix[prefix] = self.known[key]
        return self.by_prefix[prefix]

    def rollout_seed(self, prefix: tuple[int, ...]) -> int:
        return hash((self.seed, len(prefix))) & 0x7FFFFFFF

    def cached(self, prefix: tuple[int, ...]) -> bool:
        """Whether ``estimate(prefix)`` would sample nothing (in memory or in the memo)."""
        return tuple(prefix) in self.by_prefix or self.key(tuple(prefix)) in self.known

    def record(self, prefix: tuple[int, ...], rollouts) -> Estimate:
        """The estimate at ``prefix`` from ``rollouts`` sampled there: graded by the oracle (and
        each rollout marked if it declines to answer), kept in memory and in the memo."""
        prefix = tuple(prefix)
        texts = [self.sampler.decode(prefix + r.token_ids) for r in rollouts]
        outcomes = tuple(bool(self.oracle(text)) for text in texts)
        result = Estimate(p=sum(outcomes) / len(outcomes), n=len(outcomes),
                          first_tokens=tuple(r.first_token for r in rollouts), outcomes=outcomes,
                          tokens=sum(len(r.token_ids) for r in rollouts),
                          declined=tuple(declines(text) for text in texts))
        self.rollouts += len(rollouts)
        if self.memo:
            self.memo.store(self.model_version, self.problem_id, prefix, self.params, result)
        self.by_prefix[prefix] = result
        return result

    def __call__(self, prefix: tuple[int, ...]) -> float:
        return self.estimate(prefix).p


def estimate_many(requests: list[tuple[PrefixEstimator, tuple[int, ...]]], seed: int,
                  logger=None) -> list[Estimate]:
    """The estimate of each (estimator, prefix), in order; the ones not already known sampled
    together, several contexts (problems, prefixes) per batch (``RolloutSampler.rollouts_many``),
    each with its own token budget, sorted by length so a batch pads little. The estimators share
    one sampler and one ``n``."""
    missing: dict[tuple[int, tuple[int, ...]], tuple[PrefixEstimator, tuple[int, ...]]] = {}
    for estimator, prefix in requests:
        prefix = tuple(prefix)
        if not estimator.cached(prefix):
            missing.setdefault((id(estimator), prefix), (estimator, prefix))
    if missing:
        todo = sorted(missing.values(), key=lambda r: len(r[0].prompt_ids) + len(r[1]))
        first = todo[0][0]
        if any(e.sampler is not first.sampler or e.n != first.n for e, _ in todo):
            raise ValueError("estimate_many: the estimators must share one sampler and one rollout count")
        groups = first.sampler.rollouts_many([e.prompt_ids + list(prefix) for e, prefix in todo], first.n, seed=seed,
                                             max_new_tokens=[e.budget(prefix) for e, prefix in todo], logger=logger)
        for (estimator, prefix), rollouts in zip(todo, groups):
            estimator.record(prefix, rollouts)
    return [estimator.estimate(tuple(prefix)) for estimator, prefix in requests]


def estimate_roots(estimators: list[PrefixEstimator], logger=None) -> list[Estimate]:
    """Each estimator's estimate at the empty prefix (its problem's p(success)), the ones not
    already known sampled together (``estimate_many``)."""
    if not estimators:
        return []
    return estimate_many([(e, ()) for e in estimators], seed=estimators[0].rollout_seed(()), logger=logger)
