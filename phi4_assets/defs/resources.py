"""The resources every asset gets: the project's files and profile (``ProjectResource``), the
model store, the PTS memo, the teacher (``teacher.resource.TeacherResource``) and the warehouse
IO manager, configured from the active profile and the environment by ``build_resources``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from pydantic import Field

from ..config.profiles import Profile, load_profile
from ..config.settings import Paths
from ..core.warehouse import WarehouseIOManager
from ..models import store
from ..sources.tables import SourceFiles
from ..teacher.resource import TeacherResource


class ProjectResource(dg.ConfigurableResource):
    """The active profile and where the shipped data files are."""

    profile: str = Field(default="small", description="tiny | small | full")
    data_dir: str = Field(description="Folder with seeds/ and eval/ JSONL files.")
    config_file: str | None = Field(default=None, description="TOML file with [profile] overrides.")
    reports_dir: str | None = Field(default=None, description="Where figures (PNGs) are written.")
    incoming_dir: str | None = Field(default=None, description="Folder of new trivia seed files (*.jsonl).")

    def settings(self) -> Profile:
        return load_profile(self.profile, self.config_file)

    def policy(self, model_dir: str, asset: str):
        """``with project.policy(ref.path, "sft_model") as policy: ...``: the profile's policy
        engine over a model asset's directory (``models.engine``)."""
        from ..models.engine import open_policy

        return open_policy(model_dir, self.settings(), asset=asset)

    def source_files(self) -> SourceFiles:
        """Where the source tables are read from (``sources.tables``)."""
        return SourceFiles(self.settings(), Path(self.data_dir))


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
        from ..pts.memo import EstimateMemo

        return EstimateMemo(self.path)


def build_resources(profile_name: str | None = None, paths: Paths | None = None) -> dict:
    profile = load_profile(profile_name)
    paths = paths or Paths.from_env()
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)  # DuckDB creates the file, not its folder
    return {
        "io_manager": WarehouseIOManager(database=str(paths.warehouse), schema="phi4"),
        "project": ProjectResource(profile=profile.name, data_dir=str(paths.data_dir),
                                   config_file=os.environ.get("PHI4_CONFIG"),
                                   reports_dir=str(paths.state_dir / "reports"),
                                   incoming_dir=str(paths.incoming_dir)),
        "model_store": ModelStoreResource(root=str(paths.models_dir), cache_dir=str(paths.cache_dir)),
        "pts_memo": PtsMemoResource(path=str(paths.pts_memo)),
        "teacher": TeacherResource.from_profile(profile, paths),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
