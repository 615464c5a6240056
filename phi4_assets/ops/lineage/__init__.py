"""Row-level lineage: from any DPO pair or SFT row back to the rows, PTS estimates, teacher
calls and seed questions that made it.

One declarative edge spec, ``EDGES``, drives both readers:

- ``trace(row_id)`` walks it recursively from whichever warehouse table holds the id;
- ``create_lineage_view(warehouse)`` turns it into the DuckDB view ``phi4.lineage_edges``
  (child_table, child_id, parent_table, parent_id, via_column) over the tables that exist.

An edge says: rows of ``child`` point, through ``column``, at the rows of the first
``parents`` table(s) whose ``parent_key`` equals that value (``when``, if set, restricts it to
the child rows whose column has one of the given values). Two parents are not warehouse
tables: ``teacher_calls`` (the teacher-call cache, ``data/teacher_cache.duckdb``, key
``call_id``) and ``pts_estimates`` (the PTS memo, ``data/pts_memo.duckdb``, key ``key``). A
table that does not exist yet (an asset not materialized) is skipped.

Every warehouse table is an asset of the same name in schema ``phi4``; its partition is the
``shard`` or ``domain`` column where it has one.

JSON form (``phi4 lineage ID --json``, ``Lineage.to_json()``): one object

    {"id": <the id asked for>,
     "roots": [<node key>, ...],            # the rows that hold the id (one tree per root)
     "nodes": [{"key": "<table>:<id>", "table": ..., "asset": <asset name or null>,
                "store": "warehouse" | "teacher_cache" | "pts_memo", "partition": <str or null>,
                "id": ..., "summary": <the short text line>, "missing": <bool>,
                "row": {<every column; teacher calls: request parsed from JSON>}}, ...],
     "edges": [{"child": <node key>, "parent": <node key>, "via": <child column>}, ...],
     "seeds": [<node key of every source row reached>],
     "teacher_calls": [<call ids reached>], "pts_estimates": [<memo keys reached>]}

Nodes come in walk order (depth first from the roots, each node once); a lineage is a DAG,
so a node can have several children. ``missing`` nodes are ids a row records but that no
existing table holds (e.g. a teacher call id absent from the cache).
"""

from .edges import (EDGES, EXTERNAL_KEYS, EXTERNAL_STORES, PARTITION_COLUMNS, PTS_ESTIMATES, SCHEMA, SOURCES,
                    TEACHER_CALLS, VIEW, Edge, UnknownId, active_links)
from .text import render_text, summary
from .trace import Lineage, Node, trace
from .view import create_lineage_view, lineage_view_sql

__all__ = ["EDGES", "EXTERNAL_KEYS", "EXTERNAL_STORES", "PARTITION_COLUMNS", "PTS_ESTIMATES", "SCHEMA", "SOURCES",
           "TEACHER_CALLS", "VIEW", "Edge", "Lineage", "Node", "UnknownId", "active_links", "create_lineage_view",
           "lineage_view_sql", "render_text", "summary", "trace"]
