"""Deterministic data: per-test seeds, seeded random / numpy / Faker, reproduction."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from pytest_pipeline.seeding.seeds import derive_seed

Toml = Callable[[str], None]

SEED_TESTS = """
import random

def test_a(pipeline_seed, request):
    print(f"SEED {request.node.nodeid} {pipeline_seed} {random.random()!r}")

def test_b(pipeline_seed, request):
    print(f"SEED {request.node.nodeid} {pipeline_seed} {random.random()!r}")
"""


def seeds(result: pytest.RunResult) -> dict[str, tuple[int, str]]:
    """nodeid -> (pipeline_seed, first random.random()) printed by SEED_TESTS."""
    found = re.findall(r"SEED (\S+) (\d+) (\S+)", result.stdout.str())
    return {nodeid: (int(seed), value) for nodeid, seed, value in found}


def test_seed_is_stable_across_runs_and_differs_between_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seeds=SEED_TESTS)
    first = seeds(pytester.runpytest("-s"))
    second = seeds(pytester.runpytest("-s"))
    assert set(first) == {"test_seeds.py::test_a", "test_seeds.py::test_b"}
    assert first == second
    assert first["test_seeds.py::test_a"][0] != first["test_seeds.py::test_b"][0]
    # the documented derivation: base seed 1234 and the node id
    assert first["test_seeds.py::test_a"][0] == derive_seed(1234, "test_seeds.py::test_a")


def test_seed_does_not_depend_on_order_or_selection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seeds=SEED_TESTS)
    both = seeds(pytester.runpytest("-s"))
    only_b = seeds(pytester.runpytest("-s", "test_seeds.py::test_b"))
    assert only_b == {"test_seeds.py::test_b": both["test_seeds.py::test_b"]}


def test_random_is_seeded_with_the_test_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import random

        def test_random(pipeline_seed):
            assert random.random() == random.Random(pipeline_seed).random()

        def test_random_again_after_other_test_used_it(pipeline_seed):
            random.random()  # consume; the next test must still start from its own seed

        def test_random_third(pipeline_seed):
            assert random.randint(0, 10**9) == random.Random(pipeline_seed).randint(0, 10**9)
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_cli_seed_changes_and_reproduces(pytester: pytest.Pytester, pipeline_toml: Toml) -> None:
    pytester.makepyfile(test_seeds=SEED_TESTS)
    default = seeds(pytester.runpytest("-s"))
    with_7 = seeds(pytester.runpytest("-s", "--pipeline-seed=7"))
    with_7_again = seeds(pytester.runpytest("-s", "--pipeline-seed", "7"))
    assert with_7 == with_7_again
    assert with_7["test_seeds.py::test_a"] != default["test_seeds.py::test_a"]
    assert with_7["test_seeds.py::test_a"][0] == derive_seed(7, "test_seeds.py::test_a")
    # the same base seed from pyproject gives the same seeds as the option
    pipeline_toml("seed = 7\n")
    assert seeds(pytester.runpytest("-s")) == with_7


def test_numpy_is_seeded_when_the_test_module_imports_it(pytester: pytest.Pytester) -> None:
    pytest.importorskip("numpy")
    pytester.makepyfile(
        """
        import numpy

        def test_numpy(pipeline_seed):
            expected = numpy.random.RandomState(pipeline_seed).random_sample(3)
            assert list(numpy.random.random_sample(3)) == list(expected)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_numpy_seeding_is_stable_across_runs(pytester: pytest.Pytester) -> None:
    pytest.importorskip("numpy")
    pytester.makepyfile(
        """
        import numpy

        def test_numpy():
            print("NUMPY", numpy.random.randint(0, 10**9))
        """
    )
    first = re.findall(r"NUMPY \d+", pytester.runpytest("-s").stdout.str())
    second = re.findall(r"NUMPY \d+", pytester.runpytest("-s").stdout.str())
    assert first
    assert first == second


def test_faker_is_seeded_when_imported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from faker import Faker

        def test_faker(pipeline_seed):
            first = Faker().name()
            Faker.seed(pipeline_seed)
            assert Faker().name() == first
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_seed_is_shown_on_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fails="""
        def test_fails(pipeline_seed):
            assert pipeline_seed < 0
        """
    )
    result = pytester.runpytest("--pipeline-seed=99")
    result.assert_outcomes(failed=1)
    seed = derive_seed(99, "test_fails.py::test_fails")
    result.stdout.fnmatch_lines(
        [
            "*- pytest-pipeline seed -*",
            f"test seed {seed} (base seed 99); reproduce with --pipeline-seed 99",
        ]
    )


def test_seed_not_shown_for_passing_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=1)
    assert "pytest-pipeline seed" not in result.stdout.str()


def test_same_seeds_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_seeds="""
        import random
        from pathlib import Path

        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_seed(n, pipeline_seed, request):
            out = Path(__file__).parent / "seeds"
            out.mkdir(exist_ok=True)
            name = request.node.name.replace("[", "_").replace("]", "")
            (out / name).write_text(f"{pipeline_seed} {random.random()!r}")
        """
    )

    def collect() -> dict[str, str]:
        out = pytester.path / "seeds"
        found = {path.name: path.read_text() for path in out.iterdir()}
        for path in out.iterdir():
            path.unlink()
        return found

    pytester.runpytest().assert_outcomes(passed=6)
    serial = collect()
    pytester.runpytest_subprocess("-n", "2").assert_outcomes(passed=6)
    assert len(serial) == 6
    assert collect() == serial


def test_random_base_seed_is_shared_by_xdist_workers(
    pytester: pytest.Pytester, pipeline_toml: Toml
) -> None:
    pipeline_toml('seed = "random"\n')
    pytester.makepyfile(
        test_seeds="""
        from pathlib import Path

        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_seed(n, pipeline_config, pipeline_seed):
            out = Path(__file__).parent / "seeds"
            out.mkdir(exist_ok=True)
            (out / str(n)).write_text(f"{pipeline_config.seed} {pipeline_seed}")
        """
    )
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=4)
    shown = re.search(r"pipeline: seed=(\d+) \(random\)", result.stdout.str())
    assert shown, result.stdout.str()
    base = int(shown.group(1))
    for n in range(4):
        worker_base, seed = (pytester.path / "seeds" / str(n)).read_text().split()
        assert int(worker_base) == base
        assert int(seed) == derive_seed(base, f"test_seeds.py::test_seed[{n}]")


def test_derive_seed_fits_numpy() -> None:
    values = {derive_seed(base, f"t.py::test_{i}") for base in (0, 1, 2**40) for i in range(50)}
    assert len(values) == 150
    assert all(0 <= value < 2**32 for value in values)


def test_session_seeds_for_shared_data(
    pytester: pytest.Pytester, pipeline_toml: Callable[[str], None]
) -> None:
    pipeline_toml("seed = 42")
    pytester.makepyfile(
        test_shared="""
        import json, os, random
        import pytest

        @pytest.fixture(scope="session")
        def orders(pipeline_seeds):
            rng = random.Random(pipeline_seeds.derive("orders"))
            data = [rng.random() for _ in range(3)]
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            with open(f"orders-{worker}.json", "w") as f:
                json.dump(data, f)
            return data

        @pytest.mark.parametrize("n", range(4))
        def test_uses(orders, pipeline_seeds, n):
            assert pipeline_seeds.derive("orders") != pipeline_seeds.derive("customers")
        """
    )

    def orders(*args: str) -> set[str]:
        for old in pytester.path.glob("orders-*.json"):
            old.unlink()
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
        result.assert_outcomes(passed=4)
        return {path.read_text() for path in pytester.path.glob("orders-*.json")}

    once = orders()
    assert len(once) == 1
    assert orders("-n", "2") == once  # the same data in every worker
    other = orders("--pipeline-seed", "7")
    assert len(other) == 1
    assert other != once
