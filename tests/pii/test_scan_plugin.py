"""fixtures_pii at collection (error / warn / off, the allowlist, the cache) and
``pytest-pipeline scan``; and no false positive on the project's own example data."""

from __future__ import annotations

import ast
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline.cli import main as cli
from pytest_pipeline.fixture_files import store as fixture_files
from pytest_pipeline.pii import detectors, scanner

Toml = Callable[[str], None]
ROOT = Path(__file__).resolve().parents[2]

# Real-looking (valid checks, not published test values); built from the same recipes as in
# test_detectors.py and written out here so the expected masks can be read off.
CARD = "4539578763621486"
IBAN = "DE44500105175407324931"
EMAIL = "jane.doe@gmail.com"
PHONE = "+447911638204"
SSN = "536-22-8741"
EVERY_VALUE = (CARD, "4539 5787 6362 1486", IBAN, EMAIL, PHONE, SSN, "536228741")


@pytest.fixture
def fixtures(pytester: pytest.Pytester) -> Path:
    folder = pytester.path / "tests" / "fixtures"
    folder.mkdir(parents=True)
    pytester.makepyfile(test_one="def test_ok():\n    assert True\n")
    return folder


def _write_real_data(fixtures: Path) -> None:
    """One value per format, each at a known line, column, row and field."""
    (fixtures / "payments").mkdir()
    (fixtures / "payments" / "events.jsonl").write_text(
        '{"id": 1, "card": "4242 4242 4242 4242"}\n\n{"id": 2, "card": "4539 5787 6362 1486"}\n'
    )
    (fixtures / "customers.csv").write_text(f'id,email\n1,anna@example.com\n2,"{EMAIL}"\n')
    (fixtures / "orders.json").write_text(
        json.dumps([{"id": 1, "contact": {"phone": "+1-212-555-0142"}},
                    {"id": 2, "contact": {"phone": PHONE}}], indent=2)
    )  # fmt: skip
    (fixtures / "payouts.jsonl.gz").write_bytes(
        gzip.compress(json.dumps({"iban": IBAN, "note": f"ssn {SSN}"}).encode() + b"\n")
    )


def _stats(pytester: pytest.Pytester) -> dict[str, Any]:
    path = pytester.path / ".pytest_cache" / "v" / "pytest-pipeline" / "pii" / "last-scan"
    stats: dict[str, Any] = json.loads(path.read_text())
    return stats


def _assert_never_shown(text: str) -> None:
    for value in EVERY_VALUE:
        assert value not in text, "a raw value was printed"


# --------------------------------------------------------------------------- modes


def test_error_mode_makes_a_collection_error_naming_each_hit(
    pytester: pytest.Pytester, fixtures: Path, pipeline_toml: Toml
) -> None:
    pipeline_toml('fixtures_pii = "error"\n')
    _write_real_data(fixtures)
    result = pytester.runpytest()
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, output
    result.assert_outcomes(errors=1)  # and test_ok did not run
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting tests/fixtures*",
            "*fixture files hold data that looks real: 5 value(s) in 4 file(s)*",
            "*tests/fixtures/customers.csv:3:4 (row 2, field 'email'): e-mail address "
            "j***@g***.com",
            "*tests/fixtures/orders.json:11:17 (row 2, field 'contact.phone'): phone number "
            "+********8204",
            "*tests/fixtures/payouts.jsonl.gz:1:11 (row 1, field 'iban'): IBAN DE*****4931",
            "*tests/fixtures/payouts.jsonl.gz:1:49 (row 1, field 'note'): US SSN ***-**-8741",
            "*tests/fixtures/payments/events.jsonl:3:20 (row 2, field 'card'): card number "
            "************1486",
            "*list it or its file under fixtures_pii_allow*",
        ]
    )
    _assert_never_shown(output + result.stderr.str())


def test_error_mode_stops_an_xdist_run_before_any_test(
    pytester: pytest.Pytester, fixtures: Path, pipeline_toml: Toml
) -> None:
    pytest.importorskip("xdist")
    pipeline_toml('fixtures_pii = "error"\n')
    _write_real_data(fixtures)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()
    result.stdout.fnmatch_lines(["*ERROR collecting tests/fixtures*", "*1 error in*"])
    assert "passed" not in result.stdout.str()
    _assert_never_shown(result.stdout.str() + result.stderr.str())


def test_warn_mode_warns_and_runs_the_tests(
    pytester: pytest.Pytester, fixtures: Path, pipeline_toml: Toml
) -> None:
    pipeline_toml('fixtures_pii = "warn"\n')
    _write_real_data(fixtures)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*PipelineWarning: fixture files hold data that looks real: 5 value(s)*"]
    )
    _assert_never_shown(result.stdout.str())


def test_the_warning_points_at_the_fixture_file(
    pytester: pytest.Pytester, fixtures: Path, pipeline_toml: Toml
) -> None:
    pipeline_toml('fixtures_pii = "warn"\n')
    _write_real_data(fixtures)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*tests/fixtures/customers.csv:3: PipelineWarning: fixture*"])
    output = result.stdout.str()
    assert "pii/plugin.py" not in output
    assert "warnings.warn" not in output
    _assert_never_shown(output)  # not in the source line a warning summary shows either


def test_warn_is_the_default(pytester: pytest.Pytester, fixtures: Path) -> None:
    _write_real_data(fixtures)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, warnings=1)


def test_off_mode_does_not_scan(
    pytester: pytest.Pytester, fixtures: Path, pipeline_toml: Toml
) -> None:
    pipeline_toml('fixtures_pii = "off"\n')
    _write_real_data(fixtures)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "looks real" not in result.stdout.str()
    assert not (pytester.path / ".pytest_cache" / "v" / "pytest-pipeline" / "pii").exists()


def test_a_bad_mode_is_a_usage_error(
    pytester: pytest.Pytester,
    fixtures: Path,
    pipeline_toml: Toml,
    assert_usage_error: Callable[..., None],
) -> None:
    pipeline_toml('fixtures_pii = "loud"\n')
    result = pytester.runpytest()
    assert_usage_error(result, "*fixtures_pii*must be one of 'error', 'warn', 'off'*")


def test_clean_fixtures_give_no_message(
    pytester: pytest.Pytester, fixtures: Path, pipeline_toml: Toml
) -> None:
    pipeline_toml('fixtures_pii = "error"\n')
    (fixtures / "cards.jsonl").write_text(
        '{"card": "4242 4242 4242 4242", "email": "a@example.com", "phone": "+1 212 555 0100"}\n'
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


# --------------------------------------------------------------------------- allowlist


def test_the_allowlist_takes_file_globs_and_exact_values(
    pytester: pytest.Pytester, fixtures: Path, pipeline_toml: Toml
) -> None:
    _write_real_data(fixtures)
    pipeline_toml(
        'fixtures_pii = "error"\n'
        "fixtures_pii_allow = [\n"
        '  "payments/*.jsonl", "*.gz",\n'  # globs relative to fixtures_dir
        '  "Jane.Doe@gmail.com",\n'  # a value, in any spelling of its normal form
        "]\n"
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*1 value(s) in 1 file(s)*", "*orders.json:11:17*"])
    output = result.stdout.str()
    assert "events.jsonl" not in output
    assert "payouts" not in output
    assert "customers" not in output
    pipeline_toml(
        'fixtures_pii = "error"\n'
        f'fixtures_pii_allow = ["payments/*.jsonl", "*.gz", "{EMAIL}", "+44 7911 638204"]\n'
    )
    pytester.runpytest().assert_outcomes(passed=1)


# --------------------------------------------------------------------------- the cache


def test_an_unchanged_tree_is_not_read_again(
    pytester: pytest.Pytester, fixtures: Path, pipeline_toml: Toml
) -> None:
    pipeline_toml('fixtures_pii = "warn"\n')
    _write_real_data(fixtures)
    (fixtures / "copy.csv").write_bytes((fixtures / "customers.csv").read_bytes())
    pytester.runpytest().assert_outcomes(passed=1, warnings=1)
    # 5 files, 4 distinct contents: the copy's hits come from the first one's hash.
    assert _stats(pytester) == {
        "files": 5, "read": 5, "scanned": 4, "hits": 6, "allowed": 0, "skipped": 0
    }  # fmt: skip

    result = pytester.runpytest()
    result.assert_outcomes(passed=1, warnings=1)  # the hits are still reported
    result.stdout.fnmatch_lines(["*6 value(s) in 5 file(s)*"])
    assert _stats(pytester)["read"] == 0
    assert _stats(pytester)["scanned"] == 0

    # Touched: read and hashed again, but the content is known: not parsed again.
    events = fixtures / "payments" / "events.jsonl"
    stat = events.stat()
    os.utime(events, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    pytester.runpytest().assert_outcomes(passed=1, warnings=1)
    assert (_stats(pytester)["read"], _stats(pytester)["scanned"]) == (1, 0)

    # New content: scanned; the hit is gone.
    events.write_text('{"id": 2, "card": "4111 1111 1111 1111"}\n')
    pytester.runpytest().assert_outcomes(passed=1, warnings=1)
    assert _stats(pytester) == {
        "files": 5, "read": 1, "scanned": 1, "hits": 5, "allowed": 0, "skipped": 0
    }  # fmt: skip


def test_an_unchanged_tree_imports_neither_the_loader_nor_the_detectors(tmp_path: Path) -> None:
    root = tmp_path / "fixtures"
    root.mkdir()
    _write_real_data(root)
    (root / "README.md").write_text("not a fixture")
    _, state = scanner.scan_tree(root)
    (tmp_path / "state.json").write_text(json.dumps(state))
    code = (
        "import json, sys, pathlib\n"
        "from pytest_pipeline.pii import scanner\n"
        f"root = pathlib.Path({str(root)!r})\n"
        "state = json.loads((root.parent / 'state.json').read_text())\n"
        "result, _ = scanner.scan_tree(root, state=state)\n"
        "loaded = [m for m in ('pytest_pipeline.fixture_files.store',"
        " 'pytest_pipeline.pii.detectors')"
        " if m in sys.modules]\n"
        "print(result.read, result.scanned, len(result.hits), loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "0 0 5 []", done.stdout + done.stderr
    assert scanner.DEFAULT_LIMIT == fixture_files.DEFAULT_MAX_BYTES


def test_the_cache_holds_no_raw_value(
    pytester: pytest.Pytester, fixtures: Path, pipeline_toml: Toml
) -> None:
    _write_real_data(fixtures)
    pytester.runpytest()
    cached = "".join(
        p.read_text() for p in (pytester.path / ".pytest_cache").rglob("*") if p.is_file()
    )
    assert "j***@g***.com" in cached
    _assert_never_shown(cached)


# --------------------------------------------------------------------------- formats


def test_parquet_files_are_scanned_with_row_and_field(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"id": [1, 2], "ssn": ["123-45-6789", SSN], "card": [0, int(CARD)]})
    pq.write_table(table, tmp_path / "people.parquet")
    result, _ = scanner.scan_tree(tmp_path)
    shown = [hit.describe() for hit in result.hits]
    assert shown == [
        "people.parquet (row 2, field 'ssn'): US SSN ***-**-8741",
        "people.parquet (row 2, field 'card'): card number ************1486",
    ]


def test_values_right_after_a_separator_are_found(tmp_path: Path) -> None:
    # A card number glued to a comma is no card in free text ("1,4539..."), but a CSV cell or
    # a JSON array item is a value of its own.
    (tmp_path / "a.csv").write_text(f"id,card\n1,{CARD}\n")
    (tmp_path / "b.json").write_text(f'{{"cards":[1,{CARD}]}}')
    result, _ = scanner.scan_tree(tmp_path)
    assert [hit.describe() for hit in result.hits] == [
        "a.csv:2:3 (row 1, field 'card'): card number ************1486",
        "b.json:1:13 (field 'cards[1]'): card number ************1486",
    ]


def test_a_file_that_does_not_parse_is_still_searched_line_by_line(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('[{"email": "' + EMAIL + '",\n  oops\n')
    result, _ = scanner.scan_tree(tmp_path)
    assert [hit.describe() for hit in result.hits] == [
        "broken.json:1:13: e-mail address j***@g***.com"
    ]


def test_links_and_other_suffixes_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "real.jsonl").write_text(json.dumps({"email": EMAIL}) + "\n")
    root = tmp_path / "fixtures"
    root.mkdir()
    (root / "notes.txt").write_text(EMAIL)  # not a fixture format
    (root / "link.jsonl").symlink_to(outside / "real.jsonl")
    (root / "dir").symlink_to(outside, target_is_directory=True)
    result, _ = scanner.scan_tree(root)
    assert result.files == 0
    assert result.hits == []


# --------------------------------------------------------------------------- the command


def _write_project(tmp_path: Path, body: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.pytest-pipeline]\n" + body)
    fixtures = tmp_path / "tests" / "fixtures"
    fixtures.mkdir(parents=True)
    return fixtures


def test_the_scan_command_lists_every_hit_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_real_data(_write_project(tmp_path, 'fixtures_pii = "off"\n'))  # asking overrides off
    assert cli.main(["scan", "--rootdir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "5 value(s) in 4 file(s)" in out
    assert "tests/fixtures/payments/events.jsonl:3:20 (row 2, field 'card')" in out
    _assert_never_shown(out)


def test_the_scan_command_exits_0_on_clean_fixtures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixtures = _write_project(tmp_path, f'fixtures_pii_allow = ["{EMAIL}"]\n')
    (fixtures / "a.csv").write_text(f"email\n{EMAIL}\nb@example.org\n")
    assert cli.main(["scan", "--rootdir", str(tmp_path)]) == 0
    assert "1 fixture file(s) in tests/fixtures/, no data that looks real, 1 allowed" in (
        capsys.readouterr().out
    )


def test_the_scan_command_says_when_fixtures_pii_is_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_real_data(_write_project(tmp_path, 'fixtures_pii = "off"\n'))
    assert cli.main(["scan", "--rootdir", str(tmp_path)]) == 1  # asked for: it scans
    out = capsys.readouterr().out
    assert "fixtures_pii is off for test runs" in out
    (tmp_path / "on").mkdir()
    _write_project(tmp_path / "on")
    assert cli.main(["scan", "--rootdir", str(tmp_path / "on")]) == 0
    assert "is off" not in capsys.readouterr().out


def test_the_scan_command_counts_allowlisted_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixtures = _write_project(tmp_path, 'fixtures_pii_allow = ["legacy/*.csv"]\n')
    (fixtures / "legacy").mkdir()
    for name in ("a.csv", "b.csv"):
        (fixtures / "legacy" / name).write_text(f"email\n{EMAIL}\n")
    (fixtures / "c.csv").write_text("email\nb@example.org\n")
    assert cli.main(["scan", "--rootdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 fixture file(s) in tests/fixtures/, no data that looks real" in out
    assert "2 file(s) not scanned: allowlisted by fixtures_pii_allow" in out
    (fixtures / "d.csv").write_text(f"email\n{EMAIL}\n")
    assert cli.main(["scan", "--rootdir", str(tmp_path)]) == 1  # with hits, said too
    assert "2 file(s) not scanned: allowlisted by fixtures_pii_allow" in capsys.readouterr().out


def test_the_scan_command_finds_the_project_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fixtures = _write_project(tmp_path)
    (fixtures / "a.jsonl").write_text(json.dumps({"phone": PHONE}) + "\n")
    monkeypatch.chdir(fixtures)
    assert cli.main(["scan"]) == 1
    assert "tests/fixtures/a.jsonl:1:12 (row 1, field 'phone')" in capsys.readouterr().out


def test_the_scan_command_exits_2_on_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["scan", "--rootdir", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "pyproject.toml").write_text('[tool.pytest-pipeline]\nfixtures_dir = "gone"\n')
    assert cli.main(["scan", "--rootdir", str(tmp_path)]) == 2
    assert "fixtures directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli.main(["scan", "--bogus"])
    assert exited.value.code == 2


# --------------------------------------------------------------------------- own data


@pytest.mark.parametrize(
    "folder",
    [
        "examples/payments/tests/fixtures",
        "src/pytest_pipeline/cli/templates/project/fixtures",
        "examples",
        "tests",
        "src/pytest_pipeline/cli/templates",
        "docs",
    ],
)
def test_the_projects_own_data_has_no_false_positive(folder: str) -> None:
    result, _ = scanner.scan_tree(ROOT / folder)
    assert result.hits == [], scanner.report(result, folder + "/")
    assert result.skipped == []


def test_the_test_suites_inline_fixture_data_has_no_false_positive() -> None:
    """Most tests write their fixture files from strings in the test module: every string
    constant of the project's test code (these tests' own real-looking values aside)."""
    hits: list[str] = []
    sources = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "examples").rglob("*.py")]
    for path in sorted(p for p in sources if "pii" not in p.relative_to(ROOT).parts):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                hits.extend(
                    f"{path.relative_to(ROOT)}:{node.lineno}: {match!r}"
                    for match in detectors.find(node.value)
                )
    assert hits == []


def test_the_example_and_the_init_sample_turn_the_scan_on() -> None:
    from pytest_pipeline import config

    assert config.resolve(ROOT / "examples/payments", {}, env={}).fixtures_pii == "error"
    template = ROOT / "src/pytest_pipeline/cli/templates/pyproject/pipeline.toml.tmpl"
    assert 'fixtures_pii = "error"' in template.read_text(encoding="utf-8")


def test_the_projects_own_example_fixtures_are_scanned(tmp_path: Path) -> None:
    result, _ = scanner.scan_tree(ROOT / "examples/payments/tests/fixtures")
    assert result.files == 4
    assert result.scanned == 4
