"""Imperfections of real background subtraction, applied to clean silhouettes.

Real silhouettes have ragged edges (the matte is a little too tight or too
loose), holes where clothing matches the background, spurious blobs from
shadows and reflections, cameras that see only part of the performer
(occluders, the frame edge) and cameras that drop out. The simulated studio
and the training data draw these per camera and per frame from one seeded
numpy Generator, so a run is reproducible.

Masks are uint8 (H, W) of 0/1; sizes are in pixels of the mask they act on
(use :meth:`SilhouetteNoise.scaled` for another resolution).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np


@dataclass(frozen=True)
class SilhouetteNoise:
    """Probabilities (per camera, per frame) and sizes of each effect.

    edge: erode or dilate (even odds) by a disk of radius edge_px drawn from
    [1, max_edge_px]. holes: hole_count blobs (ellipses of radius hole_px, an
    inclusive range) cut out wholly inside the silhouette. blobs: blob_count
    ellipses of radius blob_px added wholly outside it, near the performer.
    partial: keep only the part of the image on one side of a random line
    that crosses the silhouette, leaving keep_fraction of its area. off: the
    camera delivers nothing (None).
    """

    p_edge: float = 0.5
    max_edge_px: int = 2
    p_holes: float = 0.2
    hole_count: tuple[int, int] = (1, 3)
    hole_px: tuple[int, int] = (2, 5)
    p_blobs: float = 0.2
    blob_count: tuple[int, int] = (1, 3)
    blob_px: tuple[int, int] = (2, 8)
    p_partial: float = 0.05
    keep_fraction: tuple[float, float] = (0.3, 0.7)
    p_off: float = 0.02

    @classmethod
    def none(cls) -> "SilhouetteNoise":
        """Every effect switched off: masks pass through unchanged."""
        return cls(p_edge=0.0, p_holes=0.0, p_blobs=0.0, p_partial=0.0, p_off=0.0)

    def scaled(self, factor: float) -> "SilhouetteNoise":
        """The same noise for masks `factor` times as wide (pixel sizes scale)."""
        def s(pair):
            return tuple(max(1, round(v * factor)) for v in pair)
        return replace(self, max_edge_px=max(1, round(self.max_edge_px * factor)),
                       hole_px=s(self.hole_px), blob_px=s(self.blob_px))


def _disk(radius_px: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1, 2 * radius_px + 1))


def erode_or_dilate(mask: np.ndarray, radius_px: int, dilate: bool) -> np.ndarray:
    """Grow or shrink the silhouette by a disk of radius_px: the area changes by
    about perimeter * radius_px."""
    op = cv2.dilate if dilate else cv2.erode
    return op(mask, _disk(radius_px))


def _ellipse(shape, centre, radius_px: int, rng: np.random.Generator) -> np.ndarray:
    """A filled random ellipse (axes radius_px and 0.5-1 of it) as a 0/1 mask."""
    out = np.zeros(shape, np.uint8)
    axes = (int(radius_px), max(1, int(round(radius_px * rng.uniform(0.5, 1.0)))))
    cv2.ellipse(out, (int(centre[0]), int(centre[1])), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return out


def _pick(region: np.ndarray, rng: np.random.Generator):
    """A random (x, y) pixel where region is true, or None (uniform over region)."""
    h, w = region.shape
    # Guessing is far cheaper than listing the region's pixels, and the
    # regions used here fill a good part of their window.
    for y, x in zip(rng.integers(0, h, 64), rng.integers(0, w, 64)):
        if region[y, x]:
            return x, y
    ys, xs = np.nonzero(region)
    if not len(xs):
        return None
    i = rng.integers(len(xs))
    return xs[i], ys[i]


def cut_holes(mask: np.ndarray, count: int, radius_px: tuple[int, int], rng) -> np.ndarray:
    """Remove `count` blobs lying wholly inside the silhouette (none where it is too thin)."""
    out = mask.copy()
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return out
    # The silhouette's box plus a zero border, so the distance to the outline is right.
    y0, x0 = max(0, rows[0] - 1), max(0, cols[0] - 1)
    box = out[y0 : rows[-1] + 2, x0 : cols[-1] + 2]  # a view: holes land in `out`
    for _ in range(count):
        r = int(rng.integers(radius_px[0], radius_px[1] + 1))
        # Centres deeper than the blob's radius keep the hole off the outline.
        depth = cv2.distanceTransform(box, cv2.DIST_L2, 5)
        at = _pick(depth > r + 1, rng)
        if at is not None:
            box[_ellipse(box.shape, at, r, rng) > 0] = 0
    return out


def add_blobs(mask: np.ndarray, count: int, radius_px: tuple[int, int], rng) -> np.ndarray:
    """Add `count` blobs wholly outside the silhouette, within its bounding box
    grown by its own size on every side (where shadows and reflections fall)."""
    out = mask.copy()
    h, w = mask.shape
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(xs):
        bw, bh = xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1
        x0, x1 = max(0, xs[0] - bw), min(w, xs[-1] + bw + 1)
        y0, y1 = max(0, ys[0] - bh), min(h, ys[-1] + bh + 1)
    else:
        x0, x1, y0, y1 = 0, w, 0, h
    near = np.zeros_like(mask, bool)
    near[y0:y1, x0:x1] = True
    for _ in range(count):
        r = int(rng.integers(radius_px[0], radius_px[1] + 1))
        clear = cv2.distanceTransform(1 - out, cv2.DIST_L2, 5)
        at = _pick(near & (clear > r + 1), rng)
        if at is not None:
            out |= _ellipse(out.shape, at, r, rng)
    return out


def crop_partial(mask: np.ndarray, keep: float, rng) -> np.ndarray:
    """Zero the image beyond a random straight line that leaves `keep` (0-1) of
    the silhouette's area: the camera sees the performer only in part.

    The line's normal is random; its offset is the `keep` quantile of the
    silhouette pixels projected on that normal, so the line always crosses the
    silhouette (hence its bounding box)."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return mask.copy()
    theta = rng.uniform(0, 2 * np.pi)
    n = np.array([np.cos(theta), np.sin(theta)])
    cut = np.quantile(xs * n[0] + ys * n[1], keep)
    h, w = mask.shape
    gy, gx = np.mgrid[0:h, 0:w]
    out = mask.copy()
    out[gx * n[0] + gy * n[1] > cut] = 0
    return out


def apply_noise(mask: np.ndarray, noise: SilhouetteNoise, rng: np.random.Generator) -> np.ndarray | None:
    """One camera's silhouette with random imperfections; None if the camera is off.

    The crop comes last: what lies beyond the line (blobs included) is unseen."""
    if rng.uniform() < noise.p_off:
        return None
    full = np.zeros(mask.shape, np.uint8)
    window = _window(mask, noise)
    out = np.array(mask[window], np.uint8)
    if rng.uniform() < noise.p_edge:
        out = erode_or_dilate(out, int(rng.integers(1, noise.max_edge_px + 1)), bool(rng.integers(2)))
    if rng.uniform() < noise.p_holes:
        out = cut_holes(out, int(rng.integers(noise.hole_count[0], noise.hole_count[1] + 1)), noise.hole_px, rng)
    if rng.uniform() < noise.p_blobs:
        out = add_blobs(out, int(rng.integers(noise.blob_count[0], noise.blob_count[1] + 1)), noise.blob_px, rng)
    if rng.uniform() < noise.p_partial:
        out = crop_partial(out, rng.uniform(*noise.keep_fraction), rng)
    full[window] = out
    return full


def _window(mask: np.ndarray, noise: SilhouetteNoise) -> tuple[slice, slice]:
    """The part of the image every effect stays inside: the silhouette's box
    grown by its own size (where blobs go), the edge change and a blob.
    Working there instead of on the whole image makes the noise ~5x cheaper
    (the performer covers a few percent of a studio camera's image)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    h, w = mask.shape
    if not len(rows):
        return slice(0, h), slice(0, w)
    extra = 3 * noise.max_edge_px + noise.blob_px[1] + 2
    my = rows[-1] - rows[0] + 1 + extra
    mx = cols[-1] - cols[0] + 1 + extra
    return (slice(max(0, rows[0] - my), min(h, rows[-1] + my + 1)),
            slice(max(0, cols[0] - mx), min(w, cols[-1] + mx + 1)))


def apply_noise_all(masks, noise: SilhouetteNoise, rng: np.random.Generator) -> list[np.ndarray | None]:
    """apply_noise for every camera's mask; a None (camera already off) stays None."""
    return [None if m is None else apply_noise(m, noise, rng) for m in masks]
