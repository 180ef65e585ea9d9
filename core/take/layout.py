"""The layout of a take folder and its metadata constants.

`TakeLayout` computes every path inside a take; nothing else builds them.
The layout and the file formats are described in docs/TAKES.md and in
core.take.take.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from core import skeleton as sk

FORMAT = "fusecap-take"
SCHEMA = 1


def _app_version() -> str:
    """FuseCap's version as installed (pyproject.toml's, through the package
    metadata; the desktop bundle carries that metadata, see installer.spec)."""
    try:
        return metadata.version("fusecap")
    except metadata.PackageNotFoundError:
        # A source folder never installed (pip install -e .), or a bundle built without the metadata.
        return "unknown (FuseCap is not installed)"


#: Written into every take and offline solve.
APP_VERSION = _app_version()


class TakeError(ValueError):
    """A take that cannot be opened or used; the message names the file and the problem."""


class TakeLayout:
    """Every path inside a take folder."""

    META = "take.json"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def meta(self) -> Path:
        return self.root / self.META

    @property
    def imu(self) -> Path:
        return self.root / "imu.stream"

    @property
    def live(self) -> Path:
        return self.root / "live.stream"

    @property
    def cameras(self) -> Path:
        return self.root / "cameras"

    def silhouettes(self, camera: int) -> Path:
        return self.cameras / f"{camera:02d}.silhouettes.stream"

    def video(self, camera: int) -> Path:
        return self.cameras / f"{camera:02d}.video.stream"

    @property
    def solves(self) -> Path:
        return self.root / "solves"

    def solve_dir(self, version: int) -> Path:
        return self.solves / f"{version:03d}"

    def solve_meta(self, version: int) -> Path:
        return self.solve_dir(version) / "solve.json"

    def solve_joints(self, version: int) -> Path:
        return self.solve_dir(version) / "joints.stream"

    def solve_versions(self) -> list[int]:
        """Offline solves whose metadata exists (a solve is committed by its solve.json)."""
        if not self.solves.is_dir():
            return []
        out = [int(p.name) for p in self.solves.iterdir()
               if re.fullmatch(r"\d{3}", p.name) and (p / "solve.json").is_file()]
        return sorted(out)

    def next_solve_version(self) -> int:
        used = [int(p.name) for p in self.solves.iterdir() if re.fullmatch(r"\d{3}", p.name)] \
            if self.solves.is_dir() else []
        return max(used, default=0) + 1


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def json_safe(obj):
    """Metadata values as plain JSON (numpy scalars and arrays to lists)."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


@dataclass(frozen=True)
class Joints:
    """Solved joints over a take: times_s (N,) from the take's start, index
    (N,) frame numbers, joints_mm (N, J, 3) (NaN rows: no performer found),
    confidence (N, J)."""

    times_s: np.ndarray
    index: np.ndarray
    joints_mm: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.times_s)

    def on_frames(self, frame_times_s: np.ndarray, tolerance_s: float) -> "Joints":
        """One row per frame time: the row nearest in time within
        `tolerance_s`, else NaN (a frame the live path skipped)."""
        ft = np.asarray(frame_times_s, np.float64)
        out = np.full((len(ft), sk.NUM_JOINTS, 3), np.nan)
        conf = np.zeros((len(ft), sk.NUM_JOINTS))
        if len(self):
            order = np.argsort(self.times_s)
            t = self.times_s[order]
            i = np.clip(np.searchsorted(t, ft), 1, max(len(t) - 1, 1))
            lo = np.clip(i - 1, 0, len(t) - 1)
            hi = np.clip(i, 0, len(t) - 1)
            near = np.where(np.abs(t[lo] - ft) <= np.abs(t[hi] - ft), lo, hi)
            ok = np.abs(t[near] - ft) <= tolerance_s
            out[ok] = self.joints_mm[order][near[ok]]
            conf[ok] = self.confidence[order][near[ok]]
        return Joints(ft, np.arange(len(ft)), out, conf)
