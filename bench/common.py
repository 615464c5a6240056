"""What the benchmarks share: the SmolLM2-135M-Instruct model directory to measure on."""

import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def base_model_dir(explicit: str | None) -> str:
    """``explicit``, else the newest ``base_model`` the pipeline built, else one built from the GGUF
    once into ``$TMPDIR/phi4-bench-base``."""
    if explicit:
        return explicit
    built = sorted((REPO / "data" / "models" / "base_model").glob("[0-9a-f]*"))
    if built:
        return str(built[-1])
    out = Path(tempfile.gettempdir()) / "phi4-bench-base"  # built once, reused by later runs
    if not (out / "config.json").exists():
        from phi4_assets.models.base import save_from_gguf

        print(f"building {out} from the shipped GGUF (once)", flush=True)
        save_from_gguf(out)
    return str(out)


def chat_prompts(n: int) -> list[str]:
    """The first ``n`` shipped chat prompts (``data/seeds/chat.jsonl``), as ``sft_dataset`` asks them."""
    import json

    rows = [json.loads(line) for line in (REPO / "data/seeds/chat.jsonl").read_text().splitlines() if line]
    return [r["prompt"] for r in rows[:n]]


def evenly_spaced(path: str, n: int) -> list[dict]:
    """``n`` rows of the JSONL file at ``path`` (relative to the repository), evenly spaced through
    it (all of them when it has fewer)."""
    import json

    rows = [json.loads(line) for line in (REPO / path).read_text().splitlines() if line]
    return [rows[i * len(rows) // n] for i in range(min(n, len(rows)))]


def matmul_peak(dtype: str = "bfloat16", size: int = 2048, repeats: int = 7) -> float:
    """The FLOP/s of one square ``size`` matmul in ``dtype`` at torch's current thread count (the
    median of ``repeats`` after a warm-up): the practical peak a training step's matmuls can reach
    on this CPU, to report the share of it a trainer uses."""
    import statistics
    import time

    import torch

    a = torch.randn(size, size).to(getattr(torch, dtype))
    b = torch.randn(size, size).to(getattr(torch, dtype))
    torch.matmul(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times)
