"""Problem files: pydantic at the edge, frozen dataclasses inside."""

from .problem import Pool, Problem, SearchLimits, Slo, load_problem, problem_from_text

__all__ = ["Pool", "Problem", "SearchLimits", "Slo", "load_problem", "problem_from_text"]
