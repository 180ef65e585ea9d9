"""The simulated studio as device sources: one camera source per view and one
IMU hub, speaking the same protocols as real devices (core.devices)."""

from __future__ import annotations

import math
import threading

from core.clock import MonotonicClock, SimulatedClock
from core.devices import IMAGE_SILHOUETTE, CameraFrame, DeviceError, ImuSample
from core.sim.studio import SimulatedStudio

# The real-time hub's packet period: 20 packets a second, each some 50 ms of samples, as a
# wireless receiver batching its sensors' samples forwards them. Each packet costs a fixed
# synthesis (the performer's motion evaluated); at 25 ms packets that share of the GIL slowed
# the live solve in the desktop app (scripts/bench_live.py: 11.6 against 12.6 solved frames/s,
# latency 162 against 143 ms), and the fused joints of the headless demo came out the same
# (`main.py demo --headless --seconds 50`: MPJPE median 20.5 mm either way, p95 39.0 and 39.3 mm).
IMU_PACKET_S = 0.05


class Epoch:
    """Device time of studio time 0, fixed when the first source opens, so the
    performer starts moving when capture starts, not when the studio was built."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.t0_s: float | None = None
        self._lock = threading.Lock()

    def start(self) -> float:
        with self._lock:
            if self.t0_s is None:
                self.t0_s = self.clock.now()
            return self.t0_s


class SimulatedCamera:
    """View k of the studio at the studio's frame rate.

    Frame n is taken at time n / fps on the source's clock. A reader that falls
    behind gets the newest frame (the ones it missed are counted in
    `dropped`), as from a real camera."""

    def __init__(self, studio: SimulatedStudio, index: int, epoch: Epoch) -> None:
        self.studio = studio
        self.index = index
        self.epoch = epoch
        self.clock = epoch.clock
        self.name = f"sim:{studio.rig[index].name}"
        self.dropped = 0
        self._t0 = 0.0
        self._next = 0
        self._open = False
        self._stop = threading.Event()

    def open(self) -> None:
        self._t0 = self.epoch.start()
        self._open = True
        self._stop.clear()

    def close(self) -> None:
        self._open = False
        self._stop.set()

    def read(self, timeout_s: float = 1.0) -> CameraFrame | None:
        if not self._open:
            raise DeviceError(f"{self.name} is not open")
        if self.index in self.studio.config.cameras_off:
            return None  # a camera that is off never delivers
        fps = self.studio.config.camera_fps
        now = self.clock.now() - self._t0
        newest = math.floor(now * fps + 1e-9)
        if newest > self._next:
            # Behind: catch up to the frame the other cameras are on when it is
            # already rendered (all views are rendered together), so that cameras
            # skipping frames on a busy machine still deliver the same instants.
            target = newest
            rendered = self.studio.newest_rendered()
            if rendered is not None:
                k = round(rendered * fps)
                if self._next <= k < newest and abs(k / fps - rendered) < 1e-6:
                    target = k
            self.dropped += target - self._next
            self._next = target
        t = self._t0 + self._next / fps
        if t - self.clock.now() > timeout_s:
            return None
        if not self.clock.sleep_until(t, self._stop):
            return None
        self._next += 1
        mask = self.studio.silhouettes(t - self._t0)[self.index]
        return CameraFrame(self.index, t, mask, IMAGE_SILHOUETTE)


class SimulatedImuHub:
    """All 13 simulated IMUs as one hub: `read` returns the samples taken since
    the previous call, up to the clock's present.

    packet_s: the hub forwards its samples in packets at most this often (a
    call sooner after the previous packet returns nothing), as a wireless
    receiver does. Each synthesis has a fixed cost (the performer's motion
    is evaluated per call), so a real-time studio polled every 10 ms spent
    most of a core on it; 0 synthesises at every call (lockstep)."""

    def __init__(self, studio: SimulatedStudio, epoch: Epoch, packet_s: float = 0.0) -> None:
        self.studio = studio
        self.epoch = epoch
        self.clock = epoch.clock
        self.name = "sim:imu-hub"
        self.packet_s = float(packet_s)
        self._t0 = 0.0
        self._last = 0.0
        self._open = False

    def open(self) -> None:
        self._t0 = self.epoch.start()
        self._open = True

    def close(self) -> None:
        self._open = False

    def read(self, timeout_s: float = 0.1) -> list[ImuSample]:
        if not self._open:
            raise DeviceError(f"{self.name} is not open")
        now = self.clock.now() - self._t0
        # Samples at exactly `now` are included: the sensors have taken them.
        end = math.nextafter(now, math.inf)
        if end <= self._last or end - self._last < self.packet_s:
            return []
        samples = self.studio.imu_samples(self._last, end).to_device_samples()
        self._last = end
        return [ImuSample(s.sensor_id, s.t_s + self._t0, s.quat_wxyz, s.accel_mps2, s.gyro_radps)
                for s in samples]


class SimulatedDevices:
    """Everything the simulated studio offers: the rig, K camera sources and the IMU hub."""

    def __init__(self, studio: SimulatedStudio, realtime: bool = True) -> None:
        self.studio = studio
        self.clock = MonotonicClock() if realtime else SimulatedClock()
        self.epoch = Epoch(self.clock)
        self.rig = studio.rig
        self.cameras = [SimulatedCamera(studio, k, self.epoch) for k in range(len(studio.rig))]
        self.imus = [SimulatedImuHub(studio, self.epoch, packet_s=IMU_PACKET_S if realtime else 0.0)]

    @property
    def t0_s(self) -> float:
        """Device time of studio time 0 (set when capture opens)."""
        return self.epoch.start()
