"""The policy's steps on the device it would run on: sampling, PTS on a few problems, one DPO step.

    .venv/bin/python bench/gpu_smoke.py [--model DIR] [--device auto|cpu|cuda] [--problems 3] [--rollouts 16]

Where torch sees a GPU (``device`` auto), every step runs there (bf16) and the report names the
GPU; on a CPU-only machine it says "no GPU" and runs the same steps on the CPU, so the script is
checked wherever the suite runs. ``--model``: a Hugging Face model directory (default: the
newest ``data/models/base_model`` of a ``make demo`` run). Nothing is written outside a
temporary directory. Prints one line per step (seconds, what it made) and a summary table.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from phi4_assets.core.hardware import preferred_dtype_name, resolve_device  # noqa: E402
from phi4_assets.models.generation import chat_prompt, load_policy, sample_responses  # noqa: E402
from phi4_assets.pts.estimator import PrefixEstimator  # noqa: E402
from phi4_assets.pts.oracles import math_oracle  # noqa: E402
from phi4_assets.pts.sampler import RolloutSampler  # noqa: E402
from phi4_assets.pts.search import pivotal_token_search  # noqa: E402
from phi4_assets.sources.mathgen import generate_math_problems  # noqa: E402
from phi4_assets.training.dpo import train_dpo  # noqa: E402
from phi4_assets.training.settings import TrainSettings  # noqa: E402

PROMPTS = ["What is the capital of France?", "Name a prime number larger than 10.",
           "Explain in one sentence what photosynthesis is.", "Who wrote Romeo and Juliet?"]


def _default_model() -> str | None:
    found = sorted((REPO / "data" / "models" / "base_model").glob("[0-9a-f]*"))
    return str(found[-1]) if found else None


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=_default_model(), help="a Hugging Face model directory")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--problems", type=int, default=3, help="math problems PTS searches")
    parser.add_argument("--rollouts", type=int, default=16, help="rollouts per PTS estimate")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per response (PTS budget)")
    args = parser.parse_args()
    if not args.model:
        parser.error("no --model and no data/models/base_model (run `make demo` or pass a model directory)")
    device = resolve_device(args.device)
    if device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})")
    else:
        print(f"no GPU: torch {torch.__version__} sees none (or --device cpu); the same steps run on the CPU")
    log = logging.getLogger("gpu_smoke")
    rows = []

    started = time.monotonic()
    model, tokenizer = load_policy(args.model, device=device)
    rows.append(("load the policy", time.monotonic() - started,
                 f"{model.device} {model.dtype} ({preferred_dtype_name(device)} preferred)"))
    print(f"{rows[-1][0]}: {rows[-1][1]:.1f} s, {rows[-1][2]}", flush=True)

    started = time.monotonic()
    samples = sample_responses(model, tokenizer, [chat_prompt(tokenizer, p) for p in PROMPTS], 4,
                               max_new_tokens=args.tokens, seed=0, logger=log)
    _sync(device)
    seconds = time.monotonic() - started
    tokens = sum(s.n_tokens for per_prompt in samples for s in per_prompt)
    rows.append(("sample 4 x 4 chat responses", seconds, f"{tokens} tokens, {tokens / seconds:.1f} tok/s"))
    print(f"{rows[-1][0]}: {seconds:.1f} s, {rows[-1][2]}", flush=True)

    started = time.monotonic()
    sampler = RolloutSampler(model, tokenizer, temperature=0.7, max_new_tokens=args.tokens,
                             batch_size=args.rollouts)
    pivots = estimates = 0
    for i, problem in enumerate(generate_math_problems(args.problems, seed=11)):
        prompt = sampler.prompt_ids(f"{problem['question']}\nGive the final answer as a number.")
        response = sampler.sample_response(prompt, seed=i)
        estimator = PrefixEstimator(sampler, lambda text, a=problem["answer"]: math_oracle(text, a), prompt,
                                    args.rollouts, problem_id=f"smoke-{i}", model_version="smoke")
        result = pivotal_token_search(response.token_ids, response.logprobs, estimator, p_gap=0.2)
        pivots += len(result.pivots)
        estimates += result.calls
    _sync(device)
    seconds = time.monotonic() - started
    rows.append((f"PTS on {args.problems} math problems", seconds,
                 f"{estimates} estimates x {args.rollouts} rollouts, {pivots} pivots, "
                 f"{sampler.sampled_tokens / seconds:.1f} sampled tok/s"))
    print(f"{rows[-1][0]}: {seconds:.1f} s, {rows[-1][2]}", flush=True)
    del model, sampler

    pairs = [{"prompt": p, "chosen": "I can answer that briefly.", "rejected": "No."} for p in PROMPTS]
    settings = TrainSettings(max_steps=1, per_device_train_batch_size=4, save_steps=10, max_length=128)
    with tempfile.TemporaryDirectory(prefix="gpu_smoke_") as scratch:
        started = time.monotonic()
        record = train_dpo(args.model, pairs, Path(scratch) / "out", Path(scratch) / "work", settings, log)
        _sync(device)
        seconds = time.monotonic() - started
    where = "cuda" if torch.cuda.is_available() else "cpu"  # TRL places training itself
    loss = record["metrics"].get("train_loss", "?")
    rows.append(("one DPO step (4 pairs)", seconds, f"on {where}, bf16 {settings.use_bf16()}, loss {loss}"))
    print(f"{rows[-1][0]}: {seconds:.1f} s, {rows[-1][2]}", flush=True)

    print(f"\n| step ({device}) | seconds | result |\n|---|---|---|")
    for name, secs, what in rows:
        print(f"| {name} | {secs:.1f} | {what} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
