"""Where things live. Every location has a default under the repo's ``data/`` and an
environment variable that overrides it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Paths:
    data_dir: Path  # shipped seed and evaluation files (read-only input)
    state_dir: Path  # generated state: warehouse, models, caches
    warehouse: Path
    models_dir: Path
    teacher_cache: Path
    pts_memo: Path
    cache_dir: Path  # scratch that can be rebuilt (tokenizer copies, server logs)
    incoming_dir: Path  # new trivia seed files, registered as seed shards by a sensor

    @classmethod
    def from_env(cls) -> "Paths":
        data_dir = _path("PHI4_DATA_DIR", REPO_ROOT / "data")
        state_dir = _path("PHI4_STATE_DIR", REPO_ROOT / "data")
        return cls(
            data_dir=data_dir,
            state_dir=state_dir,
            warehouse=_path("PHI4_WAREHOUSE", state_dir / "warehouse.duckdb"),
            models_dir=_path("PHI4_MODELS_DIR", state_dir / "models"),
            teacher_cache=_path("PHI4_TEACHER_CACHE", state_dir / "teacher_cache.duckdb"),
            pts_memo=_path("PHI4_PTS_MEMO", state_dir / "pts_memo.duckdb"),
            cache_dir=_path("PHI4_CACHE_DIR", state_dir / "cache"),
            incoming_dir=_path("PHI4_INCOMING_DIR", state_dir / "incoming"),
        )
