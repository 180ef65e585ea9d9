"""Fixtures shared by the tests: fresh random seeds, reported on failure,
and the main window for the GUI tests."""

import os
import threading

import numpy as np
import pytest

from tests.leaks import assert_nothing_left

pytest_plugins = ["pytester"]  # tests/test_seeds.py runs pytest on small test files

SEED_ENV = "FUSECAP_TEST_SEED"
_SEEDS = pytest.StashKey[list]()


def draw_seed(node: pytest.Item) -> int:
    """A fresh 32-bit seed for a test (FUSECAP_TEST_SEED's value when set, to
    rerun a failure with the same inputs), remembered on the test so that its
    failure report names it."""
    env = os.environ.get(SEED_ENV, "").strip()
    value = int(env) if env else int(np.random.SeedSequence().entropy % 2**32)
    node.stash.setdefault(_SEEDS, []).append(value)
    node.user_properties.append(("seed", value))
    return value


def seed_report(seeds: list[int]) -> str:
    return "\n".join(f"seed: {s} (rerun with {SEED_ENV}={s})" for s in dict.fromkeys(seeds))


@pytest.fixture
def seed(request) -> int:
    """This test's random seed: fresh each run, printed when the test fails."""
    return draw_seed(request.node)


@pytest.fixture
def rng(seed) -> np.random.Generator:
    """A generator on this test's seed (see `seed`)."""
    return np.random.default_rng(seed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    seeds = item.stash.get(_SEEDS, [])
    if report.failed and seeds:
        report.sections.append(("seed", seed_report(seeds)))
    return report


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window on fresh settings (takes under tmp_path); on teardown
    it closes and must leave no thread, timer or window behind."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    before = set(threading.enumerate())
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    settings.setValue("takes/folder", str(tmp_path / "takes"))
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    # Nothing left running: every thread the window started has ended, no timer
    # of the window or its 3D view is active ...
    assert_nothing_left(w, before)
    assert not w.view._timer.isActive()
    # ... and no window of the app is left open (message boxes, progress dialogs).
    QApplication.processEvents()
    left = [type(x).__name__ for x in QApplication.topLevelWidgets() if x.isVisible()]
    assert left == [], f"windows left open: {left}"
