"""Directories under shared temporary roots (/tmp, /dev/shm): checked before use, removed safely.

Anyone can create a name in /tmp first. Every directory pytest-pipeline reads, writes or
deletes there is therefore checked before use: it must be a real directory (not a symlink),
owned by the running user and writable by nobody else, so nothing in it can have been planted.
A directory that fails is a clear error naming it, and nothing is read or deleted in it.

Removal is narrower still: only a path recorded by us, that resolves to itself (no symlink on
the way) and lies inside one of our checked directories is removed. Leftovers of runs that were
killed before they could clean up carry an owner file naming the run's root process; any later
run of the same user removes them once that process is gone, whatever its ``TMPDIR`` (the
per-user directories of every temp root used are remembered in the user's cache directory).

Standard library only: the perf plugin uses it too.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pytest_pipeline.errors import ServiceError, UnsafeDirectoryError

#: Written into every directory we create directly in a per-user directory (claimed data
#: directories, perf locks): which run made it, so a later run knows when it is left over.
OWNER_FILE = ".pytest-pipeline-owner"
#: Write permission for group or others: whoever has it could have planted files.
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def cache_root() -> Path:
    """The user's cache directory for pytest-pipeline (``$XDG_CACHE_HOME`` or ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "pytest-pipeline")


def start_time(pid: int) -> str | None:
    """The kernel start time of ``pid`` (identifies it across pid reuse); None if not running.

    A zombie counts as not running.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ")".
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def _refuse(path: Path, why: str) -> UnsafeDirectoryError:
    return UnsafeDirectoryError(
        f"refusing to use {path}: it {why}. Another user could use it to have "
        f"pytest-pipeline read or delete files; nothing in it was read or deleted. Remove it "
        f"(as its owner, or root) or set TMPDIR to a directory of your own."
    )


def _owner(uid: int) -> str:
    return f"is owned by uid {uid}, not by you (uid {os.geteuid()})"


def _unopenable(path: Path, exc: OSError) -> str:
    """Why ``path`` could not be opened as a directory without following a symlink."""
    try:
        st = os.lstat(path)
    except OSError:
        return f"cannot be opened ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != os.geteuid():
        return _owner(st.st_uid)
    return f"cannot be opened ({exc.strerror})"


def check(path: Path, mode: int | None = None) -> bool:
    """False if ``path`` does not exist; True if it is a directory we may trust.

    Raises :class:`UnsafeDirectoryError` naming it when it is a symlink, not a directory, not
    owned by us, or writable by group or others. With ``mode``, an accepted directory is set
    to exactly that mode (tightening it, or letting a server user through).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _refuse(path, _unopenable(path, exc)) from None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise _refuse(path, _owner(st.st_uid))
        if st.st_mode & _OTHERS_WRITE:
            raise _refuse(path, f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})")
        if mode is not None and stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return True


def trusted(path: Path) -> bool:
    """Whether ``path`` exists and passes :func:`check` (never raises: for paths that a note
    of ours names, where a failing one is simply not ours)."""
    try:
        return check(path)
    except UnsafeDirectoryError:
        return False


def private_dir(path: Path, mode: int = 0o700) -> Path:
    """Create ``path`` (ours, ``mode``) or accept an existing one that passes :func:`check`.

    For fixed names in shared directories, where someone else could have made the name first.
    """
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=mode)
    if not check(path, mode):
        raise _refuse(path, "disappeared while it was being created")
    return path


def user_dir(root: Path) -> Path:
    """Our per-user directory in the temp root ``root``, created on first use and checked.

    0711: an unprivileged server user may pass through to its own data directory, but not
    list it. Remembered, so that a run with another ``TMPDIR`` can clean up after this one.
    """
    path = private_dir(Path(root) / f"pytest-pipeline-{os.geteuid()}", 0o711)
    _remember(path)
    return path


def _known_dir() -> Path:
    return cache_root() / "temp-dirs"


def _remember(path: Path) -> None:
    entry = _known_dir() / hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if entry.is_file():
        return
    # Best effort: an unwritable home only means another TMPDIR's run will not find it.
    with contextlib.suppress(OSError, ServiceError):
        _known_dir().parent.mkdir(parents=True, exist_ok=True)
        private_dir(_known_dir(), 0o700)
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}")
        tmp.write_text(str(path), encoding="utf-8")
        os.replace(tmp, entry)


def known_user_dirs() -> list[Path]:
    """Per-user directories of every temp root we have used (and that still exist and pass
    :func:`check`; a failing one is skipped here, and reported when a run uses that root)."""
    found: list[Path] = []
    with contextlib.suppress(OSError, ServiceError):
        if not check(_known_dir()):
            return []
        for entry in sorted(_known_dir().iterdir()):
            text = read_text(entry)
            if text is None:
                continue
            path = Path(text.strip())
            if path.name != f"pytest-pipeline-{os.geteuid()}" or not path.is_absolute():
                continue
            try:
                if check(path):
                    found.append(path)
                    continue
            except UnsafeDirectoryError:
                continue
            with contextlib.suppress(OSError):
                entry.unlink()  # gone: forget it
    return found


def read_text(path: Path, limit: int = 1 << 20) -> str | None:
    """The text of a regular file that we own, read without following a symlink; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return None
        return f.read(limit).decode(errors="replace")


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a file of ours (see :func:`read_text`), or None."""
    text = read_text(path)
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def mark_owner(path: Path, root_pid: int, root_start: str, **extra: Any) -> None:
    """Record in the new directory ``path`` which run (root pid and start time) made it."""
    fields = {"root_pid": root_pid, "root_start": root_start, **extra}
    fd = os.open(path / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(fields, f)


def owner(path: Path) -> dict[str, Any] | None:
    """The owner record of a directory made with :func:`mark_owner`, or None."""
    return read_json(path / OWNER_FILE)


def owner_gone(record: dict[str, Any]) -> bool:
    """True when the run named by an owner record has ended (its pid no longer runs with the
    recorded start time)."""
    try:
        pid = int(record["root_pid"])
    except (KeyError, TypeError, ValueError):
        return False
    return start_time(pid) != record.get("root_start")


def inside(path: Path, parents: Iterable[Path]) -> bool:
    """``path`` lies strictly inside one of ``parents`` and no symlink below that parent
    leads it elsewhere (compared resolved; a symlink above, as in ``TMPDIR``, is fine)."""
    if ".." in Path(path).parts:
        return False
    absolute = Path(os.path.abspath(path))
    for parent in parents:
        top = Path(os.path.abspath(parent))
        if absolute == top or not absolute.is_relative_to(top):
            continue
        expected = Path(os.path.realpath(top)) / absolute.relative_to(top)
        if Path(os.path.realpath(absolute)) == expected:
            return True
    return False


def remove(path: Path, within: Iterable[Path]) -> bool:
    """Remove the directory tree ``path`` if it is inside one of ``within`` (see :func:`inside`)
    and is a real directory; each of ``within`` must pass :func:`check`. Returns whether it
    removed it. Symlinks inside the tree are removed, never followed."""
    allowed = [p for p in within if check(p)]
    if not inside(path, allowed):
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    # Postgres data belongs to the server user (a shared account when we are root): the
    # watchdog's removal takes such trees over first, so that user cannot refill them half
    # way, and removes the owner file last (stdlib only, like this module).
    _remove_tree()(str(path))
    return not os.path.lexists(path)


@functools.cache
def _remove_tree() -> Callable[[str], None]:
    import importlib.util

    where = Path(__file__).with_name("services") / "local" / "_watchdog.py"
    spec = importlib.util.spec_from_file_location("_pytest_pipeline_watchdog", where)
    if spec is None or spec.loader is None:  # pragma: no cover - a broken install
        return lambda p: shutil.rmtree(p, ignore_errors=True)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    remove_tree: Callable[[str], None] = module.remove_tree
    return remove_tree


def stale(parent: Path, pattern: re.Pattern[str]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Directories directly in our checked directory ``parent`` whose name matches
    ``pattern`` and whose owner record (:func:`mark_owner`) names a run that has ended."""
    if not check(parent):
        return
    with contextlib.suppress(OSError):
        for path in sorted(parent.iterdir()):
            if not pattern.fullmatch(path.name) or not stat.S_ISDIR(os.lstat(path).st_mode):
                continue
            record = owner(path)
            if record is not None and owner_gone(record):
                yield path, record


def remove_stale(
    pattern: re.Pattern[str], before: Callable[[Path, dict[str, Any]], None] | None = None
) -> list[Path]:
    """Remove the :func:`stale` directories matching ``pattern`` from every per-user directory
    we have used (:func:`known_user_dirs`), calling ``before`` on each first."""
    removed: list[Path] = []
    for user in known_user_dirs():
        with contextlib.suppress(UnsafeDirectoryError):
            for path, record in stale(user, pattern):
                if before is not None:
                    before(path, record)
                if remove(path, [user]):
                    removed.append(path)
    return removed


def scratch_dir(label: str) -> Path:
    """A new directory ``<label>-<hex>`` of this run in our per-user directory of the temp
    root, marked with this process as the run's root. Those of ended runs (killed before they
    could remove theirs), in any temp root we have used, are removed first."""
    remove_stale(re.compile(rf"{re.escape(label)}-[0-9a-f]{{12}}"))
    parent = user_dir(Path(tempfile.gettempdir()))
    path = parent / f"{label}-{os.urandom(6).hex()}"
    path.mkdir(mode=0o700)
    mark_owner(path, os.getpid(), start_time(os.getpid()) or "")
    return path
