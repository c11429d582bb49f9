"""``_paths.resolve_inside``: the one check that a path under a folder stays inside it
(fixture files and ``pytest-pipeline init`` both use it)."""

from __future__ import annotations

from pathlib import Path

from pytest_pipeline._paths import resolve_inside


def test_a_path_inside_resolves_with_no_escape(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "inner").symlink_to(tmp_path / "a")  # a link that stays inside is followed
    assert resolve_inside(tmp_path, "inner/x.json") == ((tmp_path / "a" / "x.json"), None)


def test_a_link_out_names_the_first_link_on_the_way(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "out").symlink_to(outside)
    path, link = resolve_inside(root, "a/out/x.json")
    assert (path, link) == (outside / "x.json", "a/out")


def test_dot_dot_escapes_without_a_link(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    path, link = resolve_inside(tmp_path / "root", "../x.json")
    assert (path, link) == (tmp_path / "x.json", "../x.json")
