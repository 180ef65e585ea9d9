"""The one camera model: OpenCV pinhole intrinsics with distortion, and
world-to-camera extrinsics.

Frames and units: world is right-handed, Z up, millimetres. The camera frame
is OpenCV's: x right, y down, z forward (optical axis). Pixel (u, v) = (0, 0)
is the centre of the top-left pixel, so pixel column c covers
[c - 0.5, c + 0.5).

Projection is written once, with array operators only, and runs on numpy
arrays (float64) and torch tensors (any device) alike: the two give the same
pixels and both agree with ``cv2.projectPoints``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

# Points this close to the camera plane (mm) or behind it never project.
NEAR_MM = 10.0


def distort(x, y, dist8):
    """OpenCV's radial-tangential model on normalised coordinates.

    dist8: the eight coefficients k1 k2 p1 p2 k3 k4 k5 k6, each a float or an
    array that broadcasts with x and y (numpy or torch). Returns the distorted
    (x, y) and the undistorted squared radius."""
    k1, k2, p1, p2, k3, k4, k5, k6 = dist8
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xy2 = 2 * x * y
    xd = x * radial + p1 * xy2 + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + p2 * xy2
    return xd, yd, r2


# OpenCV's default 5 iterations leave pixels near the corners of wide lenses
# several pixels off; iterate to convergence instead.
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)


def _undistort(uv: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Pixels (N, 2) -> normalised undistorted coordinates (N, 2)."""
    pts = np.ascontiguousarray(uv, np.float64).reshape(-1, 1, 2)
    if dist.size == 0:
        return cv2.undistortPoints(pts, K, dist).reshape(-1, 2)
    return cv2.undistortPointsIter(pts, K, dist, None, None, _UNDISTORT_CRITERIA).reshape(-1, 2)


@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated camera.

    K: 3x3 intrinsic matrix (pixels, zero skew). dist: OpenCV distortion
    coefficients (0, 4, 5 or 8 of them). R, t: world-to-camera rotation and
    translation (mm): x_cam = R @ x_world + t. size: (width, height) pixels.
    """

    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t: np.ndarray
    size: tuple[int, int]
    name: str = "cam"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        K = np.asarray(self.K, np.float64).reshape(3, 3)
        R = np.asarray(self.R, np.float64).reshape(3, 3)
        t = np.asarray(self.t, np.float64).reshape(3)
        dist = np.asarray(self.dist, np.float64).ravel()
        if dist.size not in (0, 4, 5, 8):
            raise ValueError(f"camera {self.name}: 0, 4, 5 or 8 distortion coefficients, got {dist.size}")
        if abs(np.linalg.det(R) - 1) > 1e-6 or np.abs(R @ R.T - np.eye(3)).max() > 1e-6:
            raise ValueError(f"camera {self.name}: R is not a rotation matrix")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(f"camera {self.name}: focal lengths must be positive")
        w, h = (int(v) for v in self.size)
        if w <= 0 or h <= 0:
            raise ValueError(f"camera {self.name}: image size must be positive, got {self.size}")
        for name, value in (("K", K), ("R", R), ("t", t), ("dist", dist)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "size", (w, h))

    # -- derived quantities -------------------------------------------------
    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @property
    def dist8(self) -> np.ndarray:
        d = np.zeros(8)
        d[: self.dist.size] = self.dist
        return d

    @property
    def centre(self) -> np.ndarray:
        """Camera centre in world mm."""
        return -self.R.T @ self.t

    @property
    def max_r2(self) -> float:
        """Largest squared normalised radius that can land in the image.

        Beyond it a distortion polynomial may fold far-off points back into
        view, so projection marks such points invalid.
        """
        if "max_r2" not in self._cache:
            w, h = self.size
            edge = np.array(
                [[x, y] for x in np.linspace(-0.5, w - 0.5, 9) for y in np.linspace(-0.5, h - 0.5, 9)
                 if x in (-0.5, w - 0.5) or y in (-0.5, h - 0.5)]
            )
            und = _undistort(edge, self.K, self.dist)
            self._cache["max_r2"] = float((und**2).sum(1).max()) * 1.44
        return self._cache["max_r2"]

    # -- projection ---------------------------------------------------------
    def _project(self, points, R, t):
        cam = points @ R.T + t
        z = cam[..., 2]
        zs = z.clip(NEAR_MM, None)
        x, y = cam[..., 0] / zs, cam[..., 1] / zs
        xd, yd, r2 = distort(x, y, [float(v) for v in self.dist8])
        u = self.K[0, 0] * xd + self.K[0, 2]
        v = self.K[1, 1] * yd + self.K[1, 2]
        valid = (z > NEAR_MM) & (r2 < self.max_r2)
        return u, v, z, valid

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (..., 3) mm -> pixels (..., 2) float64 and a validity mask.

        Invalid points (behind the camera, or far outside the field of view)
        still get a pixel value, which must not be used.
        """
        u, v, _, valid = self._project(np.asarray(points, np.float64), self.R, self.t)
        return np.stack([u, v], -1), valid

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Distance along the optical axis, mm."""
        return np.asarray(points, np.float64) @ self.R[2] + self.t[2]

    def project_torch(self, points):
        """Torch twin of :meth:`project`: same maths, on the points' device and dtype."""
        import torch

        R = torch.tensor(self.R, dtype=points.dtype, device=points.device)
        t = torch.tensor(self.t, dtype=points.dtype, device=points.device)
        u, v, _, valid = self._project(points, R, t)
        return torch.stack([u, v], -1), valid

    def pixel_rays(self, uv: np.ndarray) -> np.ndarray:
        """Unit world directions (N, 3) of the rays through pixels uv (N, 2)."""
        norm = _undistort(np.asarray(uv, np.float64), self.K, self.dist)
        d_cam = np.concatenate([norm, np.ones((len(norm), 1))], 1)
        d = d_cam @ self.R  # R.T @ d for each row
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    # -- construction and storage --------------------------------------------
    @classmethod
    def look_at(
        cls,
        position_mm: np.ndarray,
        target_mm: np.ndarray,
        focal_px: float,
        size: tuple[int, int],
        dist: np.ndarray | None = None,
        name: str = "cam",
        roll_rad: float = 0.0,
    ) -> "Camera":
        """A camera at `position_mm` whose optical axis points at `target_mm`, image
        up roughly along world +Z."""
        c = np.asarray(position_mm, np.float64)
        z = np.asarray(target_mm, np.float64) - c
        z /= np.linalg.norm(z)
        up = np.array([0.0, 0.0, 1.0])
        x = np.cross(z, up)
        if np.linalg.norm(x) < 1e-6:  # looking straight down or up
            x = np.array([1.0, 0.0, 0.0])
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        R = np.stack([x, y, z])
        if roll_rad:
            cr, sr = np.cos(roll_rad), np.sin(roll_rad)
            R = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]]) @ R
        w, h = size
        K = np.array([[focal_px, 0, (w - 1) / 2], [0, focal_px, (h - 1) / 2], [0, 0, 1]])
        return cls(K, np.zeros(5) if dist is None else dist, R, -R @ c, (w, h), name)

    def at_size(self, size: tuple[int, int], name: str | None = None) -> "Camera":
        """This camera at image size `size` (the same aspect ratio, the lens
        scaled exactly), optionally renamed; ValueError for another shape."""
        out = self if tuple(self.size) == tuple(size) else self.scaled(size[0] / self.width)
        if tuple(out.size) != tuple(size):
            raise ValueError(f"camera {self.name}: a {self.width}x{self.height} calibration does not fit a "
                             f"{size[0]}x{size[1]} camera")
        if name is not None and name != out.name:
            out = Camera(out.K, out.dist, out.R, out.t, out.size, name)
        return out

    def scaled(self, factor: float) -> "Camera":
        """The same camera at another image resolution (factor 0.25: a quarter the width)."""
        w, h = self.size
        nw, nh = round(w * factor), round(h * factor)
        sx, sy = nw / w, nh / h
        K = self.K.copy()
        K[0, 0] *= sx
        K[1, 1] *= sy
        # Pixel centres sit at integers, so the edge -0.5 stays put under scaling.
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        return Camera(K, self.dist, self.R, self.t, (nw, nh), self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": list(self.size),
            "K": self.K.tolist(),
            "dist": self.dist.tolist(),
            "R": self.R.tolist(),
            "t_mm": self.t.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Camera":
        try:
            return cls(
                np.array(d["K"], float), np.array(d["dist"], float), np.array(d["R"], float),
                np.array(d["t_mm"], float), tuple(d["size"]), str(d.get("name", "cam")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed camera entry: {exc}") from exc
