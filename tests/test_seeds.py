"""The tests' random seeds (tests/conftest.py): fresh on every run, named in
the report of a failing test, and taken from FUSECAP_TEST_SEED to rerun it."""

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from tests.conftest import pytest_runtest_makereport, rng, seed  # noqa: F401
"""

TESTS = """
def test_draws_and_fails(rng):
    print("first draw", rng.integers(1 << 40))
    assert False

def test_draws_and_passes(rng):
    assert rng.integers(1 << 40) >= 0

def test_fails_without_drawing():
    assert False
"""

INNER = ("-p", "no:cacheprovider", "-p", "no:xvfb", "-p", "no:pytest-qt")


def _run(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner=TESTS)
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(passed=1, failed=2)
    return result.stdout.str()


def _seeds_in(out: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(r"seed: (\d+) \(rerun with FUSECAP_TEST_SEED=\1\)", out)]


def test_a_failing_test_reports_its_seed_and_the_seed_reproduces_it(pytester, monkeypatch):
    monkeypatch.delenv("FUSECAP_TEST_SEED", raising=False)
    out = _run(pytester)
    # One seed section, for the failing test that drew one; none for the
    # passing test or for the failing test that drew nothing.
    seeds = _seeds_in(out)
    assert len(seeds) == 1, out
    draw = re.search(r"first draw (\d+)", out).group(1)
    assert int(draw) == np.random.default_rng(seeds[0]).integers(1 << 40)
    # Rerun with the reported seed: the same inputs, the same report.
    monkeypatch.setenv("FUSECAP_TEST_SEED", str(seeds[0]))
    again = _run(pytester)
    assert _seeds_in(again) == seeds and re.search(r"first draw (\d+)", again).group(1) == draw


def test_seeds_are_fresh_without_the_variable(request, monkeypatch):
    from tests.conftest import draw_seed

    monkeypatch.delenv("FUSECAP_TEST_SEED", raising=False)
    drawn = {draw_seed(request.node) for _ in range(3)}
    assert len(drawn) == 3  # 32-bit draws: a repeat once in billions
    monkeypatch.setenv("FUSECAP_TEST_SEED", "42")
    assert draw_seed(request.node) == 42
