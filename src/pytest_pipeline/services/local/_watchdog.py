"""Tie one local server to the life of a pytest run.

Run as ``python -I -S _watchdog.py SPEC`` (stdlib only, so it starts in a few milliseconds and
does not depend on the caller's ``sys.path``). ``SPEC`` is a JSON file written by the starter.
The watchdog

* runs in its own session, so a Ctrl-C in the terminal reaches pytest, not the server;
* starts the server with its output in a log file, in its own process group, switched to an
  unprivileged user when asked, with ``PR_SET_PDEATHSIG=SIGKILL`` (set after the user switch,
  which clears it) so the server dies with the watchdog;
* reports ``{"server_pid": N}`` or ``{"error": "..."}`` as one JSON line on stdout;
* waits until the run's root pytest process dies (pidfd where available, else polling) or it
  receives SIGTERM (``stop()``), or -- when an xdist worker started it -- that worker dies
  before the run recorded the server (``adopted`` in the work directory; otherwise the next
  worker would start a second set), then stops the server (the spec's signal, a grace period,
  then SIGKILL to the whole process group) and removes the work directory and the other
  paths the spec lists.

If the server exits on its own, its status goes to ``exit.json`` and the work directory stays
(the starter reads the log from it) until the root dies or SIGTERM arrives.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

_PR_SET_PDEATHSIG = 1
#: The names start() gives server work directories inside a run directory.
_WORKDIR = re.compile(r"^(postgres|kafka|s3)-[0-9a-f]{12}$")
_IPC_RMID = 0
#: _safedir.OWNER_FILE (this script imports nothing of the package).
_OWNER_FILE = ".pytest-pipeline-owner"
_stop_requested = False


def _on_sigterm(signum: int, frame: object) -> None:
    global _stop_requested
    _stop_requested = True


def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def _start_time(pid: int) -> str | None:
    """The kernel start time of a live (non-zombie) ``pid``, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def _root_alive(pid: int, start: str | None) -> bool:
    current = _start_time(pid)
    return current is not None and (start is None or current == start)


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd


def _write_json(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def _child_setup(parent: int, uid: int | None, gid: int | None) -> Any:
    def setup() -> None:
        # Runs in the forked child, before exec.
        os.setpgid(0, 0)
        for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        if gid is not None:
            os.setgroups([])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        # After the user switch: the kernel clears the death signal on credential changes.
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(70)  # the watchdog died before the death signal was armed

    return setup


def _running() -> Iterator[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process that still runs (not a zombie)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2 :].split()
        if fields[0] not in (b"Z", b"X"):
            yield int(entry), int(fields[1]), int(fields[2])


def _family(root: int) -> list[int]:
    """``root``, its process group and its descendants (Postgres children call setsid())."""
    children: dict[int, list[int]] = {}
    groups: dict[int, list[int]] = {}
    for pid, ppid, pgid in _running():
        children.setdefault(ppid, []).append(pid)
        groups.setdefault(pgid, []).append(pid)
    found: list[int] = []
    queue = [root]
    while queue:
        pid = queue.pop()
        if pid not in found:
            found.append(pid)
            queue += children.get(pid, []) + groups.get(pid, [])
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # killpg(0) also succeeds for zombies: look for a member that still runs.
    return any(group == pgid for _pid, _ppid, group in _running())


def own_segments(pid: int, uid: int, since: float) -> list[int]:
    """Ids of the SysV shared memory segments that process ``pid`` created as ``uid`` at or
    after ``since`` (epoch seconds), from the kernel's table (/proc/sysvipc/shm).

    Never from postmaster.pid: the server user can write that file, and when we are root
    that user is the shared ``nobody`` account, so any of its processes could name another
    user's segment there.
    """
    try:
        with open("/proc/sysvipc/shm", encoding="ascii") as f:
            header, *rows = f.read().splitlines()
    except (OSError, ValueError):
        return []
    names = header.split()
    found: list[int] = []
    for row in rows:
        try:
            seg = dict(zip(names, (int(value) for value in row.split()), strict=True))
        except ValueError:
            continue
        made_by = (seg.get("cpid"), seg.get("cuid"), seg.get("uid"))
        # ctime has whole seconds: a segment made after ``since`` has ctime >= int(since).
        if made_by == (pid, uid, uid) and seg.get("ctime", -1) >= int(since):
            found.append(seg["shmid"])
    return found


def remove_segments(pid: int, uid: int, since: float) -> None:
    """Remove the segments :func:`own_segments` finds, once ``pid`` has ended (a process
    running under that pid now is another one: nothing is removed then)."""
    if _LIBC is None or _start_time(pid) is not None:
        return
    for shmid in own_segments(pid, uid, since):
        _LIBC.shmctl(shmid, _IPC_RMID, None)


def _terminate(proc: subprocess.Popen[bytes] | None, spec: dict[str, Any]) -> None:
    if proc is None:
        return
    pgid = proc.pid
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, int(spec.get("term_signal", signal.SIGTERM)))
        try:
            proc.wait(timeout=float(spec.get("grace", 5.0)))
        except subprocess.TimeoutExpired:
            # Collected while the server still lives: its children are ours for sure.
            for pid in _family(proc.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait()
    # Children left in the server's group (Postgres backends, helpers) go too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 3.0
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    # A killed postmaster leaves its (tiny) SysV segment behind.
    uid = spec.get("uid")
    remove_segments(proc.pid, os.geteuid() if uid is None else int(uid), spec["spawned_at"])


def _seal(name: str, dir_fd: int | None = None) -> None:
    """Take over every directory of the tree ``name`` (ours, mode 0700), top down, each
    before it is listed: the server user (a shared account when we are root) can then add
    nothing to it while it is removed. Symlinks are never followed; files are left alone."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o700)
            if os.fstat(fd).st_uid != os.geteuid():
                os.fchown(fd, os.geteuid(), os.getegid())
                os.fchmod(fd, 0o700)  # its owner may have changed the mode meanwhile
        with contextlib.suppress(OSError, RecursionError), os.scandir(fd) as entries:
            for entry in list(entries):
                if entry.is_dir(follow_symlinks=False):
                    _seal(entry.name, fd)
    finally:
        os.close(fd)


def remove_tree(path: str) -> None:
    """Remove the directory tree ``path`` so that no other user can make it fail half way
    (see :func:`_seal`); its owner file goes last, so a removal cut short (a SIGKILL)
    leaves a directory that a later run still recognises and removes."""
    _seal(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError), os.scandir(fd) as entries:
            for entry in list(entries):
                if entry.name == _OWNER_FILE:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.name, dir_fd=fd, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(path, _OWNER_FILE))
    shutil.rmtree(path, ignore_errors=True)


def _remove_paths(spec: dict[str, Any]) -> None:
    for path in [*spec.get("cleanup", []), spec["workdir"]]:
        remove_tree(path)
    registry = spec.get("registry")
    if registry:
        with contextlib.suppress(OSError):
            os.unlink(registry)


def _remove_run_dir(spec: dict[str, Any]) -> None:
    """After the root died: the last watchdog out removes the run directory, when the run
    marked it as its own (``root.json`` naming the root pid) and no other server is left."""
    run_dir = os.path.dirname(spec["workdir"])
    try:
        with open(os.path.join(run_dir, "root.json"), encoding="utf-8") as f:
            owner = json.load(f)
    except (OSError, ValueError):
        return
    if not isinstance(owner, dict) or owner.get("root_pid") != spec["root_pid"]:
        return
    if _root_alive(int(spec["root_pid"]), spec.get("root_start")):
        return
    with contextlib.suppress(OSError):
        # A server work directory still there: its watchdog is busy and will come here too.
        if any(_WORKDIR.match(name) for name in os.listdir(run_dir)):
            return
    shutil.rmtree(run_dir, ignore_errors=True)


def _wait(proc: subprocess.Popen[bytes] | None, spec: dict[str, Any], wake: int) -> bool:
    """Wait for the root to die (True), or for SIGTERM or an orphaned start (False)."""
    root_pid = int(spec["root_pid"])
    root_start = spec.get("root_start")
    root_fd = _pidfd(root_pid)
    server_fd = _pidfd(proc.pid) if proc is not None else None
    starter = int(spec.get("starter_pid") or 0)
    starter_fd = _pidfd(starter) if starter else None
    poller = select.poll()
    poller.register(wake, select.POLLIN)
    if root_fd is not None:
        poller.register(root_fd, select.POLLIN)
    if starter_fd is not None:
        poller.register(starter_fd, select.POLLIN)
    if server_fd is not None:
        poller.register(server_fd, select.POLLIN)
    exited = proc is None
    while not _stop_requested:
        # pidfds wake us at once; the timeout is the polling fallback and a safety net.
        blocking = root_fd is not None and (exited or server_fd is not None)
        poller.poll(1000 if blocking else 200)
        with contextlib.suppress(BlockingIOError):
            os.read(wake, 512)
        if not exited and proc is not None and proc.poll() is not None:
            exited = True
            if server_fd is not None:
                poller.unregister(server_fd)
                os.close(server_fd)
                server_fd = None
            _write_json(os.path.join(spec["workdir"], "exit.json"), {"returncode": proc.returncode})
        if not _root_alive(root_pid, root_start):
            return True
        if starter and not _root_alive(starter, spec.get("starter_start")):
            starter = 0
            if starter_fd is not None:
                poller.unregister(starter_fd)
                os.close(starter_fd)
            # The worker that started it died before the run recorded it: nobody would stop it.
            if not os.path.exists(os.path.join(spec["workdir"], "adopted")):
                return False
    return False


def main(argv: list[str]) -> int:
    """Start the server described by the spec file ``argv[1]`` and watch over it."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)

    with open(argv[1], encoding="utf-8") as f:
        spec: dict[str, Any] = json.load(f)
    uid = spec.get("uid")
    gid = spec.get("gid")
    proc: subprocess.Popen[bytes] | None = None
    report: dict[str, Any]
    if not _root_alive(int(spec["root_pid"]), spec.get("root_start")):
        report = {"error": f"the pytest process {spec['root_pid']} that owns the run has exited"}
    elif _stop_requested:
        report = {"error": "stopped before the server was started"}
    else:
        log_fd = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        # Before the fork: whatever the server creates is newer (see own_segments).
        spec["spawned_at"] = time.time()
        try:
            proc = subprocess.Popen(
                spec["cmd"],
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                cwd=spec["cwd"],
                close_fds=True,
                preexec_fn=_child_setup(os.getpid(), uid, gid),
            )
            report = {"server_pid": proc.pid}
        except (OSError, subprocess.SubprocessError) as exc:
            report = {"error": f"cannot run {spec['cmd'][0]}: {exc}"}
        finally:
            os.close(log_fd)
    if proc is not None:
        owner = {
            key: spec[key]
            for key in ("id", "service", "workdir", "root_pid", "root_start", "cleanup", "cmd")
        }
        owner.update(
            watchdog_pid=os.getpid(),
            server_pid=proc.pid,
            started_at=time.time(),
            spawned_at=spec["spawned_at"],
        )
        _write_json(os.path.join(spec["workdir"], "owner.json"), owner)
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    # Nobody reads our stdout any more: never block or die on a closed pipe.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)

    root_died = False
    try:
        root_died = _wait(proc, spec, wake_r)
    finally:
        _terminate(proc, spec)
        _remove_paths(spec)
        if root_died:
            _remove_run_dir(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
