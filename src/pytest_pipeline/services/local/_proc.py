"""Process, file and log helpers of the local backend's launchers (stdlib only).

What the docker backend needs too (start times, free ports) is in ``services.process``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shlex
import signal
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pytest_pipeline.errors import ServiceError
from pytest_pipeline.services.process import running

#: Environment variable set in every server we start; its value is the server's work
#: directory. It proves a process is ours even after its pid was recorded elsewhere.
MARKER_ENV = "PYTEST_PIPELINE_LOCAL_SERVER"

LOG_TAIL_LINES = 20


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ")".
    return data[data.rindex(b")") + 2 :].split()


def cmdline(pid: int) -> list[str] | None:
    """The argument vector of ``pid``, or None when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def has_marker(pid: int, value: str) -> bool:
    """True if ``pid`` was started with our marker variable set to ``value``."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return False
    needle = f"{MARKER_ENV}={value}".encode()
    return any(item == needle for item in env.split(b"\0"))


def marked_pids(value: str) -> list[int]:
    """Every running process started with our marker variable set to ``value``."""
    found: list[int] = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me and has_marker(int(entry), value):
            found.append(int(entry))
    return [pid for pid in found if running(pid)]


def family(pids: Sequence[int]) -> list[int]:
    """``pids`` plus the members of the process groups they lead and all their descendants.

    Postgres children call setsid() and overwrite their environment with their process
    title: only their parent (the verified postmaster) ties them to us, so collect them
    before anything is killed.
    """
    children: dict[int, list[int]] = {}
    groups: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is None or fields[0] in (b"Z", b"X"):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        groups.setdefault(int(fields[2]), []).append(int(entry))
    found: list[int] = []
    queue = list(pids)
    while queue:
        pid = queue.pop()
        if pid in found:
            continue
        found.append(pid)
        queue += children.get(pid, []) + groups.get(pid, [])
    return found


def kill_and_wait(pids: Sequence[int], timeout: float = 3.0) -> None:
    """SIGKILL ``pids`` and wait until none of them runs (zombies count as gone)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def remove_sysv_segments(workdir: Path) -> None:
    """Remove the SysV segments the (ended) server of ``workdir`` created, such as the one a
    killed postmaster leaves behind.

    Identified by kernel facts only -- creator pid and uid, creation time -- against the
    server pid and start time its watchdog recorded in ``owner.json`` (in our private work
    directory), never by postmaster.pid, which the server user can write.
    """
    from pytest_pipeline import _safedir

    owner = _safedir.read_json(workdir / "owner.json") or {}
    spec = _safedir.read_json(workdir / "spec.json") or {}
    try:
        pid, since = int(owner["server_pid"]), float(owner["spawned_at"])
        uid = None if spec.get("uid") is None else int(spec["uid"])
    except (KeyError, TypeError, ValueError):
        return
    remove_segments_of(pid, uid, since)


def kill_group(pgid: int, deadline: float) -> None:
    """SIGKILL the process group ``pgid`` and wait (at most ``deadline`` s) until no member
    of it runs."""
    from pytest_pipeline.services.local import _watchdog

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    end = time.monotonic() + deadline
    while _watchdog.group_alive(pgid) and time.monotonic() < end:
        time.sleep(0.02)


def remove_segments_of(pid: int, uid: int | None, since: float) -> None:
    """Remove the SysV segments that the ended process ``pid`` created as ``uid`` (None: us)
    after ``since`` (epoch seconds); see ``_watchdog.own_segments``."""
    from pytest_pipeline.services.local import _watchdog

    with contextlib.suppress(OSError):
        _watchdog.remove_segments(pid, os.geteuid() if uid is None else uid, since)


def owns_listener(pid: int, port: int) -> bool:
    """False only if we can tell that the socket listening on 127.0.0.1:``port`` is not
    held by ``pid`` (another program won the race for the port)."""
    inodes: set[str] = set()
    try:
        with open("/proc/net/tcp", encoding="ascii") as f:
            next(f)
            for line in f:
                parts = line.split()
                local, state, inode = parts[1], parts[3], parts[9]
                if state == "0A" and int(local.split(":")[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
        fds = os.listdir(f"/proc/{pid}/fd")
    except (OSError, StopIteration, IndexError, ValueError):
        return True  # cannot tell: trust the probe
    if not inodes:
        return True
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
    return False


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, indented, or a note that it is empty."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            data = f.read()
    except OSError:
        return "    (no log)"
    text = data.decode(errors="replace").rstrip()
    if not text:
        return "    (the log is empty)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def quote_cmd(cmd: Sequence[str]) -> str:
    """A command line as a user could paste it into a shell."""
    return shlex.join(cmd)


def run_tool(
    cmd: Sequence[str],
    *,
    timeout: float,
    user: tuple[int, int] | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> tuple[int, str]:
    """Run a short helper command; return (exit status, combined output).

    Raises ``OSError`` when it cannot be executed and ``subprocess.TimeoutExpired``.
    """
    extra: dict[str, Any] = {}
    if user is not None:
        # Done by subprocess in C between fork and exec: safe in a threaded pytest process.
        extra.update(user=user[0], group=user[1], extra_groups=[])
    proc = subprocess.run(
        list(cmd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=max(timeout, 0.1),
        env=env,
        cwd=cwd,
        check=False,
        **extra,
    )
    return proc.returncode, proc.stdout.decode(errors="replace")


def output_tail(output: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a command's output, indented for an error message."""
    text = output.rstrip()
    if not text:
        return "    (no output)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` atomically (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None if it is missing or malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def traversable(path: Path, uid: int, gid: int) -> bool:
    """True if a process running as ``uid``/``gid`` (no supplementary groups) can reach
    ``path`` and every directory above it."""
    for part in [path, *path.parents]:
        try:
            st = part.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def executable_by(path: Path, uid: int, gid: int) -> bool:
    """True if ``uid``/``gid`` may execute the file ``path`` (reach it and run it)."""
    if not traversable(path.parent, uid, gid):
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


@contextlib.contextmanager
def file_lock(path: Path, deadline: float, what: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``, waiting at most until ``deadline`` (monotonic)."""
    with open(path, "a") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise ServiceError(
                        f"timed out waiting for the lock {path} while {what}; another test run "
                        "holds it. Raise services.startup_timeout in [tool.pytest-pipeline] "
                        "if that run is just slow."
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


#: Seconds a ``--version`` call may take: the run's services.startup_timeout once the service
#: manager has set it (:func:`set_version_timeout`).
_version_timeout = 10.0


def set_version_timeout(seconds: float) -> None:
    """Bound every later ``--version`` probe of this process by ``seconds``."""
    global _version_timeout
    _version_timeout = seconds


def probe_version(cmd: list[str], pattern: str) -> tuple[str | None, str]:
    """Run ``cmd`` (a ``--version`` call) and return (the first group of ``pattern``, "") or
    (None, what went wrong, with the command and its output)."""
    try:
        status, output = run_tool(cmd, timeout=_version_timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"`{quote_cmd(cmd)}` failed: {exc}"
    match = re.search(pattern, output)
    if status != 0 or match is None:
        return None, (
            f"`{quote_cmd(cmd)}` exited with status {status} and printed:\n{output_tail(output)}"
        )
    return match.group(1), ""
