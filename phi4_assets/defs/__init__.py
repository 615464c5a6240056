"""Dagster definitions, one module per asset group (loaded by ``definitions.py``)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg


def load() -> dg.Definitions:
    """Every definition of the project (what ``definitions.py`` serves), its resources configured
    from the environment now."""
    import dagster as dg

    from ..config.settings import REPO_ROOT

    return dg.load_from_defs_folder(path_within_project=REPO_ROOT)


@cache
def table_schemas() -> dict:
    """Asset name -> its declared ``dg.TableSchema``: the columns of every warehouse table."""
    from ..core.warehouse import declared_schemas

    return declared_schemas(load().assets or [])


def table_columns() -> dict[str, list[str]]:
    """Asset name -> the declared column names of its warehouse table."""
    from ..core.warehouse import column_names

    return {name: column_names(schema) for name, schema in table_schemas().items()}
