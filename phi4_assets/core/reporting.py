"""Small helpers for materialization metadata (markdown previews, counts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


def _cell(value: Any, width: int) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif value is None:
        text = ""
    else:
        text = str(list(value) if hasattr(value, "tolist") else value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown_table(frame: pd.DataFrame, columns: Sequence[str] | None = None, limit: int = 8,
                   width: int = 80) -> str:
    """A markdown table of the first ``limit`` rows (cells cut to ``width`` characters)."""
    columns = list(columns or frame.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.head(limit).iterrows():
        lines.append("| " + " | ".join(_cell(row[c], width) for c in columns) + " |")
    return "\n".join(lines)


def counts_table(counts: Mapping[str, int], key: str = "value", value: str = "count") -> str:
    lines = [f"| {key} | {value} |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in counts.items()]
    return "\n".join(lines)
