"""Checks the GUI tests share: nothing a widget started is left running."""

import threading
import time


def threads_left(before: set, timeout_s: float = 10.0) -> list[str]:
    """Names of the threads started since `before` (a set of threading.enumerate())
    that are still alive after waiting up to `timeout_s` for them to end."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and [t for t in set(threading.enumerate()) - before if t.is_alive()]:
        time.sleep(0.05)
    return [t.name for t in set(threading.enumerate()) - before if t.is_alive()]


def active_timers(widget) -> list[str]:
    """The object names (or parent types) of the widget's QTimers still running."""
    from PySide6.QtCore import QTimer

    return [t.objectName() or type(t.parent()).__name__ for t in widget.findChildren(QTimer) if t.isActive()]


def assert_nothing_left(widget, before: set) -> None:
    """After `widget` was closed: no thread started since `before` and no timer of it still runs."""
    leaked = threads_left(before)
    assert leaked == [], f"threads left running: {leaked}"
    timers = active_timers(widget)
    assert timers == [], f"active timers: {timers}"

