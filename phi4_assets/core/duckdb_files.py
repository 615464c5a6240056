"""Opening the project's DuckDB files (warehouse, teacher cache, PTS memo) from several processes.

DuckDB lets one process hold a file's write lock at a time. Every short-lived connection the
project opens goes through ``connect``: it retries with jittered exponential backoff while
another process holds the lock, and fails with a ``TimeoutError`` naming the file after
``timeout_s``.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb


def connect(path: str | Path, *, read_only: bool = False, timeout_s: float = 30.0,
            create_dirs: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to ``path``, retried while another process holds the write lock. A read-only
    request from a process that already has the file open read-write gets a read-write one
    (DuckDB refuses two configurations of one file in a process)."""
    path = Path(path)
    if create_dirs:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline, delay = time.monotonic() + timeout_s, 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.ConnectionException:  # this process already has it open with another configuration
            return duckdb.connect(str(path))
        except duckdb.IOException as e:  # another process holds the write lock
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path}: still locked by another process after {timeout_s:.0f}s ({e})") from e
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)


@contextlib.contextmanager
def connection(path: str | Path, *, read_only: bool = True, timeout_s: float = 30.0,
               ) -> Iterator[duckdb.DuckDBPyConnection]:
    """``connect`` as a context manager that closes the connection."""
    con = connect(path, read_only=read_only, timeout_s=timeout_s)
    try:
        yield con
    finally:
        con.close()


def stored_columns(con: duckdb.DuckDBPyConnection, schema: str | None = None) -> dict[str, list[str]]:
    """table -> column names (in order), for the tables of ``schema`` (or of the main schema)."""
    rows = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                       "WHERE table_schema = ? AND table_catalog = current_database() ORDER BY ordinal_position",
                       [schema or "main"]).fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables
