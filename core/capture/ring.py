"""A fixed-size ring of frames from one device, read two ways.

One capture thread pushes; readers take frames out through cursors of
their own:

- a *latest* reader (the live path) gets the newest frame it has not seen
  and is told how many it passed over: skipping is how the live view keeps
  up instead of accumulating lag;
- a *next* reader (the recorder) gets every frame, oldest first. The ring
  never blocks the device, so a next reader that falls more than `capacity`
  frames behind loses the oldest ones; its next read says how many were
  overwritten, and the ring keeps the total. Frames are never lost silently.

Items are stored by reference in slots allocated once; they must not be
mutated after they are pushed (camera frames are frozen and their images
are fresh arrays), so readers on other threads can keep them without a copy.
Memory is bounded by `capacity` items.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class RingRead(Generic[T]):
    """One item out of a ring.

    seq: the item's position among everything pushed (0-based).
    skipped: frames before this one the reader will never get. For a latest
    reader these were passed over on purpose (newer ones existed); for a next
    reader they were overwritten before it got to them (lost)."""

    item: T
    seq: int
    skipped: int


class FrameRing(Generic[T]):
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a ring needs room for at least one frame, not {capacity}")
        self.capacity = int(capacity)
        self._slots: list[T | None] = [None] * self.capacity
        self._pushed = 0
        self._closed = False
        self._skipped = 0
        self._overwritten = 0
        self._cond = threading.Condition()

    # -- the producer side ------------------------------------------------

    def push(self, item: T) -> int:
        """Store `item` (overwriting the oldest when full) and wake the readers; its seq."""
        with self._cond:
            if self._closed:
                raise ValueError("push to a closed ring")
            seq = self._pushed
            self._slots[seq % self.capacity] = item
            self._pushed = seq + 1
            self._cond.notify_all()
            return seq

    def close(self) -> None:
        """No more frames will come: waiting readers wake up, next readers can
        still drain what is left."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- readers ----------------------------------------------------------

    def latest_reader(self) -> LatestReader[T]:
        """A reader for the live path; it sees frames pushed from now on."""
        return LatestReader(self)

    def next_reader(self, from_oldest: bool = False) -> NextReader[T]:
        """A lossless reader for the recorder; it starts with the next push, or
        with the oldest frame still held if `from_oldest`."""
        return NextReader(self, from_oldest)

    # -- state ------------------------------------------------------------

    @property
    def pushed(self) -> int:
        """How many items were ever pushed."""
        with self._cond:
            return self._pushed

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    @property
    def skipped(self) -> int:
        """Frames latest readers passed over, summed over the readers."""
        with self._cond:
            return self._skipped

    @property
    def overwritten(self) -> int:
        """Frames next readers lost because they fell behind, summed over the readers."""
        with self._cond:
            return self._overwritten

    def newest(self) -> T | None:
        """The newest item, without moving any reader (None when empty)."""
        with self._cond:
            return self._slots[(self._pushed - 1) % self.capacity] if self._pushed else None

    def _wait_until(self, ready, timeout_s: float | None) -> bool:
        """Wait (holding the condition) until `ready()` or the ring closes;
        False on timeout or when closed with nothing ready."""
        deadline = None if timeout_s is None else time.monotonic() + max(0.0, timeout_s)
        while not ready():
            if self._closed:
                return False
            if deadline is None:
                self._cond.wait()
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._cond.wait(remaining)
        return True


class LatestReader(Generic[T]):
    """The newest frame this reader has not seen yet."""

    def __init__(self, ring: FrameRing[T]) -> None:
        self.ring = ring
        with ring._cond:
            self._last = ring._pushed - 1
        self.skipped = 0  # frames this reader passed over, in all

    def read(self, timeout_s: float | None = 0.0) -> RingRead[T] | None:
        """Wait at most `timeout_s` (None: forever) for a frame newer than the
        last one returned; None on timeout or when the ring closed."""
        ring = self.ring
        with ring._cond:
            if not ring._wait_until(lambda: ring._pushed - 1 > self._last, timeout_s):
                return None
            newest = ring._pushed - 1
            skipped = newest - self._last - 1
            self._last = newest
            self.skipped += skipped
            ring._skipped += skipped
            return RingRead(ring._slots[newest % ring.capacity], newest, skipped)


class NextReader(Generic[T]):
    """Every frame in order; falling behind by more than the ring's capacity
    costs the oldest frames, and the next read says how many."""

    def __init__(self, ring: FrameRing[T], from_oldest: bool = False) -> None:
        self.ring = ring
        with ring._cond:
            self._next = max(0, ring._pushed - ring.capacity) if from_oldest else ring._pushed
        self.overwritten = 0  # frames this reader lost, in all

    @property
    def backlog(self) -> int:
        """Frames pushed that this reader has not read (more than the
        capacity means some are already lost)."""
        with self.ring._cond:
            return self.ring._pushed - self._next

    def read(self, timeout_s: float | None = 0.0) -> RingRead[T] | None:
        """The next frame in order, waiting at most `timeout_s` (None: forever)
        for it; None on timeout, or when the ring closed and is drained."""
        ring = self.ring
        with ring._cond:
            if not ring._wait_until(lambda: ring._pushed > self._next, timeout_s):
                return None
            oldest = max(0, ring._pushed - ring.capacity)
            lost = max(0, oldest - self._next)
            seq = self._next + lost
            self._next = seq + 1
            self.overwritten += lost
            ring._overwritten += lost
            return RingRead(ring._slots[seq % ring.capacity], seq, lost)
