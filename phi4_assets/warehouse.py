"""The warehouse IO manager: dagster-duckdb-pandas, plus one behaviour it lacks.

It skips writing an empty DataFrame (no table is created), and then fails to load that asset
downstream. A stage that legitimately finds nothing (no pivot in a domain, no pair) must not
break its consumers, so loading a table that was never created yields an empty DataFrame.
"""

import duckdb
import pandas as pd
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler


class EmptySafePandasTypeHandler(DuckDBPandasTypeHandler):
    def load_input(self, context, table_slice, connection) -> pd.DataFrame:
        try:
            return super().load_input(context, table_slice, connection)
        except duckdb.CatalogException:
            context.log.warning(f"{table_slice.schema}.{table_slice.table} has no rows yet: loading it as empty")
            return pd.DataFrame()


class WarehouseIOManager(DuckDBPandasIOManager):
    @staticmethod
    def type_handlers():
        return [EmptySafePandasTypeHandler()]
