"""No production data in fixture files: detectors, the scanner and its pytest hooks.

:mod:`~pytest_pipeline.pii.detectors` finds values that look real in text (Luhn-valid card
numbers, IBANs, e-mail addresses, E.164 phone numbers, national IDs) and masks them;
:mod:`~pytest_pipeline.pii.scanner` walks ``fixtures_dir`` with the fixture loader's readers;
:mod:`~pytest_pipeline.pii.plugin` runs it at collection (``fixtures_pii``) and
:mod:`~pytest_pipeline.pii.command` is ``pytest-pipeline scan``.

Standard library only at import time: Parquet files load pyarrow when one is scanned.
"""
