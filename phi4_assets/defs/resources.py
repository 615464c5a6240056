"""The resources every asset gets, configured from the active profile and the environment."""


import os

import dagster as dg

from ..profiles import load_profile
from ..resources import ModelStoreResource, ProjectResource, PtsMemoResource
from ..settings import Paths
from ..teacher.resource import TeacherResource
from ..warehouse import WarehouseIOManager


def build_resources(profile_name: str | None = None, paths: Paths | None = None) -> dict:
    profile = load_profile(profile_name)
    paths = paths or Paths.from_env()
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)  # DuckDB creates the file, not its folder
    api_key = dg.EnvVar("OPENAI_API_KEY") if os.environ.get("OPENAI_API_KEY") else None
    return {
        "io_manager": WarehouseIOManager(database=str(paths.warehouse), schema="phi4"),
        "project": ProjectResource(profile=profile.name, data_dir=str(paths.data_dir),
                                   config_file=os.environ.get("PHI4_CONFIG"),
                                   reports_dir=str(paths.state_dir / "reports"),
                                   incoming_dir=str(paths.incoming_dir)),
        "model_store": ModelStoreResource(root=str(paths.models_dir), cache_dir=str(paths.cache_dir)),
        "pts_memo": PtsMemoResource(path=str(paths.pts_memo)),
        "teacher": TeacherResource(
            base_url=profile.teacher_base_url,
            model=profile.teacher_model,
            api_key=api_key,
            temperature=profile.teacher_temperature,
            max_tokens=profile.teacher_max_tokens,
            max_concurrency=profile.teacher_max_concurrency,
            timeout_s=profile.teacher_timeout_s,
            max_retries=profile.teacher_max_retries,
            structured_outputs=profile.teacher_structured_outputs,
            max_tokens_param=profile.teacher_max_tokens_param,
            cache_path=str(paths.teacher_cache),
            log_dir=str(paths.cache_dir / "logs"),
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
