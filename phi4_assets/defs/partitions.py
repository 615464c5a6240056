"""Partitions shared by the asset groups."""

import math

import dagster as dg

from ..profiles import load_profile
from ..settings import Paths


def _count_lines(path) -> int:
    try:
        with open(path, encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


def seed_count() -> int:
    """How many trivia seeds the hallucination assets use under the active profile."""
    profile = load_profile()
    path = profile.data_files.get("trivia") or Paths.from_env().data_dir / "seeds" / "trivia.jsonl"
    n = _count_lines(path)
    for cap in (profile.source_limit, profile.hallucination_seeds):
        if cap is not None:
            n = min(n, cap)
    return n


def shard_key(index: int, shard_size: int) -> str:
    return f"{index // shard_size:03d}"


def seed_shard_keys() -> list[str]:
    shard_size = load_profile().shard_size
    return [f"{i:03d}" for i in range(max(1, math.ceil(seed_count() / shard_size)))]


# Seed shards: a fixed number of trivia questions per partition, in id order, so a growing
# seed file only adds shards at the end.
seed_shards = dg.StaticPartitionsDefinition(seed_shard_keys())
