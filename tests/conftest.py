"""Fixtures shared by the GUI tests."""

import threading

import pytest

from tests.leaks import assert_nothing_left


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
