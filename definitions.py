"""Dagster entry point: ``dagster dev -f definitions.py``. Assets live in ``phi4_assets/defs/``,
one module per group; resources are configured from ``PHI4_PROFILE`` (see README)."""

import dagster as dg

import phi4_assets.defs

defs = dg.load_defs(defs_root=phi4_assets.defs)
