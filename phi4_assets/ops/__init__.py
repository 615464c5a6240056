"""Operating the graph without running it: ``estimate`` (teacher calls, tokens and cost before a
run) and ``lineage`` (from any row back to what made it)."""
