"""Seed shards: the partitions of the hallucination generation assets.

They are dynamic: the shipped seed file's shards (``000``, ``001``, ...) and those of every
valid seed file dropped into the incoming folder (``<file>-000``, ...) are registered in the
Dagster instance by the ``incoming_seed_files`` sensor and by ``phi4 demo``
(``register_seed_shards``). Which questions a shard holds: ``phi4_assets.sources.shards``.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ..profiles import Profile, load_profile
from ..settings import Paths
from ..sources import schemas
from ..sources.records import read_records
from ..sources.shards import SHIPPED, file_shard_keys, set_name

seed_shards = dg.DynamicPartitionsDefinition(name="seed_shards")


def incoming_files(incoming_dir: Path) -> list[Path]:
    """Seed files waiting in the incoming folder (``*.jsonl``), in name order."""
    return sorted(incoming_dir.glob("*.jsonl")) if incoming_dir.is_dir() else []


def seed_sets(profile: Profile | None = None, paths: Paths | None = None,
              on_error=None) -> dict[str, int]:
    """Seed set -> questions used: the shipped set (capped by the profile) and every incoming
    file that validates. A file that does not is left out and reported through ``on_error``
    (``FILE:LINE: field 'F': problem``)."""
    profile = profile or load_profile()
    paths = paths or Paths.from_env()
    shipped = Path(profile.data_files.get("trivia") or paths.data_dir / "seeds" / "trivia.jsonl")
    records = read_records(shipped, schemas.TRIVIA) if shipped.exists() else []
    n = len(records)
    for cap in (profile.source_limit, profile.hallucination_seeds):
        if cap is not None:
            n = min(n, cap)
    sets = {SHIPPED: n}
    seen = {r["id"]: shipped.name for r in records}
    for path in incoming_files(paths.incoming_dir):
        try:
            name = set_name(path.stem)
            records = read_records(path, schemas.TRIVIA)
            clash = next((r["id"] for r in records if r["id"] in seen), None)
            if clash:
                raise ValueError(f"{path}: id {clash!r} is already used by {seen[clash]}")
        except ValueError as e:
            if on_error is None:
                raise
            on_error(path, str(e))
            continue
        seen.update({r["id"]: path.name for r in records})
        sets[name] = len(records)
    return sets


def seed_shard_keys(profile: Profile | None = None, paths: Paths | None = None, on_error=None) -> list[str]:
    profile = profile or load_profile()
    return [key for name, rows in seed_sets(profile, paths, on_error).items()
            for key in file_shard_keys(rows, profile.shard_size, name)]


def register_seed_shards(instance: dg.DagsterInstance, keys: list[str] | None = None) -> list[str]:
    """Add the shards not yet registered in ``instance``; returns the ones added."""
    keys = seed_shard_keys() if keys is None else keys
    new = [k for k in keys if not instance.has_dynamic_partition(seed_shards.name, k)]
    if new:
        instance.add_dynamic_partitions(seed_shards.name, new)
    return new
