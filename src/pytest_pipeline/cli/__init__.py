"""The ``pytest-pipeline`` command: ``init``, ``doctor``, ``report`` and ``scan``."""
