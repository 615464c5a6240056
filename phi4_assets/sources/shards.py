"""Seed shards: how trivia seeds are cut into the partitions of the hallucination assets. Pure.

The shipped seed file gives shards ``000``, ``001``, ... (``shard_size`` questions each, in id
order, the profile's first ``hallucination_seeds`` only), so a growing file only adds shards at
the end. A file dropped into the incoming folder gives its own shards, named after the file:
``geo-extra-000``, ``geo-extra-001``, ...
"""

from __future__ import annotations

import hashlib
import math
import re

import pandas as pd

SHIPPED = "shipped"  # the seed_set of the rows from the shipped (or configured) seed file
_SET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def set_name(file_stem: str) -> str:
    """The seed set (and shard prefix) of an incoming file: its stem, lower case; only letters,
    digits, '-' and '_' (partition keys must be safe in a URL and a file name)."""
    name = file_stem.lower()
    if not _SET_NAME.match(name) or name == SHIPPED or re.search(r"-\d{3}$", name) or name.isdigit():
        raise ValueError(f"incoming seed file {file_stem!r}: name it with letters, digits, '-' or '_' "
                         f"(not {SHIPPED!r}, not ending in -NNN)")
    return name


def shard_key(index: int, shard_size: int, seed_set: str = SHIPPED) -> str:
    number = f"{index // shard_size:03d}"
    return number if seed_set == SHIPPED else f"{seed_set}-{number}"


def assign_shards(seeds: pd.DataFrame, shard_size: int, cap: int | None) -> pd.Series:
    """The shard of every seed row (None: not used, past ``cap`` in the shipped set). ``seeds``
    needs ``id`` and ``seed_set`` (missing: every row is shipped)."""
    sets = seeds["seed_set"] if "seed_set" in seeds else pd.Series(SHIPPED, index=seeds.index)
    out = pd.Series([None] * len(seeds), index=seeds.index, dtype=object)
    for name, group in seeds.groupby(sets, sort=False):
        ordered = group.sort_values("id").index
        if name == SHIPPED and cap is not None:
            ordered = ordered[:cap]
        out.loc[ordered] = [shard_key(i, shard_size, name) for i in range(len(ordered))]
    return out


def shard_keys(seeds: pd.DataFrame, shard_size: int, cap: int | None) -> list[str]:
    """Every shard, the shipped ones first, then each incoming set's in name order."""
    keys = assign_shards(seeds, shard_size, cap).dropna().unique().tolist()
    return sorted(keys, key=lambda k: (not k.isdigit(), k)) or ["000"]


def file_shard_keys(rows: int, shard_size: int, seed_set: str) -> list[str]:
    """The shards a seed set of ``rows`` questions makes."""
    return [shard_key(i * shard_size, shard_size, seed_set) for i in range(max(1, math.ceil(rows / shard_size)))]


def shard_seed(shard: str) -> int:
    """A sampling seed per shard: the number of a shipped shard (``001`` -> 1), a stable hash of
    an incoming one's key."""
    if shard.isdigit():
        return int(shard)
    return int(hashlib.sha256(shard.encode()).hexdigest()[:8], 16)
