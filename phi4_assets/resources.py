"""Resources for the outside things every asset touches: the project's files and profile,
and the model store. (The teacher is ``phi4_assets.teacher.resource.TeacherResource``; the
warehouse is dagster-duckdb-pandas' IO manager.)"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from pydantic import Field

from .models import store
from .profiles import Profile, load_profile


class ProjectResource(dg.ConfigurableResource):
    """The active profile and where the shipped data files are."""

    profile: str = Field(default="small", description="tiny | small | full")
    data_dir: str = Field(description="Folder with seeds/ and eval/ JSONL files.")
    config_file: str | None = Field(default=None, description="TOML file with [profile] overrides.")
    reports_dir: str | None = Field(default=None, description="Where figures (PNGs) are written.")
    incoming_dir: str | None = Field(default=None, description="Folder of new trivia seed files (*.jsonl).")

    def settings(self) -> Profile:
        return load_profile(self.profile, self.config_file)

    def data_file(self, key: str, default_relative: str) -> Path:
        """A data file: the profile's ``data_files[key]`` if set, else ``data_dir/default_relative``."""
        override = self.settings().data_files.get(key)
        return Path(override) if override else Path(self.data_dir) / default_relative

    def limit(self, rows: list) -> list:
        n = self.settings().source_limit
        return rows if n is None else rows[:n]


class ModelStoreResource(dg.ConfigurableResource):
    """Model directories under ``root``, one per materialization, written atomically."""

    root: str
    cache_dir: str

    def path(self, name: str, version: str) -> Path:
        return store.final_dir(Path(self.root), name, version)

    def is_complete(self, name: str, version: str) -> bool:
        return store.is_complete(self.path(name, version))

    @contextlib.contextmanager
    def staged(self, name: str, version: str, overwrite: bool = False) -> Iterator[Path]:
        with store.staged_model_dir(Path(self.root), name, version, overwrite=overwrite) as tmp:
            yield tmp


class PtsMemoResource(dg.ConfigurableResource):
    """The persistent memo of PTS p(success) estimates (a DuckDB file)."""

    path: str

    def memo(self):
        from .pts.memo import EstimateMemo

        return EstimateMemo(self.path)
