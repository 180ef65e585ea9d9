"""From a raw per-pixel foreground decision to the performer's silhouette.

Every background model ends with the same steps:

1. :func:`clean_mask`: an optional opening and closing (both off by
   default: at 480x270 a forearm is 3-4 px wide and an opening erases it, a
   closing fills the one-pixel gaps between arm and body; the clean-plate
   model's 3 x 3 median of its scores already drops specks and bridges
   cracks without moving edges). Then the performer's connected components
   are kept: the largest; any other at least ``keep_fraction`` of it and
   ``min_area_fraction`` of the image, so a body split by an occluding pole
   stays whole; and any smaller piece within ``attach_px`` of those, such as
   a hand the raw decision cut off at the wrist. Specks elsewhere go.
   Holes smaller than ``max_hole_fraction`` of the kept area are filled;
   bigger ones (the gap between an arm and the body) stay open.
2. :func:`refine_edges`: the outline pixels are settled by nearest colour,
   so mixed pixels on the edge split at about half coverage, as the true
   silhouette (pixel centre inside the body) does.

Masks are uint8 (H, W), 0 background / 1 performer.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CleanupParams:
    """Clean-up shared by every model; sizes in pixels, areas as fractions."""

    open_px: int = 0                   # opening kernel (ellipse), 0: none
    close_px: int = 0                  # closing kernel (ellipse), 0: none
    min_area_fraction: float = 0.0004  # a component below this share of the image is noise
    keep_fraction: float = 0.03        # other components kept when >= this share of the largest
    attach_px: int = 2                 # smaller pieces this close to a kept component are kept
    max_hole_fraction: float = 0.01    # holes below this share of the kept area are filled


def ellipse(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def clean_mask(raw: np.ndarray, params: CleanupParams = CleanupParams()) -> np.ndarray:
    """Raw foreground (uint8 (H, W), nonzero = foreground) -> the performer's mask, uint8 0/1."""
    m = (np.asarray(raw) > 0).astype(np.uint8)
    if params.open_px > 1:
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, ellipse(params.open_px))
    if params.close_px > 1:
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, ellipse(params.close_px))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return np.zeros_like(m)
    area = stats[1:, cv2.CC_STAT_AREA]
    min_area = params.min_area_fraction * m.size
    if area.max() < min_area:
        return np.zeros_like(m)
    lut = np.zeros(n, np.uint8)
    lut[1:] = area >= max(min_area, params.keep_fraction * area.max())
    if params.attach_px > 0 and not lut[1:].all():
        near = cv2.dilate(lut[labels], ellipse(2 * params.attach_px + 1))
        lut[np.unique(labels[near > 0])] = 1
        lut[0] = 0
    m = lut[labels]
    # Holes: background components (4-connected) inside the mask's bounding box
    # that do not reach the box's 1-pixel frame or the image border.
    ys, xs = np.nonzero(m)
    y0, y1, x0, x1 = max(ys.min() - 1, 0), ys.max() + 2, max(xs.min() - 1, 0), xs.max() + 2
    box = m[y0:y1, x0:x1]
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - box, connectivity=4)
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    inner = (x > 0) & (y > 0) & (x + w < box.shape[1]) & (y + h < box.shape[0])
    small = stats[:, cv2.CC_STAT_AREA] < params.max_hole_fraction * ys.size
    fill = np.zeros(n, np.uint8)
    fill[inner & small] = 1
    box |= fill[labels]
    return m


def refine_edges(mask: np.ndarray, f: np.ndarray, bg: np.ndarray, sigma: np.ndarray | float,
                 alpha_lo: float = 1.0, alpha_hi: float = 1.0, shadow_area: np.ndarray | None = None,
                 window: int = 7) -> np.ndarray:
    """Settle the pixels on the mask's outline by colour: a pixel is performer iff
    it is nearer the performer's colour beside it than the background's.

    The performer's colour is the mean of the mask's interior pixels in the
    3 x 3 neighbourhood (shading changes across a limb), else in the
    window x window one. The background's colour is the plate's, or inside
    `shadow_area` (bool (H, W); None: everywhere) the plate's scaled by any
    ratio in [alpha_lo, alpha_hi], so a shadow beside the feet counts as
    background. Elsewhere a shadow cannot be told from an edge pixel half
    covered by dark clothes, and a shadow is an area, not a one-pixel ring.
    Neither is the scaled plate used where the performer's colour is itself
    such a scaled plate colour (within 3 sigma), or grey clothes on a grey
    floor would melt away.

    mask: uint8 0/1 (H, W); f, bg: (3, H, W) float32 frame and (gain-corrected)
    background, channel-first; sigma: noise in grey levels, float or (H, W)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return mask
    # Work inside the mask's bounding box, widened by the window.
    r = window // 2 + 1
    y0, y1 = max(ys.min() - r, 0), ys.max() + r + 1
    x0, x1 = max(xs.min() - r, 0), xs.max() + r + 1
    out = mask.copy()
    crop = (slice(y0, y1), slice(x0, x1))
    out[crop] = _refine(mask[crop], f[(slice(None),) + crop], bg[(slice(None),) + crop],
                        sigma[crop] if np.ndim(sigma) else sigma, alpha_lo, alpha_hi,
                        None if shadow_area is None else shadow_area[crop], window)
    return out


def _refine(mask, f, bg, sigma, alpha_lo, alpha_hi, shadow_area, window):
    k3 = ellipse(3)
    core = cv2.erode(mask, k3)
    band = (cv2.dilate(mask, k3) > 0) & (core == 0)
    ys, xs = np.nonzero(band)
    cf = core.astype(np.float32)
    wide_n = cv2.boxFilter(cf, -1, (window, window), normalize=False)
    has = wide_n[ys, xs] > 0
    ys, xs = ys[has], xs[has]
    near_n = cv2.boxFilter(cf, -1, (3, 3), normalize=False)[ys, xs]
    fp = f[:, ys, xs]
    perf = np.empty_like(fp)
    for c in range(3):
        fc = f[c] * cf
        wide = cv2.boxFilter(fc, -1, (window, window), normalize=False)[ys, xs] / wide_n[ys, xs]
        near = cv2.boxFilter(fc, -1, (3, 3), normalize=False)[ys, xs] / np.maximum(near_n, 1)
        perf[c] = np.where(near_n > 0, near, wide)
    b = bg[:, ys, xs]
    bb = np.maximum((b * b).sum(0), 1e-3)

    def cone_distance2(x: np.ndarray) -> np.ndarray:
        a = np.clip((x * b).sum(0) / bb, alpha_lo, alpha_hi)
        return ((x - a * b) ** 2).sum(0)

    sig = sigma[ys, xs] if np.ndim(sigma) else sigma
    use_cone = cone_distance2(perf) >= (3.0 * sig) ** 2
    if shadow_area is not None:
        use_cone &= shadow_area[ys, xs]
    d_bg = np.where(use_cone, cone_distance2(fp), ((fp - b) ** 2).sum(0))
    d_fg = ((fp - perf) ** 2).sum(0)
    out = mask.copy()
    out[ys, xs] = d_fg < d_bg
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks (nonzero = inside); 1.0 when both are empty."""
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union
