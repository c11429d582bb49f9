"""Deterministic data: one seed per test, derived from the run's base seed and the test id."""
