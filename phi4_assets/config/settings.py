"""Where things live. Every location has a default under the repo's ``data/`` and an
environment variable that overrides it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout this package was installed from
PROJECT_NAME = "phi4-posttrain"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # md:..., s3://...: not a local path (one letter: a drive)


def project_root(start: Path | None = None) -> Path:
    """The project the command runs in: the nearest directory, from ``start`` (the working
    directory) up, whose ``pyproject.toml`` names this project; else the checkout the package was
    installed from. So a second clone uses its own ``data/``, whichever clone's package runs."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        config = directory / "pyproject.toml"
        try:
            if config.is_file() and re.search(rf'^name\s*=\s*"{PROJECT_NAME}"', config.read_text(), re.MULTILINE):
                return directory
        except OSError:
            continue
    return REPO_ROOT


def _path(var: str, default: Path) -> Path:
    """``$var`` (a local path, resolved; a URI such as ``md:my_db`` kept as written), else ``default``."""
    value = os.environ.get(var)
    if not value:
        return default
    return Path(value) if _URI.match(value) else Path(value).expanduser().resolve()


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
        root = project_root()
        data_dir = _path("PHI4_DATA_DIR", root / "data")
        state_dir = _path("PHI4_STATE_DIR", root / "data")
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
