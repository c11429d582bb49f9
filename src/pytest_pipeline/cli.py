"""The ``pytest-pipeline`` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_pipeline.errors import PipelineError


def _find_rootdir(start: Path) -> Path:
    """The nearest folder upwards holding a pyproject.toml (like pytest), else ``start``."""
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return start


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``pytest-pipeline doctor``."""
    parser = argparse.ArgumentParser(
        prog="pytest-pipeline", description="Tools for pipeline test suites."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    doctor_cmd = commands.add_parser(
        "doctor", help="show which service backends can run here and the resolved configuration"
    )
    doctor_cmd.add_argument(
        "--rootdir", type=Path, default=None, help="project folder (default: nearest pyproject)"
    )
    args = parser.parse_args(argv)

    from pytest_pipeline import config, doctor

    rootdir = args.rootdir or _find_rootdir(Path.cwd())
    try:
        resolved = config.resolve(rootdir.resolve(), {})
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(doctor.render(resolved))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
