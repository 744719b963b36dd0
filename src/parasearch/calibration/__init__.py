"""Fitting the oracle's efficiency parameters to measurements (kernel or whole-model)."""
