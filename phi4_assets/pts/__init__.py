"""Pivotal Token Search (report Fig. 4): pure logic, no Dagster.

The search is ``find_pivotal_tokens(tokens, logprobs, p_success, p_gap)`` (``pts.search``), and
``search_many(responses, estimate, p_gap)`` runs several in lockstep with their estimates asked
together, exported here as the package's public interface."""

from .search import Pivot, find_pivotal_tokens, pivotal_token_search, search_many

__all__ = ["Pivot", "find_pivotal_tokens", "pivotal_token_search", "search_many"]
