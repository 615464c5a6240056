"""What the benchmarks share: the SmolLM2-135M-Instruct model directory to measure on."""

import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def base_model_dir(explicit: str | None) -> str:
    """``explicit``, else the newest ``base_model`` the pipeline built, else one built now from
    the GGUF in a temporary directory."""
    if explicit:
        return explicit
    built = sorted((REPO / "data" / "models" / "base_model").glob("[0-9a-f]*"))
    if built:
        return str(built[-1])
    from phi4_assets.models.base import save_from_gguf

    out = Path(tempfile.mkdtemp()) / "base"
    save_from_gguf(out)
    return str(out)


def evenly_spaced(path: str, n: int) -> list[dict]:
    """``n`` rows of the JSONL file at ``path`` (relative to the repository), evenly spaced through
    it (all of them when it has fewer)."""
    import json

    rows = [json.loads(line) for line in (REPO / path).read_text().splitlines() if line]
    return [rows[i * len(rows) // n] for i in range(min(n, len(rows)))]
