"""Deterministic data: one seed per test, derived from the run's base seed and the test id.

The derivation uses only the base seed and the node id, so a test gets the same seed in every
run, in any order, on any pytest-xdist worker.
"""

from __future__ import annotations

import hashlib
import random
import sys


def derive_seed(base_seed: int, nodeid: str) -> int:
    """The seed of test ``nodeid``: stable, and below 2**32 as numpy's legacy seeding needs."""
    digest = hashlib.sha256(f"{base_seed}:{nodeid}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


class SessionSeeds:
    """Seeds for data shared by several tests (session or module fixtures).

    ``pipeline_seed`` is per test; a session fixture that builds one large data set for many
    performance tests takes ``pipeline_seeds.derive("orders-100k")`` instead: stable for a
    base seed, the same in every xdist worker, different per name.
    """

    def __init__(self, base: int) -> None:
        self.base = base

    def derive(self, name: str) -> int:
        """The seed for ``name`` (below 2**32, like test seeds)."""
        return derive_seed(self.base, f"session:{name}")

    def __repr__(self) -> str:
        return f"SessionSeeds(base={self.base})"


def seed_everything(seed: int) -> list[str]:
    """Seed ``random``, and numpy and Faker when the test session has imported them.

    numpy and Faker are seeded only if already imported: importing them here would make every
    pytest run pay for them. A test module that uses them has imported them at collection.
    Returns the names of what was seeded.
    """
    random.seed(seed)
    seeded = ["random"]
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed)
        seeded.append("numpy")
    faker = sys.modules.get("faker")
    if faker is not None and hasattr(faker, "Faker"):
        faker.Faker.seed(seed)
        seeded.append("faker")
    return seeded
