"""Reading, validating and generating the source data (pure functions, no Dagster)."""
