"""Contained to the project: fixture files are read and written only inside ``fixtures_dir``,
``pytest-pipeline init`` writes only inside the project, and hostile or careless input (links
out of the project, a NUL in a name, a gzip bomb, an empty ``actual`` in update mode) gets a
clear error instead of a leak, a truncated file or an unbounded load.
"""

from __future__ import annotations

import gzip
import json
import os
import stat
import textwrap
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pytest_pipeline.cli import main as cli
from pytest_pipeline.errors import FixtureFileError
from pytest_pipeline.fixture_files.store import FixtureStore

Toml = Callable[[str], None]
UsageCheck = Callable[..., None]

SECRET = "hunter2-secret-line-of-another-file"
RECORDS = [{"id": 1, "name": "alice"}, {"id": 2, "name": "bob"}]


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the example project, holding a file that must never be read."""
    folder = tmp_path_factory.mktemp("elsewhere")
    (folder / "private.jsonl").write_text(f"{SECRET}\n", encoding="utf-8")
    return folder


@pytest.fixture
def fixtures(pytester: pytest.Pytester) -> Path:
    folder = pytester.path / "tests" / "fixtures"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _output(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


def _test_file(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_it=textwrap.dedent(body))


# --------------------------------------------------------------------------- reading


def test_a_link_out_of_the_fixtures_dir_is_not_read(
    pytester: pytest.Pytester, fixtures: Path, outside: Path
) -> None:
    (fixtures / "leak.jsonl").symlink_to(outside / "private.jsonl")
    _test_file(
        pytester,
        """
        def test_it(load_fixture):
            load_fixture("leak.jsonl")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    out = _output(result)
    assert SECRET not in out
    result.stdout.fnmatch_lines(
        ["*fixture file 'leak.jsonl' leads outside the fixtures directory*private.jsonl*"]
    )
    assert "Traceback" not in out


def test_a_linked_folder_out_of_the_fixtures_dir_is_not_read(
    pytester: pytest.Pytester, fixtures: Path, outside: Path
) -> None:
    (fixtures / "shared").symlink_to(outside, target_is_directory=True)
    _test_file(
        pytester,
        """
        import pytest
        from pytest_pipeline.errors import FixtureFileError

        def test_load(load_fixture):
            load_fixture("shared/private.jsonl")

        def test_path(_pipeline_fixture_store):
            with pytest.raises(FixtureFileError, match="leads outside the fixtures directory"):
                _pipeline_fixture_store.path("shared/private.jsonl")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, passed=1)
    assert SECRET not in _output(result)
    result.stdout.fnmatch_lines(["*'shared/private.jsonl' leads outside the fixtures directory*"])


def test_a_link_that_stays_inside_the_fixtures_dir_is_followed(
    pytester: pytest.Pytester, fixtures: Path
) -> None:
    (fixtures / "real.jsonl").write_text(json.dumps(RECORDS[0]) + "\n", encoding="utf-8")
    (fixtures / "alias.jsonl").symlink_to("real.jsonl")
    (fixtures / "v2").mkdir()
    (fixtures / "v2" / "same.jsonl").symlink_to("../real.jsonl")
    _test_file(
        pytester,
        f"""
        def test_it(load_fixture):
            assert load_fixture("alias.jsonl") == [{RECORDS[0]!r}]
            assert load_fixture("v2/same.jsonl") == [{RECORDS[0]!r}]
        """,
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_nul_in_a_fixture_name_is_a_clear_error(
    pytester: pytest.Pytester, fixtures: Path
) -> None:
    _test_file(
        pytester,
        """
        def test_load(load_fixture):
            load_fixture("a\\0b.json")

        def test_compare(assert_matches_fixture):
            assert_matches_fixture([], "x\\0.jsonl")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    out = _output(result)
    assert "embedded null byte" not in out
    assert "ValueError" not in out
    result.stdout.fnmatch_lines(["*fixture name 'a\\x00b.json' contains a NUL character*"])


# --------------------------------------------------------------------------- size guard


def _big_json(n: int) -> bytes:
    return ("[" + ",".join(["0"] * n) + "]").encode()


def test_a_file_above_fixtures_max_mb_is_refused(
    pytester: pytest.Pytester, fixtures: Path, pipeline_toml: Toml
) -> None:
    pipeline_toml("fixtures_max_mb = 1\n")
    (fixtures / "big.json").write_bytes(_big_json(600_000))  # 1.2 MB
    (fixtures / "bomb.json.gz").write_bytes(gzip.compress(_big_json(600_000)))
    (fixtures / "small.json.gz").write_bytes(gzip.compress(_big_json(1000)))
    _test_file(
        pytester,
        """
        def test_plain(load_fixture):
            load_fixture("big.json")

        def test_gzip(load_fixture):
            load_fixture("bomb.json.gz")

        def test_small(load_fixture):
            assert len(load_fixture("small.json.gz")) == 1000
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*tests/fixtures/big.json is larger than fixtures_max_mb (1 MB)*raise fixtures_max_mb*",
            "*tests/fixtures/bomb.json.gz is larger than fixtures_max_mb (1 MB) when decompressed*",
        ]
    )


def test_fixtures_max_mb_can_be_raised(
    pytester: pytest.Pytester,
    fixtures: Path,
    pipeline_toml: Toml,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline_toml("fixtures_max_mb = 1\n")
    (fixtures / "big.json.gz").write_bytes(gzip.compress(_big_json(600_000)))
    _test_file(
        pytester,
        """
        def test_it(load_fixture):
            assert len(load_fixture("big.json.gz")) == 600_000
        """,
    )
    monkeypatch.setenv("PYTEST_PIPELINE_FIXTURES_MAX_MB", "2")
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_parquet_file_that_inflates_past_the_limit_is_refused(tmp_path: Path) -> None:
    pq.write_table(pa.table({"n": pa.array([0] * 1_000_000, pa.int64())}), tmp_path / "z.parquet")
    assert (tmp_path / "z.parquet").stat().st_size < 1024 * 1024  # small on disk, 8 MB in memory
    store = FixtureStore(tmp_path, max_bytes=1024 * 1024)
    with pytest.raises(FixtureFileError, match=r"z.parquet is larger than fixtures_max_mb"):
        store.load("z.parquet")


def test_a_gzip_bomb_is_never_fully_inflated(tmp_path: Path) -> None:
    # 256 MB of JSON white space in 250 kB, written in steps so the test itself stays small.
    with gzip.open(tmp_path / "bomb.json.gz", "wb", compresslevel=9) as bomb:
        for _ in range(256):
            bomb.write(b" " * (1024 * 1024))
    assert (tmp_path / "bomb.json.gz").stat().st_size < 1024 * 1024
    store = FixtureStore(tmp_path, max_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(FixtureFileError, match="when decompressed"):
            store.load("bomb.json.gz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"inflated {peak} bytes for a 1 MiB limit"


# --------------------------------------------------------------------------- update mode


def test_update_does_not_write_through_a_link_out_of_the_fixtures_dir(
    pytester: pytest.Pytester, fixtures: Path, outside: Path
) -> None:
    (fixtures / "out.jsonl").symlink_to(outside / "private.jsonl")
    (fixtures / "new.jsonl").symlink_to(outside / "created-by-the-run.jsonl")  # dangling
    (fixtures / "dir").symlink_to(outside, target_is_directory=True)
    _test_file(
        pytester,
        f"""
        import pytest

        @pytest.mark.parametrize("name", ["out.jsonl", "new.jsonl", "dir/other.jsonl"])
        def test_it(assert_matches_fixture, name):
            assert_matches_fixture({RECORDS!r}, name)
        """,
    )
    result = pytester.runpytest("--pipeline-update-fixtures")
    result.assert_outcomes(failed=3)
    assert (outside / "private.jsonl").read_text(encoding="utf-8") == f"{SECRET}\n"
    assert sorted(p.name for p in outside.iterdir()) == ["private.jsonl"]
    assert SECRET not in _output(result)
    result.stdout.fnmatch_lines(["*fixture file 'out.jsonl' leads outside the fixtures directory*"])


def test_update_keeps_the_mode_of_an_existing_file(
    pytester: pytest.Pytester, fixtures: Path, umask_022: None
) -> None:
    for name, bits in (("shared.jsonl", 0o664), ("private.jsonl", 0o600), ("plain.jsonl", 0o644)):
        (fixtures / name).write_text('{"id": 0}\n', encoding="utf-8")
        (fixtures / name).chmod(bits)
    _test_file(
        pytester,
        f"""
        import pytest

        @pytest.mark.parametrize(
            "name", ["shared.jsonl", "private.jsonl", "plain.jsonl", "sub/new.jsonl"]
        )
        def test_it(assert_matches_fixture, name):
            assert_matches_fixture({RECORDS!r}, name)
        """,
    )
    pytester.runpytest("--pipeline-update-fixtures").assert_outcomes(passed=4)

    def mode(name: str) -> int:
        return stat.S_IMODE((fixtures / name).stat().st_mode)

    assert (fixtures / "plain.jsonl").read_text(encoding="utf-8").count("\n") == 2
    assert mode("shared.jsonl") == 0o664
    assert mode("private.jsonl") == 0o600
    assert mode("plain.jsonl") == 0o644
    assert mode("sub/new.jsonl") == 0o644  # 0666 less the umask, like any new file
    assert [p.name for p in fixtures.iterdir() if p.name.startswith(".")] == []


def test_update_rewrites_the_target_of_a_link_inside_the_fixtures_dir(
    pytester: pytest.Pytester, fixtures: Path
) -> None:
    (fixtures / "real.jsonl").write_text('{"id": 0}\n', encoding="utf-8")
    (fixtures / "alias.jsonl").symlink_to("real.jsonl")
    _test_file(
        pytester,
        f"""
        def test_it(assert_matches_fixture):
            assert_matches_fixture({RECORDS!r}, "alias.jsonl")
        """,
    )
    pytester.runpytest("--pipeline-update-fixtures").assert_outcomes(passed=1)
    assert (fixtures / "alias.jsonl").is_symlink()
    assert (fixtures / "real.jsonl").read_text(encoding="utf-8").count("\n") == 2


def test_update_refuses_to_empty_an_expected_file(
    pytester: pytest.Pytester, fixtures: Path
) -> None:
    before = "".join(json.dumps(row) + "\n" for row in RECORDS)
    for name in ("rows.jsonl", "frame.csv", "ok.jsonl"):
        (fixtures / name).write_text(before, encoding="utf-8")
    (fixtures / "frame.csv").write_text("id,name\n1,alice\n", encoding="utf-8")
    _test_file(
        pytester,
        """
        import pandas as pd

        def test_records(assert_matches_fixture):
            assert_matches_fixture([], "rows.jsonl")

        def test_frame(assert_matches_fixture):
            assert_matches_fixture(pd.DataFrame({"id": [], "name": []}), "frame.csv")

        def test_new_file(assert_matches_fixture):
            assert_matches_fixture([], "none-yet.jsonl")

        def test_said_so(assert_matches_fixture):
            assert_matches_fixture([], "ok.jsonl", allow_empty=True)
        """,
    )
    result = pytester.runpytest("--pipeline-update-fixtures")
    result.assert_outcomes(failed=3, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*actual for 'rows.jsonl' is empty*would empty tests/fixtures/rows.jsonl*"
            "allow_empty=True*"
        ]
    )
    assert (fixtures / "rows.jsonl").read_text(encoding="utf-8") == before
    assert (fixtures / "frame.csv").read_text(encoding="utf-8") == "id,name\n1,alice\n"
    assert not (fixtures / "none-yet.jsonl").exists()
    assert (fixtures / "ok.jsonl").read_text(encoding="utf-8") == ""


def test_an_empty_expected_file_still_compares(pytester: pytest.Pytester, fixtures: Path) -> None:
    (fixtures / "none.jsonl").write_text("", encoding="utf-8")
    _test_file(
        pytester,
        """
        def test_it(assert_matches_fixture):
            assert_matches_fixture([], "none.jsonl")
        """,
    )
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.runpytest("--pipeline-update-fixtures").assert_outcomes(passed=1)  # equal: no write


# --------------------------------------------------------------------------- pytest-pipeline init


def _init(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = cli.main(["init", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_init_does_not_write_through_a_linked_tests_folder(
    tmp_path: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "tests").symlink_to(outside, target_is_directory=True)
    code, _, err = _init(capsys, project)
    assert code == 2
    assert "leads outside the project folder" in err
    assert "tests/" in err
    assert sorted(p.name for p in outside.iterdir()) == ["private.jsonl"]
    assert sorted(p.name for p in project.iterdir()) == ["tests"]  # nothing written


def test_init_force_does_not_write_through_a_link_out_of_the_project(
    tmp_path: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    mine = project / "tests" / "unit" / "test_orders_transform.py"
    mine.parent.mkdir(parents=True)
    mine.symlink_to(outside / "private.jsonl")
    code, _, err = _init(capsys, project, "--force")
    assert code == 2
    assert "tests/unit/test_orders_transform.py leads outside the project folder" in err
    assert (outside / "private.jsonl").read_text(encoding="utf-8") == f"{SECRET}\n"
    assert not (project / "pyproject.toml").exists()


def test_init_does_not_append_to_a_linked_pyproject_out_of_the_project(
    tmp_path: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shared = outside / "pyproject.toml"
    shared.write_text('[project]\nname = "x"\n', encoding="utf-8")
    (project / "pyproject.toml").symlink_to(shared)
    code, _, err = _init(capsys, project)
    assert code == 2
    assert "pyproject.toml leads outside the project folder" in err
    assert shared.read_text(encoding="utf-8") == '[project]\nname = "x"\n'


def test_init_follows_a_link_that_stays_in_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    (project / "checks").mkdir(parents=True)
    (project / "tests").symlink_to("checks", target_is_directory=True)
    code, _, err = _init(capsys, project, "--ci", "none")
    assert code == 0, err
    assert (project / "checks" / "unit" / "test_orders_transform.py").is_file()


def test_init_into_a_project_folder_given_as_a_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    code, _, err = _init(capsys, tmp_path / "link", "--ci", "none")
    assert code == 0, err
    assert (real / "pyproject.toml").is_file()


@pytest.mark.parametrize("value", ["inf", "1e308", "0", "-1", '"big"'])
def test_fixtures_max_mb_must_be_a_size(
    pytester: pytest.Pytester, pipeline_toml: Toml, value: str, assert_usage_error: UsageCheck
) -> None:
    pipeline_toml(f"fixtures_max_mb = {value}\n")
    pytester.makepyfile("def test_ok():\n    pass\n")
    assert_usage_error(
        pytester.runpytest(),
        "*fixtures_max_mb in * must be a positive number of MB, at most 1048576*",
    )
