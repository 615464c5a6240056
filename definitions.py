"""Dagster entry point: ``dagster dev -f definitions.py`` (or ``dg dev``). The definitions are
``phi4_assets.definitions``: the modules of ``phi4_assets/defs/``, one per asset group; resources
are configured from ``PHI4_PROFILE`` (see README)."""

from phi4_assets.definitions import defs

__all__ = ["defs"]
