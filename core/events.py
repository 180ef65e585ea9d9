"""Events: what a model publishes and anyone may subscribe to.

An `Event` is one kind of happening (a frame solved, IMU samples arrived, a
camera was lost). Subscribers `connect` a callback and `disconnect` it when
they close; the publisher calls `emit`. Callbacks run on the emitting
thread, in the order they were connected: a GUI hands what it needs on to
its own thread (app.bridge), a buffer just appends under its lock.

Connecting and disconnecting are safe from any thread while another emits
(the callbacks are an immutable tuple, swapped under a lock). A callback
that raises is logged and the others still run: a listener's defect must
not stop a capture thread or the live solve.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class Event:
    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: tuple[Callable, ...] = ()
        self._lock = threading.Lock()

    def connect(self, callback: Callable) -> Callable:
        """Call `callback(*args)` on every emit from now on (once, however
        often it is connected); returns it."""
        with self._lock:
            if callback not in self._callbacks:
                self._callbacks = (*self._callbacks, callback)
        return callback

    def disconnect(self, callback: Callable) -> bool:
        """Stop calling `callback`; False when it was not connected."""
        with self._lock:
            if callback not in self._callbacks:
                return False
            self._callbacks = tuple(c for c in self._callbacks if c != callback)
            return True

    def emit(self, *args) -> None:
        for callback in self._callbacks:
            try:
                callback(*args)
            except Exception:  # noqa: BLE001  (a listener's defect stays the listener's)
                log.exception("a listener of %s failed", self.name)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {len(self)} listeners)"
