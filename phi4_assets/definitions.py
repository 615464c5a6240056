"""The project's code location: every definition under ``phi4_assets/defs/`` (one module per
asset group, plus resources), found by Dagster's defs-folder loader. Served by ``dg dev`` /
``dg list defs`` (the ``[tool.dg]`` section of pyproject.toml) and by ``dagster dev -f
definitions.py`` at the repository root."""

from phi4_assets.defs import load

defs = load()
