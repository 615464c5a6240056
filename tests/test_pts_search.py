"""Pivotal Token Search with planted pivots: exact and noisy estimators."""

import math
import random

import pytest

from phi4_assets.pts.search import (Pivot, find_pivotal_tokens, pivotal_token_search, search_many, split_point,
                                    two_proportion_significant)


def step_function(n: int, steps: dict[int, float], start: float):
    """p(prefix) for planted pivots: ``steps[i]`` is p after token i is included."""
    def p(prefix: tuple[int, ...]) -> float:
        value = start
        for i in sorted(steps):
            if len(prefix) > i:
                value = steps[i]
        return value
    return p


def counting(p):
    seen = []

    def wrapped(prefix):
        seen.append(len(prefix))
        return p(prefix)
    return wrapped, seen


def test_finds_exactly_the_planted_pivots_in_order():
    n = 64
    tokens = list(range(1000, 1000 + n))
    p, seen = counting(step_function(n, {10: 0.6, 40: 0.9}, start=0.2))
    pivots = find_pivotal_tokens(tokens, [-1.0] * n, p, p_gap=0.2)
    assert pivots == [Pivot(10, 1010, 0.2, 0.6), Pivot(40, 1040, 0.6, 0.9)]
    assert len(seen) == len(set(seen))  # memoized: no prefix estimated twice


def test_downward_pivots_and_the_root_estimate():
    n = 32
    p = step_function(n, {5: 0.3, 20: 0.0}, start=0.7)
    pivots = find_pivotal_tokens(list(range(n)), [-0.5] * n, p, p_gap=0.25)
    assert [(v.index, round(v.delta, 2)) for v in pivots] == [(5, -0.4), (20, -0.3)]


def test_small_steps_below_the_gap_are_not_pivots():
    n = 50
    ramp = {i: 0.3 + 0.004 * (i + 1) for i in range(n)}  # +0.2 in total, spread thin
    ramp.update({i: v + 0.5 for i, v in ramp.items() if i >= 30})  # one real jump at 30
    p = step_function(n, ramp, start=0.3)
    pivots = find_pivotal_tokens(list(range(n)), [-1.0] * n, p, p_gap=0.2)
    assert [v.index for v in pivots] == [30]


@pytest.mark.parametrize("n, planted", [(128, [17]), (256, [3, 100, 200]), (512, [10, 60, 300, 301, 500])])
def test_estimator_calls_grow_as_k_log_n(n, planted):
    steps = {i: 0.1 + 0.8 * (j + 1) / len(planted) for j, i in enumerate(planted)}
    rng = random.Random(n)
    logprobs = [-rng.uniform(0.01, 3.0) for _ in range(n)]
    result = pivotal_token_search(list(range(n)), logprobs, step_function(n, steps, 0.1), p_gap=0.1)
    assert [v.index for v in result.pivots] == planted
    bound = 2 + 2 * len(planted) * math.ceil(math.log(n, 4 / 3))
    assert result.calls <= bound, (result.calls, bound)
    assert result.calls < (n + 1) / 3  # far fewer than a per-token scan


def test_logprob_midpoint_isolates_surprising_tokens():
    # One very surprising token at 12 of 16: the split lands beside it, not at the token midpoint.
    logprobs = [-0.01] * 16
    logprobs[12] = -8.0
    assert split_point(logprobs, 0, 16) == 12
    assert split_point([-1.0] * 16, 0, 16) == 8  # equal surprise: the plain midpoint
    assert 4 <= split_point([-9.0] + [-0.01] * 15, 0, 16) <= 12  # clamped to the middle half


def test_noisy_estimator_with_guard():
    n, rollouts = 96, 32
    true_p = step_function(n, {30: 0.85}, start=0.15)
    rng = random.Random(7)

    def noisy(prefix):
        k = sum(rng.random() < true_p(prefix) for _ in range(rollouts))
        return k / rollouts

    def guard(pivot):
        return two_proportion_significant(pivot.p_before, rollouts, pivot.p_after, rollouts)

    result = pivotal_token_search(list(range(n)), [-1.0] * n, noisy, p_gap=0.2, accept=guard)
    assert [v.index for v in result.pivots] == [30]
    assert all(not guard(v) for v in result.rejected)


def test_significance_guard():
    assert two_proportion_significant(0.2, 64, 0.8, 64)
    assert not two_proportion_significant(0.4, 16, 0.65, 16)  # a 0.25 gap at n=16 is within noise
    assert two_proportion_significant(0.4, 400, 0.65, 400)
    assert not two_proportion_significant(0.5, 0, 0.9, 10)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="3 tokens but 2 log-probabilities"):
        find_pivotal_tokens([1, 2, 3], [-1.0, -1.0], lambda p: 0.5, 0.2)


def test_pairs_take_the_partner_from_rollouts_already_sampled():
    from phi4_assets.pts.memo import Estimate
    from phi4_assets.pts.pairs import pair_for_pivot

    at_prefix = Estimate(p=0.5, n=8, first_tokens=(7, 7, 7, 9, 9, 5, 5, None),
                         outcomes=(True, True, True, False, False, False, True, False))
    up = Pivot(index=4, token=7, p_before=0.5, p_after=0.9)
    pair = pair_for_pivot(up, at_prefix)
    assert (pair.chosen, pair.rejected, pair.partner_rate, pair.partner_count) == (7, 9, 0.0, 2)
    down = Pivot(index=4, token=9, p_before=0.5, p_after=0.1)
    pair = pair_for_pivot(down, at_prefix)
    assert (pair.chosen, pair.rejected, pair.partner_rate) == (7, 9, 1.0)
    # No partner whose rollouts did worse than the prefix's own p_before: no pair.
    assert pair_for_pivot(Pivot(4, 7, 0.5, 0.9), Estimate(0.5, 4, (7, 5, 7, 5), (True, True, True, True))) is None
    assert pair_for_pivot(Pivot(4, 7, 0.5, 0.9), Estimate(0.5, 2, (7, 7), (True, False))) is None


def test_a_partner_must_have_the_opposite_effect_and_enough_rollouts():
    from phi4_assets.pts.memo import Estimate
    from phi4_assets.pts.pairs import pair_for_pivot

    # A raising pivot 0.3 -> 0.9; token 5's rollouts succeed 0.6: it raises p too, so it is no partner.
    raising = Pivot(index=3, token=7, p_before=0.3, p_after=0.9)
    also_up = Estimate(p=0.3, n=10, first_tokens=(7, 7, 5, 5, 5, 5, 5, 8, 8, 8),
                       outcomes=(True, True, True, True, True, False, False, True, True, False))
    assert pair_for_pivot(raising, also_up) is None
    # A lowering pivot 0.7 -> 0.1; token 5 at 0.4 lowers p too: no partner either.
    lowering = Pivot(index=3, token=7, p_before=0.7, p_after=0.1)
    also_down = Estimate(p=0.7, n=7, first_tokens=(7, 7, 5, 5, 5, 5, 5),
                         outcomes=(False, False, True, True, False, False, False))
    assert pair_for_pivot(lowering, also_down) is None
    # A partner seen in a single rollout says nothing: token 9 (one failed rollout) is skipped...
    single = Estimate(p=0.3, n=6, first_tokens=(7, 7, 9, 5, 5, 5), outcomes=(True, True, False, False, False, True))
    # (token 5, at 1/3 over 3 rollouts, is above p_before = 0.3: not a partner either)
    assert pair_for_pivot(raising, single) is None
    # ...and with the minimum lowered to 1 it becomes the partner.
    assert pair_for_pivot(raising, single, min_count=1).rejected == 9
    # A real partner: two or more rollouts, below p_before.
    good = Estimate(p=0.3, n=6, first_tokens=(7, 7, 5, 5, 5, 9), outcomes=(True, True, False, False, False, True))
    pair = pair_for_pivot(raising, good)
    assert (pair.chosen, pair.rejected, pair.partner_rate, pair.partner_count) == (7, 5, 0.0, 3)


def test_a_partner_that_mostly_declines_is_skipped_and_a_declining_pivot_makes_no_pair():
    """The small run's trivia failure: "The" (7) raises p over "I" (9), whose rollouts all say
    "I'm not sure" (a decline the oracle fails). That pair would teach answering over declining."""
    from phi4_assets.pts.memo import Estimate
    from phi4_assets.pts.pairs import about_declining, decline_share, pair_for_pivot

    the_over_i = Pivot(index=0, token=7, p_before=0.3, p_after=0.8)
    # 7 answers and succeeds; 9 ("I") declines three times; 5 answers wrong twice.
    at_prefix = Estimate(p=2 / 7, n=7, first_tokens=(7, 7, 9, 9, 9, 5, 5),
                         outcomes=(True, True, False, False, False, False, False),
                         declined=(False, False, True, True, True, False, False))
    assert decline_share(at_prefix) == 3 / 7 and decline_share(at_prefix, 9) == 1.0
    assert decline_share(at_prefix, 5) == 0.0 and decline_share(at_prefix, 4) is None
    # Without the rule, 9 is the partner (rate 0, the more frequent): a pair about declining.
    unchecked = pair_for_pivot(the_over_i, at_prefix, skip_declining=False)
    assert (unchecked.chosen, unchecked.rejected, unchecked.rejected_declines) == (7, 9, 1.0)
    assert about_declining(unchecked)
    # With it, the partner is the worst token whose rollouts answer: a wrong answer's first token.
    pair = pair_for_pivot(the_over_i, at_prefix)
    assert (pair.chosen, pair.rejected, pair.chosen_declines, pair.rejected_declines) == (7, 5, 0.0, 0.0)
    assert not about_declining(pair)
    # Only a declining partner: no pair.
    only_i = Estimate(p=0.4, n=5, first_tokens=(7, 7, 9, 9, 9), outcomes=(True, True, False, False, False),
                      declined=(False, False, True, True, False))
    assert pair_for_pivot(the_over_i, only_i) is None
    assert about_declining(pair_for_pivot(the_over_i, only_i, skip_declining=False))
    # What the pairs asset reads: the pair, or the one left out, or neither.
    from phi4_assets.pts.pairs import choose_pair

    assert choose_pair(the_over_i, at_prefix).pair.rejected == 5 and choose_pair(the_over_i, at_prefix).left_out is None
    left = choose_pair(the_over_i, only_i)
    assert left.pair is None and (left.left_out.chosen, left.left_out.rejected) == (7, 9)
    no_partner = Estimate(p=1.0, n=2, first_tokens=(7, 7), outcomes=(True, True), declined=(False, False))
    neither = choose_pair(the_over_i, no_partner)
    assert (neither.pair, neither.left_out) == (None, None)

    # A lowering pivot whose own token opens a decline: the estimate after it says so (3 of 4
    # rollouts after "I" decline), even where no rollout at the prefix began with it.
    i_down = Pivot(index=2, token=9, p_before=0.6, p_after=0.1)
    answers = Estimate(p=0.6, n=5, first_tokens=(7, 7, 7, 5, 5), outcomes=(True, True, True, False, False),
                       declined=(False,) * 5)
    after_i = Estimate(p=0.0, n=4, first_tokens=(44, 44, 45, 46), outcomes=(False,) * 4,
                       declined=(True, True, True, False))
    pair = pair_for_pivot(i_down, answers, after=after_i)
    assert (pair.chosen, pair.rejected, pair.rejected_declines) == (7, 9, 0.75) and about_declining(pair)
    # Half is not most: kept.
    after_half = Estimate(p=0.0, n=4, first_tokens=(44,) * 4, outcomes=(False,) * 4,
                          declined=(True, True, False, False))
    assert not about_declining(pair_for_pivot(i_down, answers, after=after_half))
    # Estimates without decline marks (stored before they were kept) decide nothing.
    unmarked = Estimate(p=0.6, n=5, first_tokens=(7, 7, 7, 5, 5), outcomes=(True, True, True, False, False))
    pair = pair_for_pivot(i_down, unmarked)
    assert (pair.chosen_declines, pair.rejected_declines) == (None, None) and not about_declining(pair)


def test_the_estimator_marks_each_rollout_that_declines():
    from phi4_assets.pts.estimator import PrefixEstimator
    from phi4_assets.pts.sampler import Rollout

    words = {1: "I'm", 2: "not", 3: "sure.", 4: "Paris", 5: "is", 6: "it."}

    class Scripted:
        max_new_tokens = 8
        params = {"temperature": 0.7, "top_p": 1.0, "max_new_tokens": 8}

        def rollouts(self, context, n, seed, max_new_tokens=None):
            return [Rollout((1, 2, 3), 1, True), Rollout((4, 5, 6), 4, True), Rollout((1, 2, 3), 1, True)][:n]

        def decode(self, ids):
            return " ".join(words[i] for i in ids)

    estimator = PrefixEstimator(Scripted(), lambda text: "Paris" in text, prompt_ids=[0], n=3, problem_id="p",
                                model_version="mv")
    got = estimator.estimate(())
    assert got.outcomes == (False, True, False) and got.declined == (True, False, True)


def test_memo_stores_and_returns_an_estimate_by_key(tmp_path):
    from phi4_assets.pts.memo import Estimate, EstimateMemo, estimate_key

    memo = EstimateMemo(tmp_path / "memo.duckdb")
    params = {"temperature": 0.7, "seed": 0}
    stored = Estimate(p=0.25, n=4, first_tokens=(7, None, 9, 7), outcomes=(True, False, False, False), tokens=12)
    memo.store("v1", "q1", (3, 4), params, stored)
    assert memo.get(estimate_key("v1", "q1", (3, 4), 4, params)) == stored
    assert memo.get(estimate_key("v1", "q1", (3, 5), 4, params)) is None
    assert list(memo.load("v1", "q1", 4, params).values()) == [stored]
    marked = Estimate(p=0.5, n=2, first_tokens=(7, 9), outcomes=(True, False), tokens=3, declined=(False, True))
    memo.store("v1", "q1", (3, 5), params, marked)
    assert memo.get(estimate_key("v1", "q1", (3, 5), 2, params)) == marked
    both = [estimate_key("v1", "q1", (3, 4), 4, params), estimate_key("v1", "q1", (3, 5), 2, params)]
    assert memo.get_many(both + ["absent", None]) == dict(zip(both, [stored, marked]))


def test_a_memo_written_before_declines_were_kept_gains_the_column(tmp_path):
    import duckdb

    from phi4_assets.pts.memo import Estimate, EstimateMemo, estimate_key

    path = tmp_path / "memo.duckdb"
    with duckdb.connect(str(path)) as con:  # the table as it was, with one row
        con.execute("CREATE TABLE pts_estimates (key VARCHAR PRIMARY KEY, model_version VARCHAR, problem_id VARCHAR, "
                    "prefix_hash VARCHAR, prefix_len INTEGER, n INTEGER, params VARCHAR, p DOUBLE, successes INTEGER, "
                    "first_tokens VARCHAR, outcomes VARCHAR, tokens INTEGER, created_at TIMESTAMP)")
        con.execute("INSERT INTO pts_estimates VALUES ('old', 'v1', 'q1', 'h', 1, 2, '{}', 0.5, 1, '[7, 9]', "
                    "'[true, false]', 3, now())")
    memo = EstimateMemo(path)
    assert memo.get("old") == Estimate(0.5, 2, (7, 9), (True, False), 3)  # no marks: ()
    marked = Estimate(p=1.0, n=1, first_tokens=(7,), outcomes=(True,), declined=(False,))
    memo.store("v1", "q1", (3,), {}, marked)
    assert memo.get(estimate_key("v1", "q1", (3,), 1, {})) == marked


def test_the_rollout_budget_is_per_response_not_per_prefix():
    """Prefix + rollout never exceeds the response's own budget: later prefixes get less room."""
    from phi4_assets.pts.estimator import PrefixEstimator
    from phi4_assets.pts.sampler import Rollout

    class Recorder:
        max_new_tokens = 10
        params = {"temperature": 0.7, "top_p": 1.0, "max_new_tokens": 10}

        def __init__(self):
            self.asked = {}

        def rollouts(self, context, n, seed, max_new_tokens=None):
            self.asked[len(context)] = max_new_tokens
            return [Rollout((1,) * max_new_tokens, 1, False) for _ in range(n)]

        def decode(self, ids):
            return " ".join(map(str, ids))

    sampler = Recorder()
    estimator = PrefixEstimator(sampler, lambda text: True, prompt_ids=[0, 0, 0], n=2, problem_id="p",
                                model_version="mv")
    for prefix in [(), (5, 6, 7), tuple(range(9)), tuple(range(12))]:
        estimator.estimate(prefix)
    assert sampler.asked == {3: 10, 6: 7, 12: 1, 15: 1}  # context = 3 prompt tokens + the prefix
    assert estimator.params["budget"] == "per-response"  # memo keys of the old fixed budget are not reused


def test_root_estimates_of_many_problems_are_sampled_together_and_memoized(tmp_path):
    """``estimate_roots``: one ``rollouts_many`` call for every problem not already known (memo or
    memory), each graded by its own oracle, stored under the key ``estimate(())`` reads, so the
    search that follows samples nothing at the root and a second run samples nothing at all."""
    from phi4_assets.pts.estimator import PrefixEstimator, estimate_roots
    from phi4_assets.pts.memo import EstimateMemo
    from phi4_assets.pts.sampler import Rollout

    class Packed:
        max_new_tokens = 6
        params = {"temperature": 0.7, "top_p": 1.0, "max_new_tokens": 6}

        def __init__(self):
            self.calls = []

        def rollouts_many(self, contexts, n, seed, max_new_tokens=None, batch_rows=64, logger=None):
            self.calls.append(([c[0] for c in contexts], n, max_new_tokens))
            # context c: rollout i says "c i"; the oracle of problem c wants i < c
            return [[Rollout((c[0], i), c[0], True) for i in range(n)] for c in contexts]

        def rollouts(self, context, n, seed, max_new_tokens=None):
            self.calls.append(("one", context[0]))
            return [Rollout((context[0], i), context[0], True) for i in range(n)]

        def decode(self, ids):
            return " ".join(map(str, ids))

    def wants_below(c):
        return lambda text: int(text.split()[1]) < c

    memo = EstimateMemo(tmp_path / "memo.duckdb")
    sampler = Packed()

    def estimators():
        return [PrefixEstimator(sampler, wants_below(c), prompt_ids=[c, 0], n=4, problem_id=f"p{c}",
                                model_version="mv", memo=memo) for c in (1, 2, 3)]

    first = estimators()
    first[1].estimate(())  # problem 2 is known before: not sampled again
    got = estimate_roots(first)
    assert sampler.calls == [("one", 2), ([1, 3], 4, [6, 6])]  # problems 1 and 3, in one call, the full budget
    assert [e.p for e in got] == [0.25, 0.5, 0.75]
    assert [e.rollouts for e in first] == [4, 4, 4] and first[0].estimate(()) is got[0]
    again = estimators()  # a later run over the memo samples nothing
    assert [e.p for e in estimate_roots(again)] == [0.25, 0.5, 0.75]
    assert len(sampler.calls) == 2 and [e.memo_hits for e in again] == [1, 1, 1]


def test_the_documented_search_is_exported_from_the_package():
    import phi4_assets.pts as pts
    from phi4_assets.pts.search import find_pivotal_tokens

    assert pts.find_pivotal_tokens is find_pivotal_tokens


# -- lockstep searches --------------------------------------------------------------------------------


def test_searches_in_lockstep_find_what_each_finds_alone_asking_each_estimate_once():
    planted = [(40, {10: 0.6, 30: 0.9}, 0.2), (64, {5: 0.3, 50: 0.0}, 0.7), (16, {}, 0.5), (24, {23: 0.9}, 0.1)]
    responses = [(list(range(100 * j, 100 * j + n)), [-1.0] * n) for j, (n, _, _) in enumerate(planted)]
    truth = [step_function(n, steps, start) for n, steps, start in planted]
    asked, rounds = [], []

    def estimate(asks):
        asked.extend(asks)
        return [truth[i](tuple(range(length))) for i, length in asks]

    results = search_many(responses, estimate, p_gap=0.2,
                          progress=lambda r, n, running: rounds.append((r, n, running)))
    alone = [pivotal_token_search(tokens, logprobs, p, p_gap=0.2) for (tokens, logprobs), p in zip(responses, truth)]
    assert [r.pivots for r in results] == [a.pivots for a in alone]
    assert [[v.index for v in r.pivots] for r in results] == [[10, 30], [5, 50], [], [23]]
    assert [r.estimates == a.estimates for r, a in zip(results, alone)] == [True] * 4  # the same prefixes
    assert len(asked) == len(set(asked)) == sum(r.calls for r in results)  # none asked twice
    # One round per level of the deepest search, every search in the first (the root and the end).
    assert rounds[0] == (0, 8, 4) and [r for r, _, _ in rounds] == list(range(len(rounds)))
    # As many rounds as the deepest search takes alone, not one per estimate.
    alone_rounds = []
    for response, p in zip(responses, truth):
        levels = []
        search_many([response], lambda asks, p=p: [p(tuple(range(n))) for _, n in asks], p_gap=0.2,
                    progress=lambda r, n, running: levels.append(r))
        alone_rounds.append(len(levels))
    assert len(rounds) == max(alone_rounds) < len(asked) // 3
    assert rounds[-1][2] < 4  # the flat one and the short ones were done before the deepest


def test_lockstep_search_refuses_an_estimate_short_of_what_it_asked():
    with pytest.raises(ValueError, match="returned 1 values for 2 prefixes"):
        search_many([([1, 2, 3], [-1.0] * 3)], lambda asks: [0.5], p_gap=0.2)


def test_estimates_at_many_prefixes_are_sampled_together_each_with_its_budget():
    """``estimate_many``: the (problem, prefix) pairs not known yet, asked twice or not, are sampled
    in one ``rollouts_many`` call, shortest context first, each with the budget its prefix leaves;
    the estimates come back in the order asked."""
    from phi4_assets.pts.estimator import PrefixEstimator, estimate_many
    from phi4_assets.pts.sampler import Rollout

    class Packed:
        max_new_tokens = 10
        params = {"temperature": 0.7, "top_p": 1.0, "max_new_tokens": 10}

        def __init__(self):
            self.calls = []

        def rollouts_many(self, contexts, n, seed, max_new_tokens=None, batch_rows=64, logger=None):
            self.calls.append((contexts, max_new_tokens))
            # rollout i of a context of length L says "L i"
            return [[Rollout((len(c), i), len(c), True) for i in range(n)] for c in contexts]

        def decode(self, ids):
            return " ".join(map(str, ids[-2:]))

    sampler = Packed()
    # problem a wants i < 1 (p = 0.25 at every prefix), problem b wants i < 3 (p = 0.75)
    a, b = (PrefixEstimator(sampler, lambda t, c=c: int(t.split()[1]) < c, prompt_ids=[9] * k, n=4,
                            problem_id=name, model_version="mv") for name, c, k in (("a", 1, 3), ("b", 3, 1)))
    estimate_many([(a, (5,))], seed=0)  # known already
    got = estimate_many([(a, (5, 6, 7)), (b, (5, 6)), (a, (5,)), (b, (5, 6)), (b, ())], seed=0)
    assert [e.p for e in got] == [0.25, 0.75, 0.25, 0.75, 0.75]
    (contexts, budgets), = sampler.calls[1:]
    assert contexts == [[9], [9, 5, 6], [9, 9, 9, 5, 6, 7]]  # b's root, b at 2 tokens, a at 3: shortest first
    assert budgets == [10, 8, 7]
    assert got[1] is got[3] and a.rollouts == 8 and b.rollouts == 8
