"""A hostile neighbour and a crashed run: what the local backend trusts, deletes and recovers.

Another user is played by uid 65534 (the tests run as root in CI containers; as another user
they skip what needs chown); 65534 is also ``nobody``, the account the local PostgreSQL runs
as under root, and uid 12345 plays a bystander whose SysV segment must survive. Servers are
real: the local backend's Postgres, Kafka and S3.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.services.conftest import needs

from pytest_pipeline import _safedir
from pytest_pipeline.errors import ServiceError, UnsafeDirectoryError
from pytest_pipeline.services import local, process
from pytest_pipeline.services.local import ServerRecord, _common, _core, _postgres

STRANGER = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="plays another user with chown")


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _victim(path: Path) -> Path:
    """A directory of ours, private, holding files: what the attacker wants deleted."""
    path.mkdir(mode=0o700)
    (path / "precious.txt").write_text("keep me")
    (path / "sub").mkdir()
    (path / "sub" / "more.txt").write_text("and me")
    return path


def _chown_tree(path: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        os.lchown(dirpath, uid, uid)
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, uid)


def _plant_note(registry: Path, tmp_root: Path, workdir: Path, cleanup: list[Path]) -> int:
    """A registry note of a run that has ended; returns that run's (dead) pid."""
    registry.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    note = {
        "service": "postgres",
        "workdir": str(workdir),
        "root_pid": dead.pid,
        "root_start": "1",
        "cleanup": [str(p) for p in cleanup],
    }
    (registry / _common.registry_entry(workdir, tmp_root).name).write_text(json.dumps(note))
    return dead.pid


# --- 1. never delete, read or trust what another user planted ------------------------------


@needs_root
@pytest.mark.parametrize("how", ["another owner", "writable by others", "symlink"])
def test_a_planted_per_user_directory_is_refused_and_its_notes_not_followed(
    tmp_path: Path, how: str
) -> None:
    tmp_root = tmp_path / "tmp"
    tmp_root.mkdir(mode=0o1777)
    victim = _victim(tmp_path / "victim")
    other_victim = _victim(tmp_path / "other-victim")
    planted = tmp_root / f"pytest-pipeline-{os.geteuid()}"
    # The attacker made our per-user directory first, with a note naming the victim.
    real = tmp_path / "attacker" if how == "symlink" else planted
    _plant_note(real / "servers", tmp_root, victim, [other_victim])
    if how == "symlink":
        planted.symlink_to(real)
    if how == "writable by others":
        real.chmod(0o777)
    else:
        _chown_tree(real, STRANGER)

    with pytest.raises(ServiceError, match=re.escape(str(planted))) as raised:
        local.reap_stale(tmp_root)

    assert (victim / "precious.txt").read_text() == "keep me"
    assert (victim / "sub" / "more.txt").exists()
    assert (other_victim / "precious.txt").exists()
    assert "nothing in it was read or deleted" in str(raised.value)
    # Nothing else uses it either: the per-user directory is refused the same way.
    with pytest.raises(UnsafeDirectoryError, match=re.escape(str(planted))):
        _common.state_dir(tmp_root)


@pytest.mark.usefixtures("own_cache")  # no other run on this machine may reap it first
def test_a_note_of_ours_never_sends_a_deletion_outside_our_directory(tmp_path: Path) -> None:
    tmp_root = tmp_path / "tmp"
    tmp_root.mkdir()
    user = _safedir.user_dir(tmp_root)
    # Named like a work directory, with a spec naming itself: still outside our directory.
    victim = _victim(tmp_path / "postgres-0123456789ab")
    (victim / "spec.json").write_text(json.dumps({"workdir": str(victim)}))
    # A data copy "claimed" in a directory that is not one of our per-user directories.
    elsewhere = _victim(tmp_path / "postgres-0123456789ab-pgdata")
    # And a workdir inside our directory whose claimed copy sits behind a symlink.
    workdir = user / "run-1" / "postgres-ffffffffffff"
    workdir.mkdir(parents=True, mode=0o700)
    link_parent = tmp_path / f"pytest-pipeline-{os.geteuid()}"
    link_parent.symlink_to(tmp_path)
    through_link = link_parent / "postgres-ffffffffffff-pgdata"
    _victim(tmp_path / "postgres-ffffffffffff-pgdata")
    _plant_note(user / "servers", tmp_root, victim, [elsewhere])
    dead = _plant_note(user / "servers", tmp_root, workdir, [through_link])

    reaped = local.reap_stale(tmp_root)

    assert (victim / "precious.txt").exists()
    assert (elsewhere / "precious.txt").exists()
    assert (tmp_path / "postgres-ffffffffffff-pgdata" / "precious.txt").exists()
    # What is ours (the work directory inside our directory) still goes.
    assert reaped == [f"postgres server of the ended pytest run (pid {dead}): removed {workdir}"]
    assert not workdir.exists()


@needs_root
def test_a_planted_per_user_directory_fails_a_service_test_naming_it(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_root = tmp_path / "tmp"
    tmp_root.mkdir(mode=0o1777)
    victim = _victim(tmp_path / "victim")
    planted = tmp_root / f"pytest-pipeline-{os.geteuid()}"
    _plant_note(planted / "servers", tmp_root, victim, [])
    _chown_tree(planted, STRANGER)
    pytester.makepyfile("def test_uses_s3(s3_service):\n    pass\n")
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\n")
    monkeypatch.setenv("TMPDIR", str(tmp_root))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert f"refusing to use {planted}: it is owned by uid {STRANGER}" in output
    assert "Traceback" not in output
    assert (victim / "precious.txt").exists()


# --- 6. recover from a broken cache and a crashed server ----------------------------------


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory of this test's own (the machine's cached template stays intact)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "pytest-pipeline" / "postgres"


def _start(service: str, run_dir: Path) -> ServerRecord:
    return local.start(service, run_dir, root_pid=os.getpid(), timeout=60)


@pytest.mark.parametrize("damage", ["password file", "global/pg_control"])
def test_a_broken_cached_template_is_rebuilt_once_and_the_run_says_so(
    tmp_path: Path, own_cache: Path, damage: str
) -> None:
    needs("postgres")
    local.stop(_start("postgres", tmp_path))
    (template,) = [p for p in own_cache.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if damage == "password file":
        _postgres._password_file(template).unlink()
    else:
        (template / "global" / "pg_control").unlink()

    record = _start("postgres", tmp_path)
    try:
        # The description is what the start line shows ("postgres: <description> ready in").
        missing = ".password is missing" if damage == "password file" else f"{damage} is missing"
        assert "cached data directory was broken" in record.description
        assert missing in record.description
        assert local.died(record) is None
    finally:
        local.stop(record)
    again = _start("postgres", tmp_path)  # repaired for good: no second rebuild
    local.stop(again)
    assert "broken" not in again.description


def test_a_server_killed_mid_run_is_reported_as_dead_with_its_log(tmp_path: Path) -> None:
    needs("postgres")
    record = _start("postgres", tmp_path)
    try:
        assert local.died(record) is None
        os.kill(record.server_pid, signal.SIGKILL)
        # The watchdog records the exit status as soon as it reaps the server.
        assert _wait_for(lambda: "killed by signal 9" in (local.died(record) or ""), 10)
        message = local.died(record) or ""
        assert message.startswith("the local postgres server (local PostgreSQL")
        assert "died during the run" in message
        assert "database system is ready to accept connections" in message  # its log tail
    finally:
        local.stop(record)


def test_a_failing_test_after_the_server_died_says_so(pytester: pytest.Pytester) -> None:
    needs("postgres")
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\n")  # auto: local (no engine)
    pytester.makepyfile(
        textwrap.dedent(
            """
            import os, signal, time
            import psycopg

            def test_a_kills_the_server(postgres_service):
                with psycopg.connect(postgres_service.dsn) as conn:
                    backend = conn.execute("select pg_backend_pid()").fetchone()[0]
                    # Read while connected: the backend process ends with the connection.
                    with open(f"/proc/{backend}/stat") as f:
                        postmaster = int(f.read().rsplit(")", 1)[1].split()[1])
                os.kill(postmaster, signal.SIGKILL)

            def test_b_uses_it(postgres):
                pass
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    output = result.stdout.str()
    result.assert_outcomes(passed=1, errors=1)
    assert "pytest-pipeline: a server died" in output
    assert "the local postgres server (local PostgreSQL" in output
    assert "died during the run: it was killed by signal 9" in output


# --- leftovers of runs killed before their watchdog existed --------------------------------

_KILLED_DURING_COPY = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from pytest_pipeline.services import local
    from pytest_pipeline.services.local import _postgres

    copy = _postgres._copy_tree

    def copy_then_hang(src, dst, owner):
        copy(src, dst, owner)
        print(dst, flush=True)
        time.sleep(600)

    _postgres._copy_tree = copy_then_hang
    run_dir = Path(sys.argv[1])
    (run_dir / "root.json").write_text(json.dumps({"root_pid": os.getpid()}))  # as the run does
    local.start("postgres", run_dir, root_pid=os.getpid(), timeout=60)
    """
)


def test_data_copied_by_a_killed_run_is_removed_by_a_run_with_another_tmpdir(
    tmp_path: Path, own_cache: Path
) -> None:
    needs("postgres")
    other_tmp = tmp_path / "other-tmp"
    other_tmp.mkdir()
    run_dir = _safedir.user_dir(other_tmp) / "run-1"
    run_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_DURING_COPY, str(run_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(other_tmp)},
    )
    try:
        assert proc.stdout is not None
        datadir = Path(proc.stdout.readline().strip())
    finally:
        proc.kill()
        proc.wait()
    claimed = datadir.parent
    assert (datadir / "PG_VERSION").is_file()
    assert claimed.parent.name == f"pytest-pipeline-{os.geteuid()}"
    (workdir,) = [p for p in run_dir.iterdir() if p.is_dir()]

    # This process's TMPDIR is not other_tmp: it finds the run through the user's cache.
    done = local.reap_leftovers()

    assert not claimed.exists()
    assert not workdir.exists()
    assert not run_dir.exists()
    # (Another run on this machine may have swept /dev/shm first: the workdir is ours alone.)
    assert any(f"removed {workdir}" in line for line in done), done


def test_half_built_templates_are_removed_when_no_run_builds_them(own_cache: Path) -> None:
    own_cache.mkdir(parents=True, mode=0o700)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = own_cache / f".pg15.18-nobody-0123456789ab.{dead.pid}.a1b2c3"
    (left / "global").mkdir(parents=True)
    (left / "PG_VERSION").write_text("15\n")
    busy = own_cache / f".pg16.2-nobody-ba9876543210.{os.getpid()}.d4e5f6"
    busy.mkdir()
    with open(own_cache / "pg16.2-nobody-ba9876543210.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a run is building this one right now
        removed = _postgres.reap_staging()
    assert removed == [f"removed {left}"]
    assert busy.is_dir()
    assert _postgres.reap_staging() == [f"removed {busy}"]


_PERF_LOCK = textwrap.dedent(
    """
    import time
    from pytest_pipeline import _safedir
    print(_safedir.scratch_dir("perf"), flush=True)
    time.sleep(600)
    """
)


def test_a_perf_lock_dir_of_a_killed_controller_is_removed_by_a_later_run(
    tmp_path: Path, own_cache: Path
) -> None:
    other_tmp = tmp_path / "other-tmp"
    other_tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", _PERF_LOCK],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(other_tmp)},
    )
    try:
        assert proc.stdout is not None
        left = Path(proc.stdout.readline().strip())
        assert left.parent == other_tmp / f"pytest-pipeline-{os.geteuid()}"
        live = _safedir.scratch_dir("perf")  # its controller still runs: kept
        assert left.is_dir()
    finally:
        proc.kill()
        proc.wait()
    mine = _safedir.scratch_dir("perf")
    try:
        assert not left.exists()
        assert live.is_dir()  # this process is its run's root, and alive
    finally:
        for path in (live, mine):
            _safedir.remove(path, [path.parent])


# --- 7. a worker killed while starting servers ---------------------------------------------

_WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from pytest_pipeline.services import local
    run_dir, root = Path(sys.argv[1]), int(sys.argv[2])
    orphan = local.start("kafka", run_dir, root_pid=root, timeout=60)
    recorded = local.start("kafka", run_dir, root_pid=root, timeout=60)
    local.adopt(recorded)  # what the manager does once the run's state names it
    print(json.dumps([orphan.to_dict(), recorded.to_dict()]), flush=True)
    time.sleep(600)
    """
)


def test_a_worker_killed_while_starting_servers_leaves_none_unrecorded(tmp_path: Path) -> None:
    needs("kafka")
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(tmp_path), str(os.getpid())],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        orphan, recorded = (ServerRecord.from_dict(r) for r in json.loads(proc.stdout.readline()))
    finally:
        proc.kill()
        proc.wait()
    try:
        # The root (this process) lives on: only the dead worker's unrecorded server stops.
        assert _wait_for(lambda: not process.running(orphan.server_pid), 10)
        assert _wait_for(lambda: not Path(orphan.workdir).exists(), 5)
        assert process.running(recorded.server_pid)
        assert local.died(recorded) is None
    finally:
        with contextlib.suppress(ServiceError):
            local.stop(orphan)
        local.stop(recorded)
    assert _core._WORKDIR_NAME.match(Path(recorded.workdir).name)


def test_servers_an_xdist_worker_started_are_adopted_once_recorded(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("xdist")
    needs("kafka")
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\n")
    pytester.makepyfile(
        textwrap.dedent(
            """
            import json, os
            from pathlib import Path
            from pytest_pipeline.services.plugin import manager_of

            def test_adopted(kafka_service, request):
                run = manager_of(request.config).run
                assert os.getpid() != run.root_pid  # a worker started it
                state = json.loads((run.run_dir / "state.json").read_text())
                assert Path(state["kafka"]["record"]["workdir"], "adopted").is_file()
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1")
    result.assert_outcomes(passed=1)


def test_removal_follows_no_symlink_below_our_directory(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o755)
    alias = tmp_path / "alias"
    alias.symlink_to(real)  # a TMPDIR reached through a symlink is fine
    ours = _safedir.private_dir(alias / f"pytest-pipeline-{os.geteuid()}", 0o711)
    victim = _victim(tmp_path / "victim")
    (ours / "link").symlink_to(victim)
    (ours / "run-1").mkdir()

    assert not _safedir.remove(ours / "link", [ours])
    assert not _safedir.remove(ours / "link" / "sub", [ours])
    assert not _safedir.remove(ours / "run-1" / ".." / "link", [ours])
    assert not _safedir.remove(ours, [ours])
    assert (victim / "sub" / "more.txt").exists()
    assert _safedir.remove(ours / "run-1", [ours])
    assert not (real / ours.name / "run-1").exists()


# --- 1. the server user's files: a shared account when we are root ------------------------

VICTIM_UID = 12345
_IPC_CREAT = 0o1000


def _segments() -> dict[int, dict[str, int]]:
    """Every SysV shared memory segment on the machine, by id (from /proc/sysvipc/shm)."""
    with open("/proc/sysvipc/shm", encoding="ascii") as f:
        header, *rows = f.read().splitlines()
    names = header.split()
    found: dict[int, dict[str, int]] = {}
    for row in rows:
        fields = dict(zip(names, (int(v) for v in row.split()), strict=False))
        found[fields["shmid"]] = fields
    return found


def _as_user(uid: int, body: Callable[[], int]) -> int:
    """Run ``body`` in a forked child switched to ``uid``; returns what it returned (< 256)."""
    pid = os.fork()
    if pid == 0:
        status = 70
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            status = body()
        finally:
            os._exit(status)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _victim_segment() -> int:
    """A SysV segment of another user (uid 12345), as any program of theirs would make."""
    import ctypes

    read, write = os.pipe()

    def create() -> int:
        shmid = ctypes.CDLL(None).shmget(0, 4096, _IPC_CREAT | 0o600)  # 0 = IPC_PRIVATE
        os.write(write, str(shmid).encode())
        return 0

    assert _as_user(VICTIM_UID, create) == 0
    os.close(write)
    shmid = int(os.read(read, 64))
    os.close(read)
    assert _segments()[shmid]["uid"] == VICTIM_UID
    return shmid


def _planter(pidfile: Path, shmid: int) -> int:
    """A process of the server user (``nobody``) that keeps writing ``pidfile`` with the
    victim's segment id in line 7, as a hostile neighbour sharing that account would."""
    pid = os.fork()
    if pid != 0:
        return pid
    try:
        os.setgroups([])
        os.setgid(STRANGER)
        os.setuid(STRANGER)
        text = f"1\n{pidfile.parent}\n1\n5432\n\n127.0.0.1\n  5432001 {shmid:>9}\nready\n"
        while True:
            with contextlib.suppress(OSError):
                tmp = pidfile.with_name(f".planted.{os.getpid()}")
                tmp.write_text(text)
                os.replace(tmp, pidfile)
            time.sleep(0.001)
    finally:
        os._exit(0)


def _stop_planter(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _data_dir(record: ServerRecord) -> Path:
    spec = json.loads((Path(record.workdir) / "spec.json").read_text())
    return Path(spec["pidfile"]).parent


@needs_root
@pytest.mark.parametrize(
    "stopped_by", ["watchdog", "watchdog (server killed)", "a later run (watchdog killed)"]
)
def test_a_planted_postmaster_pid_never_removes_another_users_segment(
    tmp_path: Path, stopped_by: str
) -> None:
    needs("postgres")
    victim = _victim_segment()
    record = _start("postgres", tmp_path)
    own = [s for s, row in _segments().items() if row["cpid"] == record.server_pid]
    datadir = _data_dir(record)
    claimed = datadir.parent
    planter = _planter(datadir / "postmaster.pid", victim)
    try:
        assert _wait_for(lambda: str(victim) in (datadir / "postmaster.pid").read_text(), 10)
        if stopped_by != "watchdog":
            # Killed, the postmaster leaves its segment (a stopped one removes it itself).
            target = record.server_pid if "server" in stopped_by else record.watchdog_pid
            os.kill(target, signal.SIGKILL)  # the server dies with its watchdog
            assert _wait_for(lambda: not process.running(record.server_pid), 10)
        local.stop(record)
    finally:
        _stop_planter(planter)
        segments = _segments()
        import ctypes

        ctypes.CDLL(None).shmctl(victim, 0, None)  # IPC_RMID: the test's own litter
    assert victim in segments, "another user's segment was removed on a planted file's word"
    # The server's own (tiny, interlock) segment is found without the file, and removed.
    assert own, "PostgreSQL made no SysV segment: nothing to check"
    assert not [s for s in own if s in segments]
    # The planter raced the removal of the data directory: it is gone all the same.
    assert not claimed.exists()


@needs_root
def test_the_data_directory_is_private_to_the_server_user(tmp_path: Path) -> None:
    needs("postgres")
    record = _start("postgres", tmp_path)
    try:
        datadir = _data_dir(record)
        st = datadir.stat()
        assert (st.st_uid, oct(st.st_mode & 0o777)) == (STRANGER, "0o700")
        # Its parent holds our owner file: the server user may pass, not write or list.
        parent = datadir.parent.stat()
        assert (parent.st_uid, oct(parent.st_mode & 0o777)) == (0, "0o711")
        assert (datadir.parent / _safedir.OWNER_FILE).stat().st_uid == 0
    finally:
        local.stop(record)


def test_a_data_directory_that_lost_its_owner_file_is_reaped(
    tmp_path: Path, own_cache: Path
) -> None:
    # What an older version left when the server user refilled the data directory while
    # it was being removed: the owner file gone, an empty data directory of that user.
    (tmp_path / "tmp").mkdir()
    user = _safedir.user_dir(tmp_path / "tmp")
    left = user / "postgres-0123456789ab-pgdata"
    (left / "data").mkdir(parents=True, mode=0o700)
    if os.geteuid() == 0:
        os.chown(left / "data", STRANGER, STRANGER)
    os.utime(left, (time.time() - 3600, time.time() - 3600))
    # Made a moment ago: a run may be about to write its owner file.
    fresh = user / "postgres-ba9876543210-pgdata"
    fresh.mkdir(mode=0o700)
    # Not a name we give: never ours to remove.
    other = user / "something-else"
    other.mkdir()
    os.utime(other, (time.time() - 3600, time.time() - 3600))

    done = local.reap_leftovers()

    assert f"removed {left}" in done
    assert not left.exists()
    assert fresh.is_dir()
    assert other.is_dir()


@needs_root
def test_a_schema_builder_killed_on_a_failing_schema_leaves_no_segment(
    tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs("postgres")
    from pytest_pipeline.services import postgres
    from pytest_pipeline.services.schema import Schema, SchemaError

    builders: list[int] = []
    made: list[int] = []
    spawn = _postgres._Launcher._spawn_builder

    def spawn_builder(self: Any, *args: Any) -> subprocess.Popen[bytes]:
        proc = spawn(self, *args)
        builders.append(proc.pid)
        return proc

    def failing_schema(*args: Any) -> None:
        made.extend(s for s, row in _segments().items() if row["cpid"] in builders)
        raise SchemaError("the schema failed")  # the builder is then killed

    monkeypatch.setattr(_postgres._Launcher, "_spawn_builder", spawn_builder)
    monkeypatch.setattr(postgres, "ensure_template", failing_schema)
    _postgres.use_schema(Schema((), None, None, tmp_path, 10.0, "ab" * 32))
    try:
        with pytest.raises(ServiceError, match="the schema failed"):
            _start("postgres", tmp_path)
    finally:
        _postgres.use_schema(None)
    assert made, "the builder made no SysV segment: nothing to check"
    assert not [s for s in made if s in _segments()]
