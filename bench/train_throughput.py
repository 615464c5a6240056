"""Training throughput: our SFT/DPO settings against TRL's defaults, side by side, one run.

    .venv/bin/python bench/train_throughput.py [--steps 6] [--repeats 2] [--model DIR]
                                               [--data trivia|mixture] [--only sft|dpo]
                                               [--configs WORD[,WORD]] [--epochs E]

Same model (SmolLM2-135M-Instruct unless --model), same data, same batch size; each config
trains --steps optimizer steps, --repeats times, interleaved. Prints medians and ratios.
tokens/s counts every token the trainer processed (TRL's num_tokens) over the wall time from
building the trainer (model already loaded) to the end of training, so dataset preparation and
precomputing reference log-probs are charged, loading the weights is not.

``--epochs E``: the data is ``steps x batch / E`` rows, so the steps pass over it E times (the
small profile's DPO stages train 2-3 epochs: precomputed reference log-probs are computed once,
the kept reference model runs at every step). ``--configs``: only the configs whose name
contains one of the words (e.g. ``--configs "precomputed,kept"``).

The share of the bf16 matmul peak: the training FLOP/s, taken as 6 x parameters x tokens/s
(forward and backward matmuls; attention scores and DPO's reference pass not counted, so it is
a lower bound for DPO), over one 2048 x 2048 bf16 matmul's FLOP/s measured in the same run at
the same thread count (``common.matmul_peak``; the fp32 matmul's too, for scale).

``--data trivia``: short trivia answers (~45 tokens with the template, all about the same length).
``--data mixture``: completions with the lengths of the small profile's SFT mixture (45% chat
replies of ~150 tokens, 40% hallucination rows of ~20, 15% safety replies of ~80), shuffled, so
a padded batch carries the padding a real batch does; this is where padding-free batches
(``padding_free``: the batch's sequences packed end to end in one row, attention kept within
each by transformers' packed-sequence mask) can gain. The DPO pairs then take those completions
as their chosen side (the rejected side a short refusal), where length-bucketed batches
(``length_buckets``) can gain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from phi4_assets.hallucination.rules import template_refusal  # noqa: E402
from phi4_assets.core.hardware import cpu_has_fast_bf16  # noqa: E402
from phi4_assets.sources import schemas  # noqa: E402
from phi4_assets.sources.records import read_records  # noqa: E402
from phi4_assets.training.common import ProgressCallback, TrainSettings  # noqa: E402
from phi4_assets.training.dpo import build_dpo_trainer  # noqa: E402
from phi4_assets.training.sft import conversational  # noqa: E402
from common import base_model_dir, matmul_peak  # noqa: E402  (bench/common.py)

def data(n: int):
    trivia = read_records(REPO / "data/seeds/trivia.jsonl", schemas.TRIVIA)[:n]
    sft = [{"prompt": t["question"], "completion": f"The answer is {t['answer']}."} for t in trivia]
    dpo = [{"prompt": t["question"], "chosen": f"The answer is {t['answer']}.",
            "rejected": template_refusal(t["id"], t["topic"])} for t in trivia]
    return sft, dpo


def mixture(n: int):
    """SFT rows whose completion lengths follow the small SFT mixture (see the module)."""
    import random

    trivia = read_records(REPO / "data/seeds/trivia.jsonl", schemas.TRIVIA)
    rng = random.Random(0)
    rows = []
    for i in range(n):
        t = trivia[i % len(trivia)]
        sentence = f"The answer is {t['answer']}, a fact about {t['topic']} that is well documented. "
        share = rng.random()
        repeats = 12 if share < 0.45 else (1 if share < 0.85 else 6)  # ~150 / ~20 / ~80 tokens
        rows.append({"prompt": t["question"], "completion": (sentence * repeats).strip()})
    return rows


def run_sft(model_dir, rows, settings: TrainSettings, trl_defaults: bool, work: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    t0 = time.monotonic()
    if trl_defaults:  # TRL's own defaults on this machine, only the run length and batch pinned
        config = SFTConfig(output_dir=str(work), max_steps=settings.max_steps, save_strategy="no",
                           per_device_train_batch_size=settings.per_device_train_batch_size, use_cpu=True,
                           report_to="none", logging_steps=1, disable_tqdm=True)
    else:
        config = SFTConfig(output_dir=str(work), **{**settings.trl_kwargs(), "save_steps": 10_000})
    progress = ProgressCallback(every_s=1e9)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(conversational(rows)),
                         processing_class=tokenizer, callbacks=[progress])
    trainer.train()
    wall = time.monotonic() - t0
    tokens = [h["num_tokens"] for h in progress.history if "num_tokens" in h][-1]
    return {"tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall,
            "bf16": bool(config.bf16), "gradient_checkpointing": bool(config.gradient_checkpointing)}


def run_dpo(model_dir, pairs, settings: TrainSettings, trl_defaults: bool, work: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    progress = ProgressCallback(every_s=1e9)
    if trl_defaults:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        t0 = time.monotonic()
        config = DPOConfig(output_dir=str(work), max_steps=settings.max_steps, save_strategy="no",
                           per_device_train_batch_size=settings.per_device_train_batch_size, use_cpu=True,
                           report_to="none", logging_steps=1, disable_tqdm=True)
        conv = [{"prompt": [{"role": "user", "content": p["prompt"]}],
                 "chosen": [{"role": "assistant", "content": p["chosen"]}],
                 "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs]
        trainer = DPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(conv),
                             processing_class=tokenizer, callbacks=[progress])
    else:
        settings = TrainSettings(**{**settings.as_dict(), "save_steps": 10_000})
        t0 = time.monotonic()  # build_dpo_trainer loads the model too (~1 s of the total)
        trainer = build_dpo_trainer(model_dir, pairs, work, settings, callbacks=[progress])
        config = trainer.args
    trainer.train()
    wall = time.monotonic() - t0
    tokens = [h["num_tokens"] for h in progress.history if "num_tokens" in h][-1]
    return {"tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall, "bf16": bool(config.bf16),
            "gradient_checkpointing": bool(config.gradient_checkpointing),
            "precomputed_ref": bool(config.precompute_ref_log_probs)}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _parameters(model_dir) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).parameters())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--model", default=None)
    parser.add_argument("--data", choices=("trivia", "mixture"), default="trivia", help="SFT rows (see the module)")
    parser.add_argument("--only", choices=("sft", "dpo"), default=None, help="run one trainer's configs")
    parser.add_argument("--configs", default=None,
                        help="run only the configs whose name contains one of these comma-separated words")
    parser.add_argument("--epochs", type=int, default=1,
                        help="passes over the data in --steps steps (the data is steps x batch / epochs rows)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    model_dir = base_model_dir(args.model)
    n_rows = max(1, args.steps * args.batch // args.epochs)
    sft_rows, dpo_pairs = data(n_rows)
    if args.data == "mixture":
        sft_rows = mixture(n_rows)
        dpo_pairs = [{**pair, "chosen": row["completion"]} for pair, row in zip(dpo_pairs, sft_rows)]
    base = dict(max_steps=args.steps, per_device_train_batch_size=args.batch, logging_steps=1)
    configs = {
        "sft: ours (bf16 auto, no grad ckpt)": ("sft", TrainSettings(**base), False),
        "sft: ours, padding-free": ("sft", TrainSettings(**base, trl={"padding_free": True, "max_length": None}), False),
        "sft: ours, fp32": ("sft", TrainSettings(**base, precision="fp32"), False),
        "sft: TRL defaults": ("sft", TrainSettings(**base), True),
        "dpo: ours (bf16 auto, precomputed ref)": ("dpo", TrainSettings(**base, precompute_ref_log_probs=True), False),
        "dpo: ours, length buckets": ("dpo", TrainSettings(**base, precompute_ref_log_probs=True, length_buckets=True),
                                      False),
        "dpo: ours, ref model kept": ("dpo", TrainSettings(**base, precompute_ref_log_probs=False), False),
        "dpo: ours, fp32": ("dpo", TrainSettings(**base, precision="fp32", precompute_ref_log_probs=True), False),
        "dpo: TRL defaults": ("dpo", TrainSettings(**base), True),
    }
    if args.only:
        configs = {name: spec for name, spec in configs.items() if spec[0] == args.only}
    if args.configs:
        words = [w.strip() for w in args.configs.split(",") if w.strip()]
        configs = {name: spec for name, spec in configs.items() if any(w in name for w in words)}
    peak = {dtype: matmul_peak(dtype) for dtype in ("bfloat16", "float32")}
    print(f"matmul peak at {_threads()} threads: bf16 {peak['bfloat16'] / 1e9:.1f} GFLOP/s, "
          f"fp32 {peak['float32'] / 1e9:.1f} GFLOP/s", flush=True)
    params = _parameters(model_dir)
    results: dict[str, list[dict]] = {name: [] for name in configs}
    for repeat in range(args.repeats):
        for name, (kind, settings, trl_defaults) in configs.items():
            with tempfile.TemporaryDirectory() as work:
                run = run_sft if kind == "sft" else run_dpo
                rows = sft_rows if kind == "sft" else dpo_pairs
                results[name].append(run(model_dir, rows, settings, trl_defaults, Path(work)))
            print(f"[{repeat + 1}/{args.repeats}] {name}: {results[name][-1]['tokens_per_s']:.1f} tok/s", flush=True)
    print(f"\nmodel {model_dir}; {args.data} data, {n_rows} rows; {args.steps} steps x batch {args.batch} "
          f"({args.epochs} epoch(s)); repeats {args.repeats}; "
          f"native bf16 on this CPU: {cpu_has_fast_bf16()}")
    print(f"{'config':42s} {'median tok/s':>13s} {'median wall s':>14s} {'bf16 peak':>10s}  settings")
    medians = {}
    for name, runs in results.items():
        medians[name] = statistics.median(r["tokens_per_s"] for r in runs)
        first = runs[0]
        flags = ", ".join(f"{k}={v}" for k, v in first.items() if isinstance(v, bool))
        share = 6 * params * medians[name] / peak["bfloat16"]
        print(f"{name:42s} {medians[name]:13.1f} {statistics.median(r['wall_s'] for r in runs):14.1f} "
              f"{share:9.1%}  {flags}")
    print("\nratios (ours / other, same run):")
    for kind, ours in (("sft", "sft: ours (bf16 auto, no grad ckpt)"), ("dpo", "dpo: ours (bf16 auto, precomputed ref)"),
                       ("dpo", "dpo: ours, length buckets")):
        for name in results:
            if name.startswith(kind) and name != ours and ours in medians:
                print(f"  {ours} vs {name}: {medians[ours] / medians[name]:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"medians": medians, "runs": results, "matmul_peak": peak,
                                               "parameters": params}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
