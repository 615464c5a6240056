"""The persistent memo of p(success | prefix) estimates (DuckDB), so a re-run resumes and costs
nothing for what was estimated. Keyed by model version, problem, prefix hash, n and the
sampling parameters; every rollout's first token, outcome and whether it declined are kept, so
DPO pairs can take their tokens from the rollouts already sampled."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..core.duckdb_files import connect
from ..core.ids import content_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS pts_estimates (
    key VARCHAR PRIMARY KEY,
    model_version VARCHAR, problem_id VARCHAR, prefix_hash VARCHAR, prefix_len INTEGER,
    n INTEGER, params VARCHAR, p DOUBLE, successes INTEGER,
    first_tokens VARCHAR,   -- JSON list, one per rollout (null: empty continuation)
    outcomes VARCHAR,       -- JSON list of booleans, one per rollout
    tokens INTEGER, created_at TIMESTAMP,
    declined VARCHAR        -- JSON list of booleans, one per rollout: the rollout declined to answer
)
"""
# A memo written before rollouts' declines were kept gains the column (its rows have none).
MIGRATE = "ALTER TABLE pts_estimates ADD COLUMN IF NOT EXISTS declined VARCHAR"
_COLUMNS = "p, n, first_tokens, outcomes, tokens, declined"


@dataclass(frozen=True)
class Estimate:
    p: float
    n: int
    first_tokens: tuple[int | None, ...]
    outcomes: tuple[bool, ...]
    tokens: int = 0
    # One per rollout: whether it declined to answer (``core.refusal.declines``); empty where
    # unknown. A decline is neither right nor wrong: pair building reads it (``pairs``).
    declined: tuple[bool, ...] = ()


def _estimate(row) -> Estimate:
    p, n, first_tokens, outcomes, tokens, declined = row
    return Estimate(p, n, tuple(json.loads(first_tokens)), tuple(json.loads(outcomes)), tokens or 0,
                    tuple(json.loads(declined)) if declined else ())


def prefix_hash(prefix: tuple[int, ...]) -> str:
    return content_hash(list(prefix), length=20)


def estimate_key(model_version: str, problem_id: str, prefix: tuple[int, ...], n: int, params: dict) -> str:
    return content_hash([model_version, problem_id, prefix_hash(prefix), n, params], length=32)


class EstimateMemo:
    def __init__(self, path: str | Path, lock_timeout_s: float = 120.0):
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s

    def _connect(self):
        con = connect(self.path, timeout_s=self.lock_timeout_s, create_dirs=True)
        con.execute(SCHEMA)
        con.execute(MIGRATE)
        return con

    def load(self, model_version: str, problem_id: str, n: int, params: dict) -> dict[str, Estimate]:
        """Every stored estimate for one problem, by key."""
        if not self.path.exists():
            return {}
        con = self._connect()
        try:
            rows = con.execute(
                f"SELECT key, {_COLUMNS} FROM pts_estimates "
                "WHERE model_version = ? AND problem_id = ? AND n = ? AND params = ?",
                [model_version, problem_id, n, json.dumps(params, sort_keys=True)]).fetchall()
        finally:
            con.close()
        return {r[0]: _estimate(r[1:]) for r in rows}

    def get(self, key: str) -> Estimate | None:
        """One stored estimate by its key (``estimate_key``)."""
        if not self.path.exists():
            return None
        con = self._connect()
        try:
            row = con.execute(f"SELECT {_COLUMNS} FROM pts_estimates WHERE key = ?", [key]).fetchone()
        finally:
            con.close()
        return None if row is None else _estimate(row)

    def get_many(self, keys) -> dict[str, Estimate]:
        """The stored estimates among ``keys``, by key, read in one query."""
        keys = sorted({k for k in keys if k})
        if not keys or not self.path.exists():
            return {}
        con = self._connect()
        try:
            rows = con.execute(f"SELECT key, {_COLUMNS} FROM pts_estimates WHERE key IN (SELECT unnest(?))",
                               [keys]).fetchall()
        finally:
            con.close()
        return {r[0]: _estimate(r[1:]) for r in rows}

    def store(self, model_version: str, problem_id: str, prefix: tuple[int, ...], params: dict,
              estimate: Estimate) -> None:
        con = self._connect()
        try:
            con.execute(
                "INSERT OR REPLACE INTO pts_estimates (key, model_version, problem_id, prefix_hash, prefix_len, n, params, "
                "p, successes, first_tokens, outcomes, tokens, created_at, declined) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?)",
                [estimate_key(model_version, problem_id, prefix, estimate.n, params), model_version, problem_id,
                 prefix_hash(prefix), len(prefix), estimate.n, json.dumps(params, sort_keys=True), estimate.p,
                 sum(estimate.outcomes), json.dumps(list(estimate.first_tokens)), json.dumps(list(estimate.outcomes)),
                 estimate.tokens, json.dumps(list(estimate.declined)) if estimate.declined else None])
        finally:
            con.close()
