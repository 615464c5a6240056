"""Decoding with finished rows dropped (``models.decode.decode``) against ``generate()``'s padded
batches, side by side, one run.

    .venv/bin/python bench/decode_shrink.py [--repeats 2] [--threads 2] [--model DIR] [--step-costs]

Workloads, as the pipeline runs them on ``small`` (SmolLM2-135M-Instruct's base model, chat
template, left-padded batches):

- ``eval simpleqa``: 128 SimpleQA questions, greedy, 48 new tokens, batches of 64 sorted by
  prompt length (``evaluate_model``);
- ``eval mcq``: 64 multiple-choice questions in the PTS format, greedy, 16 new tokens, one batch;
- ``eval safety``: the 50 safety prompts, greedy, 64 new tokens, one batch;
- ``samples k=8``: 8 SimpleQA questions x 8 samples, temperature 0.8, top-p 0.95, 48 new tokens
  (``policy_answer_samples``), through ``TopKTopPSampling``;
- ``rollouts``: 4 MCQ questions x 16 rollouts, temperature 0.7, 24 new tokens (PTS root estimates).

``generate()`` decodes every row until its batch's longest row ends; ``decode`` drops a row from
the batch and its KV cache when it ends. useful tok/s = new tokens before the end-of-turn token /
wall; slots = rows x steps that ``generate()`` decodes. Greedy texts are compared (same / all);
sampled ones cannot be (the draws' order differs once rows drop). Variants interleaved, order
rotated every repeat; medians and ratios from the same run.

``--step-costs`` prints only the cost of one decode step (one new token for every row, context 80
tokens in the KV cache) at 64, 32, 16 and 8 rows: what dropping an ended row saves.
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

from phi4_assets.models.decode import decode  # noqa: E402
from phi4_assets.pts import problems  # noqa: E402
from phi4_assets.models.generation import chat_prompt, load_policy  # noqa: E402
from phi4_assets.models.sampling import TopKTopPSampling, model_top_k, repeat_rows, sampling_kwargs  # noqa: E402
from common import base_model_dir, evenly_spaced  # noqa: E402  (bench/common.py)


def workloads() -> list[dict]:
    simpleqa = [r["question"] for r in evenly_spaced("data/eval/simpleqa.jsonl", 128)]
    safety = [r["prompt"] for r in evenly_spaced("data/eval/safety.jsonl", 50)]
    mcq = [problems.mcq_message(r["question"], r["choices"]) for r in evenly_spaced("data/eval/mcq.jsonl", 64)]
    return [
        {"name": "eval simpleqa", "prompts": simpleqa, "k": 1, "batch": 64, "tokens": 48, "temperature": None},
        {"name": "eval mcq", "prompts": mcq, "k": 1, "batch": 64, "tokens": 16, "temperature": None},
        {"name": "eval safety", "prompts": safety, "k": 1, "batch": 64, "tokens": 64, "temperature": None},
        {"name": "samples k=8", "prompts": simpleqa[:8], "k": 8, "batch": 64, "tokens": 48, "temperature": 0.8,
         "top_p": 0.95},
        {"name": "rollouts", "prompts": mcq[:4], "k": 16, "batch": 64, "tokens": 24, "temperature": 0.7, "top_p": 1.0},
    ]


def run(model, tokenizer, work: dict, shrink: bool, seed: int) -> dict:
    """Every batch of the workload; (wall s, useful tokens, generate()'s slots, texts)."""
    prompts = [chat_prompt(tokenizer, p) for p in work["prompts"]]
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    per_call = max(1, work["batch"] // work["k"])
    eos = tokenizer.eos_token_id
    sampler = (TopKTopPSampling(work["temperature"], model_top_k(model), work["top_p"])
               if work["temperature"] else None)
    wall = 0.0
    useful = slots = 0
    texts: dict[int, list[str]] = {}
    for b, start in enumerate(range(0, len(order), per_call)):
        batch = order[start:start + per_call]
        enc = tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        ids, mask = repeat_rows(enc["input_ids"], work["k"]), repeat_rows(enc["attention_mask"], work["k"])
        torch.manual_seed(seed * 1_000_003 + b)
        t0 = time.perf_counter()
        with torch.inference_mode():
            if shrink:
                rows = [d.token_ids for d in decode(model, enc["input_ids"], enc["attention_mask"],
                                                    max_new_tokens=work["tokens"], stop_ids={eos}, repeats=work["k"],
                                                    **({"choose": sampler.draw} if sampler else {}))]
            else:
                kwargs = sampling_kwargs(model, work["temperature"], work["top_p"]) if sampler else {"do_sample": False}
                out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=work["tokens"],
                                     pad_token_id=tokenizer.pad_token_id, **kwargs)
                new = out[:, ids.shape[1]:].tolist()
                slots += len(new) * len(new[0])
                rows = [row[:row.index(eos)] if eos in row else row for row in new]
        wall += time.perf_counter() - t0
        useful += sum(len(r) for r in rows)
        for j, i in enumerate(batch):
            texts[i] = [tokenizer.decode(r) for r in rows[j * work["k"]:(j + 1) * work["k"]]]
    return {"wall": wall, "useful": useful, "slots": slots, "texts": [texts[i] for i in range(len(prompts))]}


def step_costs(model, repeats: int) -> None:
    """Median ms of one cached decode step at 64 / 32 / 16 / 8 rows (context 80)."""
    from transformers import DynamicCache

    print("| rows | median ms a step |")
    print("|---|---|")
    with torch.inference_mode():
        for rows in (64, 32, 16, 8):
            cache = DynamicCache()
            model(input_ids=torch.randint(100, 1000, (rows, 80)), past_key_values=cache, use_cache=True)
            token = torch.randint(100, 1000, (rows, 1))
            times = []
            for _ in range(4 * repeats + 2):  # the first two warm up
                t0 = time.perf_counter()
                model(input_ids=token, past_key_values=cache, use_cache=True)
                times.append(time.perf_counter() - t0)
            print(f"| {rows} | {statistics.median(times[2:]) * 1000:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--model", help="model directory (default: see bench/common.py)")
    parser.add_argument("--step-costs", action="store_true", help="only the cost of a decode step by rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_policy(base_model_dir(args.model))
    print(f"model {model.name_or_path} ({model.dtype}), {torch.get_num_threads()} threads, {args.repeats} repeats")
    if args.step_costs:
        step_costs(model, args.repeats)
        return
    results: dict[tuple[str, bool], list[dict]] = {}
    for work in workloads():
        run(model, tokenizer, {**work, "prompts": work["prompts"][:2], "tokens": 4}, True, 0)  # warm-up
        for r in range(args.repeats):
            for shrink in ((False, True) if r % 2 == 0 else (True, False)):
                results.setdefault((work["name"], shrink), []).append(run(model, tokenizer, work, shrink, seed=r))
    print("| workload | variant | median wall s | useful tokens | useful tok/s | padding / generate() slots | ratio | same greedy text |")
    print("|---|---|---|---|---|---|---|---|")
    for work in workloads():
        base, ours = results[(work["name"], False)], results[(work["name"], True)]
        wall_b = statistics.median(x["wall"] for x in base)
        wall_o = statistics.median(x["wall"] for x in ours)
        pad = 1 - base[0]["useful"] / base[0]["slots"] if base[0]["slots"] else 0.0
        same = (f"{sum(a == b for a, b in zip(base[0]['texts'], ours[0]['texts']))}/{len(base[0]['texts'])}"
                if not work["temperature"] else "(sampled)")
        print(f"| {work['name']} | generate() | {wall_b:.2f} | {base[0]['useful']} | "
              f"{statistics.median(x['useful'] / x['wall'] for x in base):.1f} | {pad:.0%} | 1.00x | |")
        print(f"| {work['name']} | decode (rows dropped) | {wall_o:.2f} | {ours[0]['useful']} | "
              f"{statistics.median(x['useful'] / x['wall'] for x in ours):.1f} | | **{wall_b / wall_o:.2f}x** | {same} |")


if __name__ == "__main__":
    main()
