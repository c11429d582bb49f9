"""``pytest-pipeline report``: records/s per performance test over time, from saved reports."""

from __future__ import annotations

import copy
import json
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline.cli import main as cli

PERF_TESTS = """
import time
import pytest

@pytest.mark.performance(records=1000)
def test_fast(budget):
    with budget.measure():
        time.sleep(0.001)

@pytest.mark.performance(records=500)
@pytest.mark.parametrize("case", ['<b>&"x"'])
def test_odd(budget, case):
    with budget.measure():
        time.sleep(0.001)

@pytest.mark.performance
def test_no_records(budget):
    with budget.measure():
        pass
"""
FAST = "test_perf.py::test_fast"
ODD = 'test_perf.py::test_odd[<b>&"x"]'
NO_RECORDS = "test_perf.py::test_no_records"


@pytest.fixture
def saved_report(pytester: pytest.Pytester, pipeline_toml: Callable[[str], None]) -> dict[str, Any]:
    """A real ``--pipeline-report`` document from a pytester session."""
    pipeline_toml("[tool.pytest-pipeline.budgets]\nmax_seconds = 5.0\n")
    pytester.makepyfile(test_perf=PERF_TESTS)
    out = pytester.path / "run.json"
    pytester.runpytest("--pipeline-report", str(out)).assert_outcomes(passed=3)
    document: dict[str, Any] = json.loads(out.read_text())
    assert {row["nodeid"] for row in document["performance"]} == {FAST, ODD, NO_RECORDS}
    return document


def _copy(
    base: dict[str, Any], path: Path, created: str | None, cpu_count: int, rates: dict[str, float]
) -> None:
    """A copy of ``base`` as if made at ``created`` on a machine with ``cpu_count`` cores."""
    document = copy.deepcopy(base)
    if created is None:
        del document["created"]
    else:
        document["created"] = created
    document["hardware"]["cpu_count"] = cpu_count
    for row in document["performance"]:
        if row["nodeid"] in rates:
            row["records_per_second"] = rates[row["nodeid"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


# File names out of time order: runs are ordered by their "created" time, not by name.
HISTORY = [
    ("c.json", "2024-03-01T09:00:00+00:00", 4, {FAST: 1000.0, ODD: 50.0}),
    ("a.json", "2024-03-02T09:00:00+00:00", 4, {FAST: 2000.0, ODD: 60.0}),
    ("d.json", "2024-03-03T09:00:00+00:00", 64, {FAST: 3000.0, ODD: 70.0}),
    ("b.json", "2024-03-04T09:00:00+00:00", 64, {FAST: 4000.0, ODD: 80.0}),
]


@pytest.fixture
def history(saved_report: dict[str, Any], tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    for name, created, cores, rates in HISTORY:
        _copy(saved_report, folder / name, created, cores, rates)
    return folder


class _Chart(HTMLParser):
    """Series (test id -> [(time, value)]) and hardware-change times of a generated page."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.series: dict[str, list[tuple[datetime, float]]] = {}
        self.changes: list[datetime] = []
        self._current: str | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "g" and attr.get("class") == "series":
            self._current = str(attr["data-test"])
            self.series[self._current] = []
        elif tag == "g" and attr.get("class") == "hardware-change":
            self.changes.append(datetime.fromisoformat(str(attr["data-time"])))
        elif tag == "circle" and self._current is not None:
            point = (datetime.fromisoformat(str(attr["data-time"])), float(str(attr["data-value"])))
            self.series[self._current].append(point)

    def handle_endtag(self, tag: str) -> None:
        if tag == "g":
            self._current = None


def _report(*args: str | Path) -> int:
    return cli.main(["report", *map(str, args)])


def test_html_has_one_series_per_test_in_time_order_and_a_hardware_marker(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trend.html"
    assert _report(history, "-o", out) == 0
    stdout = capsys.readouterr().out
    assert f"pytest-pipeline: wrote {out} (4 runs, 2 tests)" in stdout
    assert f"note: left out, no records/s (budget without records): {NO_RECORDS}" in stdout
    page = out.read_text()
    chart = _Chart(page)
    assert set(chart.series) == {FAST, ODD}
    times = [datetime.fromisoformat(created) for _, created, _, _ in HISTORY]
    assert [when for when, _ in chart.series[FAST]] == times
    assert [value for _, value in chart.series[FAST]] == [1000.0, 2000.0, 3000.0, 4000.0]
    assert [value for _, value in chart.series[ODD]] == [50.0, 60.0, 70.0, 80.0]
    # Marked in each test's panel.
    assert chart.changes == [datetime(2024, 3, 3, 9, tzinfo=UTC)] * 2
    assert "cpu_count: 4 -&gt; 64" in page
    # Lines break at the change: two segments per series.
    assert page.count("<polyline") == 4
    # The test id is escaped everywhere, never written raw into the markup.
    assert '<b>&"x"' not in page
    assert "test_odd[&lt;b&gt;&amp;&quot;x&quot;]" in page
    assert NO_RECORDS in page  # named in the notes
    # Self-contained: nothing to fetch.
    for needle in ("<script", "http://", "https://", "<link", "@import", "url("):
        assert needle not in page


def test_filter_title_log_axis_and_default_output(
    history: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _report(history, "--test", "*::test_fast", "--title", "Nightly <perf>", "--log") == 0
    out = tmp_path / "pipeline-trend.html"
    assert f"wrote {out.name} (4 runs, 1 tests)" in capsys.readouterr().out
    page = out.read_text()
    assert set(_Chart(page).series) == {FAST}
    assert "<title>Nightly &lt;perf&gt;</title>" in page
    assert "<h1>Nightly &lt;perf&gt;</h1>" in page
    # Log axis: decades from 1k to 10k around the 1000..4000 records/s points.
    assert re.findall(r'class="tick"[^>]*"end">([^<]*)<', page) == ["1k", "10k"]
    # A glob without the parameters matches a parametrized test, as budget overrides do.
    assert _report(history, "--test", "*test_odd", "-o", tmp_path / "odd") == 0
    assert set(_Chart((tmp_path / "odd.html").read_text()).series) == {ODD}


def test_png_output(history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "nested" / "trend.png"
    assert _report(history, "-o", out) == 0
    assert f"wrote {out} (4 runs, 2 tests)" in capsys.readouterr().out
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    assert 800 <= width <= 2000, width
    assert 400 <= height <= 1200, height
    assert len(data) > 10_000


def test_png_without_matplotlib_names_the_extra(
    history: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: import fails
    err = _fails(capsys, history, "-o", tmp_path / "t.png")
    assert "pytest-pipeline report -o *.png needs the Python package 'matplotlib'" in err
    assert 'pip install "pytest-pipeline[report]>=1.0"' in err
    assert not (tmp_path / "t.png").exists()


def test_time_falls_back_to_the_file_modification_time(
    saved_report: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "old"
    for name, stamp, value in (("x.json", 2_000_000, 1.0), ("y.json", 1_000_000, 2.0)):
        _copy(saved_report, folder / name, None, 4, {FAST: value, ODD: value})
        os.utime(folder / name, (stamp, stamp))
    out = tmp_path / "t.html"
    assert _report(folder, "-o", out) == 0
    assert "time of 2 run(s) taken from the file modification time" in capsys.readouterr().out
    page = out.read_text()
    assert "time of 2 run(s) taken from the file modification time" in page
    points = _Chart(page).series[FAST]
    assert points == [
        (datetime.fromtimestamp(1_000_000, UTC), 2.0),
        (datetime.fromtimestamp(2_000_000, UTC), 1.0),
    ]


def _fails(capsys: pytest.CaptureFixture[str], *args: str | Path) -> str:
    capsys.readouterr()  # drop what came before
    assert _report(*args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ")
    return captured.err


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.json", "{not json", "not a JSON file (Expecting property name"),
        ("bench.json", '{"benchmarks": []}', "not a pytest-pipeline report"),
        ("list.json", "[1, 2]", "not a pytest-pipeline report"),
        ("bad.json", '{"pytest_pipeline_report": 1, "performance": {}}', "malformed 'perf"),
    ],
)
def test_a_bad_file_is_named(
    history: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, message: str
) -> None:
    (history / name).write_text(content)
    err = _fails(capsys, history, "-o", history.parent / "t.html")
    assert f"error: {history / name}: {message}" in err
    assert not (history.parent / "t.html").exists()


def test_bad_folders_options_and_outputs(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a report")
    assert f"error: {empty}: no *.json report files in this folder" in _fails(capsys, empty)
    missing = tmp_path / "missing"
    assert f"error: {missing}: no such file or folder." in _fails(capsys, missing)
    err = _fails(capsys, history, "--test", "*nothing*")
    tests = f"{FAST}, {NO_RECORDS}, {ODD}"
    assert (
        f"--test *nothing* matches none of the 3 performance test(s) in the reports: {tests}."
        in err
    )
    err = _fails(capsys, history, "--test", "*no_records")
    assert "none of the selected performance tests has a records/s figure" in err
    err = _fails(capsys, history, "-o", tmp_path / "t.pdf")
    assert "t.pdf: unsupported output type; use a .html or .png file name." in err


def test_reports_without_performance_rows(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile("def test_plain(): pass")
    out = pytester.path / "reports" / "plain.json"
    pytester.runpytest("--pipeline-report", str(out)).assert_outcomes(passed=1)
    err = _fails(capsys, out.parent)
    assert f"error: no performance rows in the 1 report(s) ({out}): mark tests with" in err


def test_console_script_error_has_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("[]")
    done = subprocess.run(
        [sys.executable, "-m", "pytest_pipeline.cli.main", "report", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: {tmp_path / 'x.json'}: not a pytest-pipeline report")
    assert "Traceback" not in done.stderr


def test_the_module_is_light() -> None:
    code = "import sys, pytest_pipeline.report.command; print('matplotlib' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False", done.stderr


# --------------------------------------------------------------------------- small multiples


class _Panels(HTMLParser):
    """Per panel (test id): y ticks, point heights (SVG y), floor values, hardware marks."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.panels: list[dict[str, Any]] = []
        self._tick = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        panel = self.panels[-1] if self.panels else None
        if tag == "g" and attr.get("class") == "panel":
            self.panels.append({"ticks": [], "ys": [], "floor": [], "changes": 0, "test": None})
        elif panel is None:
            return
        elif tag == "g" and attr.get("class") == "series":
            panel["test"] = attr["data-test"]
        elif tag == "g" and attr.get("class") == "floor":
            panel["floor"] = [float(v) for v in str(attr["data-values"]).split()]
        elif tag == "g" and attr.get("class") == "hardware-change":
            panel["changes"] += 1
        elif tag == "circle":
            panel["ys"].append(float(str(attr["cy"])))
        elif tag == "text" and attr.get("class") == "tick" and attr.get("text-anchor") == "end":
            self._tick = True

    def handle_data(self, data: str) -> None:
        if self._tick:
            self.panels[-1]["ticks"].append(data)
            self._tick = False

    def by_test(self) -> dict[str, dict[str, Any]]:
        return {panel["test"]: panel for panel in self.panels}


UNLIKE = [  # a fast test at ~3.5 M records/s beside one at ~200 k whose drop must show
    ("r1.json", "2024-03-01T09:00:00+00:00", 4, {FAST: 3_500_000.0, ODD: 210_000.0}),
    ("r2.json", "2024-03-02T09:00:00+00:00", 4, {FAST: 3_550_000.0, ODD: 205_000.0}),
    ("r3.json", "2024-03-03T09:00:00+00:00", 4, {FAST: 3_480_000.0, ODD: 160_000.0}),
    ("r4.json", "2024-03-04T09:00:00+00:00", 8, {FAST: 3_600_000.0, ODD: 158_000.0}),
]


@pytest.fixture
def unlike(saved_report: dict[str, Any], tmp_path: Path) -> Path:
    for row in saved_report["performance"]:
        # As --pipeline-report writes it: the floor that applied (time_scale included).
        row["limits"]["min_records_per_second"] = 150_000.0 if row["nodeid"] == ODD else None
    folder = tmp_path / "unlike"
    for name, created, cores, rates in UNLIKE:
        _copy(saved_report, folder / name, created, cores, rates)
    return folder


def test_each_test_gets_its_own_panel_and_axis(unlike: Path, tmp_path: Path) -> None:
    out = tmp_path / "trend.html"
    assert _report(unlike, "-o", out) == 0
    page = out.read_text()
    panels = _Panels(page).by_test()
    assert set(panels) == {FAST, ODD}
    # The 200 k test's axis is its own: ticks around 150-210 k, not 0-4 M.
    odd_ticks = panels[ODD]["ticks"]
    assert all(tick.endswith("k") for tick in odd_ticks), odd_ticks
    # Its 24 % drop spans most of the panel's height (on one shared 0-4 M axis it was ~2 %).
    ys = panels[ODD]["ys"]
    assert max(ys) - min(ys) > 100, ys
    assert "latest 158k/s" in page
    # The budget floor of the test that has one is drawn in its panel, and only there.
    assert panels[ODD]["floor"] == [150_000.0] * 4
    assert panels[FAST]["floor"] == []
    assert "budget floor 150k/s" in page
    # The hardware change is marked in every panel.
    assert panels[ODD]["changes"] == panels[FAST]["changes"] == 1


def test_png_has_a_panel_per_test(unlike: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    out = tmp_path / "trend.png"
    assert _report(unlike, "-o", out) == 0
    pixels = imread(str(out))
    width = pixels.shape[1]
    assert width == 1100, width
    # Two panels side by side: the red floor is drawn in the right-hand (ODD) panel only.
    red = (pixels[..., 0] > 0.7) & (pixels[..., 1] < 0.3) & (pixels[..., 2] < 0.3)
    columns = red.any(axis=0).nonzero()[0]
    assert columns.size > 0
    assert columns.min() > width // 2, columns[:5]
