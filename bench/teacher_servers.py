"""The embedded teacher's two servers side by side in one run: ``transformers serve
--continuous-batching`` (``teacher.embedded.EmbeddedServer``) against the batched server over the
pipeline's decode loop (``teacher.batched_server.BatchedServer``).

    .venv/bin/python bench/teacher_servers.py [--requests 48] [--concurrency 16 | 8,16,32]
        [--max-tokens 128] [--repeats 2] [--max-batch 32] [--batch-wait-ms 50] [--threads N] [--dtype auto]
        [--model DIR]

Both serve the same model directory (SmolLM2-135M-Instruct: ``--model``, else the newest
``base_model`` the pipeline built, else one dequantized from the shipped GGUF once into
``$TMPDIR/phi4-bench-base``) in the dtype the pipeline picks (``auto``: bf16 on a CPU with native
bf16), each in its own process as the pipeline starts it (``OMP_WAIT_POLICY=PASSIVE``, torch's
default threads unless ``--threads`` sets ``OMP_NUM_THREADS`` for both). One server at a time,
never both: each repeat starts and stops each server once, the servers' order rotated every
repeat, concurrency levels rotated within a server; one warm-up call after every start.

Every run sends the same ``--requests`` chat prompts (the first ones of ``data/seeds/chat.jsonl``,
one user message each) greedily (temperature 0, ``--max-tokens``) through the ``openai`` client
from a thread pool of ``--concurrency`` threads. Wall s is the median over repeats; completion
tokens are the servers' ``usage.completion_tokens`` (both count the end-of-turn token); tok/s and
calls/s are medians too; the ratio is batched / transformers serve. Replies are compared text by
text (first repeat): in bf16 a few may differ (a batch's arithmetic is not a single row's, and the
two servers batch differently), in float32 they should not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import phi4_assets  # noqa: E402,F401  (OMP_WAIT_POLICY before anything loads torch)
from phi4_assets.teacher.batched_server import BatchedServer  # noqa: E402
from phi4_assets.teacher.embedded import EmbeddedServer  # noqa: E402
from common import base_model_dir, chat_prompts  # noqa: E402  (bench/common.py)

SERVERS = ("transformers serve", "batched")


def start(kind: str, model: str, args: argparse.Namespace, log_dir: Path):
    if kind == "batched":
        return BatchedServer(model, dtype=args.dtype, max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms,
                             log_path=log_dir / "batched.log").start()
    return EmbeddedServer(model, dtype=args.dtype, log_path=log_dir / "transformers-serve.log").start()


def batch_rows(server) -> list[int]:
    """Rows of every decode call so far (the batched server's /stats); [] for transformers serve."""
    if not isinstance(server, BatchedServer):
        return []
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/stats", timeout=10) as r:
        return json.load(r)["batches"]


def run(client, model: str, asked: list[str], level: int, max_tokens: int) -> dict:
    def one(prompt: str):
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                               temperature=0, max_tokens=max_tokens)
        return reply.choices[0].message.content, reply.usage.completion_tokens

    t0 = time.perf_counter()
    with ThreadPoolExecutor(level) as pool:
        replies = list(pool.map(one, asked))
    wall = time.perf_counter() - t0
    tokens = sum(t for _, t in replies)
    return {"wall": wall, "tokens": tokens, "tok_s": tokens / wall, "calls_s": len(asked) / wall,
            "texts": [text for text, _ in replies]}


def main() -> int:
    import openai

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--concurrency", default="16", help="one level or a list: 8,16,32")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=32, help="the batched server's --max-batch")
    parser.add_argument("--batch-wait-ms", type=float, default=50.0, help="the batched server's --batch-wait-ms")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both servers")
    parser.add_argument("--dtype", default="auto", help="both servers' --dtype (auto: bf16 where the CPU has it)")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    levels = [int(c) for c in args.concurrency.split(",")]
    model = base_model_dir(args.model)
    asked = chat_prompts(args.requests)
    log_dir = Path(tempfile.mkdtemp(prefix="teacher_servers_"))
    print(f"model {model} ({args.dtype}); {len(asked)} chat prompts, greedy, max_tokens {args.max_tokens}, concurrency "
          f"{','.join(map(str, levels))}, {args.repeats} repeats; batched --max-batch {args.max_batch} "
          f"--batch-wait-ms {args.batch_wait_ms:g}")
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} (unset: torch's default, "
          f"{os.cpu_count()} CPUs here), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} here and PASSIVE in "
          f"both servers; load average {os.getloadavg()[0]:.2f} at the start; logs {log_dir}", flush=True)
    results: dict[tuple[str, int], list[dict]] = {}
    for repeat in range(args.repeats):
        for kind in (SERVERS if repeat % 2 == 0 else SERVERS[::-1]):
            t0 = time.perf_counter()
            server = start(kind, model, args, log_dir)
            started = time.perf_counter() - t0
            try:
                with openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=900) as client:
                    client.chat.completions.create(model=server.model_name, max_tokens=8, temperature=0,
                                                   messages=[{"role": "user", "content": "Say hello."}])
                    shift = repeat % len(levels)
                    for level in levels[shift:] + levels[:shift]:
                        before = len(batch_rows(server))
                        result = run(client, server.model_name, asked, level, args.max_tokens)
                        rows = batch_rows(server)[before:]
                        results.setdefault((kind, level), []).append(result)
                        print(f"[{repeat + 1}/{args.repeats}] {kind:18s} concurrency {level:2d}: "
                              f"{result['wall']:6.1f} s, {result['tokens']} tokens, {result['tok_s']:6.1f} tok/s, "
                              f"{result['calls_s']:.2f} calls/s"
                              + (f"; {len(rows)} decode calls, {statistics.mean(rows):.1f} rows each" if rows else "")
                              + f" (started in {started:.0f} s; load {os.getloadavg()[0]:.2f})", flush=True)
            finally:
                server.stop()

    print(f"\nload average {os.getloadavg()[0]:.2f} at the end\n")
    print("| server | concurrency | wall s (median) | completion tokens | completion tok/s | calls/s |")
    print("|---|---|---|---|---|---|")
    for level in levels:
        for kind in SERVERS:
            runs = results[(kind, level)]
            print(f"| {kind} | {level} | {statistics.median(r['wall'] for r in runs):.1f} | "
                  f"{'/'.join(str(r['tokens']) for r in runs)} | {statistics.median(r['tok_s'] for r in runs):.1f} | "
                  f"{statistics.median(r['calls_s'] for r in runs):.2f} |")
    print("\n| concurrency | batched / transformers serve (completion tok/s) | (calls/s) | identical greedy replies "
          "| transformers serve repeat 1 = 2 | batched repeat 1 = 2 |")
    print("|---|---|---|---|---|---|")
    for level in levels:
        ts, ours = results[("transformers serve", level)], results[("batched", level)]
        same = sum(a == b for a, b in zip(ts[0]["texts"], ours[0]["texts"]))

        def stable(runs: list[dict]) -> str:
            return f"{sum(a == b for a, b in zip(runs[0]['texts'], runs[1]['texts']))}/{len(asked)}" \
                if len(runs) > 1 else "-"

        tok_ratio = statistics.median(r["tok_s"] for r in ours) / statistics.median(r["tok_s"] for r in ts)
        calls_ratio = statistics.median(r["calls_s"] for r in ours) / statistics.median(r["calls_s"] for r in ts)
        print(f"| {level} | **{tok_ratio:.2f}x** | {calls_ratio:.2f}x | {same}/{len(asked)} | {stable(ts)} "
              f"| {stable(ours)} |")
    print("\nIdentical = the same text from both servers for the same prompt (first repeat). In bf16 a few may "
          "differ: batched arithmetic is not a single row's, and the servers batch differently.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
