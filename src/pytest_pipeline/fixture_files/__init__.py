"""Fixture files: load JSON, JSONL, CSV and Parquet files and compare results with them."""
