"""Start, stop and clean up local servers; each one runs under a watchdog process."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from pytest_pipeline import _safedir
from pytest_pipeline._safedir import OWNER_FILE
from pytest_pipeline.errors import ServiceError, UnsafeDirectoryError
from pytest_pipeline.services import process
from pytest_pipeline.services.local import _kafka, _postgres, _proc, _s3
from pytest_pipeline.services.local._common import (
    Availability,
    Found,
    LaunchPlan,
    ServerRecord,
    Workspace,
    registry_entry,
    registry_path,
)

_FINDERS: dict[str, Callable[[], Found]] = {
    "postgres": _postgres.find,
    "kafka": _kafka.find,
    "s3": _s3.find,
}
#: What the answer of a finder depends on: a test that changes PATH gets a fresh answer.
_ENV_KEYS = ("PATH", "KAFKA_HOME", "JAVA_HOME", "XDG_CACHE_HOME", "HOME")
_PORT_ATTEMPTS = 4
_PORT_TAKEN = re.compile(
    r"address already in use|address in use|os error 98|EADDRINUSE|could not bind|"
    r"port is already in use|BindException",
    re.IGNORECASE,
)
_WATCHDOG = Path(__file__).with_name("_watchdog.py")
#: The names Workspace.create gives server work directories (the watchdog knows them too).
_WORKDIR_NAME = re.compile(r"^(postgres|kafka|s3)-[0-9a-f]{12}$")
_CONFIG_KEY = "services.startup_timeout in [tool.pytest-pipeline]"

_found_cache: dict[tuple[Any, ...], Found] = {}
_cache_lock = threading.Lock()
# Watchdogs this process started: reaped by stop() so they do not linger as zombies.
_children: dict[int, subprocess.Popen[bytes]] = {}


class _PortTaken(Exception):
    """The server lost the race for its port; the caller retries with another one."""


def _found(service: str) -> Found:
    finder = _FINDERS.get(service)
    if finder is None:
        raise ServiceError(
            f"unknown local service {service!r}; expected one of {', '.join(_FINDERS)}"
        )
    key = (service, os.geteuid(), *(os.environ.get(k) for k in _ENV_KEYS))
    with _cache_lock:
        cached = _found_cache.get(key)
    if cached is None:
        cached = finder()
        with _cache_lock:
            _found_cache[key] = cached
    return cached


def availability(service: str) -> Availability:
    """Whether a local ``service`` ("postgres", "kafka", "s3") can run here, and with what.

    Cheap: no server is started (at most a ``--version`` call). Cached per process for the
    current PATH / KAFKA_HOME / JAVA_HOME.
    """
    return _found(service)[0]


def start(service: str, run_dir: Path, *, root_pid: int, timeout: float) -> ServerRecord:
    """Start a local ``service`` server under a watchdog and wait until it answers.

    Its work directory is created in ``run_dir``. The server stops and its directories are
    removed when ``root_pid`` dies (even by SIGKILL) or on :func:`stop`. When the root dies
    and ``run_dir`` holds a ``root.json`` naming ``root_pid`` (the run's mark that the
    directory is its own), the last watchdog out removes ``run_dir`` too. Raises
    ``ServiceError`` with the command line and the tail of the server log when it fails to
    start, or does not become ready within ``timeout`` seconds.
    """
    began = time.monotonic()
    deadline = began + timeout
    found, factory = _found(service)
    if not found.ok or factory is None:
        raise ServiceError(
            f"cannot start a local {service} server: {found.why_not}\nhint: {found.hint}"
        )
    root_start = process.start_time(root_pid)
    if root_start is None:
        raise ServiceError(
            f"root pid {root_pid} (the pytest process owning the run) is not running"
        )
    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        raise ServiceError(f"the run directory {run_dir} does not exist")
    lost: list[str] = []
    for _ in range(_PORT_ATTEMPTS):
        ws = Workspace.create(service, run_dir, root_pid, root_start, deadline)
        watchdog: subprocess.Popen[bytes] | None = None
        try:
            launcher = factory(ws)
            plan = launcher.plan(process.free_ports(launcher.ports_needed))
            watchdog, server_pid = _spawn(ws, plan, found.hint)
            _await_ready(ws, plan, server_pid, timeout, began, found.hint)
        except _PortTaken as exc:
            _discard(ws, watchdog)
            lost.append(str(exc))
            continue
        except BaseException:
            _discard(ws, watchdog)
            raise
        return ServerRecord(
            service=service,
            endpoint=plan.endpoint,
            description=plan.description,
            watchdog_pid=watchdog.pid,
            server_pid=server_pid,
            workdir=str(ws.workdir),
            started_in=time.monotonic() - began,
        )
    raise ServiceError(
        f"local {service}: another process took the chosen port {_PORT_ATTEMPTS} times in a "
        f"row. Last attempt:\n{lost[-1]}"
    )


def _spawn(ws: Workspace, plan: LaunchPlan, hint: str) -> tuple[subprocess.Popen[bytes], int]:
    spec_path = ws.workdir / "spec.json"
    _proc.write_json(
        spec_path,
        {
            "id": ws.workdir.name,
            "service": ws.service,
            "cmd": plan.cmd,
            "cwd": str(plan.cwd or ws.workdir),
            "uid": plan.user[0] if plan.user else None,
            "gid": plan.user[1] if plan.user else None,
            "log": str(ws.workdir / "server.log"),
            "root_pid": ws.root_pid,
            "root_start": ws.root_start,
            # Started by an xdist worker: stopped if that worker dies before adopt().
            "starter_pid": os.getpid() if os.getpid() != ws.root_pid else None,
            "starter_start": process.start_time(os.getpid()),
            "workdir": str(ws.workdir),
            "cleanup": [str(p) for p in ws.cleanup],
            "registry": str(ws.entry),
            "term_signal": int(plan.term_signal),
            "grace": plan.grace,
            "pidfile": str(plan.pidfile) if plan.pidfile else None,
        },
    )
    env = dict(plan.env)
    env[_proc.MARKER_ENV] = ws.marker
    # -I -S: the watchdog is stdlib only; skipping site makes it start in ~15 ms.
    cmd = [sys.executable or "python3", "-I", "-S", str(_WATCHDOG), str(spec_path)]
    with open(ws.workdir / "watchdog.log", "wb") as errors:
        watchdog = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
            cwd="/",
            close_fds=True,
            start_new_session=True,  # a terminal Ctrl-C must not reach the server directly
        )
    _children[watchdog.pid] = watchdog
    assert watchdog.stdout is not None
    try:
        line = _read_line(watchdog.stdout, ws.deadline)
    finally:
        watchdog.stdout.close()
    if not line:
        status = watchdog.poll()
        why = (
            f"exit status {status}"
            if status is not None
            else f"not within the start timeout, {_CONFIG_KEY}: raise it if this machine is slow"
        )
        raise ServiceError(
            f"the watchdog of the local {ws.service} server did not report "
            f"({why}).\ncommand: {_proc.quote_cmd(cmd)}\n"
            f"its output:\n{_proc.log_tail(ws.workdir / 'watchdog.log')}"
        )
    report = json.loads(line)
    if "error" in report:
        raise ServiceError(
            f"cannot start the local {ws.service} server: {report['error']}\n"
            f"command: {_proc.quote_cmd(plan.cmd)}\nhint: {hint}"
        )
    return watchdog, int(report["server_pid"])


def _read_line(stream: IO[bytes], deadline: float) -> str:
    data = b""
    fd = stream.fileno()
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return ""
        chunk = os.read(fd, 4096)
        if not chunk:
            return ""
        data += chunk
    return data.decode(errors="replace").strip()


def _await_ready(
    ws: Workspace, plan: LaunchPlan, server_pid: int, timeout: float, began: float, hint: str
) -> None:
    log = ws.workdir / "server.log"
    pause = 0.005
    while True:
        if not process.running(server_pid):
            _exited(ws, plan, began, hint)
        remaining = ws.remaining()
        if plan.probe(min(max(remaining, 0.05), 1.0)):
            if not _proc.owns_listener(server_pid, plan.port):
                # Someone else took the port between our check and the server's bind.
                raise _PortTaken(f"another process answers on the port of {plan.cmd[0]}")
            return
        if ws.remaining() <= 0:
            raise ServiceError(
                f"the local {ws.service} server ({plan.description}) did not become ready "
                f"within {timeout:g} s ({_CONFIG_KEY}; raise it if this machine is just "
                f"slow).\ncommand: {_proc.quote_cmd(plan.cmd)}\n"
                f"last lines of its log:\n{_proc.log_tail(log)}\nhint: {hint}"
            )
        time.sleep(pause)
        pause = min(pause * 1.5, 0.05)


def _exited(ws: Workspace, plan: LaunchPlan, began: float, hint: str) -> None:
    status: Any = None
    for _ in range(50):  # the watchdog records the status right after reaping the server
        report = _proc.read_json(ws.workdir / "exit.json")
        if report is not None:
            status = report.get("returncode")
            break
        time.sleep(0.01)
    log = ws.workdir / "server.log"
    tail = _proc.log_tail(log)
    how = (
        f"was killed by signal {-status}"
        if isinstance(status, int) and status < 0
        else f"exited with status {status}"
    )
    message = (
        f"the local {ws.service} server ({plan.description}) {how} "
        f"{time.monotonic() - began:.2f} s after the start.\n"
        f"command: {_proc.quote_cmd(plan.cmd)}\nlast lines of its log:\n{tail}"
    )
    if _PORT_TAKEN.search(tail):
        raise _PortTaken(message)
    raise ServiceError(f"{message}\nhint: {hint}")


def _reap_child(pid: int, timeout: float) -> None:
    child = _children.get(pid)
    if child is None:
        return
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return
    _children.pop(pid, None)


def _discard(ws: Workspace, watchdog: subprocess.Popen[bytes] | None) -> None:
    """Undo a failed start attempt: stop the watchdog, then remove whatever is left."""
    if watchdog is not None:
        if watchdog.poll() is None:
            watchdog.terminate()
            try:
                watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()
        _children.pop(watchdog.pid, None)
    _force_cleanup(ws.workdir, ws.cleanup, ws.entry)


def _is_watchdog(pid: int, workdir: Path) -> bool:
    args = _proc.cmdline(pid)
    return (
        args is not None
        and process.running(pid)
        and any(a.endswith("_watchdog.py") for a in args)
        and str(workdir / "spec.json") in args
    )


def _ours(workdir: Path, entry: Path | None) -> bool:
    """The work directory was made by us: a real directory of ours with a server's name that
    its spec or our registry note names."""
    if not _WORKDIR_NAME.match(workdir.name) or not _safedir.trusted(workdir):
        return False
    spec = _safedir.read_json(workdir / "spec.json")
    if spec is not None:
        return spec.get("workdir") == str(workdir)
    note = _safedir.read_json(entry) if entry is not None else None
    return note is not None and note.get("workdir") == str(workdir)


def _claimed(path: Path, workdir: Path) -> bool:
    """``path`` is where :meth:`Workspace.claim_dir` puts a directory of ``workdir``: directly
    in one of our per-user directories, named after the work directory."""
    return path.parent.name == f"pytest-pipeline-{os.geteuid()}" and path.name.startswith(
        f"{workdir.name}-"
    )


def _claim_names(path: Path, workdir: Path) -> bool:
    """The owner file in ``path`` names ``workdir`` (a JSON record, or the bare path that
    earlier versions wrote)."""
    text = _safedir.read_text(path / OWNER_FILE)
    if text is None:
        return False
    record = _safedir.read_json(path / OWNER_FILE)
    return (record.get("workdir") if record is not None else text) == str(workdir)


def _force_cleanup(
    workdir: Path, cleanup: list[Path], entry: Path | None, within: list[Path] | None = None
) -> list[str]:
    """Kill every process carrying this server's marker and remove its directories.

    Removes only what proves to be ours: ``workdir`` inside one of ``within`` (by default its
    run directory), and the ``cleanup`` paths that sit in a per-user directory of ours and
    name ``workdir``.
    """
    done: list[str] = []
    pids = _proc.family(_proc.marked_pids(str(workdir)))
    if pids:
        names = [(_proc.cmdline(pid) or ["?"])[0] for pid in pids]
        _proc.kill_and_wait(pids)
        done.append(
            "killed "
            + ", ".join(f"pid {p} ({Path(n).name})" for p, n in zip(pids, names, strict=True))
        )
    ours = os.path.lexists(workdir) and _ours(workdir, entry)
    claimed = [
        p
        for p in cleanup
        if _claimed(p, workdir) and _safedir.trusted(p.parent) and _safedir.inside(p, [p.parent])
    ]
    if ours:  # by what the kernel says, never by postmaster.pid (the server user writes it)
        _proc.remove_sysv_segments(workdir)
    for path in claimed:
        if _claim_names(path, workdir):
            if _safedir.remove(path, [path.parent]):
                done.append(f"removed {path}")
        else:
            # Created but not yet marked when its creator died: only an empty one is ours.
            with contextlib.suppress(OSError):
                path.rmdir()
                done.append(f"removed {path}")
    if ours and _safedir.remove(workdir, within or [workdir.parent]):
        done.append(f"removed {workdir}")
    if entry is not None:
        with contextlib.suppress(OSError):
            entry.unlink()
    return done


def _remove_dead_run_dir(run_dir: Path, root_pid: int, user: Path) -> bool:
    """Remove the run directory of a dead root if it lies in our per-user directory ``user``,
    the run marked it as its own (a ``root.json`` naming the root pid) and no server work
    directory is left in it."""
    owner = _safedir.read_json(run_dir / "root.json")
    if owner is None or owner.get("root_pid") != root_pid or process.running(root_pid):
        return False
    with contextlib.suppress(OSError):
        if any(_WORKDIR_NAME.match(p.name) for p in run_dir.iterdir()):
            return False
    return _safedir.remove(run_dir, [user])


def _server_running(record: ServerRecord) -> bool:
    return process.running(record.server_pid) and _proc.has_marker(
        record.server_pid, record.workdir
    )


def stop(record: ServerRecord, timeout: float = 10.0) -> None:
    """Stop a server started by :func:`start` and remove its directories.

    Idempotent, and works from any process (an xdist worker may stop what the controller
    started): the watchdog is asked to stop the server; if it is gone or does not finish in
    ``timeout`` seconds, the server's processes are killed here.
    """
    workdir = Path(record.workdir)
    spec = (_safedir.read_json(workdir / "spec.json") if _ours(workdir, None) else None) or {}
    entry = Path(spec["registry"]) if spec.get("registry") else registry_entry(workdir)
    note = _safedir.read_json(entry) or {}
    cleanup = [Path(p) for p in spec.get("cleanup") or note.get("cleanup") or []]
    deadline = time.monotonic() + timeout
    if _is_watchdog(record.watchdog_pid, workdir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.watchdog_pid, signal.SIGTERM)
        while time.monotonic() < deadline:
            _reap_child(record.watchdog_pid, 0)
            if not (
                process.running(record.watchdog_pid) or _server_running(record) or workdir.exists()
            ):
                break
            time.sleep(0.01)
    # Whatever is left (a hung or killed watchdog): the watchdog and the server both carry
    # the marker, and their children are collected before anything is killed.
    _force_cleanup(workdir, cleanup, entry)
    _reap_child(record.watchdog_pid, 1.0)
    if _server_running(record):
        raise ServiceError(
            f"could not stop the local {record.service} server (pid {record.server_pid})"
        )


def adopt(record: ServerRecord) -> None:
    """Tell the watchdog that the run has recorded this server.

    Until then, a server started by a process other than the run's root (an xdist worker)
    is stopped when that process dies: a worker killed while starting servers must not
    leave a set running that no record names, while the next worker starts another.
    """
    workdir = Path(record.workdir)
    if _ours(workdir, None):
        with contextlib.suppress(OSError):
            (workdir / "adopted").touch()


def died(record: ServerRecord) -> str | None:
    """None while the server of ``record`` runs; else a message saying that it died, how,
    and the last lines of its log (for a test that then fails to reach it)."""
    if _server_running(record):
        return None
    workdir = Path(record.workdir)
    report = None
    for _ in range(50):  # its watchdog records the status right after reaping the server
        report = _safedir.read_json(workdir / "exit.json") if _ours(workdir, None) else None
        if report is not None or not _is_watchdog(record.watchdog_pid, workdir):
            break
        time.sleep(0.01)
    status = (report or {}).get("returncode")
    how = (
        f"was killed by signal {-status}"
        if isinstance(status, int) and status < 0
        else f"exited with status {status}"
        if isinstance(status, int)
        else "is gone"
    )
    return (
        f"the local {record.service} server ({record.description}, pid {record.server_pid}) "
        f"died during the run: it {how}. Tests that use it fail from here on.\n"
        f"last lines of its log ({workdir / 'server.log'}):\n"
        f"{_proc.log_tail(workdir / 'server.log')}"
    )


def reap_stale(tmp_root: Path | None = None) -> list[str]:
    """Clean up after earlier runs whose root pytest process died without stopping them.

    Every server :func:`start` launches leaves a note in ``<tmp_root>/pytest-pipeline-<uid>/
    servers`` (``tmp_root`` defaults to the system temp directory) until it is cleaned up.
    That directory is checked first (ours, no symlink, writable by us only): if it fails,
    ``UnsafeDirectoryError`` names it and nothing is read or deleted. For each note whose root
    process is gone, kills the watchdog and server processes that still carry the server's
    marker variable (read from /proc/<pid>/environ, so a reused pid is never hit) together
    with their children, and removes the directories that prove to be ours: inside our
    per-user directory, named as we name them, and naming their work directory. A note's
    word alone never sends a deletion elsewhere. Returns one line per reaped server.
    """
    registry = registry_path(tmp_root)
    user = registry.parent
    if not (_safedir.check(user) and _safedir.check(registry)):
        return []
    reaped: list[str] = []
    for entry in sorted(registry.glob("*.json")):
        note = _safedir.read_json(entry)
        if note is None or "workdir" not in note:
            continue
        workdir = Path(str(note["workdir"]))
        if entry != registry_entry(workdir, tmp_root):
            continue  # not a name we would have written
        if not (_WORKDIR_NAME.match(workdir.name) and _safedir.inside(workdir, [user])):
            continue  # we only ever make work directories inside our per-user directory
        root_pid = int(note.get("root_pid", 0))
        if process.start_time(root_pid) == note.get("root_start"):
            continue  # that run is still going
        if os.path.lexists(workdir) and not _ours(workdir, entry):
            continue
        spec = _safedir.read_json(workdir / "spec.json") or {}
        cleanup = [Path(p) for p in (note.get("cleanup") or spec.get("cleanup") or [])]
        # The watchdog carries the marker too: it goes with the server and its children.
        done = _force_cleanup(workdir, cleanup, entry, [user])
        if _remove_dead_run_dir(workdir.parent, root_pid, user):
            done.append(f"removed {workdir.parent}")
        if done:
            reaped.append(
                f"{note.get('service', 'local')} server of the ended pytest run "
                f"(pid {root_pid}): " + "; ".join(done)
            )
    return reaped


#: Directories Workspace.claim_dir makes in a per-user directory (data copies, initdb scratch).
_CLAIM_NAME = re.compile(r"(postgres|kafka|s3)-[0-9a-f]{12}-[a-z]+")


def reap_leftovers() -> list[str]:
    """What killed runs of this user left anywhere, whatever their ``TMPDIR``, removed.

    Visits every per-user directory a run of ours has used (see ``_safedir``): reaps their
    servers (:func:`reap_stale`) and removes data directories (such as Postgres copies in
    /dev/shm) and initdb scratch whose run has ended, even when it was killed before its
    watchdog existed; then the Postgres cache's half-built templates that no run is
    building. Returns one line per thing removed.
    """
    done: list[str] = []
    for user in _safedir.known_user_dirs():
        with contextlib.suppress(UnsafeDirectoryError):
            done += reap_stale(user)

    def kill_marked(path: Path, record: dict[str, Any]) -> None:
        if record.get("workdir"):
            _proc.kill_and_wait(_proc.family(_proc.marked_pids(str(record["workdir"]))))

    done += [f"removed {p}" for p in _safedir.remove_stale(_CLAIM_NAME, kill_marked)]
    return done + _postgres.reap_staging()
