"""Seed shards: the partitions of the hallucination generation assets.

They are dynamic: the shipped seed file's shards (``000``, ``001``, ...) and those of every
valid seed file dropped into the incoming folder (``<file>-000``, ...) are registered in the
Dagster instance by the ``incoming_seed_files`` sensor and by ``phi4 demo``
(``register_seed_shards``). Which questions a shard holds: ``phi4_assets.sources.shards``.
Which incoming files are usable: ``phi4_assets.sources.seedfiles``; both the sensor and
``phi4 demo`` skip and report the others the same way (``usable_seed_shard_keys``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from ..config.profiles import Profile, load_profile
from ..config.settings import Paths
from ..sources import schemas
from ..sources.records import read_numbered
from ..sources.seedfiles import SeedIndex, accept_seed_file, incoming_files
from ..sources.shards import SHIPPED, file_shard_keys
from ..sources.tables import SourceFiles

seed_shards = dg.DynamicPartitionsDefinition(name="seed_shards")


def seed_sets(profile: Profile | None = None, paths: Paths | None = None,
              on_error: Callable[[Path, str], None] | None = None) -> dict[str, int]:
    """Seed set -> questions used: the shipped set (capped by the profile) and every usable
    incoming file (``sources.seedfiles``). A file that is not is left out and reported through
    ``on_error(path, "FILE:LINE: field 'F': problem")``; without ``on_error`` it raises."""
    profile = profile or load_profile()
    paths = paths or Paths.from_env()
    shipped = SourceFiles(profile, paths.data_dir).data_file("trivia", "seeds/trivia.jsonl")
    numbered = read_numbered(shipped, schemas.TRIVIA) if shipped.exists() else []
    n = len(numbered)
    for cap in (profile.source_limit, profile.hallucination_seeds):
        if cap is not None:
            n = min(n, cap)
    sets = {SHIPPED: n}
    index = SeedIndex()
    index.add(str(shipped), numbered)
    for path in incoming_files(paths.incoming_dir):
        try:
            name, records = accept_seed_file(path, index)
        except ValueError as e:
            if on_error is None:
                raise
            on_error(path, str(e))
            continue
        sets[name] = len(records)
    return sets


def seed_shard_keys(profile: Profile | None = None, paths: Paths | None = None,
                    on_error: Callable[[Path, str], None] | None = None) -> list[str]:
    profile = profile or load_profile()
    return [key for name, rows in seed_sets(profile, paths, on_error).items()
            for key in file_shard_keys(rows, profile.shard_size, name)]


def usable_seed_shard_keys(report: Callable[[str], None]) -> list[str]:
    """The shards of the shipped file and of every usable incoming file. Each unusable incoming
    file is skipped and reported, one line each: ``ignored: FILE:LINE: field 'F': problem``.
    The one behaviour of the ``incoming_seed_files`` sensor (``report``: its log) and of
    ``phi4 demo`` (``report``: print)."""
    return seed_shard_keys(on_error=lambda path, message: report(f"ignored: {message}"))


def register_seed_shards(instance: dg.DagsterInstance, keys: list[str] | None = None) -> list[str]:
    """Add the shards not yet registered in ``instance``; returns the ones added. Without
    ``keys``: the usable ones, unusable incoming files logged as warnings."""
    keys = usable_seed_shard_keys(logging.getLogger(__name__).warning) if keys is None else keys
    new = [k for k in keys if not instance.has_dynamic_partition(seed_shards.name, k)]
    if new:
        instance.add_dynamic_partitions(seed_shards.name, new)
    return new
