"""``pytest-pipeline report``: records/s of each performance test over time, from saved reports.

Reads ``--pipeline-report`` JSON files, orders the runs by their ``created`` time and draws one
panel per performance test (small multiples: each with its own records/s axis, so a test at
200 k/s is not flattened by one at 3.5 M/s), with the test's budget floor and a marker where the
hardware class changes (figures from different classes are not comparable, so a series' line
breaks there). The output is a
self-contained HTML page with inline SVG drawn here (no dependency, opens offline), or a PNG
drawn by matplotlib (the ``report`` extra), chosen by the output suffix.
"""

from __future__ import annotations

import argparse
import fnmatch
import html
import itertools
import json
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pytest_pipeline.errors import TrendError
from pytest_pipeline.report.document import HARDWARE_CLASS

HELP = "plot records/s of each performance test over time from saved --pipeline-report files"
DEFAULT_OUTPUT = "pipeline-trend.html"
DEFAULT_TITLE = "Throughput of the performance tests (records/s)"
FORMATS = {".html": "html", ".htm": "html", ".png": "png"}


@dataclass(frozen=True, eq=False)  # identity: one object per report file
class Run:
    """One saved report: when it ran, on which hardware class, and records/s per test."""

    path: Path
    time: datetime
    from_mtime: bool
    hardware: tuple[Any, ...]
    hardware_label: str
    rates: dict[str, float | None]
    floors: dict[str, float] = field(default_factory=dict)
    """Each test's budget floor (``min_records_per_second``, time_scale applied) in this run."""


@dataclass
class Trend:
    """What is plotted: runs in time order, points per test, hardware class changes, notes."""

    title: str
    runs: list[Run]
    series: dict[str, list[tuple[Run, float]]]
    changes: list[tuple[Run, str]]
    """The first run of each new hardware class, and what changed."""
    notes: list[str] = field(default_factory=list)
    floors: dict[str, list[tuple[Run, float]]] = field(default_factory=dict)
    """Per plotted test, its budget floor in each run that had one."""


# --------------------------------------------------------------------------- reading


def report_files(paths: Sequence[Path]) -> list[Path]:
    """The ``*.json`` files of each folder (not recursive), and each file given as is."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(child for child in path.glob("*.json") if child.is_file())
            if not found:
                raise TrendError(
                    f"{path}: no *.json report files in this folder "
                    "(save them with pytest --pipeline-report PATH)."
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise TrendError(f"{path}: no such file or folder.")
    return list(dict.fromkeys(files))  # a file named twice is one run


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    # build_report writes UTC; a naive time from elsewhere is taken as UTC too.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _hardware_label(hardware: dict[str, Any]) -> str:
    def get(key: str) -> str:
        value = hardware.get(key)
        return "?" if value is None else str(value)

    return (
        f"{get('cpu_model')}, {get('cpu_count')} cores, {get('memory_gib')} GiB, "
        f"{get('os')} {get('machine')}"
    )


def load_run(path: Path) -> Run:
    """Read one report, or raise :class:`TrendError` naming the file and the problem."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise TrendError(
            f"{path}: not a JSON file ({error}); expected a file saved by "
            "pytest --pipeline-report PATH."
        ) from None
    except OSError as error:
        raise TrendError(f"{path}: cannot read it ({error}).") from None
    if not isinstance(data, dict) or "pytest_pipeline_report" not in data:
        raise TrendError(
            f"{path}: not a pytest-pipeline report (no 'pytest_pipeline_report' key); "
            "save reports with pytest --pipeline-report PATH, or move this file elsewhere."
        )
    rows = data.get("performance", [])
    if not isinstance(rows, list) or not all(
        isinstance(row, dict) and isinstance(row.get("nodeid"), str) for row in rows
    ):
        raise TrendError(
            f"{path}: malformed 'performance' section (expected a list of rows with a 'nodeid')."
        )
    rates: dict[str, float | None] = {}
    floors: dict[str, float] = {}
    for row in rows:
        rates[row["nodeid"]] = _positive(row.get("records_per_second"))
        limits = row.get("limits")
        floor = _positive(limits.get("min_records_per_second") if isinstance(limits, dict) else 0)
        if floor is not None:
            floors[row["nodeid"]] = floor
    when = _parse_time(data.get("created"))
    from_mtime = when is None
    if when is None:
        when = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    raw = data.get("hardware")
    hardware: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return Run(
        path=path,
        time=when,
        from_mtime=from_mtime,
        # Only scalars are compared and hashed: anything else stands as its text.
        hardware=tuple(
            value
            if isinstance(value := hardware.get(key), str | int | float | None)
            else repr(value)
            for key in HARDWARE_CLASS
        ),
        hardware_label=_hardware_label(hardware),
        rates=rates,
        floors=floors,
    )


def _positive(value: Any) -> float | None:
    usable = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    return float(value) if usable and math.isfinite(value) else None


def _change(before: Run, after: Run) -> str:
    return "; ".join(
        f"{key}: {old!r} -> {new!r}"
        for key, old, new in zip(HARDWARE_CLASS, before.hardware, after.hardware, strict=True)
        if old != new
    )


def _names(paths: Sequence[Path] | Sequence[str], limit: int = 5) -> str:
    shown = [str(path) for path in paths[:limit]]
    more = len(paths) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _matches(nodeid: str, pattern: str) -> bool:
    # As budget overrides' `match`: a glob for a test also matches its parametrized ids.
    return any(fnmatch.fnmatchcase(name, pattern) for name in (nodeid, nodeid.split("[", 1)[0]))


def build(runs: Sequence[Run], patterns: Sequence[str] = (), title: str = DEFAULT_TITLE) -> Trend:
    """The series to plot: ``patterns`` (fnmatch on the test id) select tests, if given."""
    ordered = sorted(runs, key=lambda run: (run.time, str(run.path)))
    tests = sorted({name for run in ordered for name in run.rates})
    if not tests:
        raise TrendError(
            f"no performance rows in the {len(ordered)} report(s) "
            f"({_names([run.path for run in ordered])}): mark tests with "
            "@pytest.mark.performance and run them with --pipeline-report PATH."
        )
    selected = [name for name in tests if not patterns or any(_matches(name, p) for p in patterns)]
    if not selected:
        raise TrendError(
            f"--test {' '.join(patterns)} matches none of the {len(tests)} performance test(s) "
            f"in the reports: {_names(tests)}."
        )
    series: dict[str, list[tuple[Run, float]]] = {}
    for name in selected:
        points = [(run, rate) for run in ordered if (rate := run.rates.get(name)) is not None]
        if points:
            series[name] = points
    notes = []
    no_rate = [name for name in selected if name not in series]
    if no_rate:
        notes.append(f"left out, no records/s (budget without records): {_names(no_rate, 10)}")
    if not series:
        raise TrendError(
            "none of the selected performance tests has a records/s figure: give the record "
            "count with @pytest.mark.performance(records=N) or budget.measure(records=N)."
        )
    plotted = [run for run in ordered if any(run.rates.get(name) for name in series)]
    skipped = [run.path for run in ordered if run not in plotted]
    if skipped:
        notes.append(f"{len(skipped)} report(s) with nothing to plot: {_names(skipped)}")
    guessed = [run.path.name for run in plotted if run.from_mtime]
    if guessed:
        notes.append(
            f"time of {len(guessed)} run(s) taken from the file modification time "
            f"(no 'created' field): {_names(guessed)}"
        )
    changes = [
        (after, _change(before, after))
        for before, after in itertools.pairwise(plotted)
        if after.hardware != before.hardware
    ]
    floors = {
        name: [(run, floor) for run in plotted if (floor := run.floors.get(name)) is not None]
        for name in series
    }
    return Trend(title, plotted, series, changes, notes, floors)


def _segments(points: list[tuple[Run, float]]) -> list[list[tuple[Run, float]]]:
    """Consecutive points of one hardware class: lines do not join figures across classes."""
    segments: list[list[tuple[Run, float]]] = []
    for point in points:
        if segments and segments[-1][-1][0].hardware == point[0].hardware:
            segments[-1].append(point)
        else:
            segments.append([point])
    return segments


# --------------------------------------------------------------------------- drawing


def _si(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _y_ticks(values: list[float], log: bool) -> list[float]:
    """Round ticks around one test's own figures (and floor): its change fills the panel."""
    if log:
        first, last = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
        return [10.0**exponent for exponent in range(first, max(last, first + 1) + 1)]
    # The axis spans at least 20 % of the top figure: a few % of noise does not look like a cliff.
    span = max(max(values) - min(values), max(values) * 0.2) * 1.2
    middle = (max(values) + min(values)) / 2
    low, high = middle - span / 2, middle + span / 2
    raw = (high - low) / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = max(0, math.floor(low / step))
    return [i * step for i in range(first, math.ceil(high / step) + 1)]


_STEPS = [timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 180, 360, 720)] + [
    timedelta(days=d) for d in (1, 2, 3, 7, 14, 30, 91, 365)
]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time_ticks(start: datetime, end: datetime, most: int = 7) -> tuple[timedelta, list[datetime]]:
    """At most ``most`` ticks on round times (whole hours, midnights, ...) from start to end."""
    step = next((step for step in _STEPS if (end - start) / step <= most), (end - start) / most)
    when = _EPOCH + step * math.ceil((start - _EPOCH) / step)
    marks = []
    while when <= end:
        marks.append(when)
        when += step
    return step, marks


def _utc(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


# One panel per test (small multiples): two columns, each panel with its own records/s axis.
WIDTH, PANEL_HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 960, 240, 60, 18, 50, 28
SERIES_COLOR, FLOOR_COLOR = "#4e79a7", "#d62728"


def _columns(trend: Trend) -> int:
    return 1 if len(trend.series) == 1 else 2


def _time_span(trend: Trend) -> tuple[datetime, datetime]:
    start, end = trend.runs[0].time, trend.runs[-1].time
    pad = (end - start) * 0.04 if end > start else timedelta(hours=12)
    return start - pad, end + pad


def _short(name: str, chars: int) -> str:
    # The end of a test id (the test and its parameters) says most: keep that.
    return name if len(name) <= chars else "…" + name[-(chars - 1) :]


def summary(trend: Trend, name: str) -> str:
    """One line under a panel's title: latest figure, change on this hardware, budget floor."""
    points = trend.series[name]
    run, latest = points[-1]
    first = next(value for past, value in points if past.hardware == run.hardware)
    text = f"latest {_si(latest)}/s"
    if len(points) > 1:
        text += f", {(latest - first) / first:+.0%} vs first run on this hardware"
    floors = trend.floors.get(name)
    if floors:
        text += f"; budget floor {_si(floors[-1][1])}/s"
    return text


def render_svg(trend: Trend, log: bool = False) -> str:
    """The chart as one inline ``<svg>`` (no external reference): a panel per test."""
    columns = _columns(trend)
    width = WIDTH // columns
    rows = math.ceil(len(trend.series) / columns)
    height = rows * PANEL_HEIGHT
    out = [
        f'<svg class="trend" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{html.escape(trend.title)}">'
    ]
    for i, name in enumerate(trend.series):
        left, top = (i % columns) * width, (i // columns) * PANEL_HEIGHT
        out.append(f'<g class="panel" transform="translate({left} {top})">')
        out.extend(_panel(trend, name, width, log))
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def _panel(trend: Trend, name: str, width: int, log: bool) -> list[str]:
    """One test's panel: its own y axis, its floor, hardware changes, its points."""
    esc = html.escape
    points, floors = trend.series[name], trend.floors.get(name, [])
    start, end = _time_span(trend)
    ticks = _y_ticks([value for _, value in points + floors], log)
    scale: Callable[[float], float] = math.log10 if log else float
    low, high = scale(ticks[0]), scale(ticks[-1])
    right, bottom = width - RIGHT, PANEL_HEIGHT - BOTTOM

    def x(when: datetime) -> float:
        return LEFT + (when - start) / (end - start) * (right - LEFT)

    def y(value: float) -> float:
        return bottom - (scale(value) - low) / (high - low) * (bottom - TOP)

    out = [
        f'<text class="panel-title" x="{LEFT}" y="18"><title>{esc(name)}</title>'
        f"{esc(_short(name, (width - LEFT - RIGHT) // 8))}</text>",
        f'<text class="panel-summary" x="{LEFT}" y="35">{esc(summary(trend, name))}</text>',
    ]
    for value in ticks:
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{right}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
            f"{_si(value)}</text>"
        )
    step, marks = _time_ticks(start, end, most=7 if width > 600 else 4)
    label = "%Y-%m-%d" if step >= timedelta(days=1) else "%m-%d %H:%M"
    for when in marks:
        out.append(
            f'<text class="tick" x="{x(when):.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{when.strftime(label)}</text>"
        )
    out.append(
        f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{right - LEFT}" height="{bottom - TOP}"/>'
    )
    for run, what in trend.changes:
        at = x(run.time)
        out.append(
            f'<g class="hardware-change" data-time="{run.time.isoformat()}">'
            f"<title>{esc(f'hardware class changed at {_utc(run.time)}: {what}')}</title>"
            f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{TOP}" y2="{bottom}"/>'
            f'<text x="{at - 4:.1f}" y="{TOP + 12}" text-anchor="end">hardware changed</text></g>'
        )
    if floors:
        out.append(_floor(floors, x, y, right))
    out.append(f'<g class="series" data-test="{esc(name)}">')
    for segment in _segments(points):
        coords = " ".join(f"{x(run.time):.1f},{y(value):.1f}" for run, value in segment)
        out.append(f'<polyline fill="none" points="{coords}"/>')
    for run, value in points:
        stamp = _utc(run.time) + (" (file time)" if run.from_mtime else "")
        tip = f"{name}\n{stamp}: {value:,.0f} records/s\n{run.path.name}\n{run.hardware_label}"
        out.append(
            f'<circle cx="{x(run.time):.1f}" cy="{y(value):.1f}" r="3.5" '
            f'data-time="{run.time.isoformat()}" data-value="{value!r}">'
            f"<title>{esc(tip)}</title></circle>"
        )
    out.append("</g>")
    return out


def _floor(
    floors: list[tuple[Run, float]],
    x: Callable[[datetime], float],
    y: Callable[[float], float],
    right: float,
) -> str:
    """The budget floor as a step line: each run's floor holds until the next run's."""
    coords: list[str] = []
    for i, (run, floor) in enumerate(floors):
        if i:
            coords.append(f"{x(run.time):.1f},{y(floors[i - 1][1]):.1f}")
        coords.append(f"{x(run.time):.1f},{y(floor):.1f}")
    last = y(floors[-1][1])
    coords.append(f"{right:.1f},{last:.1f}")
    values = " ".join(repr(floor) for _, floor in floors)
    return (
        f'<g class="floor" data-values="{values}"><polyline fill="none" points="'
        f'{" ".join(coords)}"/><text x="{right - 4:.1f}" y="{last - 5:.1f}" text-anchor="end">'
        f"budget floor {_si(floors[-1][1])}/s</text></g>"
    )


STYLE = """
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
svg.trend text { font-size: 12px; fill: #444; stroke: none; }
svg.trend .grid { stroke: #e4e4e4; } svg.trend .frame { fill: none; stroke: #999; }
svg.trend .panel-title { font-size: 13px; font-weight: 600; fill: #222; }
svg.trend .series { stroke: SERIES; fill: SERIES; }
svg.trend .series polyline { stroke-width: 2; }
svg.trend .series circle { stroke: #fff; }
svg.trend .floor polyline { stroke: FLOOR; stroke-width: 1.5; stroke-dasharray: 6 4; }
svg.trend .floor text { fill: FLOOR; font-size: 11px; }
svg.trend .hardware-change line { stroke: #777; stroke-dasharray: 5 4; }
svg.trend .hardware-change text { font-size: 11px; fill: #666; }
table { border-collapse: collapse; }
td, th { padding: .2em .8em; text-align: left; } tr.change td { border-top: 2px dashed #777; }
""".replace("SERIES", SERIES_COLOR).replace("FLOOR", FLOOR_COLOR)


def render_html(trend: Trend, log: bool = False) -> str:
    """A self-contained page: title, a panel per test, runs table and notes."""
    esc = html.escape
    changed = {run for run, _ in trend.changes}
    rows = "".join(
        f"<tr{' class=change' if run in changed else ''}><td>{_utc(run.time)}"
        f"{' (file time)' if run.from_mtime else ''}</td><td>{esc(run.path.name)}</td>"
        f"<td>{esc(run.hardware_label)}</td></tr>"
        for run in trend.runs
    )
    notes = "".join(f"<li>{esc(note)}</li>" for note in trend.notes)
    classes = len({run.hardware for run in trend.runs})
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(trend.title)}</title><style>{STYLE}</style></head><body>\n"
        f"<h1>{esc(trend.title)}</h1>\n<p>{len(trend.runs)} runs, {len(trend.series)} tests, "
        f"{classes} hardware class(es); times in UTC. One panel per test, each with its own "
        "records/s axis (not starting at zero: read the tick labels); the dashed red line is "
        "the budget floor (min_records_per_second); the dashed grey line marks a hardware "
        f"class change, where the line breaks.</p>\n{render_svg(trend, log)}\n"
        + (f"<h2>Notes</h2><ul class=notes>{notes}</ul>\n" if notes else "")
        + "<h2>Runs</h2><table><tr><th>time</th><th>report</th><th>hardware class</th></tr>"
        f"{rows}</table>\n</body></html>\n"
    )


def write_png(trend: Trend, path: Path, log: bool = False) -> None:
    """Draw the chart with matplotlib (the ``report`` extra)."""
    from pytest_pipeline._optional import require

    require("matplotlib", "report", "pytest-pipeline report -o *.png")
    from matplotlib.figure import Figure

    # Figure() without pyplot: no GUI backend or global state. A panel per test, as in HTML.
    columns = _columns(trend)
    rows = math.ceil(len(trend.series) / columns)
    fig = Figure(figsize=(11, 1.4 + 2.9 * rows), dpi=100, layout="constrained")
    axes = list(fig.subplots(rows, columns, sharex=True, squeeze=False).flat)
    start, end = _time_span(trend)
    for ax, name in zip(axes, trend.series, strict=False):
        _png_panel(ax, trend, name, log)
        ax.set_xlim(start, end)
        ax.tick_params(axis="x", labelrotation=30)
    for ax in axes[len(trend.series) :]:
        ax.set_visible(False)
        # The panel above an empty slot is the last of its column: it shows the times.
        axes[axes.index(ax) - columns].tick_params(axis="x", labelbottom=True)
    fig.suptitle(trend.title)
    notes = "".join(f"\n{textwrap.shorten(note, 160)}" for note in trend.notes)
    fig.supxlabel(f"run time (UTC){notes}", fontsize="small")
    fig.savefig(path, format="png")


def _png_panel(ax: Any, trend: Trend, name: str, log: bool) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    points, floors = trend.series[name], trend.floors.get(name, [])
    for segment in _segments(points):
        # matplotlib's unit converters take datetimes; its type stubs only list numbers.
        times: Any = [run.time for run, _ in segment]
        ax.plot(times, [value for _, value in segment], marker="o", color=SERIES_COLOR)
    if floors:
        steps: Any = [run.time for run, _ in floors] + [_time_span(trend)[1]]
        levels = [floor for _, floor in floors]
        ax.step(steps, [*levels, levels[-1]], where="post", color=FLOOR_COLOR, linestyle="--")
        ax.annotate(
            f"budget floor {_si(levels[-1])}/s",
            (1, levels[-1]),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize="small",
            color=FLOOR_COLOR,
        )
    for run, _ in trend.changes:
        at: Any = run.time
        ax.axvline(at, color="#777", linestyle="--", linewidth=1)
        ax.annotate(
            "hardware changed",
            (at, 0.97),
            xycoords=("data", "axes fraction"),
            ha="right",
            va="top",
            fontsize="x-small",
            color="#555",
        )
    ticks = _y_ticks([value for _, value in points + floors], log)
    ax.set_yscale("log" if log else "linear")
    ax.set_ylim(ticks[0], ticks[-1])
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: _si(value)))
    ax.set_ylabel("records/s", fontsize="small")
    ax.grid(alpha=0.3)
    title = _short(name, 70 if _columns(trend) == 2 else 140)
    ax.set_title(f"{title}\n{summary(trend, name)}", loc="left", fontsize="small")


# --------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pytest-pipeline report``."""
    parser.add_argument(
        "reports",
        nargs="+",
        type=Path,
        metavar="REPORTS",
        help="folder(s) of saved --pipeline-report JSON files (*.json, not recursive) or files",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path(DEFAULT_OUTPUT),
        help=f"output file: .html (self-contained) or .png (needs pytest-pipeline[report]); "
        f"default {DEFAULT_OUTPUT}",
    )
    parser.add_argument(
        "--test",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only tests whose id matches this fnmatch pattern (repeatable), e.g. '*normalize*'",
    )
    parser.add_argument("--title", default=DEFAULT_TITLE, help="chart title")
    parser.add_argument(
        "--log", action="store_true", help="logarithmic records/s axis (tests of unlike speeds)"
    )


def run(args: argparse.Namespace) -> int:
    """Read the reports, write the chart, print what was written."""
    output: Path = args.output
    if not output.suffix:
        output = output.with_suffix(".html")
    kind = FORMATS.get(output.suffix.lower())
    if kind is None:
        raise TrendError(f"{output}: unsupported output type; use a .html or .png file name.")
    runs = [load_run(path) for path in report_files(args.reports)]
    trend = build(runs, args.test, args.title)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        if kind == "png":
            write_png(trend, output, args.log)
        else:
            output.write_text(render_html(trend, args.log), encoding="utf-8")
    except OSError as error:
        raise TrendError(f"{output}: cannot write it ({error}).") from None
    print(f"pytest-pipeline: wrote {output} ({len(trend.runs)} runs, {len(trend.series)} tests)")
    for note in trend.notes:
        print(f"note: {note}")
    return 0
