"""Policy sampling (``generation.sample_responses``): how many rows a ``generate()`` call decodes
at once, one run.

    .venv/bin/python bench/sampling_batch.py [--rows 8,64] [--repeats 2] [--threads N] [--model DIR]

Two workloads, as the pipeline samples them:
- ``k=8``: 8 samples of each of 32 trivia questions (``policy_answer_samples`` and the mix assets'
  A.1 samples), temperature 0.8, top-p 0.95, 48 new tokens;
- ``k=1``: one response to each of 32 safety prompts (the mix assets' safety responses and the
  judge's policy candidates), temperature 0.7, 128 new tokens.

A variant decodes ``rows`` sequences per ``generate()`` call: ``rows // k`` prompts per batch
(``batch_prompts`` before the change was a prompt count, 8, so k=1 decoded 8 rows a call and k=8
decoded 64). Variants run interleaved, their order rotated every repeat; medians and ratios are
from the same run. useful tok/s = sampled tokens before the end-of-turn token / wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from phi4_assets.models.generation import chat_prompt, load_policy, sample_responses  # noqa: E402
from common import base_model_dir, evenly_spaced  # noqa: E402  (bench/common.py)


def prompts(tokenizer, path: str, field: str, n: int) -> list[str]:
    return [chat_prompt(tokenizer, r[field]) for r in evenly_spaced(path, n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="8,64", help="rows decoded per generate() call, comma list")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = load_policy(base_model_dir(args.model))
    workloads = {
        "k=8": dict(prompts=prompts(tokenizer, "data/seeds/trivia.jsonl", "question", args.prompts), k=8,
                    temperature=0.8, top_p=0.95, max_new_tokens=48),
        "k=1": dict(prompts=prompts(tokenizer, "data/seeds/safety.jsonl", "prompt", args.prompts), k=1,
                    temperature=0.7, top_p=0.95, max_new_tokens=128),
    }
    rows = [int(r) for r in args.rows.split(",")]
    variants = [(w, r) for w in workloads for r in rows]
    sample_responses(model, tokenizer, workloads["k=1"]["prompts"][:2], 1, max_new_tokens=4)  # warm-up
    results: dict[tuple[str, int], list[tuple[float, int]]] = {v: [] for v in variants}
    for rep in range(args.repeats):
        shift = rep % len(variants)
        for w, r in variants[shift:] + variants[:shift]:
            spec = dict(workloads[w])
            ps, k = spec.pop("prompts"), spec.pop("k")
            t0 = time.perf_counter()
            out = sample_responses(model, tokenizer, ps, k, batch_rows=r, seed=rep, **spec)
            wall = time.perf_counter() - t0
            tokens = sum(s.n_tokens for per in out for s in per)
            results[(w, r)].append((wall, tokens))
            print(f"[{rep + 1}/{args.repeats}] {w} rows {r:3d}: {tokens / wall:6.1f} useful tok/s, {wall:6.1f} s",
                  flush=True)
    print(f"\nmodel {args.model or 'base_model'}; {args.prompts} prompts per workload; repeats {args.repeats}; "
          f"{torch.get_num_threads()} threads")
    print("workload  rows  med useful tok/s  med wall s")
    med = {}
    for (w, r), runs in results.items():
        med[(w, r)] = statistics.median(t / s for s, t in runs)
        print(f"{w:8s}  {r:4d}  {med[(w, r)]:16.1f}  {statistics.median(s for s, _ in runs):10.1f}")
    print("\nratios (medians, same run):")
    for w in workloads:
        for r in rows[1:]:
            print(f"  {w}: rows {r} / rows {rows[0]}: {med[(w, r)] / med[(w, rows[0])]:.2f}x")


if __name__ == "__main__":
    main()
