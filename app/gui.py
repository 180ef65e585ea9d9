"""Starting the desktop app, and its self-test.

`run_gui()` opens the main window with the dark theme and starts the
simulated studio at once unless told otherwise, so the first run shows
FuseCap live with nothing to set up. `self_test()` does the same in a
window, waits until the live solve has delivered a few frames, and exits 0
(or 1 with the reason): the check the installed bundle runs.
"""

from __future__ import annotations

import os
import sys
import time

# The live network's OpenMP threads share the cores with the capture threads,
# the 3D view and the GL rasteriser. OpenMP's default has a thread that reaches
# a barrier spin for its partners; when a partner is descheduled by those other
# threads the spinning burns the very core it waits for (the lite network took
# 20x as long with two threads on a busy 2-core machine). Passive threads sleep
# instead. Read once, when torch loads its OpenMP runtime, so set before that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _application():
    import vispy
    from PySide6.QtWidgets import QApplication

    vispy.use("pyside6")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("FuseCap")
    app.setOrganizationName("FuseCap")
    from app.theme import apply_dark_theme

    apply_dark_theme(app)
    return app


def run_gui(start_studio: bool = True) -> int:
    app = _application()
    from app.main_window import MainWindow

    window = MainWindow()
    window.show()
    if start_studio:
        window.start_studio()
    return app.exec()


def self_test(frames: int = 3, timeout_s: float = 180.0) -> int:
    """Open the window on the simulated studio, solve `frames` frames, close; 0 when all went well."""
    from PySide6.QtCore import QSettings, QTimer

    app = _application()
    import tempfile

    from app.main_window import MainWindow

    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(f"{tmp}/settings.ini", QSettings.IniFormat)
        window = MainWindow(settings)
        window.show()
        start = time.monotonic()
        outcome = {"code": 1, "why": "timed out"}

        def poll() -> None:
            b = window.bridge
            if b is not None and b.state.startswith("failed"):
                outcome["why"] = b.state
                app.quit()
            elif b is not None and b.session.solved >= frames and b.frames_received >= frames:
                outcome.update(code=0, why=f"{b.session.solved} frames solved live in "
                               f"{time.monotonic() - start:.1f} s ({b.label} model)")
                app.quit()
            elif time.monotonic() - start > timeout_s:
                app.quit()

        timer = QTimer()
        timer.timeout.connect(poll)
        timer.start(100)
        if not window.start_studio():
            outcome["why"] = window.messages[-1][1] if window.messages else "the studio did not start"
        else:
            app.exec()
        timer.stop()
        window.close()
    print(f"self-test {'passed' if outcome['code'] == 0 else 'FAILED'}: {outcome['why']}")
    return outcome["code"]
