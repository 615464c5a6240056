"""Pivotal Token Search (report Fig. 4): pure logic, no Dagster.

The search is ``find_pivotal_tokens(tokens, logprobs, p_success, p_gap)`` (``pts.search``),
exported here as the package's public interface."""

from .search import Pivot, find_pivotal_tokens, pivotal_token_search

__all__ = ["Pivot", "find_pivotal_tokens", "pivotal_token_search"]
