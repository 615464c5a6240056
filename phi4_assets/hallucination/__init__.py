"""Hallucination-mitigation data (report App. A.1): pure logic, no Dagster."""
