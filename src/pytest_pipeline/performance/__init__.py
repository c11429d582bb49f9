"""Performance budgets: seconds, records per second and peak memory, and regressions."""
