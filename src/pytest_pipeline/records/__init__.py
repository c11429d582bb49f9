"""Records and their files: one implementation shared by fixture files, S3, Kafka and Postgres.

* :mod:`~pytest_pipeline.records.codec`: the suffix table and reading / writing JSON, JSON
  Lines, CSV and Parquet (and their ``.gz`` forms) as bytes.
* :mod:`~pytest_pipeline.records.tables`: records from and to DataFrames and Arrow Tables,
  column order, record-list checks.
* :mod:`~pytest_pipeline.records.values`: numpy / pandas scalars as plain Python values and the
  JSON form of every value.

Importing any of them costs only the standard library: pandas and pyarrow are imported when a
DataFrame, a Table or a CSV / Parquet file is actually handled.
"""
