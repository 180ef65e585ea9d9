"""Real cameras and serial IMUs set up for a live session (no Qt): what the
desktop app's Studio panel runs when its source is "Cameras and IMUs".

Cameras: each entry is a device index ("0"), a stream URL
("rtsp://...", "http://.../mjpeg") or a video file played as if live; or
one folder of recorded footage (plugins.cameras.video_files: one video per
camera, optional timestamps.csv), played in real time and stamped on
the host clock like live cameras. Entry k is camera k of the calibration,
whose image shape it must deliver (any size of that shape). Silhouettes
are cut and solved at most SILHOUETTE_WIDTH_PX wide (the calibration
scaled to it); the recorded video keeps the cameras' own size.

Silhouettes come from a background model per camera
(core.silhouette.live.SegmentedCamera): with `background_at_start` the
first `background_frames` frames of every camera are taken as the empty
stage, so the performer steps in after the studio starts; "Capture
background" takes a new one at any time.

IMUs: one serial port speaking FuseCap, WitMotion or Xsens, or none. Its
sensors reach the solve through the IMU pairing (IMUs panel) and the wear
offsets (Wear offsets panel); until both are set the solve runs on the
cameras alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.camera.rig import CameraRig
from core.silhouette.live import BackgroundState, SegmentedCamera


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


@dataclass
class DeviceStudio:
    """What a device session runs on (SessionBridge.devices)."""

    cameras: list[SegmentedCamera]
    imus: list
    rig: CameraRig | None  # None: capture only, the cameras are not calibrated yet
    setup: DeviceSetup
    footage: object = None  # a VideoFiles when the cameras are recorded footage
    notes: list[str] = field(default_factory=list)

    def capture_background(self, frames: int | None = None) -> None:
        for cam in self.cameras:
            cam.capture_background(frames or self.setup.background_frames)

    def background_states(self) -> list[BackgroundState]:
        return [cam.background_state for cam in self.cameras]


# Silhouettes are cut and solved at most this wide: the image size the
# network was trained at (the simulated studio's 1920x1080 cameras at 0.25).
SILHOUETTE_WIDTH_PX = 480


def silhouette_rig(rig: CameraRig) -> CameraRig:
    """The calibration at the silhouettes' size: each camera wider than
    SILHOUETTE_WIDTH_PX scaled down to it (the lens model scales exactly)."""
    cams = tuple(c.scaled(SILHOUETTE_WIDTH_PX / c.width) if c.width > SILHOUETTE_WIDTH_PX else c for c in rig)
    return CameraRig(cams, rig.area)


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
        from core.devices import DeviceError

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


def open_device_session(setup: DeviceSetup, rig: CameraRig | None, model: str = "lite",
                        filter_kind: str = "one-euro"):
    """(session, devices, label) for real cameras and IMUs; raises ValueError
    with what to do (a camera count that does not match the calibration, a
    bad model file) or OSError. Nothing is opened until the session starts.
    Without a calibration (rig None) the session only captures the cameras,
    at their own size, so that they can be calibrated: no solve, no IMUs, no
    recording, and the label says why."""
    from core.filters import FilterConfig
    from core.registry import registry
    from core.session import CaptureSession

    from app.cli.studio import live_engine, model_info

    sources, footage = camera_sources(setup.cameras, setup.fps)
    if rig is not None and len(sources) != len(rig):
        raise ValueError(f"the calibration is for {len(rig)} cameras and {len(sources)} are listed: "
                         "list one camera per calibrated camera, in the calibration's order")
    if rig is None:  # capture only, to watch and calibrate the cameras
        cameras = [SegmentedCamera(src, None, setup.background_model) for src in sources]
        session = CaptureSession(cameras, [], None, setup.fps,
                                 source=f"{len(sources)} cameras, not calibrated")
        return session, DeviceStudio(cameras, [], None, setup, footage), "none (the cameras are not calibrated)"
    rig = silhouette_rig(rig)
    cameras = [SegmentedCamera(src, tuple(cam.size), setup.background_model) for src, cam in zip(sources, rig)]
    if setup.background_at_start:
        for cam in cameras:
            cam.capture_background(setup.background_frames)
    imus = []
    if setup.imu_port:
        reg = registry()
        if "serial" not in reg.imu_sources:
            raise ValueError(f"the serial IMU plugin is not installed ({reg.errors or 'no entry point'})")
        imus.append(reg.imu_sources["serial"](setup.imu_port, protocol=setup.imu_protocol))
    engine, label = live_engine(model, rig)
    if engine is False:
        raise ValueError(f"cannot load the model {model!r}")
    what = "recorded footage" if footage is not None else f"{len(sources)} cameras"
    session = CaptureSession(cameras, imus, rig, setup.fps, engine or None, None, None,
                             FilterConfig(kind=filter_kind), model_info(label) if engine else None,
                             source=f"{what}{', IMUs on ' + setup.imu_port if setup.imu_port else ''}")
    return session, DeviceStudio(cameras, imus, rig, setup, footage), label
