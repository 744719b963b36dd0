"""Turning search results into rows, tables, JSON, CSV and plots."""
