"""Dagster entry point: ``dagster dev -f definitions.py``. Assets live in ``phi4_assets/defs/``,
one module per group; resources are configured from ``PHI4_PROFILE`` (see README)."""

from phi4_assets.defs import load

defs = load()
