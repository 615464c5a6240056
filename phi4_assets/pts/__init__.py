"""Pivotal Token Search (report Fig. 4): pure logic, no Dagster."""
