"""Save a screenshot of each panel of the main window to docs/screenshots/.

Runs the real window on the simulated studio: it goes live, records a short
take (so the Takes panel has one to show), then shows each panel in turn
and saves the whole window as PNG. Needs a display; on a machine without
one, run it under a virtual display:

    xvfb-run -a .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    p.add_argument("--size", default="1400x860", help="window size (default 1400x860)")
    args = p.parse_args()
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.gui import _application
    from app.main_window import MainWindow

    app = _application()
    w, h = (int(v) for v in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(f"{tmp}/settings.ini", QSettings.IniFormat)
        settings.setValue("takes/folder", f"{tmp}/takes")
        window = MainWindow(settings)
        window.resize(w, h)
        window.show()

        def pump(seconds: float, until=None) -> bool:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                app.processEvents()
                if until is not None and until():
                    return True
                time.sleep(0.01)
            return until is None

        if not window.start_studio():
            print(window.messages[-1][1] if window.messages else "the studio did not start", file=sys.stderr)
            return 1
        if not pump(180, lambda: window.bridge.session.solved >= 5):
            print("no live frames within 180 s", file=sys.stderr)
            return 1
        window.start_recording()
        pump(2.0)
        window.stop_recording()
        window.takes_panel.select(window.takes_panel.list.item(0).text())
        for i, name in enumerate(window.PANELS):
            window.nav.setCurrentRow(i)
            pump(1.0)
            path = args.out / f"{i + 1:02d}-{name.lower().replace(' ', '-')}.png"
            window.grab().save(str(path))
            print(f"wrote {path}")
        # The Studio panel set up for real cameras and IMUs (stopped: nothing to connect here).
        window.stop_studio()
        panel = window.studio_panel
        panel.source.setCurrentIndex(panel.source.findData("devices"))
        panel.cameras.setText("0, 1, 2, 3")
        panel.imus.set_port("/dev/serial/by-id/usb-FuseCap_hub-if00")
        window.nav.setCurrentRow(0)
        pump(1.0)
        path = args.out / f"{len(window.PANELS) + 1:02d}-studio-devices.png"
        window.grab().save(str(path))
        print(f"wrote {path}")
        window.close()
        QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
