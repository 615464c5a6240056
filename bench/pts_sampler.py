"""Sampled tokens/s: the batched, prefix-cached rollout sampler vs a plain loop of generate()
calls (and vs batching without the shared prefix cache), same model, same contexts.

    .venv/bin/python bench/pts_sampler.py [--contexts 3] [--rollouts 16] [--tokens 48] [--repeats 2]

Counts useful tokens: continuation tokens up to and excluding the end-of-turn token.
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

from phi4_assets.models.generation import load_policy  # noqa: E402
from phi4_assets.pts.sampler import RolloutSampler  # noqa: E402
from phi4_assets.sources.mathgen import generate_math_problems  # noqa: E402


def useful(rows: list[list[int]], eos: int) -> int:
    return sum(next((i for i, t in enumerate(r) if t == eos), len(r)) for r in rows)


@torch.inference_mode()
def plain_loop(model, tokenizer, context, n, tokens, seed):
    torch.manual_seed(seed)
    ids = torch.tensor([context])
    rows = []
    for _ in range(n):
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=0.7,
                             max_new_tokens=tokens, pad_token_id=tokenizer.pad_token_id)
        rows.append(out[0, len(context):].tolist())
    return useful(rows, tokenizer.eos_token_id)


@torch.inference_mode()
def batched_no_cache(model, tokenizer, context, n, tokens, seed):
    torch.manual_seed(seed)
    ids = torch.tensor([context]).repeat(n, 1)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=0.7,
                         max_new_tokens=tokens, pad_token_id=tokenizer.pad_token_id)
    return useful(out[:, len(context):].tolist(), tokenizer.eos_token_id)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contexts", type=int, default=3)
    parser.add_argument("--rollouts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    model_dir = str(sorted((REPO / "data/models/base_model").glob("[0-9a-f]*"))[-1])
    model, tokenizer = load_policy(model_dir)
    sampler = RolloutSampler(model, tokenizer, temperature=0.7, max_new_tokens=args.tokens, batch_size=args.rollouts)
    contexts = []
    for p in generate_math_problems(args.contexts, seed=11):
        prompt = sampler.prompt_ids(f"{p['question']}\nGive the final answer as a number.")
        response = sampler.sample_response(prompt, seed=0)
        contexts.append(prompt + list(response.token_ids[: len(response.token_ids) // 2]))
    methods = {
        "plain generate() loop, batch 1": lambda c, s: plain_loop(model, tokenizer, c, args.rollouts, args.tokens, s),
        "batched, no prefix cache": lambda c, s: batched_no_cache(model, tokenizer, c, args.rollouts, args.tokens, s),
        "batched + shared prefix KV cache (ours)": lambda c, s: sum(
            len(r.token_ids) for r in sampler.rollouts(c, args.rollouts, s)),
    }
    rates: dict[str, list[float]] = {m: [] for m in methods}
    for repeat in range(args.repeats):
        for name, run in methods.items():
            t0 = time.monotonic()
            tokens = sum(run(c, 100 + i) for i, c in enumerate(contexts))
            rates[name].append(tokens / (time.monotonic() - t0))
            print(f"[{repeat + 1}/{args.repeats}] {name}: {rates[name][-1]:.1f} useful tok/s", flush=True)
    dtype = next(model.parameters()).dtype
    print(f"\n{args.contexts} contexts (mean {statistics.mean(map(len, contexts)):.0f} tokens) x {args.rollouts} "
          f"rollouts x {args.tokens} new tokens, {dtype}, {torch.get_num_threads()} threads, medians:")
    ours = statistics.median(rates["batched + shared prefix KV cache (ours)"])
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"  {name:42s} {median:8.1f} tok/s   ours/this = {ours / median:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
