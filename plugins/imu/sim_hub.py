"""A simulated FuseCap hub on a pseudo-terminal (POSIX only).

It plays a time-sorted stream of ImuSample (from the simulated studio, or
any list) as protocol-1 packets, at their own pace in real time, into the
master side of a pty; FuseCap opens the slave side as an ordinary serial
port. It can also inject raw bytes (line noise, or another protocol's
frames) and be unplugged and plugged back in.

Unplugging, as it really happens: the pty is closed, so a reader's next read
fails with an I/O error and the slave's /dev/pts/N path disappears. Plugging
back in opens a new pty, which usually gets a different /dev/pts/N, just as a
USB adapter may come back as another /dev/ttyUSBn. Real setups name the port
by the stable symlink udev makes (/dev/serial/by-id/...), which follows the
device; the hub keeps such a link too (`stable_port`, in a private temporary
folder), pointing at the current pty. A reader opened on `stable_port`
reconnects after a replug; one opened on `port` sees the port vanish.
"""

from __future__ import annotations

import os
import tempfile
import termios
import threading
import time
import tty
from collections import deque
from typing import Iterable, Iterator

from core.devices import ImuSample
from plugins.imu.fusecap_protocol import encode_packet


def studio_samples(studio, chunk_s: float = 0.05) -> Iterator[ImuSample]:
    """Endless samples of a core.sim.studio.SimulatedStudio, generated a chunk
    at a time as the hub plays them (studio time from 0)."""
    t = 0.0
    while True:
        yield from studio.imu_samples(t, t + chunk_s).to_device_samples()
        t += chunk_s


class SimulatedHub:
    """Plays `samples` (time-sorted; their ``t_s`` spacing is kept, scaled by
    1/`speed`) as a FuseCap hub would send them.

    The hub's device clock reads `device_clock_start_us` at the first sample
    and advances with the samples' own times, wrapping at 2^32 µs as the
    firmware's does. `record` keeps the last that many packets written (as
    ImuSample with the device time in seconds, unwrapped) in `sent`.
    Bytes that nobody reads pile up like in a real adapter's buffer and the
    oldest are dropped beyond `max_backlog_bytes` (counted in `dropped_bytes`);
    writes never block.
    """

    def __init__(self, samples: Iterable[ImuSample], *, speed: float = 1.0,
                 device_clock_start_us: int = 0, record: int = 0,
                 max_backlog_bytes: int = 1 << 16) -> None:
        self._samples = iter(samples)
        self.speed = float(speed)
        self.device_clock_start_us = int(device_clock_start_us)
        self.max_backlog_bytes = int(max_backlog_bytes)
        self.sent: deque[ImuSample] = deque(maxlen=max(0, record))
        self.packets_written = 0
        self.samples_while_unplugged = 0
        self.dropped_bytes = 0
        self.finished = threading.Event()  # every sample played and written
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pending = bytearray()
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_path = ""
        self._dir = tempfile.mkdtemp(prefix="fusecap-hub-")
        self._link = os.path.join(self._dir, "ttyFuseCapHub")
        self._thread: threading.Thread | None = None
        self._open_pty()

    # -- the port ----------------------------------------------------------------

    @property
    def port(self) -> str:
        """The current pty's slave path (/dev/pts/N); changes on every replug."""
        return self._slave_path

    @property
    def stable_port(self) -> str:
        """A symlink that always points at the current pty (like /dev/serial/by-id)."""
        return self._link

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def unplug(self) -> None:
        with self._lock:
            self._close_pty()
            try:
                os.unlink(self._link)
            except FileNotFoundError:
                pass

    def replug(self) -> None:
        with self._lock:
            if self._master is None:
                self._open_pty()

    def inject(self, data: bytes) -> None:
        """Write raw `data` between two packets (dropped while unplugged)."""
        with self._lock:
            if self._master is not None:
                self._pending += data
                self._flush()

    # -- running -----------------------------------------------------------------

    def start(self) -> "SimulatedHub":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sim-imu-hub", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        with self._lock:
            self._close_pty()
        for remove, path in ((os.unlink, self._link), (os.rmdir, self._dir)):
            try:
                remove(path)
            except OSError:
                pass

    def __enter__(self) -> "SimulatedHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> None:
        nxt = next(self._samples, None)
        t0 = nxt.t_s if nxt is not None else 0.0
        wall0 = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                while nxt is not None and wall0 + (nxt.t_s - t0) / self.speed <= now:
                    self._send(nxt, t0)
                    nxt = next(self._samples, None)
                self._flush()
                self._drain()
                backlog = bool(self._pending)
            if nxt is None and not backlog:
                self.finished.set()
            if nxt is not None:
                wait = wall0 + (nxt.t_s - t0) / self.speed - time.monotonic()
            else:
                wait = 0.02
            if backlog:
                wait = min(wait, 0.002)
            self._stop.wait(min(max(wait, 0.0), 0.02))

    def _send(self, s: ImuSample, t0: float) -> None:
        device_us = self.device_clock_start_us + round((s.t_s - t0) * 1e6)
        if self._master is None:
            self.samples_while_unplugged += 1
            return
        self._pending += encode_packet(s.sensor_id, device_us, s.quat_wxyz, s.accel_mps2, s.gyro_radps)
        self.packets_written += 1
        if self.sent.maxlen:
            self.sent.append(ImuSample(s.sensor_id, device_us * 1e-6, s.quat_wxyz, s.accel_mps2,
                                       s.gyro_radps))

    # -- the pty (called with the lock held) -------------------------------------

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        # Raw mode before anyone opens the slave: no echo back into the master
        # and no line editing of binary data.
        tty.setraw(slave, termios.TCSANOW)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._slave_path = os.ttyname(slave)
        tmp = self._link + ".new"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(self._slave_path, tmp)
        os.replace(tmp, self._link)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None
        self._pending.clear()

    def _flush(self) -> None:
        if self._master is None or not self._pending:
            return
        try:
            n = os.write(self._master, self._pending)
            del self._pending[:n]
        except BlockingIOError:
            pass
        except OSError:
            self._pending.clear()
            return
        excess = len(self._pending) - self.max_backlog_bytes
        if excess > 0:
            del self._pending[:excess]
            self.dropped_bytes += excess

    def _drain(self) -> None:
        """Discard what the reader side wrote, so the pty's return path never fills."""
        if self._master is None:
            return
        try:
            while os.read(self._master, 4096):
                pass
        except (BlockingIOError, OSError):
            pass
