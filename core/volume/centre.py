"""Where the performer is: a coarse visual hull over the whole capture area.

Each silhouette becomes a coverage image: it is decimated (every s-th pixel;
the samples still estimate the area fraction well, and reading a quarter or
less of a full-HD mask is what keeps this fast), made 0/255, then
box-averaged (cv2.resize INTER_AREA, integer factor q) so that one coverage
pixel is about one coarse voxel (100 mm) at the middle of the area. Each
coarse voxel samples each camera's coverage bilinearly at its centre's
projection: a smooth 0..255 value that ramps across the silhouette's edge.

A voxel is "in" for camera k when that coverage exceeds ``coverage``. It is
occupied when at least two cameras with a silhouette see it and it is "in"
for all of them but at most ``max_misses`` (and for at least two): one
missing, late or badly segmented camera cannot carve the performer away, and
a spurious blob in one or two cameras cannot build a ghost, which would need
all the other cameras to agree. Its score is that robust minimum coverage.
The largest 26-connected component is the performer.

The centre returned is the component's score-weighted centroid (over the
component and its one-voxel shell, so the soft edges are counted on both
sides), moved the least needed to keep the component's bounding box inside a
grid of ``fit_extent_mm`` (the 64 x 35 mm volume) centred there; when the box
is larger than that, the box's centre. Why not simply the box centre: it
moves in whole 100 mm voxel steps and jumps with every stray voxel at a
limb's tip, whereas the weighted centroid is sub-voxel and steady from frame
to frame; why not simply the centroid: with an arm raised it sits low and
the hand would leave the volume.

Per rig, the voxel-to-coverage-pixel maps are computed once (:class:`CentreFinder`).
Units: world mm, Z up; hull arrays are indexed [x, y, z].
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np
from scipy import ndimage

from core.camera.rig import CameraRig
from core.volume.grid import DEFAULT_GRID_SIZE, DEFAULT_VOXEL_MM
from core.volume.projection import mask_views

_CONNECTIVITY_26 = np.ones((3, 3, 3), bool)


class CentreFinder:
    """Finds the performer's centre (world mm) from K silhouettes of one rig.

    voxel_mm: coarse voxel edge. margin_mm: how far beyond ``rig.area`` the
    hull reaches horizontally. z_range_mm: heights of the hull. coverage:
    silhouette area fraction (0..1) above which a voxel is "in" for a camera.
    max_misses: cameras that may disagree. min_voxels: smaller largest
    components count as nothing found. fit_extent_mm: edge of the volume the
    centre is for (None: plain weighted centroid).
    """

    def __init__(self, rig: CameraRig, voxel_mm: float = 100.0, margin_mm: float = 300.0,
                 z_range_mm: tuple[float, float] = (0.0, 2400.0), coverage: float = 0.4,
                 max_misses: int = 1, min_voxels: int = 8,
                 fit_extent_mm: float | None = DEFAULT_GRID_SIZE * DEFAULT_VOXEL_MM) -> None:
        if not 0 < coverage < 1:
            raise ValueError(f"coverage is a fraction in (0, 1), got {coverage}")
        self.rig = rig
        self.voxel_mm = float(voxel_mm)
        self.coverage = float(coverage)
        self.max_misses = max(0, int(max_misses))
        self.min_voxels = int(min_voxels)
        self.fit_extent_mm = None if fit_extent_mm is None else float(fit_extent_mm)
        a = rig.area
        lo = np.array([a.x_min - margin_mm, a.y_min - margin_mm, z_range_mm[0]], np.float64)
        hi = np.array([a.x_max + margin_mm, a.y_max + margin_mm, z_range_mm[1]], np.float64)
        self.shape = tuple(max(1, int(np.ceil((h - low) / self.voxel_mm))) for low, h in zip(lo, hi))
        # The hull's voxels are centred on the requested span.
        start = (lo + hi) / 2 - np.array(self.shape) * self.voxel_mm / 2 + self.voxel_mm / 2
        self.axes_mm = [start[d] + self.voxel_mm * np.arange(n) for d, n in enumerate(self.shape)]
        centres = np.stack(np.meshgrid(*self.axes_mm, indexing="ij"), -1).reshape(-1, 3)
        mid = np.array([(a.x_min + a.x_max) / 2, (a.y_min + a.y_max) / 2, (lo[2] + hi[2]) / 2])
        rows = self.shape[0]  # remap's maps: (nx, ny * nz)
        self._plans: list[tuple[int, int, int, int, int]] = []  # (s, off, q, coarse w, coarse h)
        self._maps: list[tuple[np.ndarray, np.ndarray]] = []  # cv2 fixed-point maps, (nx, ny * nz)
        self._unseen: list[np.ndarray] = []  # (N,) uint8: 255 where the camera cannot see the voxel
        self._seen: list[np.ndarray] = []  # (N,) uint8: 1 where it can
        for cam in rig:
            w, h = cam.size
            footprint = cam.K[0, 0] * self.voxel_mm / max(float(cam.depth(mid[None])[0]), 1.0)
            # Decimate by s but keep >= 4 x 4 samples a coverage pixel; q s ~ one voxel.
            s = max(1, int(footprint // 4))
            q = max(1, round(footprint / s))
            off = (s - 1) // 2
            cw, ch = max(1, len(range(off, w, s)) // q), max(1, len(range(off, h, s)) // q)
            uv, valid = cam.project(centres)
            seen = (valid & (uv[:, 0] >= -0.5) & (uv[:, 0] < w - 0.5)
                    & (uv[:, 1] >= -0.5) & (uv[:, 1] < h - 0.5))
            # Coverage pixel c averages decimated pixels c q .. c q + q - 1, i.e. full-res
            # samples off + s (c q .. c q + q - 1): its centre is off + s (c q + (q - 1) / 2).
            with np.errstate(invalid="ignore"):
                coarse = ((uv - off) / s - (q - 1) / 2) / q
            # Clamping is BORDER_REPLICATE done once, and keeps remap on its fast in-image
            # path; unseen voxels read anything (their coverage is overridden below).
            coarse = np.where(seen[:, None], coarse, 0.0)
            coarse = np.clip(coarse, 0, [cw - 1, ch - 1]).astype(np.float32)
            self._plans.append((s, off, q, cw, ch))
            # Fixed-point maps: remap then skips converting float maps on every call.
            self._maps.append(cv2.convertMaps(coarse.reshape(rows, -1, 2), None, cv2.CV_16SC2))
            self._seen.append(seen.astype(np.uint8))
            self._unseen.append(np.where(seen, 0, 255).astype(np.uint8))
        self._threshold = int(np.floor(self.coverage * 255))

    def _coverage(self, k: int, mask: np.ndarray) -> np.ndarray:
        """Camera k's coverage (0..255) at every hull voxel, (N,) uint8."""
        s, off, q, cw, ch = self._plans[k]
        # A view; copied (small) only when strided or cropped.
        dec = np.ascontiguousarray(mask[off::s, off::s][: ch * q, : cw * q])
        # 0/1 masks would round away in a uint8 box average: make them 0/255 first.
        _, dec = cv2.threshold(dec, 0, 255, cv2.THRESH_BINARY)
        small = dec if q == 1 else cv2.resize(dec, (cw, ch), interpolation=cv2.INTER_AREA)
        cov = cv2.remap(small, *self._maps[k], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cov.reshape(-1)

    def scores(self, masks: Sequence[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
        """Per hull voxel: the robust coverage score (0..255 uint8: the lowest
        coverage once the ``max_misses`` lowest seeing cameras are dropped, but
        at least two cameras kept) and how many cameras with a silhouette see
        it; both (nx, ny, nz). masks: one per camera, (H, W) uint8 or bool
        (nonzero = performer), or None."""
        views = mask_views(masks, self.rig)
        n = self._seen[0].size
        m = self.max_misses
        low = [np.full(n, 255, np.uint8) for _ in range(m + 1)]  # the m + 1 lowest, ascending
        n_seen = np.zeros(n, np.uint8)
        for k, mask in enumerate(views):
            if mask is None:
                continue
            # Cameras that cannot see a voxel must not count as misses: coverage 255 there.
            x = self._coverage(k, mask) | self._unseen[k]
            n_seen += self._seen[k]
            for i in range(m + 1):  # insert x into the sorted list of lowest values
                lo = np.minimum(low[i], x)
                x = np.maximum(low[i], x)
                low[i] = lo
        score = low[0]
        for i in range(1, m + 1):  # drop i misses only where i + 2 cameras see the voxel
            score = np.where(n_seen >= i + 2, low[i], score)
        score[n_seen < 2] = 0
        return score.reshape(self.shape), n_seen.reshape(self.shape)

    def hull(self, masks: Sequence[np.ndarray | None]) -> np.ndarray:
        """The coarse hull, bool (nx, ny, nz) over :attr:`axes_mm`, before the
        largest component is picked."""
        return self.scores(masks)[0] > self._threshold

    def find(self, masks: Sequence[np.ndarray | None]) -> np.ndarray | None:
        """The performer's centre (3,) float64 world mm, or None when no
        component of at least ``min_voxels`` voxels is found."""
        score, _ = self.scores(masks)
        occ = score > self._threshold
        found = [np.flatnonzero(occ.any(axis=tuple(e for e in range(3) if e != d))) for d in range(3)]
        if found[0].size == 0:
            return None
        # Label only the box around what is occupied: the hull is mostly empty.
        outer = tuple(slice(int(f[0]), int(f[-1]) + 1) for f in found)
        labels, count = ndimage.label(occ[outer], structure=_CONNECTIVITY_26)
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        best = int(np.argmax(sizes))
        if sizes[best] < self.min_voxels:
            return None
        comp = np.zeros_like(occ)
        comp[outer] = labels == best
        ijk = np.nonzero(comp[outer])
        lo_i = [int(v.min()) + o.start for v, o in zip(ijk, outer)]
        hi_i = [int(v.max()) + 1 + o.start for v, o in zip(ijk, outer)]
        # Weighted centroid over the component and its shell, inside its box + 1 voxel.
        box = tuple(slice(max(0, a - 1), b + 1) for a, b in zip(lo_i, hi_i))
        shell = ndimage.binary_dilation(comp[box], structure=_CONNECTIVITY_26)
        weight = np.where(shell, score[box], 0).astype(np.float64)
        total = weight.sum()
        centroid = np.array([
            (weight.sum(axis=tuple(e for e in range(3) if e != d)) * self.axes_mm[d][box[d]]).sum() / total
            for d in range(3)
        ])
        if self.fit_extent_mm is None:
            return centroid
        half = self.voxel_mm / 2
        lo = np.array([self.axes_mm[d][lo_i[d]] for d in range(3)]) - half
        hi = np.array([self.axes_mm[d][hi_i[d] - 1] for d in range(3)]) + half
        reach = self.fit_extent_mm / 2
        low_ok, high_ok = hi - reach, lo + reach  # centres that keep the whole box inside
        fits = low_ok <= high_ok
        return np.where(fits, np.clip(centroid, low_ok, np.where(fits, high_ok, low_ok)), (lo + hi) / 2)


@lru_cache(maxsize=4)
def _finder(rig: CameraRig, options: tuple) -> CentreFinder:
    return CentreFinder(rig, **dict(options))


def find_performer_centre(masks: Sequence[np.ndarray | None], rig: CameraRig, **options) -> np.ndarray | None:
    """The performer's centre (3,) world mm from one silhouette per camera, or
    None; see :class:`CentreFinder` for the options. The per-rig lookups are
    cached (the last few rig/option pairs), so repeated calls are cheap; hold
    a CentreFinder yourself to control that lifetime."""
    return _finder(rig, tuple(sorted(options.items()))).find(masks)
