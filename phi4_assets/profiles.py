"""Run profiles: ``tiny`` (tests), ``small`` (the default, CPU), ``full`` (real endpoints, GPUs).

Pick one with ``PHI4_PROFILE``. Any field can be overridden from a TOML file named by
``PHI4_CONFIG`` (a ``[profile]`` table whose keys are the field names below), and a few
common ones from environment variables (``PHI4_BASE_MODEL``, ``PHI4_TEACHER_BASE_URL``,
``PHI4_TEACHER_MODEL``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

TINY_MODEL = "tiny-random-llama"
EMBEDDED_GGUF = "smollm2-135m-instruct-gguf"


@dataclass(frozen=True)
class Profile:
    name: str
    # Policy / base model: TINY_MODEL, EMBEDDED_GGUF, or a local directory / hub id.
    base_model: str = EMBEDDED_GGUF
    # Rows kept per source table (None keeps every row): keeps the tiny profile tiny.
    source_limit: int | None = None
    # Seeded generator sizes for math problems (training pool and held-out split).
    math_train: int = 320
    math_eval: int = 120
    math_seed: int = 20241216
    # Teacher endpoint: None starts the embedded server over ``base_model``.
    teacher_base_url: str | None = None
    teacher_model: str | None = None
    teacher_temperature: float = 0.7
    teacher_max_tokens: int = 256
    teacher_max_concurrency: int = 8
    teacher_timeout_s: float = 120.0
    teacher_max_retries: int = 4
    teacher_structured_outputs: bool = False
    # Local data files in the project's JSONL schemas (None: the shipped files under data/).
    data_files: dict[str, str] = field(default_factory=dict)

    def replace(self, **changes) -> "Profile":
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        base_model=TINY_MODEL,
        source_limit=12,
        math_train=24,
        math_eval=12,
        teacher_max_tokens=32,
        teacher_max_concurrency=4,
        teacher_timeout_s=30.0,
        teacher_max_retries=1,
    ),
    "small": Profile(name="small"),
    "full": Profile(name="full", teacher_structured_outputs=True, teacher_max_concurrency=32),
}


def load_profile(name: str | None = None, config_file: str | os.PathLike | None = None) -> Profile:
    """The profile named by ``name`` (default ``$PHI4_PROFILE``, else ``small``), with
    overrides from ``config_file`` (default ``$PHI4_CONFIG``) and the environment."""
    name = name or os.environ.get("PHI4_PROFILE") or "small"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)} (PHI4_PROFILE)")
    profile = PROFILES[name]
    config_file = config_file or os.environ.get("PHI4_CONFIG")
    if config_file:
        profile = profile.replace(**_read_overrides(Path(config_file)))
    env = {
        "base_model": os.environ.get("PHI4_BASE_MODEL"),
        "teacher_base_url": os.environ.get("PHI4_TEACHER_BASE_URL"),
        "teacher_model": os.environ.get("PHI4_TEACHER_MODEL"),
    }
    return profile.replace(**{k: v for k, v in env.items() if v})


def _read_overrides(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            table = tomllib.load(f).get("profile", {})
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: config file not found (PHI4_CONFIG)") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    known = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"{path}: [profile] has unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return table
