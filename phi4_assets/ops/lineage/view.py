"""The ``phi4.lineage_edges`` view: every edge of ``EDGES`` as rows, for SQL users."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...core.duckdb_files import connection, stored_columns
from .edges import EXTERNAL_KEYS, SCHEMA, VIEW, active_links


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


# -- the view ----------------------------------------------------------------------------------


def lineage_view_sql(tables: dict[str, list[str]]) -> str:
    """The SELECT behind ``phi4.lineage_edges`` for the given warehouse tables."""
    parts = []
    for edge, parent in active_links(tables):
        child = f"{SCHEMA}.{_q(edge.child)}"
        column = f"c.{_q(edge.column)}"
        where = f"{column} IS NOT NULL"
        if edge.when:
            where += f" AND c.{_q(edge.when[0])} IN ({', '.join(_literal(v) for v in edge.when[1])})"
        head = f"SELECT '{edge.child}' AS child_table, CAST(c.id AS VARCHAR) AS child_id, '{parent}' AS parent_table"
        if parent in EXTERNAL_KEYS:
            parts.append(f"{head}, CAST({column} AS VARCHAR) AS parent_id, '{edge.column}' AS via_column "
                         f"FROM {child} c WHERE {where}")
        else:
            parts.append(f"{head}, CAST(p.id AS VARCHAR) AS parent_id, '{edge.column}' AS via_column "
                         f"FROM {child} c JOIN {SCHEMA}.{_q(parent)} p "
                         f"ON CAST({column} AS VARCHAR) = CAST(p.{_q(edge.parent_key)} AS VARCHAR) WHERE {where}")
    if not parts:
        return ("SELECT NULL::VARCHAR AS child_table, NULL::VARCHAR AS child_id, NULL::VARCHAR AS parent_table, "
                "NULL::VARCHAR AS parent_id, NULL::VARCHAR AS via_column WHERE false")
    return "\nUNION\n".join(parts)


def create_lineage_view(warehouse_path: str | Path, declared: dict[str, list[str]] | None = None) -> int:
    """Create (or replace) the view ``phi4.lineage_edges`` over the warehouse tables that exist
    now; returns how many (edge, parent) links it covers. Call it again after a table appears
    (the view names the tables it was made over). Rows of warehouse parents are joined, so a
    dangling id gives no row; links into the teacher cache and the PTS memo (other files) are
    listed by the id recorded, found there or not. Takes the warehouse's write lock briefly.

    ``declared`` (table -> column names, from the assets' declared schemas) gives the columns of
    the tables that exist; without it they are read from the catalog (the same, since every
    table is created from its declaration)."""
    path = Path(warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with connection(path, read_only=False) as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        tables = stored_columns(con, SCHEMA)
        tables.pop(VIEW, None)
        if declared is not None:
            tables = {name: declared[name] for name in tables if name in declared}
        con.execute(f"CREATE OR REPLACE VIEW {SCHEMA}.{VIEW} AS {lineage_view_sql(tables)}")
    return sum(1 for _ in active_links(tables))


# -- the walk ----------------------------------------------------------------------------------
