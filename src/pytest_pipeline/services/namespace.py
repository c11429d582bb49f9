"""What the per-test namespaces share: Postgres databases, Kafka topics, S3 buckets.

One lifecycle for the three objects the ``postgres``, ``kafka`` and ``s3`` fixtures give:

- ``close(delete=...)`` releases the namespace's clients and, with ``delete``, removes what
  it created there (only that). It is idempotent; a later ``close(delete=True)`` still
  removes what an earlier ``close(delete=False)`` kept.
- ``with namespace:`` closes it with ``delete=True`` when the block ends, as the fixtures do
  after a test (unless ``--pipeline-keep-failed`` keeps a failed test's).
- ``repr`` shows where it lives and what it made, never a secret.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import ClassVar, Self

from pytest_pipeline.errors import ServiceError

__all__ = ["Namespace"]


class Namespace(ABC):
    """Base of :class:`~pytest_pipeline.services.postgres.PostgresDatabase`,
    :class:`~pytest_pipeline.services.kafka.KafkaNamespace` and
    :class:`~pytest_pipeline.services.s3.S3Namespace`."""

    #: What it is, for messages: ``"Kafka namespace"``.
    noun: ClassVar[str]

    def __init__(self, label: str, lock: threading.RLock | None = None) -> None:
        # Its name in messages (a database name, a topic or bucket prefix).
        self._label = label
        # Held while it closes; subclasses hold it around their own requests too.
        self._lock = lock if lock is not None else threading.RLock()
        self._closed = False
        self._deleted = False

    @abstractmethod
    def _shown(self) -> dict[str, object]:
        """What ``repr`` shows, by name: no field that holds a secret."""

    @abstractmethod
    def _close(self, *, delete: bool) -> None:
        """Release the clients and, with ``delete``, remove what this namespace created."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._shown().items())
        return f"{type(self).__name__}({fields})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(delete=True)

    def _check_open(self) -> None:
        """Refuse a request once the namespace is closed."""
        if self._closed:
            raise ServiceError(f"the {self.noun} {self._label!r} is closed")

    def close(self, *, delete: bool = True) -> None:
        """Release this namespace's clients; ``delete`` also removes what it created (only
        that). Idempotent: a later ``close(delete=True)`` still removes what an earlier
        ``close(delete=False)`` kept. The fixtures pass ``delete=False`` only when
        ``--pipeline-keep-failed`` keeps a failed test's namespace.
        """
        with self._lock:
            if self._closed and (self._deleted or not delete):
                return
            self._closed = True
            self._close(delete=delete)
            self._deleted = delete  # not when removing failed: a later close tries again
