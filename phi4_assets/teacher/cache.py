"""Every teacher call, keyed by a hash of (model, messages, parameters), in a DuckDB file.

Connections are short-lived (one per lookup or fold) and retried while another process
holds the file's write lock, so two runs can write at once without failing. Failed calls
are recorded too, with their error and the attempts made; so are replies the task's own
parser rejected (``rejected_reason``). Only usable rows (no error, a response, not rejected)
count as cache hits: everything else is asked again.

A running batch never writes the DuckDB file per reply (one open + insert + close costs tens
of milliseconds and takes the file's single write lock each time). Each reply is appended as
one JSON line to a journal, ``<cache>.journal/<host>-<pid>-<random>.jsonl``, flushed and
fsynced before the next reply is awaited (~0.2 ms), so a killed process loses only the calls in
flight. The writer holds an ``flock`` on its journal while it is open; at the end of a batch
the journal is folded into DuckDB in one connection and deleted. Journals nobody holds (a
killed run's, or one whose fold found the file locked past the timeout) are folded by the next
``lookup``, ``calls`` or journal fold of any process. A torn last line is skipped.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ..core.duckdb_files import connect
from .types import TeacherReply

try:  # POSIX: a journal's writer holds an flock on it, released by the kernel if it dies
    import fcntl
except ImportError:  # pragma: no cover - elsewhere a journal is taken as live until it is a day old
    fcntl = None

log = logging.getLogger(__name__)

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
    attempts INTEGER,         -- HTTP requests made for this call (1 + retries)
    error VARCHAR,
    created_at TIMESTAMP,
    rejected_reason VARCHAR   -- the task's parser rejected the response: not a cache hit
)
"""
COLUMNS = ["call_id", "model", "task", "request", "response", "finish_reason", "prompt_tokens",
           "completion_tokens", "latency_s", "attempts", "error", "created_at", "rejected_reason"]
_USABLE = "{t}.error IS NULL AND {t}.response IS NOT NULL AND {t}.rejected_reason IS NULL"
_STALE_JOURNAL_S = 24 * 3600  # without flock: a journal untouched this long belongs to a dead run


@dataclass(frozen=True)
class CallRecord:
    reply: TeacherReply
    model: str
    task: str
    request: dict


def _row(rec: CallRecord) -> dict[str, Any]:
    return {
        "call_id": rec.reply.call_id, "model": rec.model, "task": rec.task,
        "request": json.dumps(rec.request, ensure_ascii=False, sort_keys=True),
        "response": rec.reply.text, "finish_reason": rec.reply.finish_reason,
        "prompt_tokens": rec.reply.prompt_tokens, "completion_tokens": rec.reply.completion_tokens,
        "latency_s": rec.reply.latency_s, "attempts": rec.reply.attempts, "error": rec.reply.error,
        "created_at": pd.Timestamp.now(tz="UTC").tz_localize(None).isoformat(),
        "rejected_reason": rec.reply.rejected_reason,
    }


def _usable(row: Mapping[str, Any]) -> bool:
    return row.get("error") is None and row.get("response") is not None and row.get("rejected_reason") is None


class TeacherCache:
    def __init__(self, path: str | Path, lock_timeout_s: float = 120.0):
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self._schema_ready = False

    @property
    def journal_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".journal")

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = connect(self.path, timeout_s=self.lock_timeout_s, create_dirs=True)
        if not self._schema_ready:
            con.execute(SCHEMA)
            columns = {r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'teacher_calls' "
                "AND table_schema = 'main' AND table_catalog = current_database()").fetchall()}
            if "rejected_reason" not in columns:  # a cache written before rejections were recorded
                con.execute("ALTER TABLE teacher_calls ADD COLUMN rejected_reason VARCHAR")
            self._schema_ready = True
        return con

    # -- reading -----------------------------------------------------------------------------
    def lookup(self, call_ids: Sequence[str]) -> dict[str, TeacherReply]:
        """Usable cached replies for the given ids (no error, a response, not rejected)."""
        self.fold_journals()
        if not call_ids or not self.path.exists():
            return {}
        keys = pd.DataFrame({"call_id": list(dict.fromkeys(call_ids))})
        con = self._connect()
        try:
            con.register("wanted", keys)
            rows = con.execute(
                "SELECT call_id, response, finish_reason, prompt_tokens, completion_tokens, latency_s, attempts "
                f"FROM teacher_calls t JOIN wanted USING (call_id) WHERE {_USABLE.format(t='t')}"
            ).fetchall()
        finally:
            con.close()
        return {
            r[0]: TeacherReply(call_id=r[0], text=r[1], finish_reason=r[2], prompt_tokens=r[3] or 0,
                               completion_tokens=r[4] or 0, latency_s=r[5] or 0.0, attempts=r[6] or 0, cached=True)
            for r in rows
        }

    def calls(self, call_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """The recorded calls (all, or the given ids) as a DataFrame, for lineage and usage."""
        self.fold_journals()
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

    # -- writing -----------------------------------------------------------------------------
    def store(self, records: Iterable[CallRecord]) -> int:
        """Write records straight into DuckDB (one connection). ``complete`` journals instead."""
        rows = [_row(rec) for rec in records]
        if rows:
            con = self._connect()
            try:
                self._apply(con, [{"op": "call", **row} for row in rows])
            finally:
                con.close()
        return len(rows)

    def reject(self, reasons: Mapping[str, str], responses: Mapping[str, str | None] | None = None) -> int:
        """Mark cached calls unusable (``call_id -> reason``): they stay recorded, are no cache
        hits, and are asked again. With ``responses``, only a row still holding that response is
        marked (a newer answer written meanwhile is left alone)."""
        if not reasons:
            return 0
        with self.journal() as journal:
            for call_id, reason in reasons.items():
                journal.reject(call_id, reason, (responses or {}).get(call_id, _ANY))
        return len(reasons)

    def journal(self) -> CallJournal:
        """An append-only journal for this process's next replies (a context manager; closing folds it)."""
        return CallJournal(self)

    def fold_journals(self) -> int:
        """Fold every journal no live process holds into DuckDB; returns the entries folded."""
        folder = self.journal_dir
        if not folder.is_dir():
            return 0
        for stale in folder.glob("*.tmp"):  # a writer killed between create and rename: empty
            handle = _try_lock(stale)
            if handle is not None:
                stale.unlink(missing_ok=True)
                handle.close()
        folded = 0
        for path in sorted(folder.glob("*.jsonl"), key=_mtime):
            handle = _try_lock(path)
            if handle is None:  # its writer is alive
                continue
            try:
                folded += self._fold_file(path, handle)
            finally:
                handle.close()
        return folded

    def _fold_file(self, path: Path, handle) -> int:
        """Apply one locked journal to DuckDB, then delete it (kept where DuckDB stays locked)."""
        try:
            if os.fstat(handle.fileno()).st_ino != path.stat().st_ino:
                return 0  # another process folded and deleted it while we waited
        except FileNotFoundError:
            return 0
        handle.seek(0)
        entries = _read_entries(handle.read(), path)
        if entries:
            try:
                con = self._connect()
            except TimeoutError as e:
                log.warning("teacher cache: %s stays unfolded for now (%s); the next open folds it", path, e)
                return 0
            try:
                self._apply(con, entries)
            except Exception as e:  # noqa: BLE001 - never wedge every later run on one bad journal
                aside = path.with_suffix(".unfolded")
                os.replace(path, aside)
                log.error("teacher cache: could not fold %s (%s: %s); moved aside as %s", path, type(e).__name__, e,
                          aside)
                return 0
            finally:
                con.close()
        path.unlink(missing_ok=True)
        return len(entries)

    def _apply(self, con: duckdb.DuckDBPyConnection, entries: list[dict]) -> None:
        """Apply journal entries in order: runs of calls are upserted in one statement, then rejections."""
        i = 0
        while i < len(entries):
            if entries[i].get("op") == "reject":
                e = entries[i]
                sql = "UPDATE teacher_calls SET rejected_reason = ? WHERE call_id = ? AND response IS NOT NULL"
                params = [e["reason"], e["call_id"]]
                if "response" in e:
                    sql += " AND response IS NOT DISTINCT FROM ?"
                    params.append(e["response"])
                con.execute(sql, params)
                i += 1
                continue
            run: dict[str, dict] = {}
            while i < len(entries) and entries[i].get("op") != "reject":
                row = {c: entries[i].get(c) for c in COLUMNS}
                previous = run.get(row["call_id"])
                if previous is None or not _usable(previous) or _usable(row):
                    run[row["call_id"]] = row
                i += 1
            frame = pd.DataFrame(list(run.values()), columns=COLUMNS)
            frame["created_at"] = pd.to_datetime(frame["created_at"], format="ISO8601", errors="coerce")
            con.register("incoming", frame)
            cols = ", ".join(COLUMNS)
            # A usable answer is never overwritten by a later failure or rejection of the same call.
            con.execute(
                f"INSERT OR REPLACE INTO teacher_calls ({cols}) SELECT {', '.join('i.' + c for c in COLUMNS)} "
                "FROM incoming i LEFT JOIN teacher_calls t USING (call_id) "
                f"WHERE t.call_id IS NULL OR NOT ({_USABLE.format(t='t')}) OR ({_USABLE.format(t='i')})")
            con.unregister("incoming")


_ANY = object()


class CallJournal:
    """One process's append-only record of replies, folded into DuckDB when closed."""

    def __init__(self, cache: TeacherCache):
        self.cache = cache
        self.entries = 0
        folder = cache.journal_dir
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        tmp = folder / f"{name}.tmp"
        self._file = open(tmp, "a+", encoding="utf-8")
        if fcntl is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = folder / f"{name}.jsonl"
        os.replace(tmp, self.path)  # visible to folders only once locked

    def __enter__(self) -> "CallJournal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, entry: dict) -> None:
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.entries += 1

    def append(self, record: CallRecord) -> None:
        """Record one reply durably before returning."""
        self._write({"op": "call", **_row(record)})

    def reject(self, call_id: str, reason: str, response: Any = _ANY) -> None:
        entry = {"op": "reject", "call_id": call_id, "reason": reason}
        if response is not _ANY:
            entry["response"] = response
        self._write(entry)

    def close(self, fold: bool = True) -> None:
        """Fold this journal into DuckDB and delete it (left for the next open where DuckDB stays
        locked past the timeout), then release it."""
        if self._file.closed:
            return
        try:
            if fold:
                self.cache._fold_file(self.path, self._file)
        finally:
            self._file.close()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _try_lock(path: Path):
    """An open handle on ``path`` holding its flock, or None where a live writer holds it."""
    try:
        handle = open(path, "r+", encoding="utf-8")
    except FileNotFoundError:
        return None
    if fcntl is None:
        if time.time() - os.fstat(handle.fileno()).st_mtime < _STALE_JOURNAL_S:
            handle.close()
            return None
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _read_entries(text: str, path: Path) -> list[dict]:
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # the torn last line of a killed writer
            log.warning("teacher cache: skipping unreadable line %d of %s", n, path)
            continue
        if isinstance(entry, dict) and entry.get("call_id"):
            entries.append(entry)
    return entries
