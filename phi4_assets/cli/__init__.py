"""The ``phi4`` command (``main``): demo, eval, estimate, lineage, info."""
