"""The embedded teacher (the pipeline's default, the batched server, or ``--server transformers``:
``transformers serve --continuous-batching``, over the base model): calls/s and completion
tokens/s at several client concurrencies, side by side in one run.

    .venv/bin/python bench/teacher_throughput.py [--calls 24] [--concurrency 1,4,8] [--max-tokens 128]
                                                 [--repeats 2] [--server batched|transformers] [--model DIR]

Sends the same ``--calls`` chat requests (the shipped chat prompts, as ``sft_dataset`` asks them:
one user message each) through ``TeacherResource.complete`` with a fresh cache per run, so every
call reaches the server; one server serves every run (started once, warmed up with one call).
Runs are interleaved, their order rotated every repeat; medians and the ratios to concurrency 1
come from the same run. The server is started as the pipeline starts it: its own process,
``OMP_WAIT_POLICY=PASSIVE``, torch's default threads, its KV cache sized by the resource.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from phi4_assets.teacher import ChatRequest  # noqa: E402
from phi4_assets.teacher.resource import TeacherResource  # noqa: E402
from common import base_model_dir, chat_prompts  # noqa: E402  (bench/common.py)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=24)
    parser.add_argument("--concurrency", default="1,4,8")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--server", default="batched", choices=("batched", "transformers"),
                        help="the embedded server (teacher_embedded_server)")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model_dir = base_model_dir(args.model)
    levels = [int(c) for c in args.concurrency.split(",")]
    asked = chat_prompts(args.calls)
    scratch = Path(tempfile.mkdtemp(prefix="teacher_throughput_"))
    # One server for every run: each run's resource reuses it (same model directory).
    server_owner = TeacherResource(cache_path=str(scratch / "warm.duckdb"), max_tokens=args.max_tokens,
                                   max_concurrency=max(levels), log_dir=str(scratch), embedded_server=args.server)
    warm = ChatRequest.of([("user", "Say hello.")], task="bench")
    server_owner.complete([warm], serve_model=model_dir)
    server = server_owner._server
    results: dict[int, list[dict]] = {c: [] for c in levels}
    try:
        for repeat in range(args.repeats):
            shift = repeat % len(levels)
            for level in levels[shift:] + levels[:shift]:
                teacher = TeacherResource(cache_path=str(scratch / f"r{repeat}-c{level}.duckdb"),
                                          max_tokens=args.max_tokens, max_concurrency=level, log_dir=str(scratch),
                                          embedded_server=args.server)
                teacher._server = server  # the running server, not a second one
                requests = [ChatRequest.of([("user", p)], task="bench", temperature=0.7) for p in asked]
                t0 = time.monotonic()
                batch = teacher.complete(requests, serve_model=model_dir)
                wall = time.monotonic() - t0
                teacher._server = None  # not its to stop
                ok = [r for r in batch.replies if r.ok]
                tokens = sum(r.completion_tokens or 0 for r in ok)
                run = {"wall_s": wall, "calls_per_s": len(ok) / wall, "completion_tok_per_s": tokens / wall,
                       "ok": len(ok), "tokens": tokens}
                results[level].append(run)
                print(f"[{repeat + 1}/{args.repeats}] concurrency {level:2d}: {run['calls_per_s']:.2f} calls/s, "
                      f"{run['completion_tok_per_s']:.1f} completion tok/s, {len(ok)}/{len(asked)} ok, "
                      f"{wall:.1f} s", flush=True)
    finally:
        server_owner.close()
    print(f"\nmodel {model_dir}; {len(asked)} chat prompts, max_tokens {args.max_tokens}, repeats {args.repeats}")
    print("| concurrency | median calls/s | median completion tok/s | ratio to concurrency 1 (calls/s) |")
    print("|---|---|---|---|")
    base = statistics.median(r["calls_per_s"] for r in results[levels[0]])
    for level in levels:
        calls = statistics.median(r["calls_per_s"] for r in results[level])
        tokens = statistics.median(r["completion_tok_per_s"] for r in results[level])
        print(f"| {level} | {calls:.2f} | {tokens:.1f} | {calls / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
