"""The warehouse: one DuckDB file, one table per table asset, each created from a declared schema.

Every table asset declares its columns and their DuckDB types once, next to the code that builds
its rows, with ``table_schema(...)``; the declaration goes into the asset's definition metadata
as ``dagster/column_schema`` (the UI shows it on the asset page) through ``schema_metadata``.

The IO manager (dagster-duckdb-pandas underneath) never infers a table's types from the first
frame it sees. Inferred types depend on what a partition happens to hold: a first partition whose
list column holds only empty lists makes DuckDB type it ``"NULL"[]``, and every later partition's
``INTEGER[]`` values then fail to insert. Here:

- a table is created from its declaration (an existing table that differs from it is migrated:
  columns added, retyped or dropped);
- each frame is checked against the declaration and cast to it on write. A frame that does not
  fit fails with ``TableSchemaError`` naming the asset, the partition, the column, the declared
  and the actual type (and a value that does not cast);
- empty frames (with or without columns), empty lists and all-null columns write, and read back
  with the declared types; loading a table that was never written yields an empty frame with the
  declared columns and types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dagster as dg
import duckdb
import pandas as pd
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._core.storage.db_io_manager import DbTypeHandler
from dagster_duckdb import DuckDBIOManager
from dagster_duckdb.io_manager import DuckDbClient

SCHEMA_KEY = "dagster/column_schema"
NULL_TYPES = ('"NULL"', "NULL")
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_FRACTIONS = ("FLOAT", "DOUBLE", "DECIMAL")


class TableSchemaError(ValueError):
    """A frame does not fit its table's declared schema, or a table asset declares none."""


# -- declarations ------------------------------------------------------------------------------


def table_schema(**columns: str | tuple[str, str]) -> dg.TableSchema:
    """A table's columns in order: ``name="DUCKDB TYPE"`` or ``name=("TYPE", "description")``."""
    out = []
    for name, spec in columns.items():
        type_, description = (spec, None) if isinstance(spec, str) else spec
        out.append(dg.TableColumn(name=name, type=type_.strip(), description=description))
    return dg.TableSchema(columns=out)


def schema_metadata(schema: dg.TableSchema, **metadata) -> dict:
    """Definition metadata for a table asset: its declared schema (and any other entries)."""
    return {SCHEMA_KEY: schema, **metadata}


def column_names(schema: dg.TableSchema) -> list[str]:
    return [c.name for c in schema.columns]


def frame_of(rows: Iterable[Mapping], schema: dg.TableSchema) -> pd.DataFrame:
    """Rows as a frame with exactly the declared columns, in order (an empty input keeps them)."""
    return pd.DataFrame(list(rows), columns=column_names(schema))


def declared_schema(metadata: Mapping | None) -> dg.TableSchema | None:
    value = (metadata or {}).get(SCHEMA_KEY)
    return value.schema if isinstance(value, dg.TableSchemaMetadataValue) else value


def declared_schemas(assets: Iterable) -> dict[str, dg.TableSchema]:
    """Asset name -> declared schema, over asset definitions (``dg.Definitions.assets``)."""
    out = {}
    for asset in assets:
        for spec in getattr(asset, "specs", []):
            schema = declared_schema(spec.metadata)
            if schema is not None:
                out[spec.key.path[-1]] = schema
    return out


# -- DuckDB side (pure over a connection) --------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_null_type(type_: str) -> bool:
    """DuckDB's type for a column with no value to infer from: NULL, "NULL"[], "NULL"[][] ..."""
    base = type_
    while base.endswith("[]"):
        base = base[:-2]
    return base in NULL_TYPES


def _base(type_: str) -> str:
    return type_.split("(")[0].strip().upper()


def create_sql(table: str, schema: dg.TableSchema) -> str:
    return f"create table {table} (" + ", ".join(f"{_q(c.name)} {c.type}" for c in schema.columns) + ")"


def empty_frame(connection: duckdb.DuckDBPyConnection, schema: dg.TableSchema) -> pd.DataFrame:
    """A zero-row frame with the declared columns and the dtypes a read of the table would give."""
    select = ", ".join(f"cast(null as {c.type}) as {_q(c.name)}" for c in schema.columns)
    return connection.execute(f"select {select} limit 0").fetchdf()


def check_frame(connection: duckdb.DuckDBPyConnection, view: str, frame: pd.DataFrame, schema: dg.TableSchema,
                where: str) -> None:
    """Raise ``TableSchemaError`` unless every value of ``frame`` (registered as ``view``) casts to
    its declared type without loss; ``where`` names the asset (and partition) in the message."""
    declared = {c.name: c.type for c in schema.columns}
    extra = [c for c in frame.columns if c not in declared]
    missing = [c for c in declared if c not in frame.columns]
    if extra:
        raise TableSchemaError(f"{where}: column(s) {extra} are not declared in the table schema "
                               f"(declared: {list(declared)})")
    if missing and len(frame):
        raise TableSchemaError(f"{where}: declared column(s) {missing} are missing from the frame")
    try:
        actual = {row[0]: row[1] for row in connection.execute(f"describe select * from {view}").fetchall()}
    except duckdb.Error as e:
        raise TableSchemaError(f"{where}: the frame cannot be read as a table: {e}") from e
    for column in frame.columns:
        want, have = declared[column], actual[column]
        if have == want or _is_null_type(have):
            continue
        c = _q(column)
        bad = connection.execute(f"select {c} from {view} where {c} is not null and try_cast({c} as {want}) is null "
                                 "limit 1").fetchall()
        if not bad and _base(want) in _INTEGERS and _base(have) in _FRACTIONS:
            bad = connection.execute(f"select {c} from {view} where {c} is not null and {c} <> trunc({c}) "
                                     "limit 1").fetchall()
        if bad:
            raise TableSchemaError(f"{where}: column {column!r} is declared {want} but the frame holds {have} "
                                   f"(e.g. {bad[0][0]!r} does not convert)")


def ensure_table(connection: duckdb.DuckDBPyConnection, table: str, schema: dg.TableSchema,
                 partitioned: bool, log=None) -> None:
    """Create ``table`` from its declaration, or bring an existing one in line with it.

    An unpartitioned table is rewritten whole on every write, so it is simply recreated. A
    partitioned one keeps its other partitions: declared columns it lacks are added (NULL in the
    older partitions), columns are retyped where their values cast, undeclared ones are dropped."""
    schema_name, name = table.split(".", 1)
    rows = connection.execute("select column_name, data_type from information_schema.columns "
                              "where table_schema = ? and table_name = ? order by ordinal_position",
                              [schema_name, name]).fetchall()
    existing = dict(rows)
    declared = {c.name: c.type for c in schema.columns}
    if not existing:
        connection.execute(create_sql(table, schema))
        return
    if existing == declared:
        return
    if not partitioned:
        connection.execute(f"drop table {table}")
        connection.execute(create_sql(table, schema))
        return
    for column, type_ in declared.items():
        try:
            if column not in existing:
                connection.execute(f"alter table {table} add column {_q(column)} {type_}")
            elif existing[column] != type_:
                connection.execute(f"alter table {table} alter {_q(column)} type {type_}")
            else:
                continue
        except duckdb.Error as e:
            raise TableSchemaError(f"{table}: the existing column {column!r} ({existing.get(column)}) cannot become "
                                   f"the declared {type_}: {e}. Drop the table (its asset is re-materialized "
                                   "from its inputs) and run again.") from e
        if log:
            log.info(f"{table}: column {column} now {type_} (was {existing.get(column, 'absent')})")
    for column in existing:
        if column not in declared:
            connection.execute(f"alter table {table} drop column {_q(column)}")
            if log:
                log.warning(f"{table}: dropped column {column}, no longer declared")


def write_frame(connection: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, schema: dg.TableSchema,
                partitioned: bool, where: str, log=None) -> None:
    """Check ``frame`` against ``schema``, make sure the table matches it, insert the rows cast to
    the declared types. (Deleting the slice being replaced is the caller's.)"""
    if frame.empty and len(frame.columns) == 0:  # "nothing found": no columns to check
        ensure_table(connection, table, schema, partitioned, log)
        return
    view = "_phi4_incoming"
    connection.register(view, frame)
    try:
        check_frame(connection, view, frame, schema, where)
        ensure_table(connection, table, schema, partitioned, log)
        if len(frame):
            select = ", ".join(f"cast({_q(c.name)} as {c.type}) as {_q(c.name)}" for c in schema.columns)
            try:
                connection.execute(f"insert into {table} by name select {select} from {view}")
            except duckdb.Error as e:
                raise TableSchemaError(f"{where}: writing {table} failed: {e}") from e
    finally:
        connection.unregister(view)


# -- the IO manager ---------------------------------------------------------------------------------


class DeclaredSchemaPandasTypeHandler(DbTypeHandler[pd.DataFrame]):
    """Pandas frames in DuckDB tables created from the asset's declared schema."""

    @property
    def supported_types(self):
        return [pd.DataFrame]

    def handle_output(self, context: dg.OutputContext, table_slice, obj: pd.DataFrame, connection):
        asset = context.asset_key.to_user_string() if context.has_asset_key else table_slice.table
        where = asset + (f" [partition {context.partition_key}]" if context.has_partition_key else "")
        schema = declared_schema(context.definition_metadata)
        if schema is None:
            raise TableSchemaError(f"{asset}: a table asset must declare its columns "
                                   f"(metadata {SCHEMA_KEY!r}, see phi4_assets.core.warehouse.table_schema)")
        table = f"{table_slice.schema}.{table_slice.table}"
        partitioned = bool(table_slice.partition_dimensions)
        write_frame(connection, table, obj, schema, partitioned, where, context.log)
        return dict(TableMetadataSet(partition_row_count=len(obj), storage_kind="duckdb") if partitioned
                    else TableMetadataSet(row_count=len(obj), storage_kind="duckdb"))

    def load_input(self, context: dg.InputContext, table_slice, connection) -> pd.DataFrame:
        upstream = context.upstream_output
        schema = declared_schema(upstream.definition_metadata) if upstream is not None else None
        exists = connection.execute("select 1 from information_schema.tables where table_schema = ? and "
                                    "table_name = ?", [table_slice.schema, table_slice.table]).fetchall()
        no_partition = bool(table_slice.partition_dimensions) and len(context.asset_partition_keys) == 0
        if not exists or no_partition:
            if not exists:
                context.log.warning(f"{table_slice.schema}.{table_slice.table} has no rows yet: loading it as empty")
            return empty_frame(connection, schema) if schema is not None else pd.DataFrame()
        return connection.execute(DuckDbClient.get_select_statement(table_slice)).fetchdf()


class WarehouseIOManager(DuckDBIOManager):
    @staticmethod
    def type_handlers():
        return [DeclaredSchemaPandasTypeHandler()]

    @staticmethod
    def default_load_type():
        return pd.DataFrame
