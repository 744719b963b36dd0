"""Exact cluster planning: integer counts of replica configurations over GPU pools (PuLP)."""

from .plan import ilp_search

__all__ = ["ilp_search"]
