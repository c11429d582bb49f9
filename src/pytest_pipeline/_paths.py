"""Paths under a folder that symbolic links must not lead out of.

Standard library only: ``pytest-pipeline init`` (no pytest loaded) and the fixture store use it.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath


def resolve_inside(root: Path, relative: str) -> tuple[Path, str | None]:
    """``root / relative`` resolved, and where it escapes ``root``: ``None`` when the resolved
    path lies inside ``root`` (a link that stays inside is followed), else the first symbolic
    link on the way (``relative`` itself when none is found).

    ``OSError`` and ``RuntimeError`` (a link loop before Python 3.13) from resolving propagate:
    each caller words its own error.
    """
    top = root.resolve()
    path = (root / relative).resolve()
    if path.is_relative_to(top):
        return path, None
    parts = PurePosixPath(relative).parts
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    link = next((prefix for prefix in prefixes if (root / prefix).is_symlink()), relative)
    return path, link
