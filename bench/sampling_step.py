"""Sampling inside ``generate()``: transformers' own path against ``models.sampling.TopKTopPSampling``,
side by side, one run.

    .venv/bin/python bench/sampling_step.py [--repeats 2] [--threads N] [--model DIR]

transformers' path (``do_sample=True``, temperature, its default top-k 50, top-p) sorts every
row's whole vocabulary for top-p and draws over the whole vocabulary each step; ours draws over
the top 50 and hands greedy ``generate()`` a one-hot score. Same distribution
(``tests/test_sampling.py``), so what differs is the cost of a step. Two workloads, 64 rows per
``generate()`` call as the pipeline samples: ``k=8`` (8 trivia questions x 8 samples, temperature
0.8, top-p 0.95, 48 new tokens) and ``rollouts`` (PTS: 4 math questions x 16 rollouts,
temperature 0.7, top-p 1.0, 48 new tokens). useful tok/s = sampled tokens before the end-of-turn
token / wall time; also the wall time per decoded step (rows x steps slots). Variants interleaved,
order rotated every repeat; medians and ratios from the same run.
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

from phi4_assets.models.generation import chat_prompt, load_policy  # noqa: E402
from phi4_assets.models.sampling import repeat_rows, sampling_kwargs  # noqa: E402
from common import base_model_dir, evenly_spaced  # noqa: E402  (bench/common.py)


def questions(path: str, field: str, n: int) -> list[str]:
    return [r[field] for r in evenly_spaced(path, n)]


def run(model, tokenizer, prompts: list[str], k: int, temperature: float, top_p: float, ours: bool,
        seed: int) -> tuple[float, int, int]:
    enc = tokenizer([chat_prompt(tokenizer, p) for p in prompts], return_tensors="pt", padding=True,
                    add_special_tokens=False)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    with torch.inference_mode():
        if ours:
            out = model.generate(input_ids=repeat_rows(enc["input_ids"], k),
                                 attention_mask=repeat_rows(enc["attention_mask"], k),
                                 **sampling_kwargs(model, temperature, top_p), max_new_tokens=48,
                                 pad_token_id=tokenizer.pad_token_id)
        else:
            out = model.generate(**enc, do_sample=True, temperature=temperature, top_p=top_p, max_new_tokens=48,
                                 num_return_sequences=k, pad_token_id=tokenizer.pad_token_id)
    wall = time.perf_counter() - t0
    new = out[:, enc["input_ids"].shape[1]:].tolist()
    useful = sum(row.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in row else len(row) for row in new)
    return wall, useful, len(new) * len(new[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = load_policy(base_model_dir(args.model))
    workloads = {"k=8": (questions("data/seeds/trivia.jsonl", "question", 8), 8, 0.8, 0.95),
                 "rollouts": ([f"What is {a} * {b} + {a}? Answer with a number." for a, b in
                               ((12, 7), (23, 4), (9, 15), (31, 6))], 16, 0.7, 1.0)}
    variants = [(w, ours) for w in workloads for ours in (False, True)]
    run(model, tokenizer, ["Hi."], 2, 0.7, 1.0, True, 0)  # warm-up
    results: dict = {v: [] for v in variants}
    for rep in range(args.repeats):
        shift = rep % len(variants)
        for w, ours in variants[shift:] + variants[:shift]:
            prompts, k, temperature, top_p = workloads[w]
            wall, useful, slots = run(model, tokenizer, prompts, k, temperature, top_p, ours, seed=rep)
            results[(w, ours)].append((wall, useful, slots))
            print(f"[{rep + 1}/{args.repeats}] {w:8s} {'ours' if ours else 'transformers'}: {useful / wall:6.1f} "
                  f"useful tok/s, {wall:5.1f} s, {1000 * wall / (slots / 64):.0f} ms per 64-row step", flush=True)
    print(f"\n{torch.get_num_threads()} threads; 64 rows per generate() call; 48 new tokens; repeats {args.repeats}")
    print("workload  sampler        med useful tok/s  med ms per step")
    med = {}
    for (w, ours), runs in results.items():
        med[(w, ours)] = statistics.median(u / s for s, u, _ in runs)
        step = statistics.median(1000 * s / (slots / 64) for s, _, slots in runs)
        print(f"{w:8s}  {'ours' if ours else 'transformers':13s}  {med[(w, ours)]:16.1f}  {step:15.0f}")
    print("\nratios (ours / transformers, useful tok/s, same run):")
    for w in workloads:
        print(f"  {w}: {med[(w, True)] / med[(w, False)]:.2f}x")


if __name__ == "__main__":
    main()
