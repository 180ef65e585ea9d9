"""The calibration quality gate: is this rig good enough for 35 mm voxels?

Two measures, each per camera, tied to the voxel size the network sees:

- **Reprojection error in millimetres.** A camera's RMS reprojection error in
  pixels, times the distance from the camera to the middle of the capture
  area over its focal length: how far, at the performer, the camera's rays
  are off. Good below 10 % of a voxel (3.5 mm), usable below 30 % (10.5 mm);
  beyond that the silhouettes of different cameras stop meeting in the same
  voxels.
- **Silhouette consistency.** Frames of the performer: the visual hull of all
  the *other* cameras, projected into this camera, should cover this
  camera's silhouette. The score is the fraction of the camera's silhouette
  pixels that the others' hull reaches. A camera that moved or was
  calibrated wrong shows up as the lowest score (the others drop less: their
  hulls include the wrong camera). Good at 0.97 and above, usable at 0.90.
  Measured by scripts/bench_consistency.py (standard studio, two frames,
  25 mm voxels):
  exact cameras 0.999–1.000; one camera turned by 0.25° about its own
  centre: 0.982 (the others ≥ 0.995); by 0.5° (one voxel at the performer):
  0.91; by 1°: 0.78; moved by 60 mm: 0.965.

The verdict for the rig is the worst camera's: good, usable or recalibrate,
with the reason in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from core.camera.rig import CameraRig
from core.volume.grid import DEFAULT_VOXEL_MM

GOOD, USABLE, RECALIBRATE = "good", "usable", "recalibrate"
_ORDER = {GOOD: 0, USABLE: 1, RECALIBRATE: 2}

REPROJ_GOOD_VOXELS = 0.10
REPROJ_USABLE_VOXELS = 0.30
CONSISTENCY_GOOD = 0.97
CONSISTENCY_USABLE = 0.90


@dataclass
class CameraQuality:
    name: str
    reprojection_px: float | None = None
    reprojection_mm: float | None = None
    consistency: float | None = None
    verdict: str = GOOD
    reasons: list[str] = field(default_factory=list)


@dataclass
class QualityReport:
    cameras: list[CameraQuality]
    voxel_mm: float

    @property
    def verdict(self) -> str:
        return max((c.verdict for c in self.cameras), key=_ORDER.__getitem__, default=GOOD)

    @property
    def summary(self) -> str:
        # Worst first: the camera most out of line is the likely culprit.
        bad = sorted((c for c in self.cameras if c.verdict != GOOD),
                     key=lambda c: (-_ORDER[c.verdict], 1.0 if c.consistency is None else c.consistency))
        if not bad:
            return f"{self.verdict}: every camera within {REPROJ_GOOD_VOXELS:.0%} of a {self.voxel_mm:g} mm voxel"
        return f"{self.verdict}: " + "; ".join(f"{c.name}: {', '.join(c.reasons)}" for c in bad)

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "summary": self.summary, "voxel_mm": self.voxel_mm,
                "cameras": [c.__dict__ for c in self.cameras]}


def _worse(a: str, b: str) -> str:
    return a if _ORDER[a] >= _ORDER[b] else b


def working_distance_mm(rig: CameraRig, height_mm: float = 1000.0) -> np.ndarray:
    """Each camera's distance to the middle of the capture area at `height_mm`."""
    target = rig.area.centre + np.array([0.0, 0.0, height_mm])
    return np.array([np.linalg.norm(c.centre - target) for c in rig])


def silhouette_consistency(rig: CameraRig, frames: Sequence[Sequence[np.ndarray | None]],
                           centre_mm: Sequence[np.ndarray], voxel_mm: float = 25.0,
                           half_width_mm: float = 1000.0, height_mm: float = 2300.0) -> np.ndarray:
    """Per camera, the fraction of its silhouette pixels reached by the visual
    hull of the other cameras (NaN for a camera with no silhouette pixels).

    frames[f][k]: camera k's silhouette (uint8 0/1) in frame f; centre_mm[f]:
    the performer's centre in that frame. The box carved reaches
    `half_width_mm` around it horizontally and from the floor to `height_mm`."""
    K = len(rig)
    reached = np.zeros(K)
    total = np.zeros(K)
    n = int(round(2 * half_width_mm / voxel_mm))
    axis = (np.arange(n) + 0.5) * voxel_mm - half_width_mm
    z_axis = (np.arange(int(round(height_mm / voxel_mm))) + 0.5) * voxel_mm
    X, Y, Z = np.meshgrid(axis, axis, z_axis, indexing="ij")
    offsets = np.stack([X.ravel(), Y.ravel(), Z.ravel()], 1)
    for masks, centre in zip(frames, centre_mm):
        pts = offsets + np.array([centre[0], centre[1], 0.0])
        inside = np.zeros((K, len(pts)), bool)
        pix = []
        for k, cam in enumerate(rig):
            m = masks[k]
            uv, ok = cam.project(pts)
            ui, vi = np.rint(uv[:, 0]).astype(int), np.rint(uv[:, 1]).astype(int)
            ok &= (ui >= 0) & (ui < cam.width) & (vi >= 0) & (vi < cam.height)
            pix.append((ui, vi, ok))
            if m is None:
                inside[k] = True  # a missing view carves nothing
                continue
            inside[k, ok] = m[vi[ok], ui[ok]] > 0
        for k, cam in enumerate(rig):
            m = masks[k]
            if m is None or not m.any():
                continue
            others = np.delete(inside, k, axis=0).all(0)
            ui, vi, ok = pix[k]
            sel = others & ok
            cover = np.zeros(m.shape, np.uint8)
            cover[vi[sel], ui[sel]] = 1
            # Each voxel covers about voxel_mm * f / depth pixels: close the splats into areas.
            depth = float(np.median(cam.depth(pts[sel]))) if sel.any() else 1.0
            r = max(1, int(np.ceil(0.5 * voxel_mm * cam.K[0, 0] / max(depth, 1.0))))
            cover = cv2.dilate(cover, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
            sil = m > 0
            reached[k] += np.count_nonzero(cover[sil])
            total[k] += np.count_nonzero(sil)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, reached / total, np.nan)


def assess(rig: CameraRig, reprojection_px: Sequence[float] | None = None,
           consistency: Sequence[float] | None = None, voxel_mm: float = DEFAULT_VOXEL_MM,
           distance_mm: Sequence[float] | None = None) -> QualityReport:
    """The quality report for a rig from either measure or both. distance_mm:
    each camera's distance to the performer, where the rig's world is not
    the studio's (a camera's frame before the floor is set): by default the
    distance to the middle of the capture area, 1 m up."""
    dist = working_distance_mm(rig) if distance_mm is None else np.asarray(distance_mm, float)
    out = []
    for k, cam in enumerate(rig):
        q = CameraQuality(cam.name)
        if reprojection_px is not None and np.isfinite(reprojection_px[k]):
            q.reprojection_px = float(reprojection_px[k])
            q.reprojection_mm = float(reprojection_px[k] * dist[k] / cam.K[0, 0])
            frac = q.reprojection_mm / voxel_mm
            if frac > REPROJ_USABLE_VOXELS:
                q.verdict = RECALIBRATE
                q.reasons.append(f"rays off by {q.reprojection_mm:.1f} mm at the performer "
                                 f"({q.reprojection_px:.2f} px), over {REPROJ_USABLE_VOXELS:.0%} of a voxel")
            elif frac > REPROJ_GOOD_VOXELS:
                q.verdict = _worse(q.verdict, USABLE)
                q.reasons.append(f"rays off by {q.reprojection_mm:.1f} mm at the performer "
                                 f"({q.reprojection_px:.2f} px)")
        if consistency is not None and np.isfinite(consistency[k]):
            q.consistency = float(consistency[k])
            if q.consistency < CONSISTENCY_USABLE:
                q.verdict = RECALIBRATE
                q.reasons.append(f"silhouette agrees {q.consistency:.0%} with the other cameras (moved?)")
            elif q.consistency < CONSISTENCY_GOOD:
                q.verdict = _worse(q.verdict, USABLE)
                q.reasons.append(f"silhouette agrees {q.consistency:.0%} with the other cameras")
        out.append(q)
    return QualityReport(out, float(voxel_mm))
