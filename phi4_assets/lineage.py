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

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from .duckdb_files import connection, stored_columns

SCHEMA = "phi4"
VIEW = "lineage_edges"
TEACHER_CALLS = "teacher_calls"
PTS_ESTIMATES = "pts_estimates"
EXTERNAL_KEYS = {TEACHER_CALLS: "call_id", PTS_ESTIMATES: "key"}
EXTERNAL_STORES = {TEACHER_CALLS: "teacher_cache", PTS_ESTIMATES: "pts_memo"}
PARTITION_COLUMNS = ("shard", "domain")


@dataclass(frozen=True)
class Edge:
    child: str
    column: str
    parents: tuple[str, ...]
    parent_key: str = "id"
    when: tuple[str, tuple] | None = None  # (child column, values): the edge holds only for those rows


SOURCES = ("trivia_seeds", "math_problems", "mcq_questions", "code_problems", "chat_prompts", "safety_prompts",
           "eval_sets")
PTS_PROBLEMS = ("math_problems", "mcq_questions", "trivia_seeds", "code_problems")
JUDGE_PROMPTS = ("chat_prompts", "safety_prompts", "trivia_seeds", "math_problems", "mcq_questions")
CALL = (TEACHER_CALLS,)
MIXED = ("source", ("hallucination", "safety"))

EDGES: tuple[Edge, ...] = (
    # pts: pair -> pivot -> PTS estimate at its prefix (the rollouts) and the problem
    Edge("pts_dpo_pairs", "pivot_id", ("pivotal_tokens",)),
    Edge("pts_dpo_pairs", "id", ("dpo1_mix_pairs",), when=MIXED),  # the mixed-in pairs
    Edge("pivotal_tokens", "estimate_key", (PTS_ESTIMATES,), parent_key="key"),
    Edge("pivotal_tokens", "problem_id", PTS_PROBLEMS),
    # judge: pair -> rating (two judge calls, both orders) -> candidates -> teacher call and prompt
    Edge("judge_dpo_pairs", "rating_id", ("judge_ratings",)),
    Edge("judge_dpo_pairs", "chosen_candidate_id", ("judge_candidates",)),
    Edge("judge_dpo_pairs", "rejected_candidate_id", ("judge_candidates",)),
    Edge("judge_dpo_pairs", "id", ("dpo2_mix_pairs",), when=MIXED),
    # mix pairs: -> reference answer / refusal / SFT answer, and the question or safety prompt (the
    # starting model's samples are in the row: grades, rejected_full)
    *(e for mix in ("dpo1_mix_pairs", "dpo2_mix_pairs") for e in (
        Edge(mix, "chosen_from", ("reference_answers", "refusals", "sft_dataset")),
        Edge(mix, "rejected_from", ("refusals",)),  # null where it is the model's own response
        Edge(mix, "problem_id", ("trivia_seeds", "safety_prompts")))),
    Edge("judge_ratings", "candidate_a_id", ("judge_candidates",)),
    Edge("judge_ratings", "candidate_b_id", ("judge_candidates",)),
    Edge("judge_ratings", "call_ab_id", CALL, "call_id"),
    Edge("judge_ratings", "call_ba_id", CALL, "call_id"),
    Edge("judge_candidates", "teacher_call_id", CALL, "call_id"),
    Edge("judge_candidates", "prompt_id", JUDGE_PROMPTS),
    # hallucination: pair / SFT row -> reference answer, refusal, policy sample, the answer checks
    # that gave p_correct -> teacher calls -> seed question
    Edge("hallucination_dpo_pairs", "chosen_from", ("reference_answers", "refusals")),
    Edge("hallucination_dpo_pairs", "rejected_from", ("refusals", "policy_answer_samples")),
    Edge("hallucination_dpo_pairs", "question_id", ("answer_checks",), parent_key="question_id"),
    Edge("hallucination_dpo_pairs", "question_id", ("trivia_seeds",)),
    Edge("hallucination_sft_data", "source_id", ("reference_answers", "refusals")),
    Edge("hallucination_sft_data", "question_id", ("answer_checks",), parent_key="question_id",
         when=("kind", ("answer", "refusal"))),
    Edge("hallucination_sft_data", "question_id", ("trivia_seeds",)),
    Edge("refusals", "teacher_call_id", CALL, "call_id"),
    Edge("refusals", "target_id", ("bogus_questions",), when=("bogus", (True,))),
    Edge("refusals", "question_id", ("answer_checks",), parent_key="question_id", when=("bogus", (False,))),
    Edge("refusals", "question_id", ("trivia_seeds",)),
    Edge("bogus_questions", "teacher_call_id", CALL, "call_id"),
    Edge("bogus_questions", "question_id", ("trivia_seeds",)),
    Edge("reference_answers", "teacher_call_id", CALL, "call_id"),
    Edge("reference_answers", "question_id", ("trivia_seeds",)),
    Edge("answer_checks", "sample_id", ("policy_answer_samples",)),
    Edge("answer_checks", "teacher_call_id", CALL, "call_id"),
    Edge("answer_checks", "question_id", ("trivia_seeds",)),
    Edge("policy_answer_samples", "question_id", ("trivia_seeds",)),
    # sft: row -> chat / safety prompt or hallucination SFT row, and its teacher call
    Edge("sft_dataset", "source_id", ("chat_prompts", "safety_prompts", "hallucination_sft_data")),
    Edge("sft_dataset", "teacher_call_id", CALL, "call_id"),
)

# Tables searched first for an id: the most downstream first, so a pair shows its whole chain.
SEARCH_ORDER = tuple(dict.fromkeys([e.child for e in EDGES] + [p for e in EDGES for p in e.parents
                                                                  if p not in EXTERNAL_KEYS]))


class UnknownId(LookupError):
    """No table (nor the teacher cache or the PTS memo) holds the id."""


# -- connections -----------------------------------------------------------------------------


def active_links(tables: dict[str, list[str]]) -> Iterator[tuple[Edge, str]]:
    """(edge, parent table) for every link of ``EDGES`` that the existing warehouse tables allow.

    A child table needs ``id``, the edge's column and its ``when`` column; a warehouse parent
    needs ``id`` and the parent key. External parents (teacher cache, PTS memo) always count."""
    for edge in EDGES:
        columns = set(tables.get(edge.child, ()))
        if not {"id", edge.column} <= columns or (edge.when and edge.when[0] not in columns):
            continue
        for parent in edge.parents:
            if parent in EXTERNAL_KEYS or {"id", edge.parent_key} <= set(tables.get(parent, ())):
                yield edge, parent


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


def _short(value: Any, width: int = 48) -> str:
    text = "" if value is None else str(value)  # whitespace kept: a token's leading space matters
    text = text if len(text) <= width else text[:width - 3] + "..."
    return repr(text)


def _p(value: Any) -> str:
    return "?" if value is None else f"{float(value):.2f}"


def _first_tokens(row: dict) -> str:
    with contextlib.suppress(TypeError, ValueError):
        tokens = json.loads(row.get("first_tokens") or "[]")
        outcomes = json.loads(row.get("outcomes") or "[]")
        by_token: dict[Any, list[int]] = {}
        for token, ok in zip(tokens, outcomes):
            counts = by_token.setdefault(token, [0, 0])
            counts[0] += bool(ok)
            counts[1] += 1
        ordered = sorted(by_token.items(), key=lambda kv: (-kv[1][1], str(kv[0])))
        return ", ".join(f"{'end' if t is None else t}:{s}/{n}" for t, (s, n) in ordered)
    return "?"


def _last_user(request: Any) -> str:
    if isinstance(request, dict):
        for message in reversed(request.get("messages") or []):
            if message.get("role") == "user":
                return message.get("content") or ""
    return ""


def summary(node: Node) -> str:
    """One short line of the salient fields of a row."""
    r, t = node.row, node.table
    if node.missing:
        where = [{TEACHER_CALLS: "the teacher cache", PTS_ESTIMATES: "the PTS memo"}.get(t, t)
                 for t in node.table.split("|")]
        return f"not found in {' / '.join(where)}"
    if t == TEACHER_CALLS:
        error = f" error={_short(r.get('error'), 40)}" if r.get("error") else ""
        return (f"task={r.get('task')} model={r.get('model')} tokens={r.get('prompt_tokens')}+"
                f"{r.get('completion_tokens')}{error} prompt={_short(_last_user(r.get('request')), 40)} "
                f"-> {_short(r.get('response'), 40)}")
    if t == PTS_ESTIMATES:
        return (f"problem={r.get('problem_id')} prefix_len={r.get('prefix_len')} p={_p(r.get('p'))} n={r.get('n')} "
                f"successes={r.get('successes')} first token:successes/rollouts {_first_tokens(r)}")
    if t in ("pts_dpo_pairs", "hallucination_dpo_pairs", "judge_dpo_pairs", "dpo1_mix_pairs", "dpo2_mix_pairs"):
        head = {"pts_dpo_pairs": f"source={r.get('source')}", "hallucination_dpo_pairs": f"kind={r.get('kind')}",
                "judge_dpo_pairs": f"subset={r.get('subset')} margin={r.get('margin')}"}.get(
            t, f"kind={r.get('kind')} grades={r.get('grades')}")
        if t == "pts_dpo_pairs" and r.get("p_before") is not None:
            head += f" p {_p(r.get('p_before'))}->{_p(r.get('p_after'))}"
        return f"{head} chosen={_short(r.get('chosen'), 36)} rejected={_short(r.get('rejected'), 36)}"
    if t == "pivotal_tokens":
        state = "accepted" if r.get("accepted") else "rejected by the guard"
        return (f"token={_short(r.get('token_text'))} ({r.get('token')}) at {r.get('index')} "
                f"p {_p(r.get('p_before'))}->{_p(r.get('p_after'))} {state} prefix={_short(r.get('prefix_text'), 36)}")
    if t == "judge_ratings":
        scores = lambda s: "/".join(f"{r.get(f'{k}_{s}'):g}" if isinstance(r.get(f"{k}_{s}"), (int, float))  # noqa: E731
                                    else str(r.get(f"{k}_{s}")) for k in ("accuracy", "style", "detail"))
        extra = f" failure={_short(r.get('failure'), 30)}" if r.get("failure") else ""
        return (f"judge={r.get('judge')} A acc/style/detail={scores('a')} B={scores('b')} "
                f"order_consistent={r.get('order_consistent')}{extra}")
    if t == "judge_candidates":
        return f"generator={r.get('generator')} source={r.get('source')} response={_short(r.get('response'))}"
    fields = {
        "policy_answer_samples": ("sample_index", "text"),
        "answer_checks": ("matches_key", "grader"),
        "reference_answers": ("generator", "answer_text"),
        "bogus_questions": ("bogus_question", "kept"),
        "refusals": ("bogus", "refusal"),
        "hallucination_sft_data": ("kind", "completion"),
        "sft_dataset": ("kind", "completion"),
        "trivia_seeds": ("question", "answer"),
        "math_problems": ("question", "answer"),
        "mcq_questions": ("question", "answer"),
        "code_problems": ("entry_point", "prompt"),
        "chat_prompts": ("prompt",),
        "safety_prompts": ("kind", "prompt"),
        "eval_sets": ("benchmark", "question"),
    }.get(t) or tuple(c for c, v in r.items() if isinstance(v, str) and c != "id")[:2]
    return " ".join(f"{c}={_val(r.get(c))}" for c in fields)


def _val(value: Any) -> str:
    """A field value: free text quoted (and cut), a name or a number as it is."""
    if isinstance(value, str) and (not value or len(value) > 48 or any(ch.isspace() for ch in value)):
        return _short(value)
    return str(value)


def _name(table: str) -> str:
    return {TEACHER_CALLS: "teacher call", PTS_ESTIMATES: "PTS estimate"}.get(table, table)


def _label(node: Node) -> str:
    partition = f" [{node.partition}]" if node.partition is not None else ""
    return f"{_name(node.table)}{partition} {node.id}"


INDENT = "    "


def render_text(lineage: Lineage) -> str:
    """An indented tree per root, one row a line: ``via_column -> asset [partition] id  salient
    fields``. A row reached again is not expanded twice: the rows a node reaches that were
    already shown are named on one ``(also, shown above: ...)`` line (seed rows met again are
    left out there: the footer lists every seed reached, and every teacher call)."""
    lines: list[str] = []
    shown: set[str] = set()

    def emit(key: str, via: str | None, depth: int) -> None:
        node = lineage.nodes[key]
        lines.append(f"{INDENT * depth}{via + ' -> ' if via else ''}{_label(node)}  {summary(node)}")
        shown.add(key)
        again: dict[str, list[str]] = {}
        for parent, column in lineage.parents(key):
            if parent in shown and lineage.nodes[parent].table in SOURCES:
                continue  # a seed row met again: the footer lists the seeds
            if parent in shown:
                again.setdefault(lineage.nodes[parent].table, []).append(parent)
            else:
                emit(parent, column, depth + 1)
        if again:
            names = ", ".join(_label(lineage.nodes[keys[0]]) if len(keys) == 1 else f"{_name(table)} x{len(keys)}"
                              for table, keys in again.items())
            lines.append(f"{INDENT * (depth + 1)}(also, shown above: {names})")

    for root in lineage.roots:
        emit(root, None, 0)
    data = lineage.to_json()
    lines.append("")
    lines.append(f"seeds: {', '.join(data['seeds']) or 'none reached'}")
    lines.append(f"teacher calls: {', '.join(data['teacher_calls']) or 'none'}")
    if data["pts_estimates"]:
        lines.append(f"PTS estimates: {', '.join(data['pts_estimates'])}")
    missing = [k for k, n in lineage.nodes.items() if n.missing]
    if missing:
        lines.append(f"recorded but not found: {', '.join(missing)}")
    return "\n".join(lines)
