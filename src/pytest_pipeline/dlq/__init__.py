"""The DLQ rule: every integration test asserts its expected dead-letter-queue count."""

from __future__ import annotations

from pytest_pipeline.dlq.rule import assert_dlq_count, count_of

__all__ = ["assert_dlq_count", "count_of"]
