"""The warehouse IO manager when an asset's columns change between versions."""

import dagster as dg
import duckdb
import pandas as pd

from phi4_assets.warehouse import WarehouseIOManager


def _materialize(db, asset, partition=None):
    return dg.materialize([asset], resources={"io_manager": WarehouseIOManager(database=str(db), schema="phi4")},
                          partition_key=partition)


def test_an_unpartitioned_table_is_replaced_when_its_columns_change(tmp_path):
    db = tmp_path / "w.duckdb"

    @dg.asset(name="table")
    def v1() -> pd.DataFrame:
        return pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})

    @dg.asset(name="table")
    def v2() -> pd.DataFrame:
        return pd.DataFrame({"c": [1.5], "b": ["z"], "a": [3]})

    assert _materialize(db, v1).success
    assert _materialize(db, v2).success
    with duckdb.connect(str(db)) as con:
        assert con.execute("select a, b, c from phi4.table").fetchall() == [(3, "z", 1.5)]


def test_a_partitioned_table_gains_new_columns_and_keeps_other_partitions(tmp_path):
    db = tmp_path / "w.duckdb"
    parts = dg.StaticPartitionsDefinition(["p1", "p2"])

    @dg.asset(name="sharded", partitions_def=parts, metadata={"partition_expr": "part"})
    def v1(context) -> pd.DataFrame:
        return pd.DataFrame({"part": [context.partition_key], "a": [1]})

    @dg.asset(name="sharded", partitions_def=parts, metadata={"partition_expr": "part"})
    def v2(context) -> pd.DataFrame:
        return pd.DataFrame({"extra": ["new"], "a": [2], "part": [context.partition_key]})

    assert _materialize(db, v1, "p1").success
    assert _materialize(db, v2, "p2").success
    assert _materialize(db, v2, "p2").success  # re-writing a partition replaces its rows
    with duckdb.connect(str(db)) as con:
        rows = con.execute("select part, a, extra from phi4.sharded order by part").fetchall()
    assert rows == [("p1", 1, None), ("p2", 2, "new")]


def test_a_column_all_null_in_the_first_partition_takes_its_type_later(tmp_path):
    db = tmp_path / "w.duckdb"
    parts = dg.StaticPartitionsDefinition(["p1", "p2"])

    @dg.asset(name="sharded", partitions_def=parts, metadata={"partition_expr": "part"})
    def table(context) -> pd.DataFrame:
        value = None if context.partition_key == "p1" else "text"
        return pd.DataFrame({"part": [context.partition_key], "maybe": [value]})

    assert _materialize(db, table, "p1").success
    assert _materialize(db, table, "p2").success
    with duckdb.connect(str(db)) as con:
        assert con.execute("select part, maybe from phi4.sharded order by part").fetchall() == [("p1", None),
                                                                                              ("p2", "text")]


def test_integers_widen_to_fractions_in_a_later_partition(tmp_path):
    db = tmp_path / "w.duckdb"
    parts = dg.StaticPartitionsDefinition(["p1", "p2"])

    @dg.asset(name="sharded", partitions_def=parts, metadata={"partition_expr": "part"})
    def table(context) -> pd.DataFrame:
        return pd.DataFrame({"part": [context.partition_key], "v": [3 if context.partition_key == "p1" else 2.5]})

    assert _materialize(db, table, "p1").success
    assert _materialize(db, table, "p2").success
    with duckdb.connect(str(db)) as con:
        assert con.execute("select part, v from phi4.sharded order by part").fetchall() == [("p1", 3.0), ("p2", 2.5)]
