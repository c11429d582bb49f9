"""``pytest-pipeline scan``: the ``fixtures_pii`` scan from the command line.

Exit status: 0 when no fixture file holds data that looks real, 1 when one does (each value
listed, masked), 2 for a usage error (a missing rootdir or fixtures directory). The scan runs
whatever ``fixtures_pii`` says (asking for it is the point; with ``"off"`` it says that test runs
do not scan) and honours ``fixtures_pii_allow``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pytest_pipeline.errors import PipelineError

HELP = "scan fixtures_dir for data that looks real (card numbers, IBANs, e-mails, phones, IDs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pytest-pipeline scan``."""
    parser.add_argument(
        "--rootdir", type=Path, default=None, help="project folder (default: nearest pyproject)"
    )


def run(rootdir: Path) -> int:
    """Scan the fixtures of the project at ``rootdir``; print the hits; the exit status."""
    from pytest_pipeline import config
    from pytest_pipeline.pii import scanner

    if not rootdir.is_dir():
        raise PipelineError(f"pytest-pipeline scan: --rootdir {rootdir} is not a directory")
    rootdir = rootdir.resolve()
    resolved = config.resolve(rootdir, {})
    root = resolved.fixtures_dir.resolve()
    if not root.is_dir():
        raise PipelineError(
            f"pytest-pipeline scan: fixtures directory {resolved.fixtures_dir} does not exist; "
            "set fixtures_dir under [tool.pytest-pipeline] in pyproject.toml, or pass --rootdir "
            "with the project folder"
        )
    if resolved.fixtures_pii == "off":
        print(
            "pytest-pipeline scan: fixtures_pii is off for test runs (pytest does not scan); "
            "scanning because you asked"
        )
    prefix = os.path.relpath(root, rootdir).replace(os.sep, "/")
    prefix = "" if prefix == "." else prefix + "/"
    result, _ = scanner.scan_tree(
        root,
        allow=resolved.fixtures_pii_allow,
        limit=int(resolved.fixtures_max_mb * 1024 * 1024),
        display_prefix=prefix,
    )
    for reason in result.skipped:
        print(f"not scanned: {reason}")
    skipped_files = (
        f"; {result.allowed_files} file(s) not scanned: allowlisted by fixtures_pii_allow"
        if result.allowed_files
        else ""
    )
    if result.hits:
        print(scanner.report(result, prefix, limit=None))
        if skipped_files:
            print(f"pytest-pipeline scan: {skipped_files.lstrip('; ')}")
        return 1
    allowed = f", {result.allowed} allowed by fixtures_pii_allow" if result.allowed else ""
    print(
        f"pytest-pipeline scan: {result.files} fixture file(s) in {prefix or root}, no data "
        f"that looks real{allowed}{skipped_files}"
    )
    return 0
