"""Estimator calls per pivot found: the search vs an exhaustive per-token scan.

    .venv/bin/python bench/pts_search.py [--real 3] [--rollouts 8] [--tokens 40]

Planted oracles: step functions with k pivots in n tokens (exact estimator). Real rollouts:
SmolLM2-135M-Instruct on math problems whose p(success) is in [0.2, 0.8] (those PTS searches);
the exhaustive scan estimates every prefix once (n + 1 estimates), and the search is run
against the same estimates, so both see identical numbers and differ only in which prefixes
they ask for. Pivots count for both only if they also pass the significance guard.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from phi4_assets.pts.search import pivotal_token_search, two_proportion_significant  # noqa: E402


def planted(n: int, k: int, rng: random.Random):
    where = sorted(rng.sample(range(n), k))
    values, p = {}, 0.05
    for i in where:
        p = min(0.95, p + 0.9 / k)
        values[i] = p

    def p_success(prefix):
        value = 0.05
        for i in where:
            if len(prefix) > i:
                value = values[i]
        return value

    logprobs = [-rng.uniform(0.01, 3.0) for _ in range(n)]
    return where, logprobs, p_success


def exhaustive_pivots(estimates: list[float], gap: float) -> list[int]:
    return [i for i in range(len(estimates) - 1) if abs(estimates[i + 1] - estimates[i]) >= gap]


def bench_planted(gap: float) -> list[tuple]:
    rng = random.Random(0)
    rows = []
    for n, k in [(64, 1), (128, 2), (256, 3), (512, 4), (1024, 6)]:
        ratios, calls = [], []
        for _ in range(20):
            where, logprobs, p = planted(n, k, rng)
            result = pivotal_token_search(list(range(n)), logprobs, p, gap)
            assert [v.index for v in result.pivots] == where
            calls.append(result.calls)
            ratios.append((n + 1) / result.calls)
        rows.append((n, k, statistics.median(calls) / k, (n + 1) / k, statistics.median(ratios)))
    return rows


def bench_real(problems: int, rollouts: int, max_tokens: int, gap: float) -> list[tuple]:
    from phi4_assets.models.generation import load_policy
    from phi4_assets.pts.estimator import PrefixEstimator
    from phi4_assets.pts.oracles import math_oracle
    from phi4_assets.pts.sampler import RolloutSampler
    from phi4_assets.sources.mathgen import generate_math_problems

    model_dir = sorted((REPO / "data/models/base_model").glob("[0-9a-f]*"))[-1]
    model, tokenizer = load_policy(str(model_dir))
    sampler = RolloutSampler(model, tokenizer, temperature=0.7, max_new_tokens=max_tokens, batch_size=rollouts)
    rows = []
    for problem in generate_math_problems(problems * 10, seed=5):
        if len(rows) == problems:
            break
        prompt = sampler.prompt_ids(f"{problem['question']}\nGive the final answer as a number.")
        estimator = PrefixEstimator(sampler, lambda r, a=problem["answer"]: math_oracle(r, a), prompt, rollouts,
                                    problem["id"], "bench")
        if not 0.2 <= estimator(()) <= 0.8:  # only problems PTS would search
            continue
        response = sampler.sample_response(prompt, seed=1)
        t0 = time.monotonic()
        estimates = [estimator(response.token_ids[:i]) for i in range(len(response.token_ids) + 1)]
        scan_s = time.monotonic() - t0
        result = pivotal_token_search(response.token_ids, response.logprobs,
                                      lambda prefix: estimates[len(prefix)], gap,
                                      lambda v: two_proportion_significant(v.p_before, rollouts, v.p_after, rollouts))
        scan_pivots = [i for i in exhaustive_pivots(estimates, gap)
                       if two_proportion_significant(estimates[i], rollouts, estimates[i + 1], rollouts)]
        rows.append((problem["id"], len(response.token_ids), len(estimates), len(scan_pivots), result.calls,
                     len(result.pivots), scan_s))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gap", type=float, default=0.2)
    parser.add_argument("--real", type=int, default=3, help="real math problems (0: planted only)")
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=40)
    args = parser.parse_args()
    print("planted oracles (20 draws each, steps of 0.9/k, gap 0.1, exact estimator, every planted pivot found):")
    print(f"{'n':>6} {'k':>3} {'search calls/pivot':>19} {'scan calls/pivot':>17} {'scan/search':>12}")
    for n, k, search_per, scan_per, ratio in bench_planted(0.1):
        print(f"{n:6d} {k:3d} {search_per:19.1f} {scan_per:17.1f} {ratio:11.1f}x")
    if args.real:
        print(f"\nreal rollouts (SmolLM2-135M-Instruct, math, {args.rollouts} rollouts/estimate, "
              f"{args.tokens} new tokens, gap {args.gap}):")
        print(f"{'problem':>22} {'tokens':>6} {'scan calls':>10} {'scan pivots':>11} {'search calls':>12} "
              f"{'search pivots':>13}")
        total = [0, 0, 0, 0]
        for pid, n, scan_calls, scan_piv, search_calls, search_piv, _ in bench_real(args.real, args.rollouts,
                                                                                  args.tokens, args.gap):
            print(f"{pid:>22} {n:6d} {scan_calls:10d} {scan_piv:11d} {search_calls:12d} {search_piv:13d}")
            total = [total[0] + scan_calls, total[1] + scan_piv, total[2] + search_calls, total[3] + search_piv]
        print(f"{'total':>22} {'':6} {total[0]:10d} {total[1]:11d} {total[2]:12d} {total[3]:13d}")
        if total[1] and total[3]:
            print(f"calls per pivot found: scan {total[0] / total[1]:.1f}, search {total[2] / total[3]:.1f} "
                  f"(ratio {total[0] / total[1] / (total[2] / total[3]):.1f}x)")
        else:
            print(f"calls: scan {total[0]}, search {total[2]} (ratio {total[0] / max(total[2], 1):.1f}x); "
                  "no pivot found on these responses")
    return 0


if __name__ == "__main__":
    sys.exit(main())
