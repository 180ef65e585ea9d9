"""Long work off the GUI thread, with a cancellable progress dialog.

`run_with_progress` runs `work(progress)` on a Python thread; `progress(done,
total)` updates a QProgressDialog through a queued signal, and raises
`Cancelled` once the user pressed Cancel, which stops core's long
functions (they report progress through that callback). The result or the
error comes back on the GUI thread through `done(result, error)`.
"""

from __future__ import annotations

import threading
from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget


class Cancelled(Exception):
    """The user cancelled the work."""


class _Relay(QObject):
    progressed = Signal(int, int)
    finished = Signal(object, object)


class ProgressTask:
    def __init__(self, parent: QWidget, title: str, work: Callable, done: Callable[[object, object], None]) -> None:
        self.cancelled = threading.Event()
        self.dialog = QProgressDialog(title, "Cancel", 0, 100, parent)
        self.dialog.setWindowTitle("FuseCap")
        self.dialog.setWindowModality(Qt.WindowModal)
        self.dialog.setMinimumDuration(0)
        self.dialog.canceled.connect(self.cancelled.set)
        self._relay = _Relay()
        self._relay.progressed.connect(self._on_progress)
        self._relay.finished.connect(self._on_finished)
        self._done = done
        self._work = work
        self.result = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="progress-task", daemon=True)

    def start(self) -> "ProgressTask":
        self.dialog.show()
        self.thread.start()
        return self

    def progress(self, done: int, total: int) -> None:
        if self.cancelled.is_set():
            raise Cancelled()
        self._relay.progressed.emit(int(done), int(max(total, 1)))

    def _run(self) -> None:
        result, error = None, None
        try:
            result = self._work(self.progress)
        except BaseException as exc:  # noqa: BLE001  (handed to the GUI thread, shown there)
            error = exc
        self._relay.finished.emit(result, error)

    def _on_progress(self, done: int, total: int) -> None:
        self.dialog.setMaximum(total)
        self.dialog.setValue(min(done, total))

    def _on_finished(self, result, error) -> None:
        self.result, self.error = result, error
        self.dialog.reset()
        self.dialog.close()
        self._done(result, error)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()


def run_with_progress(parent: QWidget, title: str, work: Callable,
                      done: Callable[[object, object], None]) -> ProgressTask:
    return ProgressTask(parent, title, work, done).start()
