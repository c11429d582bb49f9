"""Performance layer: the transforms on seeded, realistic volumes, within pyproject budgets.

Budgets live in ``[tool.pytest-pipeline.budgets]`` of the example's pyproject.toml, with one
override per test below (records and time); ``--pipeline-time-scale 2`` doubles every time
budget on a slow runner. Data is generated before the measured block, from ``pipeline_seed``.
"""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from payments.quality.gate import gate, warm_up
from payments.sinks.s3 import SILVER_SCHEMA, encode_parquet
from payments.transforms.payments import normalise, totals_by_merchant


def test_normalise_a_large_batch(budget, make_events) -> None:
    events = make_events(budget.limits.records)  # records: from the override in pyproject
    split = budget.run(normalise, events)
    assert len(split.valid) + len(split.rejected) + split.duplicates == len(events)
    assert budget.result.records_per_second > 0


def test_totals_of_a_large_batch(budget, make_events) -> None:
    silver = normalise(make_events(budget.limits.records)).valid
    totals = budget.run(totals_by_merchant, silver, records=len(silver))
    assert sum(t["payments"] for t in totals) == len(silver)


def test_encode_silver_parquet(budget, make_events) -> None:
    silver = normalise(make_events(budget.limits.records)).valid
    body = budget.run(encode_parquet, silver, records=len(silver))
    assert body.startswith(b"PAR1")


def test_encode_synthetic_silver(budget, synthetic) -> None:
    # Silver records made from the suite the gate enforces, typed by the sink's schema: no
    # production data, boundary values first, the same records on every run of this test.
    silver = synthetic.records("silver_payments", budget.limits.records, schema=SILVER_SCHEMA)
    body = budget.run(encode_parquet, silver, records=len(silver))
    assert pq.read_metadata(io.BytesIO(body)).num_rows == len(silver)


def test_quality_gate_on_a_large_batch(budget, make_events) -> None:
    silver = normalise(make_events(budget.limits.records)).valid
    warm_up()  # Great Expectations starts once per process (seconds): not part of a batch
    with budget.measure(records=len(silver)):
        gated = gate(silver)
    assert len(gated.passed) == len(silver)


@pytest.mark.performance(records=10_000, max_seconds=1.0)
def test_normalise_a_default_micro_batch(budget, make_events) -> None:
    # The pipeline's default batch (max_records=10_000): a marker budget beats the overrides.
    events = make_events(budget.limits.records)
    split = budget.run(normalise, events)
    assert split.valid
