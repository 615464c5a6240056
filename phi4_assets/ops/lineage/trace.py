"""Tracing one row id back through ``EDGES`` to the seeds, teacher calls and PTS estimates."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from ...core.duckdb_files import connection, stored_columns
from .edges import (EXTERNAL_KEYS, EXTERNAL_STORES, PARTITION_COLUMNS, PTS_ESTIMATES, SCHEMA, SEARCH_ORDER, SOURCES,
                    TEACHER_CALLS, VIEW, UnknownId, active_links)
from .view import _q


@dataclass
class Node:
    table: str
    id: str
    row: dict
    missing: bool = False

    @property
    def key(self) -> str:
        return f"{self.table}:{self.id}"

    @property
    def store(self) -> str:
        return EXTERNAL_STORES.get(self.table, "warehouse")

    @property
    def asset(self) -> str | None:
        return None if self.table in EXTERNAL_KEYS else self.table

    @property
    def partition(self) -> str | None:
        for column in PARTITION_COLUMNS:
            if self.row.get(column) is not None:
                return str(self.row[column])
        return None


@dataclass
class Lineage:
    id: str
    roots: list[str]
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (child key, parent key, via column)

    def parents(self, key: str) -> list[tuple[str, str]]:
        return [(parent, via) for child, parent, via in self.edges if child == key]

    def reached(self, tables) -> list[str]:
        return [k for k, n in self.nodes.items() if n.table in tables and not n.missing]

    def to_json(self) -> dict:
        from .text import summary  # text imports this module

        return {
            "id": self.id,
            "roots": self.roots,
            "nodes": [{"key": n.key, "table": n.table, "asset": n.asset, "store": n.store, "partition": n.partition,
                       "id": n.id, "summary": summary(n), "missing": n.missing, "row": n.row}
                      for n in self.nodes.values()],
            "edges": [{"child": c, "parent": p, "via": v} for c, p, v in self.edges],
            "seeds": self.reached(SOURCES),
            "teacher_calls": [self.nodes[k].id for k in self.reached([TEACHER_CALLS])],
            "pts_estimates": [self.nodes[k].id for k in self.reached([PTS_ESTIMATES])],
        }


def _plain(value: Any) -> Any:
    """A JSON-friendly Python value (DuckDB gives lists, dicts, datetimes, Decimals)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


class _Stores:
    """Lazy read-only connections to the warehouse, the teacher cache and the PTS memo."""

    def __init__(self, warehouse: Path, teacher_cache: Path, pts_memo: Path):
        self.paths = {SCHEMA: Path(warehouse), TEACHER_CALLS: Path(teacher_cache), PTS_ESTIMATES: Path(pts_memo)}
        self._stack = contextlib.ExitStack()
        self._cons: dict[str, duckdb.DuckDBPyConnection | None] = {}
        self._tables: dict[str, dict[str, list[str]]] = {}

    def __enter__(self) -> "_Stores":
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _con(self, which: str) -> duckdb.DuckDBPyConnection | None:
        if which not in self._cons:
            path = self.paths[which]
            con = self._stack.enter_context(connection(path)) if path.exists() else None
            self._cons[which] = con
            self._tables[which] = stored_columns(con, SCHEMA if which == SCHEMA else None) if con else {}
        return self._cons[which]

    @property
    def warehouse_tables(self) -> dict[str, list[str]]:
        self._con(SCHEMA)
        return self._tables[SCHEMA]

    def rows(self, table: str, key: str, value: Any) -> list[dict]:
        """Rows of ``table`` whose ``key`` equals ``value`` ([] where the table does not exist)."""
        which = table if table in EXTERNAL_KEYS else SCHEMA
        con = self._con(which)
        if con is None or key not in self._tables[which].get(table, ()):
            return []
        name = _q(table) if which != SCHEMA else f"{SCHEMA}.{_q(table)}"
        cursor = con.execute(f"SELECT * FROM {name} WHERE CAST({_q(key)} AS VARCHAR) = ?", [str(value)])
        columns = [d[0] for d in cursor.description]
        out = [{c: _plain(v) for c, v in zip(columns, r)} for r in cursor.fetchall()]
        if table == TEACHER_CALLS:
            for row in out:
                with contextlib.suppress(TypeError, ValueError):
                    row["request"] = json.loads(row["request"])
        return out

    def has_table(self, table: str) -> bool:
        which = table if table in EXTERNAL_KEYS else SCHEMA
        return self._con(which) is not None and table in self._tables[which]


def trace(row_id: str, warehouse: str | Path, teacher_cache: str | Path, pts_memo: str | Path,
          table: str | None = None) -> Lineage:
    """The lineage of the row with this id (in ``table`` only, if given). Raises ``UnknownId``."""
    with _Stores(Path(warehouse), Path(teacher_cache), Path(pts_memo)) as stores:
        existing = stores.warehouse_tables
        links = list(active_links(existing))
        order = [t for t in SEARCH_ORDER if t in existing] + sorted(set(existing) - set(SEARCH_ORDER) - {VIEW})
        hits: list[Node] = []
        for name in [table] if table else order:
            hits += [Node(name, row_id, row) for row in stores.rows(name, EXTERNAL_KEYS.get(name, "id"), row_id)[:1]]
        for name in [] if hits or table else EXTERNAL_KEYS:  # a teacher call or a PTS estimate on its own
            hits += [Node(name, row_id, row) for row in stores.rows(name, EXTERNAL_KEYS[name], row_id)[:1]]
        if not hits:
            where = f"table {table}" if table else "any warehouse table, the teacher cache or the PTS memo"
            if not Path(warehouse).exists():
                where += f" (no warehouse at {warehouse}: nothing materialized yet?)"
            raise UnknownId(f"no row with id {row_id!r} in {where}")

        lineage = Lineage(id=row_id, roots=[])

        def walk(node: Node) -> None:
            if node.key in lineage.nodes:
                return
            lineage.nodes[node.key] = node
            if node.missing:
                return
            for edge in dict.fromkeys(e for e, _ in links if e.child == node.table):
                if edge.when and node.row.get(edge.when[0]) not in edge.when[1]:
                    continue
                value = node.row.get(edge.column)
                if value is None or value == "":
                    continue
                unique = edge.parent_key == EXTERNAL_KEYS.get(edge.parents[0], "id")  # one row at most
                found = False
                for parent in edge.parents:
                    if (edge, parent) not in links:
                        continue
                    for row in stores.rows(parent, edge.parent_key, value):
                        found = True
                        child = Node(parent, str(row[EXTERNAL_KEYS.get(parent, "id")]), row)
                        if (node.key, child.key, edge.column) not in lineage.edges:
                            lineage.edges.append((node.key, child.key, edge.column))
                        walk(child)
                    if found and unique:
                        break  # an id lives in one table: the first that has it
                if not found and unique and any(p in EXTERNAL_KEYS or stores.has_table(p) for p in edge.parents):
                    ghost = Node("|".join(edge.parents), str(value), {}, missing=True)
                    lineage.edges.append((node.key, ghost.key, edge.column))
                    walk(ghost)

        for hit in hits:
            walk(hit)
        parents = {p for _, p, _ in lineage.edges}
        lineage.roots = [h.key for h in hits if h.key not in parents] or [h.key for h in hits]
        # Keep only what the roots reach (a hit that is someone's parent is inside their tree).
        keep = _reachable(lineage, lineage.roots)
        lineage.nodes = {k: n for k, n in lineage.nodes.items() if k in keep}
        lineage.edges = [e for e in lineage.edges if e[0] in keep]
        return lineage


def _reachable(lineage: Lineage, roots: list[str]) -> set[str]:
    seen, todo = set(), list(roots)
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo.extend(p for p, _ in lineage.parents(key))
    return seen


# -- text ----------------------------------------------------------------------------------------
