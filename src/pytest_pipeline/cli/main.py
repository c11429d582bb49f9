"""The ``pytest-pipeline`` console script: ``doctor``, ``init`` and ``report``."""

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


def _doctor(args: argparse.Namespace) -> int:
    from pytest_pipeline import config
    from pytest_pipeline.cli import doctor

    rootdir = args.rootdir or _find_rootdir(Path.cwd())
    resolved = config.resolve(rootdir.resolve(), {})
    print(doctor.render(resolved))
    return 0


def _init(args: argparse.Namespace) -> int:
    from pytest_pipeline.cli import scaffold

    return scaffold.run(args)


def _report(args: argparse.Namespace) -> int:
    from pytest_pipeline.report import command as trend

    return trend.run(args)


class _Version(argparse.Action):
    """``--version``: the distribution's version, read from its metadata only when asked."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object, **__: object) -> None:
        from importlib import metadata

        print(f"{parser.prog} {metadata.version('pytest-pipeline')}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (each module adds its own options)."""
    parser = argparse.ArgumentParser(
        prog="pytest-pipeline", description="Tools for pipeline test suites."
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="print the installed version and exit"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    doctor_cmd = commands.add_parser(
        "doctor", help="show which service backends can run here and the resolved configuration"
    )
    doctor_cmd.add_argument(
        "--rootdir", type=Path, default=None, help="project folder (default: nearest pyproject)"
    )
    doctor_cmd.set_defaults(handler=_doctor)

    from pytest_pipeline.cli import scaffold  # both are stdlib-only at import time
    from pytest_pipeline.report import command as trend

    init_cmd = commands.add_parser("init", help=scaffold.HELP)
    scaffold.add_arguments(init_cmd)
    init_cmd.set_defaults(handler=_init)
    report_cmd = commands.add_parser("report", help=trend.HELP)
    trend.add_arguments(report_cmd)
    report_cmd.set_defaults(handler=_report)
    from pytest_pipeline.pii import command as pii_command  # stdlib-only at import time

    scan_cmd = commands.add_parser("scan", help=pii_command.HELP)
    pii_command.add_arguments(scan_cmd)
    scan_cmd.set_defaults(
        handler=lambda args: pii_command.run(args.rootdir or _find_rootdir(Path.cwd()))
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pytest-pipeline`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
