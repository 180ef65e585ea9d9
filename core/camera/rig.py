"""A rig of K calibrated cameras, the standard studio, and random rigs.

The standard studio follows TotalCapture: 8 full-HD cameras on a ring about
2.5 m high around a 4 x 4 m capture area. Random rigs (4 to 12 cameras of
varied height, distance, focal length and resolution) train a network that
serves any studio layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.camera.model import Camera


@dataclass(frozen=True)
class CaptureArea:
    """The floor region the performer moves in, world mm (centred on the origin by default)."""

    x_min: float = -2000.0
    x_max: float = 2000.0
    y_min: float = -2000.0
    y_max: float = 2000.0

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.x_min + self.x_max) / 2, (self.y_min + self.y_max) / 2, 0.0])

    def contains(self, xy: np.ndarray, margin_mm: float = 0.0) -> np.ndarray:
        xy = np.asarray(xy)
        return (
            (xy[..., 0] >= self.x_min + margin_mm) & (xy[..., 0] <= self.x_max - margin_mm)
            & (xy[..., 1] >= self.y_min + margin_mm) & (xy[..., 1] <= self.y_max - margin_mm)
        )


@dataclass(frozen=True)
class CameraRig:
    cameras: tuple[Camera, ...]
    area: CaptureArea = CaptureArea()

    def __post_init__(self) -> None:
        if not self.cameras:
            raise ValueError("a rig needs at least one camera")
        object.__setattr__(self, "cameras", tuple(self.cameras))

    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self):
        return iter(self.cameras)

    def __getitem__(self, i: int) -> Camera:
        return self.cameras[i]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def scaled(self, factor: float) -> "CameraRig":
        """The same rig with every image scaled (for a cheaper live preview or render)."""
        return CameraRig(tuple(c.scaled(factor) for c in self.cameras), self.area)

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """Each camera's image size (width, height) px."""
        return [tuple(c.size) for c in self.cameras]

    def fits(self, other: "CameraRig") -> bool:
        """Whether this calibration is for `other`'s cameras: as many, with the same image sizes."""
        return self.sizes == other.sizes

    def at_sizes(self, sizes) -> "CameraRig":
        """This rig with camera k scaled to image size sizes[k] (as many sizes as
        cameras, each of the camera's shape); ValueError naming what does not fit."""
        sizes = list(sizes)
        if len(sizes) != len(self):
            raise ValueError(f"a calibration of {len(self)} cameras does not fit {len(sizes)} cameras")
        return CameraRig(tuple(c.at_size(s) for c, s in zip(self.cameras, sizes)), self.area)

    def at_width(self, width_px: float) -> "CameraRig":
        """Every camera with its image scaled to `width_px` wide."""
        return CameraRig(tuple(c.scaled(width_px / c.width) for c in self.cameras), self.area)

    def at_most_width(self, width_px: float) -> "CameraRig":
        """Each camera wider than `width_px` scaled down to it; narrower ones as they are."""
        return CameraRig(tuple(c.scaled(width_px / c.width) if c.width > width_px else c for c in self.cameras),
                         self.area)

    def to_dict(self) -> dict:
        a = self.area
        return {
            "format": "fusecap-rig",
            "version": 1,
            "area_mm": [a.x_min, a.x_max, a.y_min, a.y_max],
            "cameras": [c.to_dict() for c in self.cameras],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CameraRig":
        if not isinstance(d, dict) or d.get("format") != "fusecap-rig":
            raise ValueError("not a FuseCap rig file (missing format: fusecap-rig)")
        if d.get("version") != 1:
            raise ValueError(f"unsupported rig file version {d.get('version')!r}")
        try:
            area = CaptureArea(*[float(v) for v in d["area_mm"]])
            cams = tuple(Camera.from_dict(c) for c in d["cameras"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed rig file: {exc}") from exc
        return cls(cams, area)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "CameraRig":
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_dict(data)


def standard_studio(size: tuple[int, int] = (1920, 1080)) -> CameraRig:
    """8 cameras on a ring of radius 4.5 m, 2.5 m high, aimed at 1 m above the
    centre of a 4 x 4 m area; 82 degree horizontal field of view at full HD and
    a little barrel distortion, as studio lenses have."""
    cams = []
    w, h = size
    focal = 1100.0 * w / 1920
    for k in range(8):
        az = np.pi / 8 + k * np.pi / 4
        pos = [4500.0 * np.cos(az), 4500.0 * np.sin(az), 2500.0]
        cams.append(
            Camera.look_at(pos, [0.0, 0.0, 1000.0], focal, size,
                           dist=np.array([-0.05, 0.02, 0.0, 0.0, 0.0]), name=f"cam{k + 1}")
        )
    return CameraRig(tuple(cams))


RESOLUTIONS = ((640, 480), (1280, 720), (1280, 1024), (1920, 1080), (2048, 1536))


def _rays_invertible(cam: Camera, tol_px: float = 0.05) -> bool:
    """True if every pixel out to the image corners has one ray that projects
    back onto it: a lens whose distortion folds over (or cannot be inverted)
    before the corner is no lens a studio would calibrate, so it is redrawn."""
    w, h = cam.size
    xs, ys = np.linspace(-0.5, w - 0.5, 9), np.linspace(-0.5, h - 0.5, 9)
    uv = np.array([[x, y] for x in xs for y in ys])
    back, valid = cam.project(cam.centre + cam.pixel_rays(uv) * 3000.0)
    return bool(valid.all() and np.abs(back - uv).max() < tol_px)


def random_rig(seed: int | np.random.Generator, n_cameras: int | None = None,
               area: CaptureArea = CaptureArea()) -> CameraRig:
    """A plausible studio drawn at random: 4-12 cameras spread around the area at
    1.0-3.5 m height and 3.5-7 m from its centre, 55-95 degree field of view,
    a resolution from common sensors, small distortion and roll. Every camera
    aims near the area's centre, so the performer is mostly in view."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 13)) if n_cameras is None else n_cameras
    base = rng.uniform(0, 2 * np.pi)
    spacing = 2 * np.pi / n
    cams = []
    centre = area.centre
    for k in range(n):
        az = base + k * spacing + rng.uniform(-0.3, 0.3) * spacing
        dist_mm = rng.uniform(3500, 7000)
        height = rng.uniform(1000, 3500)
        size = RESOLUTIONS[rng.integers(len(RESOLUTIONS))]
        fov = np.radians(rng.uniform(55, 95))
        focal = size[0] / 2 / np.tan(fov / 2)
        pos = centre + [dist_mm * np.cos(az), dist_mm * np.sin(az), height]
        target = centre + [rng.uniform(-500, 500), rng.uniform(-500, 500), rng.uniform(700, 1300)]
        roll = rng.uniform(-0.05, 0.05)
        while True:
            dist = np.array([rng.uniform(-0.15, 0.05), rng.uniform(-0.02, 0.05),
                             rng.uniform(-1e-3, 1e-3), rng.uniform(-1e-3, 1e-3), 0.0])
            cam = Camera.look_at(pos, target, focal, size, dist=dist, name=f"cam{k + 1}", roll_rad=roll)
            if _rays_invertible(cam):
                break
        cams.append(cam)
    return CameraRig(tuple(cams), area)
