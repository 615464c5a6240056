"""The warehouse IO manager: dagster-duckdb-pandas, plus two behaviours it lacks.

- It skips writing an empty DataFrame (no table is created), and then fails to load that asset
  downstream. A stage that legitimately finds nothing (no pivot in a domain, no pair) must not
  break its consumers, so loading a table that was never created yields an empty DataFrame.
- It inserts with ``select *`` into the existing table, so a new version of an asset that adds
  or reorders columns fails to write, and a column that was all null in the first partition
  written (DuckDB type NULL) rejects every later value. Here an unpartitioned table is replaced
  whole; a partitioned one gains new columns (older partitions read them as NULL), takes the
  type of a column that had none, and is written by column name.
"""

import duckdb
import pandas as pd
from dagster._core.definitions.metadata import TableMetadataSet
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler


NULL_TYPES = ('"NULL"', "NULL")
_NUMERIC = ["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "DOUBLE"]
WIDENINGS = {(a, b) for i, a in enumerate(_NUMERIC) for b in _NUMERIC[i + 1:]}


class EmptySafePandasTypeHandler(DuckDBPandasTypeHandler):
    def load_input(self, context, table_slice, connection) -> pd.DataFrame:
        try:
            return super().load_input(context, table_slice, connection)
        except duckdb.CatalogException:
            context.log.warning(f"{table_slice.schema}.{table_slice.table} has no rows yet: loading it as empty")
            return pd.DataFrame()


    def handle_output(self, context, table_slice, obj: pd.DataFrame, connection):
        if obj.empty or not self._exists(connection, table_slice):
            return super().handle_output(context, table_slice, obj, connection)
        table = f"{table_slice.schema}.{table_slice.table}"
        if not table_slice.partition_dimensions:
            connection.execute(f"create or replace table {table} as select * from obj")
        else:
            existing = {row[0]: row[1] for row in connection.execute(f"describe {table}").fetchall()}
            types = {row[0]: row[1] for row in connection.execute("describe select * from obj").fetchall()}
            for column in obj.columns:
                if column not in existing:
                    context.log.info(f"{table}: adding column {column} ({types[column]})")
                    connection.execute(f'alter table {table} add column "{column}" {types[column]}')
                elif types[column] in NULL_TYPES or types[column] == existing[column]:
                    continue
                elif existing[column] in NULL_TYPES or (existing[column], types[column]) in WIDENINGS:
                    # All null in the partitions written so far, or integers now meeting fractions.
                    context.log.info(f"{table}: column {column} {existing[column]} -> {types[column]}")
                    connection.execute(f'alter table {table} alter "{column}" type {types[column]}')
                else:
                    context.log.warning(f"{table}: column {column} is {existing[column]} in the table and "
                                        f"{types[column]} in this partition: values are cast to {existing[column]}")
            connection.execute(f"insert into {table} by name select * from obj")
        partitioned = bool(table_slice.partition_dimensions)
        context.add_output_metadata(dict(TableMetadataSet(partition_row_count=len(obj), storage_kind="duckdb")
                                         if partitioned else TableMetadataSet(row_count=len(obj), storage_kind="duckdb")))

    @staticmethod
    def _exists(connection, table_slice) -> bool:
        return bool(connection.execute(
            "select 1 from information_schema.tables where table_schema = ? and table_name = ?",
            [table_slice.schema, table_slice.table]).fetchall())


class WarehouseIOManager(DuckDBPandasIOManager):
    @staticmethod
    def type_handlers():
        return [EmptySafePandasTypeHandler()]
