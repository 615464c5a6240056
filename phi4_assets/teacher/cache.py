"""Every teacher call, keyed by a hash of (model, messages, parameters), in a DuckDB file.

Connections are short-lived (one per lookup or flush) and retried while another process
holds the file's write lock, so two runs can write at once without failing. Failed calls
are recorded too, but only successful ones count as cache hits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ..duckdb_files import connect
from .types import TeacherReply

SCHEMA = """
CREATE TABLE IF NOT EXISTS teacher_calls (
    call_id VARCHAR PRIMARY KEY,
    model VARCHAR,
    task VARCHAR,
    request VARCHAR,          -- JSON: messages and parameters as sent
    response VARCHAR,
    finish_reason VARCHAR,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_s DOUBLE,
    attempts INTEGER,
    error VARCHAR,
    created_at TIMESTAMP
)
"""
COLUMNS = ["call_id", "model", "task", "request", "response", "finish_reason", "prompt_tokens",
           "completion_tokens", "latency_s", "attempts", "error", "created_at"]


@dataclass(frozen=True)
class CallRecord:
    reply: TeacherReply
    model: str
    task: str
    request: dict


class TeacherCache:
    def __init__(self, path: str | Path, lock_timeout_s: float = 120.0):
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self._schema_ready = False

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = connect(self.path, timeout_s=self.lock_timeout_s, create_dirs=True)
        if not self._schema_ready:
            con.execute(SCHEMA)
            self._schema_ready = True
        return con

    def lookup(self, call_ids: Sequence[str]) -> dict[str, TeacherReply]:
        """Successful cached replies for the given ids."""
        if not call_ids or not self.path.exists():
            return {}
        keys = pd.DataFrame({"call_id": list(dict.fromkeys(call_ids))})
        con = self._connect()
        try:
            con.register("wanted", keys)
            rows = con.execute(
                "SELECT call_id, response, finish_reason, prompt_tokens, completion_tokens, latency_s, attempts "
                "FROM teacher_calls JOIN wanted USING (call_id) WHERE error IS NULL AND response IS NOT NULL"
            ).fetchall()
        finally:
            con.close()
        return {
            r[0]: TeacherReply(call_id=r[0], text=r[1], finish_reason=r[2], prompt_tokens=r[3] or 0,
                               completion_tokens=r[4] or 0, latency_s=r[5] or 0.0, attempts=r[6] or 0, cached=True)
            for r in rows
        }

    def store(self, records: Iterable[CallRecord]) -> int:
        rows = [
            {
                "call_id": rec.reply.call_id, "model": rec.model, "task": rec.task,
                "request": json.dumps(rec.request, ensure_ascii=False, sort_keys=True),
                "response": rec.reply.text, "finish_reason": rec.reply.finish_reason,
                "prompt_tokens": rec.reply.prompt_tokens, "completion_tokens": rec.reply.completion_tokens,
                "latency_s": rec.reply.latency_s, "attempts": rec.reply.attempts, "error": rec.reply.error,
                "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
            }
            for rec in records
        ]
        if not rows:
            return 0
        frame = pd.DataFrame(rows, columns=COLUMNS)
        con = self._connect()
        try:
            con.register("incoming", frame)
            # A success is never overwritten by a later failure of the same call.
            con.execute(
                "INSERT OR REPLACE INTO teacher_calls SELECT i.* FROM incoming i "
                "LEFT JOIN teacher_calls t USING (call_id) WHERE t.call_id IS NULL OR t.error IS NOT NULL "
                "OR i.error IS NULL"
            )
        finally:
            con.close()
        return len(rows)

    def calls(self, call_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """The recorded calls (all, or the given ids) as a DataFrame, for lineage and usage."""
        if not self.path.exists():
            return pd.DataFrame(columns=COLUMNS)
        con = self._connect()
        try:
            if call_ids is None:
                return con.execute("SELECT * FROM teacher_calls ORDER BY created_at").fetchdf()
            con.register("wanted", pd.DataFrame({"call_id": list(dict.fromkeys(call_ids))}))
            return con.execute("SELECT t.* FROM teacher_calls t JOIN wanted USING (call_id)").fetchdf()
        finally:
            con.close()
