"""Fixtures shared by the GUI tests."""

import threading
import time

import pytest


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window on fresh settings (takes under tmp_path); on teardown
    it closes and must leave no thread, timer or window behind."""
    from PySide6.QtCore import QSettings, QTimer
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
    # Nothing left running: every thread the window started has ended ...
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (set(threading.enumerate()) - before):
        time.sleep(0.05)
    leaked = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leaked == [], f"threads left running: {leaked}"
    # ... and no timer of the window or its 3D view is still active.
    timers = [t for t in w.findChildren(QTimer) if t.isActive()]
    assert timers == [], f"active timers: {[(t.objectName(), type(t.parent()).__name__) for t in timers]}"
    assert not w.view._timer.isActive()
    # ... and no window of the app is left open (message boxes, progress dialogs).
    QApplication.processEvents()
    left = [type(x).__name__ for x in QApplication.topLevelWidgets() if x.isVisible()]
    assert left == [], f"windows left open: {left}"
