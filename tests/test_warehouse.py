"""The warehouse IO manager: tables created from the assets' declared schemas, never inferred."""

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from phi4_assets.defs import load, table_schemas
from phi4_assets.defs.pts import PIVOTAL_TOKENS
from phi4_assets.core.warehouse import (SCHEMA_KEY, WarehouseIOManager, column_names, declared_schema, schema_metadata,
                                   table_schema)

PARTS = dg.StaticPartitionsDefinition(["p1", "p2", "p3"])


def _io(db):
    return {"io_manager": WarehouseIOManager(database=str(db), schema="phi4")}


def _materialize(db, assets, partition=None, select=None, raise_on_error=True):
    return dg.materialize(assets, resources=_io(db), partition_key=partition, selection=select,
                          raise_on_error=raise_on_error)


def _types(db, table) -> dict[str, str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute(f"select column_name, data_type from information_schema.columns where "
                                f"table_schema = 'phi4' and table_name = '{table}' order by ordinal_position").fetchall())


def _error(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.step_failure_data.error
    while error.cause is not None:
        error = error.cause
    return error.message


# -- the failure a fresh clone's demo met ------------------------------------------------------------------


def test_empty_prefix_lists_in_the_first_partition_then_real_ones(tmp_path):
    """mcq wrote first, every pivot at index 0 (prefix_ids all empty lists: DuckDB infers "NULL"[]);
    qa's INTEGER[] prefixes then failed to insert. The declared schema types the column first."""
    db = tmp_path / "w.duckdb"
    domains = dg.StaticPartitionsDefinition(["math", "mcq", "qa"])
    base = dict(response_id="r", response_text="t", token=5, token_text="x", prefix_text="", prefix_hash="h",
                estimate_key="k", after_estimate_key="k2", prompt_ids=[1, 2, 3], p_before=0.3, p_after=0.9, delta=0.6,
                rollouts_per_estimate=16, accepted=True, model_version="mv")

    @dg.asset(name="pivotal_tokens", partitions_def=domains,
              metadata=schema_metadata(PIVOTAL_TOKENS, partition_expr="domain"))
    def pivots(context) -> pd.DataFrame:
        domain = context.partition_key
        if domain == "math":
            return pd.DataFrame(columns=column_names(PIVOTAL_TOKENS))  # no pivot found
        prefix = [] if domain == "mcq" else [11, 12]
        rows = [dict(base, id=f"{domain}-{i}", domain=domain, problem_id=f"{domain}-p{i}", index=len(prefix),
                     prefix_ids=prefix) for i in range(5 if domain == "mcq" else 2)]
        return pd.DataFrame(rows)

    for domain in ("math", "mcq", "qa"):
        _materialize(db, [pivots], domain)
    assert _types(db, "pivotal_tokens")["prefix_ids"] == "INTEGER[]"
    assert _types(db, "pivotal_tokens")["index"] == "BIGINT"
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("select domain, prefix_ids from phi4.pivotal_tokens order by id").fetchall()
    assert rows == [("mcq", [])] * 5 + [("qa", [11, 12])] * 2


# -- every partitioned table, adversarial partition order ---------------------------------------------------

SAMPLES = {"VARCHAR": "text", "BIGINT": 7, "INTEGER": 7, "DOUBLE": 0.25, "BOOLEAN": True, "INTEGER[]": [3, 1, 4],
           "BIGINT[]": [3, 1, 4], "VARCHAR[]": ["a", "b"],
           "STRUCT(A VARCHAR, B VARCHAR, C VARCHAR, D VARCHAR)": {"A": "a", "B": "b", "C": "c", "D": "d"}}


def _value(type_: str, shape: str):
    """A value of the declared type: "normal", or the adversarial "sparse" shape (lists empty, the
    rest null)."""
    if type_ not in SAMPLES:
        raise AssertionError(f"no sample value for declared type {type_}: add one to SAMPLES")
    if shape == "normal":
        return SAMPLES[type_]
    return [] if type_.endswith("[]") else None


def _partitioned_tables():
    out = []
    for asset in load().assets:
        for spec in asset.specs:
            expr = spec.metadata.get("partition_expr")
            if expr:
                out.append((spec.key.path[-1], declared_schema(spec.metadata), expr))
    return out


def test_the_real_partitioned_tables_are_all_covered():
    names = {name for name, _, _ in _partitioned_tables()}
    assert names == {"policy_answer_samples", "answer_checks", "reference_answers", "bogus_questions", "refusals",
                     "pts_difficulty", "pivotal_tokens", "stage_evaluations"}


@pytest.mark.parametrize("name, schema, expr", _partitioned_tables(), ids=lambda v: v if isinstance(v, str) else "")
def test_zero_rows_then_sparse_then_normal_partitions_keep_the_declared_types(tmp_path, name, schema, expr):
    """First partition written: zero rows; then every list empty and every other optional column
    null; then a normal one. The table has the declared types, and reads back with them."""
    db = tmp_path / "w.duckdb"
    shapes = {"p1": "empty", "p2": "sparse", "p3": "normal"}

    def rows(partition):
        shape = shapes[partition]
        if shape == "empty":
            return pd.DataFrame(columns=column_names(schema))
        row = {c.name: _value(c.type, shape) for c in schema.columns}
        row[expr] = partition
        row["id"] = f"{partition}-row"
        return pd.DataFrame([row, dict(row, id=f"{partition}-row2")])

    @dg.asset(name=name, partitions_def=PARTS, metadata=schema_metadata(schema, partition_expr=expr))
    def table(context) -> pd.DataFrame:
        return rows(context.partition_key)

    seen = {}

    @dg.asset(ins={name: dg.AssetIn(name, partition_mapping=dg.AllPartitionMapping())})
    def reader(**inputs) -> None:
        seen["frame"] = inputs[name]

    for partition in ("p1", "p2", "p3"):
        _materialize(db, [table], partition)
    assert _types(db, name) == {c.name: c.type for c in schema.columns}
    dg.materialize([table, reader], resources=_io(db), selection=[reader.key])
    frame = seen["frame"].sort_values("id").reset_index(drop=True)
    assert list(frame[expr]) == ["p2", "p2", "p3", "p3"]
    for column in schema.columns:
        if column.name in ("id", expr):
            continue
        sparse, normal = frame[column.name][0], frame[column.name][2]
        if column.type.endswith("[]"):
            assert list(sparse) == [] and list(normal) == SAMPLES[column.type], column.name
        else:
            assert sparse is None or pd.isna(sparse), column.name
            assert normal == SAMPLES[column.type] or (isinstance(normal, np.floating) and normal == SAMPLES[column.type]), \
                column.name


# -- a frame that does not fit ----------------------------------------------------------------------------

SMALL = table_schema(id="VARCHAR", n="BIGINT", tags="VARCHAR[]")


def _asset(frame, schema=SMALL, name="small"):
    @dg.asset(name=name, metadata=schema_metadata(schema))
    def small() -> pd.DataFrame:
        return frame
    return small


def test_a_value_of_the_wrong_type_names_asset_column_and_types(tmp_path):
    result = _materialize(tmp_path / "w.duckdb", [_asset(pd.DataFrame({"id": ["a"], "n": ["seven"], "tags": [[]]}))],
                          raise_on_error=False)
    assert not result.success
    message = _error(result)
    assert "small" in message and "'n'" in message and "BIGINT" in message and "VARCHAR" in message
    assert "'seven'" in message


def test_fractions_do_not_round_into_an_integer_column(tmp_path):
    result = _materialize(tmp_path / "w.duckdb", [_asset(pd.DataFrame({"id": ["a"], "n": [2.5], "tags": [[]]}))],
                          raise_on_error=False)
    assert not result.success and "'n'" in _error(result) and "2.5" in _error(result)


def test_integral_floats_from_missing_values_are_fine(tmp_path):
    db = tmp_path / "w.duckdb"
    _materialize(db, [_asset(pd.DataFrame({"id": ["a", "b"], "n": [2.0, np.nan], "tags": [[], ["x"]]}))])
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select id, n, tags from phi4.small order by id").fetchall() == [("a", 2, []),
                                                                                         ("b", None, ["x"])]


def test_undeclared_and_missing_columns_are_refused(tmp_path):
    extra = _materialize(tmp_path / "a.duckdb",
                         [_asset(pd.DataFrame({"id": ["a"], "n": [1], "tags": [[]], "note": ["x"]}))],
                         raise_on_error=False)
    assert not extra.success and "['note']" in _error(extra) and "not declared" in _error(extra)
    missing = _materialize(tmp_path / "b.duckdb", [_asset(pd.DataFrame({"id": ["a"], "n": [1]}))],
                           raise_on_error=False)
    assert not missing.success and "['tags']" in _error(missing) and "missing" in _error(missing)


def test_a_table_asset_without_a_declaration_is_refused(tmp_path):
    @dg.asset(name="loose")
    def loose() -> pd.DataFrame:
        return pd.DataFrame({"a": [1]})

    result = _materialize(tmp_path / "w.duckdb", [loose], raise_on_error=False)
    assert not result.success and "loose" in _error(result) and SCHEMA_KEY in _error(result)


def test_an_empty_frame_creates_the_table_and_reads_back_typed(tmp_path):
    db = tmp_path / "w.duckdb"
    seen = {}

    @dg.asset(ins={"small": dg.AssetIn("small")})
    def reader(small) -> None:
        seen["frame"] = small

    empty = _asset(pd.DataFrame())
    _materialize(db, [empty])
    assert _types(db, "small") == {"id": "VARCHAR", "n": "BIGINT", "tags": "VARCHAR[]"}
    dg.materialize([empty, reader], resources=_io(db), selection=[reader.key])
    assert list(seen["frame"].columns) == ["id", "n", "tags"] and seen["frame"].empty


def test_a_never_written_table_loads_empty_with_its_declared_columns(tmp_path):
    seen = {}
    small = _asset(pd.DataFrame())

    @dg.asset(ins={"small": dg.AssetIn("small")})
    def reader(small) -> None:
        seen["frame"] = small

    dg.materialize([small, reader], resources=_io(tmp_path / "w.duckdb"), selection=[reader.key])
    assert list(seen["frame"].columns) == ["id", "n", "tags"]
    assert str(seen["frame"]["n"].dtype) in ("int64", "float64", "Int64")


# -- tables written by an older version ---------------------------------------------------------------------


def test_an_inferred_partitioned_table_is_migrated_to_its_declaration(tmp_path):
    """A warehouse from before the declarations: "NULL"[] and NULL columns, an undeclared column."""
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema phi4")
        con.execute("create table phi4.sharded as select 'p1' as part, 'a' as id, [] as tags, null as note, 1 as old")
    schema = table_schema(part="VARCHAR", id="VARCHAR", tags="INTEGER[]", note="VARCHAR", n="DOUBLE")

    @dg.asset(name="sharded", partitions_def=PARTS, metadata=schema_metadata(schema, partition_expr="part"))
    def sharded(context) -> pd.DataFrame:
        return pd.DataFrame({"part": [context.partition_key], "id": ["b"], "tags": [[1, 2]], "note": ["x"],
                             "n": [0.5]})

    _materialize(db, [sharded], "p2")
    assert _types(db, "sharded") == {"part": "VARCHAR", "id": "VARCHAR", "tags": "INTEGER[]", "note": "VARCHAR",
                                     "n": "DOUBLE"}
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select part, id, tags, note, n from phi4.sharded order by part").fetchall() == [
            ("p1", "a", [], None, None), ("p2", "b", [1, 2], "x", 0.5)]


def test_an_unpartitioned_table_is_recreated_when_its_declaration_changes(tmp_path):
    db = tmp_path / "w.duckdb"
    v1 = _asset(pd.DataFrame({"id": ["a"], "n": [1], "tags": [["x"]]}))
    v2 = _asset(pd.DataFrame({"id": ["b"], "score": [1.5]}), schema=table_schema(id="VARCHAR", score="DOUBLE"))
    _materialize(db, [v1])
    assert _types(db, "small") == {"id": "VARCHAR", "n": "BIGINT", "tags": "VARCHAR[]"}
    _materialize(db, [v2])
    assert _types(db, "small") == {"id": "VARCHAR", "score": "DOUBLE"}
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select id, score from phi4.small").fetchall() == [("b", 1.5)]  # v1's row is gone


# -- every table asset declares ------------------------------------------------------------------------------


def test_every_asset_stored_in_the_warehouse_declares_its_columns():
    assets = [spec.key.path[-1] for asset in load().assets for spec in asset.specs]
    declared = table_schemas()
    assert sorted(set(assets) - set(declared)) == []
    for name, schema in declared.items():
        assert schema.columns and len(set(column_names(schema))) == len(schema.columns), name
