"""What every IMU wire-protocol parser shares: a byte buffer kept between
calls, the counters, and the unwrapping of a device's counter that wraps.

A parser is incremental: ``feed(data)`` takes whatever bytes arrived (any
split, any garbage) and returns the samples completed by them. It never
raises on byte input; damage is counted instead:

- ``packets``: well-formed packets read (checksum good), of any kind;
- ``corrupt``: candidate packets dropped for a bad checksum/CRC or an
  impossible length;
- ``invalid``: well-formed packets whose content is unusable (a zero or
  non-finite quaternion, a malformed payload);
- ``skipped_bytes``: bytes thrown away while looking for the next packet
  start (garbage, and the remains of corrupt packets);
- ``resyncs``: times the parser lost the packet boundary and searched again.

Sample times: ``ImuSample.t_s`` is the device's own clock in seconds
(unwrapped) where the protocol carries one. Where it does not, the parser
sets :data:`NO_DEVICE_TIME` (NaN) and the reader stamps the host arrival
time (see ``serial_source.SerialImuSource``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.devices import ImuSample

NO_DEVICE_TIME = math.nan


class _NeedMore:
    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE = _NeedMore()  # what a parser's step returns when the packet is not complete yet


@dataclass(frozen=True)
class ParserCounters:
    packets: int
    samples: int
    corrupt: int
    invalid: int
    skipped_bytes: int
    resyncs: int


class StreamParser:
    """Base class: the buffer and the counters. Subclasses implement
    ``_step()``, which looks at the start of ``self._buf`` and either consumes
    bytes (returning a sample or None) or returns ``NEED_MORE``."""

    # The most bytes one packet can take; bounds how long a false packet start
    # in garbage can hold the parser waiting before its checksum is judged.
    max_packet_bytes = 256

    def __init__(self) -> None:
        self._buf = bytearray()
        self.packets = 0
        self.samples = 0
        self.corrupt = 0
        self.invalid = 0
        self.skipped_bytes = 0
        self.resyncs = 0
        self._in_sync = True

    def feed(self, data: bytes) -> list[ImuSample]:
        """The samples completed by `data` (bytes-like), in arrival order."""
        self._buf += data
        out: list[ImuSample] = []
        while self._buf:
            got = self._step()
            if got is NEED_MORE:
                break
            if got is not None:
                out.append(got)
        self.samples += len(out)
        return out

    def reset(self) -> None:
        """Forget a half-received packet (after a reconnect); counters stay."""
        self._buf.clear()
        self._in_sync = True

    @property
    def pending_bytes(self) -> int:
        """Bytes held back as the possible start of a packet (at most `max_packet_bytes`)."""
        return len(self._buf)

    def counters(self) -> ParserCounters:
        return ParserCounters(self.packets, self.samples, self.corrupt, self.invalid,
                              self.skipped_bytes, self.resyncs)

    # -- helpers for subclasses ------------------------------------------------

    def _step(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _skip(self, n: int) -> None:
        """Throw away `n` bytes at the front that are not (the start of) a packet."""
        if n <= 0:
            return
        if self._in_sync:
            self.resyncs += 1
            self._in_sync = False
        del self._buf[:n]
        self.skipped_bytes += n

    def _drop_corrupt(self) -> None:
        """A candidate packet failed its check: count it and move one byte on,
        since its start may have been a false sync inside garbage that hides a
        real packet."""
        self.corrupt += 1
        self._skip(1)

    def _consume(self, n: int) -> None:
        """`n` bytes formed a good packet."""
        del self._buf[:n]
        self.packets += 1
        self._in_sync = True

    def _seek(self, sync: bytes) -> bool:
        """Drop bytes before the first occurrence of `sync` (or all but a
        possible partial sync at the end). True when the buffer starts with it."""
        i = self._buf.find(sync)
        if i == 0:
            return True
        if i > 0:
            self._skip(i)
            return True
        keep = 0
        for k in range(len(sync) - 1, 0, -1):
            if self._buf.endswith(sync[:k]):
                keep = k
                break
        self._skip(len(self._buf) - keep)
        return False


class Unwrapper:
    """A free-running counter of `bits` bits made monotonic across wraps.

    Each reading is taken as the nearest continuation of the previous one, so
    a wrap (a large backwards jump of the raw value) counts forwards and a
    slight reordering counts a little backwards."""

    def __init__(self, bits: int) -> None:
        self._mod = 1 << bits
        self._last: int | None = None
        self._total = 0

    def __call__(self, raw: int) -> int:
        if self._last is None:
            self._total = raw
        else:
            delta = (raw - self._last) % self._mod
            if delta >= self._mod // 2:
                delta -= self._mod
            self._total += delta
        self._last = raw
        return self._total

    def reset(self) -> None:
        self._last = None
        self._total = 0


def unit_quaternion(q_wxyz) -> np.ndarray | None:
    """`q_wxyz` normalised as float64, or None when it is not a usable rotation
    (non-finite, or too short to have a direction)."""
    q = np.asarray(q_wxyz, dtype=np.float64)
    if not np.all(np.isfinite(q)):
        return None
    # Scaled by the largest component first: the squares of components above
    # about 1e154 (a float64 from a device can be anything) overflow to inf.
    m = float(np.abs(q).max(initial=0.0))
    if m == 0.0:
        return None
    s = q / m
    n = float(np.linalg.norm(s))
    if m * n < 1e-3:
        return None
    return s / n


def vector3(values) -> np.ndarray | None:
    v = np.asarray(values, dtype=np.float64)
    return v if np.all(np.isfinite(v)) else None
