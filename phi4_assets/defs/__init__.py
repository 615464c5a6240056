"""Dagster definitions, one module per asset group (loaded by ``definitions.py``)."""
