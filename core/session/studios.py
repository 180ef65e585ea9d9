"""What a session captures from: a studio's sources and what it can do.

A `Studio` holds the camera sources and IMU sources a session reads, the
rig they were made for, and answers what only some studios can do, so no
caller has to guess the kind of device behind it:

- `SimulatedStudioSource`: the simulated studio (no hardware). Its
  cameras give silhouettes directly; its virtual performer does the
  calibration routine when asked (`start_calibration_routine`); its
  `simulation` renders board views for calibration.
- `DeviceStudio`: real cameras (device numbers, stream URLs, video files or
  a folder of recorded footage) cut into silhouettes against a background
  per camera, and at most one serial IMU port. It captures a new
  background on request.

`DeviceSetup` is what the user sets for real devices (the Studio panel, or
`main.py record --cameras ...`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from core.camera.rig import CameraRig
from core.devices import DeviceError
from core.silhouette.live import BackgroundState, SegmentedCamera

# The sources the Studio panel offers (its remembered setting).
SIMULATED, DEVICES = "simulated", "devices"
IMUS_ONLY = "imus-only"  # IMUs alone, no camera (core.session.opening.open_imu_session)


class Studio:
    """cameras: camera sources (one per rig camera); imus: IMU sources; rig:
    the cameras' own rig (the simulated studio's true one; None for real
    cameras, whose calibration the session is given); description: a line
    for the take's metadata and the status."""

    can_capture_background = False

    def __init__(self, cameras, imus, rig: CameraRig | None, description: str) -> None:
        self.cameras = list(cameras)
        self.imus = list(imus)
        self.rig = rig
        self.description = description

    @property
    def simulation(self):
        """The simulated studio behind the sources (core.sim.studio.SimulatedStudio), or None."""
        return None

    def capture_background(self, frames: int | None = None) -> None:
        """The next `frames` frames of every camera become its empty stage."""
        raise ValueError("the background is captured from real cameras: start the studio on "
                         "\"Cameras and IMUs\" first")

    def background_states(self) -> list[BackgroundState] | None:
        """Each camera's background (None: the cameras give silhouettes themselves)."""
        return None

    def start_calibration_routine(self) -> bool:
        """Ask the performer to do the IMU calibration routine now: the
        simulated performer starts it; a real one follows the instructions on
        screen (False: nothing to start)."""
        return False


class SimulatedStudioSource(Studio):
    def __init__(self, devices, description: str) -> None:
        """devices: what the simulated studio plugin made (cameras, imus, rig, studio, t0_s)."""
        super().__init__(devices.cameras, devices.imus, devices.rig, description)
        self.devices = devices

    @property
    def simulation(self):
        return self.devices.studio

    @property
    def t0_s(self) -> float:
        """Device time of studio time 0 (set when capture opens)."""
        return self.devices.t0_s

    def start_calibration_routine(self) -> bool:
        self.devices.studio.start_calibration_routine(time.monotonic() - self.devices.t0_s)
        return True


@dataclass(frozen=True)
class DeviceSetup:
    cameras: tuple[str, ...]
    imu_port: str = ""  # "" for no IMUs
    imu_protocol: str = "fusecap"
    fps: float = 30.0  # asked of device cameras; the live path's frame period
    background_frames: int = 15
    background_at_start: bool = True
    background_model: str = "plate"

    @staticmethod
    def parse_cameras(text: str) -> tuple[str, ...]:
        """"0, 1, rtsp://cam3/stream" -> ("0", "1", "rtsp://cam3/stream")."""
        return tuple(p.strip() for p in text.replace("\n", ",").split(",") if p.strip())

    def to_dict(self) -> dict:
        return {"cameras": list(self.cameras), "imu_port": self.imu_port, "imu_protocol": self.imu_protocol,
                "fps": self.fps, "background_frames": self.background_frames}


class DeviceStudio(Studio):
    """Real cameras (SegmentedCamera each) and serial IMUs. footage: the
    VideoFiles when the cameras are a folder of recorded footage."""

    can_capture_background = True

    def __init__(self, cameras: list[SegmentedCamera], imus: list, setup: DeviceSetup, description: str,
                 footage=None) -> None:
        super().__init__(cameras, imus, None, description)
        self.setup = setup
        self.footage = footage

    def capture_background(self, frames: int | None = None) -> None:
        for cam in self.cameras:
            cam.capture_background(frames or self.setup.background_frames)

    def background_states(self) -> list[BackgroundState]:
        return [cam.background_state for cam in self.cameras]

    def wait_for_backgrounds(self, timeout_s: float = 60.0) -> None:
        """Until every camera has its background; ValueError when one failed,
        TimeoutError naming those without one after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            states = self.background_states()
            failed = [f"{c.name}: {s.error}" for c, s in zip(self.cameras, states) if s.state == "failed"]
            if failed:
                raise ValueError("the background could not be captured: " + "; ".join(failed))
            if all(s.state == "ready" for s in states):
                return
            if time.monotonic() > deadline:
                waiting = [c.name for c, s in zip(self.cameras, states) if s.state != "ready"]
                raise TimeoutError(f"no background after {timeout_s:.0f} s from {', '.join(waiting)}: "
                                   "are these cameras delivering frames?")
            time.sleep(0.1)


def camera_sources(entries: tuple[str, ...], fps: float) -> tuple[list, object]:
    """(sources, footage): the camera sources for the entries, not opened.
    Raises ValueError for entries that name nothing usable."""
    from core.registry import registry

    reg = registry()
    if not entries:
        raise ValueError("no cameras given: list device numbers, stream URLs or video files, or a footage folder")
    if len(entries) == 1 and Path(entries[0]).is_dir():
        if "video-files" not in reg.camera_sources:
            raise ValueError(f"the camera plugin is not installed ({reg.errors or 'no entry point'})")
        try:
            footage = reg.camera_sources["video-files"](entries[0], live_clock=True)
        except DeviceError as exc:
            raise ValueError(str(exc)) from exc
        return list(footage.cameras), footage
    if "opencv" not in reg.camera_sources:
        raise ValueError(f"the camera plugin is not installed ({reg.errors or 'no entry point'})")
    sources = []
    for k, entry in enumerate(entries):
        is_file = not entry.isdigit() and "://" not in entry
        if is_file and not Path(entry).is_file():
            raise ValueError(f"camera {k + 1}: {entry!r} is neither a device number, a stream URL nor a video file")
        sources.append(reg.camera_sources["opencv"](entry, fps=fps, name=f"camera {k + 1} ({entry})", index=k,
                                                    loop=is_file))
    return sources, None
