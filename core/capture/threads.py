"""Capture threads: one per camera source, each filling its own ring.

A `CaptureThread` owns its source: it opens it, calls `read` in a loop and
pushes every frame into a `FrameRing`, so a slow or vanished camera never
holds up the others or the GUI. It keeps the camera's health for the status
table: frames, measured frame rate, frames lost, reconnects, last error.

States (`CaptureStatus.state`):

- "opening": the first open has not answered yet;
- "running": frames are being read;
- "lost": open or read failed with DeviceError or OSError. The source is
  closed and `open` is retried every `reconnect_s` until it answers again,
  then the state goes back to "running";
- "ended": the source reported the end of its footage (`EndOfStream`); the
  thread finishes and its ring is closed, so a recorder can drain it;
- "failed": the driver raised something else (a defect, not the device);
  the thread finishes, the error is kept;
- "stopped": `stop` was called and the thread has finished.

`CaptureGroup` starts a list of threads in order, stops them together and
gives the table of their states.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from core.capture.ring import FrameRing
from core.devices import CameraFrame, CameraSource, DeviceError, EndOfStream
from core.rates import RateWindow

log = logging.getLogger(__name__)

OPENING, RUNNING, LOST, ENDED, FAILED, STOPPED = "opening", "running", "lost", "ended", "failed", "stopped"
RATE_WINDOW_S = 2.0


@dataclass(frozen=True)
class CaptureStatus:
    """A snapshot of one camera's capture.

    frames: frames pushed into the ring. fps: frames per second arriving over
    the last ~2 s (0 when nothing arrived). dropped: frames the driver says
    the device skipped (its `dropped` attribute, if any). overwritten: frames
    the recorder's reader lost because it fell more than the ring behind.
    skipped: frames the live path passed over (normal). last_t_s: timestamp
    of the newest frame (None before the first)."""

    name: str
    state: str
    frames: int
    fps: float
    dropped: int
    overwritten: int
    skipped: int
    reconnects: int  # times it came back after being lost
    last_t_s: float | None
    last_error: str


class CaptureThread:
    def __init__(self, source: CameraSource, capacity: int = 64, reconnect_s: float = 1.0,
                 read_timeout_s: float = 0.25, name: str | None = None,
                 notify: threading.Condition | None = None,
                 on_state: Callable[[CaptureStatus], None] | None = None) -> None:
        """`read_timeout_s` bounds each `read` call, so `stop` is noticed that
        quickly (drivers whose reads block longer delay it by that much).
        `notify` (a condition shared by several threads) is notified after
        every frame pushed; `on_state` gets the status after every change of
        state, on this thread."""
        self.source = source
        self.name = name or source.name
        self.ring: FrameRing[CameraFrame] = FrameRing(capacity)
        self.reconnect_s = float(reconnect_s)
        self._notify = notify
        self.on_state = on_state
        self.read_timeout_s = float(read_timeout_s)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._state = OPENING
        self._has_run = False
        self._frames = 0
        self._reconnects = 0
        self._last_t_s: float | None = None
        self._last_error = ""
        self._arrivals = RateWindow(RATE_WINDOW_S)  # host arrival times of frames
        self._thread = threading.Thread(target=self._run, name=f"capture {self.name}", daemon=False)

    # -- control ----------------------------------------------------------

    def start(self) -> None:
        """Start capturing; opening happens on the capture thread, so a slow
        device never blocks the caller."""
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to finish without waiting for it."""
        self._stop.set()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop and join; True when the thread has finished within `timeout_s`."""
        self._stop.set()
        if self._thread.ident is None:  # never started
            self._set_state(STOPPED)
            self.ring.close()
            return True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("capture thread %s did not stop within %.1f s", self.name, timeout_s)
            return False
        return True

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait_for(self, state: str, timeout_s: float) -> bool:
        """Wait until the state is `state`; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._state == state, timeout_s)

    # -- status -----------------------------------------------------------

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def status(self) -> CaptureStatus:
        now = time.monotonic()
        with self._lock:
            return CaptureStatus(
                name=self.name, state=self._state, frames=self._frames, fps=self._arrivals.rate_hz(now),
                dropped=int(getattr(self.source, "dropped", 0) or 0),
                overwritten=self.ring.overwritten, skipped=self.ring.skipped,
                reconnects=self._reconnects, last_t_s=self._last_t_s, last_error=self._last_error)

    # -- the thread -------------------------------------------------------

    def _set_state(self, state: str, error: str | None = None) -> None:
        with self._changed:
            changed = state != self._state
            self._state = state
            if error is not None:
                self._last_error = error
            self._changed.notify_all()
        if changed:
            self._announce()

    def _announce(self) -> None:
        if self.on_state is not None:
            try:
                self.on_state(self.status())
            except Exception:  # a listener's defect must not stop the capture
                log.exception("a state listener of camera %s failed", self.name)

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception as exc:  # a device that fails even to close is already lost
            log.debug("closing %s: %s", self.name, exc)

    def _open(self) -> bool:
        try:
            self.source.open()
        except (DeviceError, OSError) as exc:
            self._set_state(LOST, f"{type(exc).__name__}: {exc}")
            self._close_source()
            return False
        with self._changed:
            if self._has_run:
                self._reconnects += 1
                log.info("camera %s answers again", self.name)
            self._has_run = True
            self._state = RUNNING
            self._changed.notify_all()
        self._announce()
        return True

    def _run(self) -> None:
        is_open = False
        final = STOPPED
        try:
            while not self._stop.is_set():
                if not is_open:
                    is_open = self._open()
                    if not is_open:
                        self._stop.wait(self.reconnect_s)
                    continue
                try:
                    frame = self.source.read(self.read_timeout_s)
                except EndOfStream as exc:
                    self._set_state(ENDED, str(exc))
                    final = ENDED
                    return
                except (DeviceError, OSError) as exc:
                    log.warning("camera %s lost: %s", self.name, exc)
                    self._set_state(LOST, f"{type(exc).__name__}: {exc}")
                    self._close_source()
                    is_open = False
                    self._stop.wait(self.reconnect_s)
                    continue
                if frame is None:
                    continue
                self.ring.push(frame)
                if self._notify is not None:
                    with self._notify:
                        self._notify.notify_all()
                now = time.monotonic()
                with self._lock:
                    self._frames += 1
                    self._last_t_s = frame.t_s
                    self._arrivals.add(now)
        except Exception as exc:
            log.exception("capture thread %s failed", self.name)
            self._set_state(FAILED, f"{type(exc).__name__}: {exc}")
            final = FAILED
        finally:
            if is_open:
                self._close_source()
            if final == STOPPED:
                self._set_state(STOPPED)
            self.ring.close()


class CaptureGroup:
    """Several capture threads run as one: started in order, stopped
    together (all are asked first, then each is joined)."""

    def __init__(self, threads: Iterable[CaptureThread]) -> None:
        self.threads = list(threads)

    @classmethod
    def from_sources(cls, sources: Sequence[CameraSource], **kw) -> CaptureGroup:
        """One CaptureThread per source; keyword arguments go to each."""
        return cls(CaptureThread(s, **kw) for s in sources)

    def __len__(self) -> int:
        return len(self.threads)

    def __getitem__(self, k: int) -> CaptureThread:
        return self.threads[k]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """True when every thread finished within `timeout_s` (in all)."""
        for t in self.threads:
            t.request_stop()
        deadline = time.monotonic() + timeout_s
        done = True
        for t in self.threads:
            done &= t.stop(max(0.0, deadline - time.monotonic()))
        return done

    def status(self) -> list[CaptureStatus]:
        return [t.status() for t in self.threads]

    def table(self) -> str:
        """The status as a plain text table, one camera a line."""
        head = f"{'camera':<24} {'state':<8} {'frames':>7} {'fps':>6} {'dropped':>7} " \
               f"{'lost':>6} {'reconn':>6}  error"
        lines = [head]
        for s in self.status():
            lines.append(f"{s.name[:24]:<24} {s.state:<8} {s.frames:>7} {s.fps:>6.1f} {s.dropped:>7} "
                         f"{s.overwritten:>6} {s.reconnects:>6}  {s.last_error if s.state != RUNNING else ''}")
        return "\n".join(lines)

    def __enter__(self) -> CaptureGroup:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
