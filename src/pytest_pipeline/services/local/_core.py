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

from pytest_pipeline.errors import ServiceError
from pytest_pipeline.services.local import _kafka, _postgres, _proc, _s3
from pytest_pipeline.services.local._common import (
    OWNER_FILE,
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
    root_start = _proc.start_time(root_pid)
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
            plan = launcher.plan(_proc.free_ports(launcher.ports_needed))
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
        raise ServiceError(
            f"the watchdog of the local {ws.service} server did not report "
            f"(exit status {watchdog.poll()}).\ncommand: {_proc.quote_cmd(cmd)}\n"
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
        if not _proc.running(server_pid):
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
        and _proc.running(pid)
        and any(a.endswith("_watchdog.py") for a in args)
        and str(workdir / "spec.json") in args
    )


def _ours(workdir: Path, entry: Path | None) -> bool:
    """The work directory was made by us: its spec or our registry note names it."""
    spec = _proc.read_json(workdir / "spec.json")
    if spec is not None:
        return spec.get("workdir") == str(workdir)
    note = _proc.read_json(entry) if entry is not None else None
    return note is not None and note.get("workdir") == str(workdir)


def _force_cleanup(workdir: Path, cleanup: list[Path], entry: Path | None) -> list[str]:
    """Kill every process carrying this server's marker and remove its directories."""
    done: list[str] = []
    pids = _proc.family(_proc.marked_pids(str(workdir)))
    if pids:
        names = [(_proc.cmdline(pid) or ["?"])[0] for pid in pids]
        _proc.kill_and_wait(pids)
        done.append(
            "killed "
            + ", ".join(f"pid {p} ({Path(n).name})" for p, n in zip(pids, names, strict=True))
        )
    spec = _proc.read_json(workdir / "spec.json") or {}
    if spec.get("pidfile"):
        _proc.remove_sysv_segment(Path(spec["pidfile"]))
    for path in cleanup:
        try:
            mine = (path / OWNER_FILE).read_text(encoding="utf-8") == str(workdir)
        except OSError:
            mine = False
        if mine:
            _proc.rmtree(path)
            done.append(f"removed {path}")
        else:
            # Created but not yet marked when its creator died: only an empty one is ours.
            with contextlib.suppress(OSError):
                path.rmdir()
                done.append(f"removed {path}")
    if workdir.exists() and _ours(workdir, entry):
        _proc.rmtree(workdir)
        done.append(f"removed {workdir}")
    if entry is not None:
        with contextlib.suppress(OSError):
            entry.unlink()
    return done


def _remove_dead_run_dir(run_dir: Path, root_pid: int) -> bool:
    """Remove the run directory of a dead root if the run marked it as its own (a
    ``root.json`` naming the root pid) and no server work directory is left in it."""
    owner = _proc.read_json(run_dir / "root.json")
    if owner is None or owner.get("root_pid") != root_pid or _proc.running(root_pid):
        return False
    with contextlib.suppress(OSError):
        if any(_WORKDIR_NAME.match(p.name) for p in run_dir.iterdir()):
            return False
    _proc.rmtree(run_dir)
    return True


def _server_running(record: ServerRecord) -> bool:
    return _proc.running(record.server_pid) and _proc.has_marker(record.server_pid, record.workdir)


def stop(record: ServerRecord, timeout: float = 10.0) -> None:
    """Stop a server started by :func:`start` and remove its directories.

    Idempotent, and works from any process (an xdist worker may stop what the controller
    started): the watchdog is asked to stop the server; if it is gone or does not finish in
    ``timeout`` seconds, the server's processes are killed here.
    """
    workdir = Path(record.workdir)
    spec = _proc.read_json(workdir / "spec.json") or {}
    entry = Path(spec["registry"]) if spec.get("registry") else registry_entry(workdir)
    note = _proc.read_json(entry) or {}
    cleanup = [Path(p) for p in spec.get("cleanup") or note.get("cleanup") or []]
    deadline = time.monotonic() + timeout
    if _is_watchdog(record.watchdog_pid, workdir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.watchdog_pid, signal.SIGTERM)
        while time.monotonic() < deadline:
            _reap_child(record.watchdog_pid, 0)
            if not (
                _proc.running(record.watchdog_pid) or _server_running(record) or workdir.exists()
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


def reap_stale(tmp_root: Path | None = None) -> list[str]:
    """Clean up after earlier runs whose root pytest process died without stopping them.

    Every server :func:`start` launches leaves a note in ``<tmp_root>/pytest-pipeline-<uid>/
    servers`` (``tmp_root`` defaults to the system temp directory) until it is cleaned up.
    For each note whose root process is gone, kills the watchdog and server processes that
    still carry the server's marker variable (read from /proc/<pid>/environ, so a reused pid
    is never hit) together with their children, and removes the directories that prove to
    be ours (their spec or owner file names the work directory). Returns one line per
    reaped server.
    """
    reaped: list[str] = []
    for entry in sorted(registry_path(tmp_root).glob("*.json")):
        note = _proc.read_json(entry)
        if note is None or "workdir" not in note:
            continue
        workdir = Path(str(note["workdir"]))
        if entry != registry_entry(workdir, tmp_root):
            continue  # not a name we would have written
        root_pid = int(note.get("root_pid", 0))
        if _proc.start_time(root_pid) == note.get("root_start"):
            continue  # that run is still going
        if workdir.exists() and not _ours(workdir, entry):
            continue
        spec = _proc.read_json(workdir / "spec.json") or {}
        cleanup = [Path(p) for p in (note.get("cleanup") or spec.get("cleanup") or [])]
        # The watchdog carries the marker too: it goes with the server and its children.
        done = _force_cleanup(workdir, cleanup, entry)
        if _remove_dead_run_dir(workdir.parent, root_pid):
            done.append(f"removed {workdir.parent}")
        if done:
            reaped.append(
                f"{note.get('service', 'local')} server of the ended pytest run "
                f"(pid {root_pid}): " + "; ".join(done)
            )
    return reaped
