"""What the panels share: settings, the running studio session, messages.

The main window owns one `AppContext` and hands it to every panel. A panel
reads `context.bridge` (app.bridge.SessionBridge, None while the studio is
stopped), listens to `session_started` / `session_stopped` / `frame`, and
reports to the user through `context.message(level, text)` ("info" or
"error"): errors appear in a dialog that never blocks, never as a traceback.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSettings, Signal


class AppContext(QObject):
    session_started = Signal(object)  # the SessionBridge, once live
    session_stopped = Signal()
    frame = Signal(object)  # core.session.LiveFrame, the newest, on the GUI thread
    message_posted = Signal(str, str)  # (level, text)
    rig_changed = Signal(object)  # a core.camera.rig.CameraRig now in use

    def __init__(self, settings: QSettings) -> None:
        super().__init__()
        self.settings = settings
        self.bridge = None

    def message(self, level: str, text: str) -> None:
        self.message_posted.emit(level, text)
