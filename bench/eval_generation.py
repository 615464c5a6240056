"""Evaluation's greedy generation: batch size (1 / 8 / 16), dtype (bf16 / fp32), and
transformers' continuous batching (``generate_batch``) against padded batches, one run.

    .venv/bin/python bench/eval_generation.py [--prompts 16] [--tokens 48] [--batches 1,8,16]
                                              [--continuous] [--repeats 3] [--threads N]
                                              [--model DIR] [--json FILE]

``--continuous`` adds a variant per dtype (batch shown as 0) that hands every prompt at once to
``model.generate_batch`` (transformers' continuous batching with a paged KV cache: a finished row's
slot goes to the next prompt, no padding), with the same greedy settings and stop tokens.

Runs ``phi4_assets.evaluation.runner.greedy_generate`` (what ``evaluate_model`` calls per
benchmark: prompts sorted by length, left-padded batches, greedy) on a fixed set of SimpleQA
questions from ``data/eval/simpleqa.jsonl`` (evenly spaced through the file, so real and bogus
questions in the file's proportion), formatted exactly as the evaluation formats them. bf16 is
measured only where the CPU has native bf16 (``phi4_assets.core.hardware``); fp32 always. Variants
run interleaved, their order rotated every repeat; medians and ratios come from the same run.

Per variant: useful tokens/s (response tokens up to and excluding the end-of-turn token, as
``Sample.n_tokens`` counts them) over the wall time of ``greedy_generate`` (model loaded and
warmed up beforehand); and the share of decoded slots (batch rows x decode steps, summed over
batches) that were padding: steps a row spent after its end-of-turn token waiting for the
longest row of its batch. Also the share of responses identical to batch 1's in the same dtype.

--threads 1 on a machine other work is using: with torch's default (one thread per core) and
the cores oversubscribed, OpenMP's spinning barriers make each decode step several times slower
and the timings erratic (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from phi4_assets.evaluation.runner import greedy_generate, user_message  # noqa: E402
from phi4_assets.models.generation import chat_prompt, load_policy  # noqa: E402
from phi4_assets.core.hardware import cpu_has_fast_bf16  # noqa: E402
from common import base_model_dir, evenly_spaced  # noqa: E402  (bench/common.py)

def questions(n: int) -> list[dict]:
    return [{**r, "benchmark": "simpleqa"} for r in evenly_spaced("data/eval/simpleqa.jsonl", n)]


class Recorder:
    """The model as ``greedy_generate`` sees it (``models.decode`` calls it once per step),
    keeping the rows of each decode step (one new token a row), so decoded slots can be counted
    without touching the runner."""

    def __init__(self, model):
        self._model = model
        self.step_rows: list[int] = []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __call__(self, *args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[1] == 1:
            self.step_rows.append(ids.shape[0])
        return self._model(*args, **kwargs)


def slot_counts(recorder: Recorder, samples) -> dict:
    """Decoded slots = rows summed over decode steps; padding = slots beyond each row's own tokens
    (its response and its stop token): a row kept in its batch after it ended. The decode loop
    drops ended rows, so this is near 0 (what is left: a prefill's first token is not a step)."""
    slots = sum(recorder.step_rows)
    own = sum(s.n_tokens + s.finished for s in samples)
    return {"slots": slots, "padding_slots": max(0, slots - own)}


def continuous_generate(model, tokenizer, prompts: list[str], max_new_tokens: int, stops: set[int]) -> list:
    """Greedy completions through ``model.generate_batch``, as ``greedy_generate``'s ``Sample``s."""
    from transformers import GenerationConfig

    from phi4_assets.models.generation import Sample

    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=sorted(stops),
                              pad_token_id=tokenizer.pad_token_id)
    out = model.generate_batch(ids, generation_config=config, progress_bar=False)
    by_prompt = {}
    for o in out.values():
        by_prompt.setdefault(tuple(o.prompt_ids), []).append(o)
    samples = []
    for prompt in ids:
        row = list(by_prompt[tuple(prompt)].pop(0).generated_tokens)
        cut = next((k for k, t in enumerate(row) if t in stops), None)
        tokens = row if cut is None else row[:cut]
        samples.append(Sample(tokenizer.decode(tokens, skip_special_tokens=True).strip(), len(tokens),
                              cut is not None))
    return samples


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=48, help="max_new_tokens (simpleqa's default: 48)")
    parser.add_argument("--batches", default="1,8,16")
    parser.add_argument("--continuous", action="store_true", help="add generate_batch (batch 0 in the table)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtypes", default=None, help="comma list; default bfloat16,float32 where bf16 is native")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = base_model_dir(args.model)
    batches = [int(b) for b in args.batches.split(",")]
    dtypes = (args.dtypes.split(",") if args.dtypes
              else (["bfloat16", "float32"] if cpu_has_fast_bf16() else ["float32"]))
    items = questions(args.prompts)
    models = {}
    for dtype in dtypes:
        model, tokenizer = load_policy(model_dir, dtype=dtype)
        prompts = [chat_prompt(tokenizer, user_message(item)) for item in items]
        greedy_generate(model, tokenizer, prompts[:2], max_new_tokens=4, batch_size=2)  # warm-up
        models[dtype] = (model, tokenizer)
    eos = model.generation_config.eos_token_id  # the same stop set greedy_generate uses
    stops = {tokenizer.eos_token_id} | set(eos if isinstance(eos, list) else [eos])
    stops.discard(None)
    prompt_tokens = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]

    variants = [(d, b) for d in dtypes for b in batches + ([0] if args.continuous else [])]
    results: dict[tuple[str, int], list[dict]] = {v: [] for v in variants}
    texts: dict[tuple[str, int], list[str]] = {}
    for repeat in range(args.repeats):
        shift = repeat % len(variants)
        for dtype, batch in variants[shift:] + variants[:shift]:
            model, tokenizer = models[dtype]
            recorder = Recorder(model)
            t0 = time.monotonic()
            if batch == 0:
                samples = continuous_generate(model, tokenizer, prompts, args.tokens, stops)
            else:
                samples = greedy_generate(recorder, tokenizer, prompts, max_new_tokens=args.tokens, batch_size=batch)
            wall = time.monotonic() - t0
            useful = sum(s.n_tokens for s in samples)
            run = {"wall_s": wall, "useful_tokens": useful, "tokens_per_s": useful / wall,
                   "finished": sum(s.finished for s in samples), **slot_counts(recorder, samples)}
            results[(dtype, batch)].append(run)
            texts[(dtype, batch)] = [s.text for s in samples]
            print(f"[{repeat + 1}/{args.repeats}] {dtype:8s} batch {batch:2d}: "
                  f"{run['tokens_per_s']:6.1f} useful tok/s, {wall:6.1f} s, "
                  f"padding {run['padding_slots'] / max(run['slots'], 1):.0%} of slots", flush=True)

    print(f"\nmodel {model_dir}; {len(prompts)} simpleqa prompts ({statistics.mean(prompt_tokens):.0f} tokens on "
          f"average, {min(prompt_tokens)}-{max(prompt_tokens)}), max_new_tokens {args.tokens}; repeats "
          f"{args.repeats}; {torch.get_num_threads()} threads; native bf16 on this CPU: {cpu_has_fast_bf16()}")
    print(f"{'dtype':9s} {'batch':>5s} {'med useful tok/s':>17s} {'med wall s':>11s} {'useful tok':>11s} "
          f"{'finished':>9s} {'padding/slots':>14s} {'same text as b1':>16s}")
    medians = {}
    for (dtype, batch), runs in results.items():
        medians[(dtype, batch)] = statistics.median(r["tokens_per_s"] for r in runs)
        last = runs[-1]
        same = sum(a == b for a, b in zip(texts[(dtype, batch)], texts[(dtype, batches[0])]))
        print(f"{dtype:9s} {batch:5d} {medians[(dtype, batch)]:17.1f} "
              f"{statistics.median(r['wall_s'] for r in runs):11.1f} {last['useful_tokens']:11d} "
              f"{last['finished']:>4d}/{len(prompts):<4d} {last['padding_slots'] / max(last['slots'], 1):14.0%} "
              f"{same:>10d}/{len(prompts)}")
    print("\nratios (medians, same run):")
    for dtype in dtypes:
        for batch in batches[1:]:
            ratio = medians[(dtype, batch)] / medians[(dtype, batches[0])]
            print(f"  {dtype} batch {batch} / batch {batches[0]}: {ratio:.2f}x")
        if args.continuous:
            ratio = medians[(dtype, 0)] / medians[(dtype, batches[-1])]
            print(f"  {dtype} continuous (generate_batch) / batch {batches[-1]}: {ratio:.2f}x")
    if len(dtypes) > 1:
        for batch in batches + ([0] if args.continuous else []):
            ratio = medians[(dtypes[0], batch)] / medians[(dtypes[1], batch)]
            print(f"  batch {batch}: {dtypes[0]} / {dtypes[1]}: {ratio:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"medians": {f"{d}/b{b}": m for (d, b), m in medians.items()},
             "runs": {f"{d}/b{b}": r for (d, b), r in results.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
