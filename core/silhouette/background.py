"""Background models: colour camera images -> performer silhouettes, one model per camera.

Two models share one interface: ``capture`` frames of the empty studio, then
``segment`` each frame into a uint8 mask (0 background / 1 performer).

:class:`CleanPlate` (the default). The plate is the per-pixel median of the
captured frames (at least 2); the per-pixel noise sigma comes from their
sample variance (averaged over channels and 7 x 7 pixels), so every threshold
follows its pixel's noise, widened for the plate's own noise (a median of n
frames keeps about pi / (2 n) of the noise variance). Each frame is compared with the plate B
in the brightness / chromaticity split: alpha = <F, B> / |B|^2 is the
brightness ratio along the plate colour and CD = |F - alpha B| the chromatic
distortion. A shadow scales the light: CD stays at the noise level and alpha
drops by a bounded factor. A pixel is performer when

- CD > ``k_chroma`` sigma + ``chroma_tol`` alpha |B| (another colour), or
- it is brighter than the plate by ``k_bright`` sigma + ``bright_tol`` |B|, or
- alpha < ``shadow_min_ratio`` (darker than a shadow gets), or
- the 3 x 3 median of those scores passes ``pool_ratio`` (weak but coherent
  evidence: dark clothes close to the floor's hue), or
- its neighbourhood lost the plate's fine texture although its colour could
  pass for a shadow (grey clothes on a grey, textured floor; see
  :meth:`CleanPlate._texture_lost`).

Lighting drift is undone first: :func:`estimate_gain` fits the frame's gain
over the plate (a plane in log brightness, so a slow gradient across the
image goes too) on the pixels the previous frame called background, with
outliers trimmed. The plate then follows slow changes: background pixels away
from the performer and its shadow move ``update_rate`` of the way to the
gain-normalised frame each frame (0.01: a time constant of 100 frames, 3.3 s
at 30 frames/s), so the plate stays at the lighting of the capture and the
gain carries the drift.

:class:`Mog2Model`, the adaptive alternative: OpenCV's mixture of Gaussians
(``cv2.createBackgroundSubtractorMOG2``, shadow detection on, shadow pixels
counted as background), fed frames divided by the same gain estimate (against
the median of the captured frames) because its own learning cannot follow a
15 % drift without absorbing the performer. It still absorbs a performer who
stands still for about 0.1 / ``learning_rate`` frames (200 by default).

Both finish with :mod:`core.silhouette.cleanup`. Frames are uint8 BGR
(H, W, 3), :data:`core.devices.IMAGE_BGR`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import cv2
import numpy as np

from core.silhouette.cleanup import CleanupParams, clean_mask, ellipse, refine_edges

GAIN_STEP_PX = 4  # the gain is fitted on every 4th pixel of every 4th row


@dataclass(frozen=True)
class PlateParams:
    """:class:`CleanPlate` settings. k_* are multiples of the pixel's noise sigma,
    *_tol fractions of its brightness |B|.

    colour_space: "shadow" (the split above: shadows and lighting changes are
    background) or "rgb" (plain colour distance to the gain-corrected plate
    against the chromatic threshold; no shadow tolerance, for comparison)."""

    k_chroma: float = 3.0             # chromatic distortion threshold ...
    chroma_tol: float = 0.02          # ... plus white-balance and colour-cast slack
    k_bright: float = 4.5             # brighter than the plate by this ...
    bright_tol: float = 0.10          # ... plus lighting the gain plane does not capture
    shadow_min_ratio: float = 0.5     # a shadow keeps at least half the light
    pool_ratio: float = 0.6           # 3 x 3 median score that counts too; 1: no pooling
    texture_beta: float = 0.35        # texture kept below this share of alpha ...; 1: test off
    texture_z: float = 4.0            # ... by this many standard errors: performer
    texture_window_px: int = 7
    sigma_floor: float = 1.0          # least noise sigma assumed, grey levels
    compensate_gain: bool = True
    gain_gradient: bool = True        # a plane in log brightness, not a single gain
    update_rate: float = 0.01         # per frame; 0: a frozen plate
    update_margin_px: int = 9         # pixels this close to the performer are not updated
    refine_edges: bool = True
    colour_space: str = "shadow"
    cleanup: CleanupParams = field(default_factory=CleanupParams)

    def __post_init__(self) -> None:
        if self.colour_space not in ("shadow", "rgb"):
            raise ValueError(f"colour_space must be 'shadow' or 'rgb', got {self.colour_space!r}")
        if not 0.0 <= self.update_rate < 1.0:
            raise ValueError(f"update_rate must be in [0, 1), got {self.update_rate}")
        if not 0.0 < self.shadow_min_ratio < 1.0:
            raise ValueError(f"shadow_min_ratio must be in (0, 1), got {self.shadow_min_ratio}")


@dataclass(frozen=True)
class Mog2Params:
    """:class:`Mog2Model` settings, OpenCV's names. The capture learns at OpenCV's
    own rate (1 / frames seen); segmenting learns at ``learning_rate`` a frame,
    so a performer who stands still becomes background after about
    0.1 / learning_rate frames (200: 6.7 s at 30 frames/s; OpenCV's
    background ratio is 0.9)."""

    history: int = 500
    var_threshold: float = 25.0       # squared Mahalanobis distance to a background mode
    shadow_threshold: float = 0.5     # a shadow keeps at least this share of the brightness
    learning_rate: float = 0.0005
    compensate_gain: bool = True
    # MOG2's raw masks have one-pixel cracks (no pooling): a 3 x 3 closing helps.
    cleanup: CleanupParams = field(default_factory=lambda: CleanupParams(close_px=3))


@dataclass(frozen=True, eq=False)
class Segmentation:
    """One frame's result: the cleaned mask, the raw per-pixel decision and the
    pixels taken for shadow (uint8 0/1 each), and the mean lighting gain."""

    mask: np.ndarray
    raw: np.ndarray
    shadow: np.ndarray
    gain: float


def check_frame(frame: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The frame if it is uint8 BGR (H, W, 3) of the given (H, W); else a ValueError saying why."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"a frame must be a numpy array, got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"a frame must be BGR of shape (H, W, 3), got shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"a frame must be uint8, got {frame.dtype}")
    if shape is not None and frame.shape[:2] != tuple(shape):
        raise ValueError(f"the frame is {frame.shape[1]}x{frame.shape[0]} but the background is "
                         f"{shape[1]}x{shape[0]}: one model per camera and resolution")
    return frame


def estimate_gain(frame: np.ndarray, reference: np.ndarray, trusted: np.ndarray | None,
                  gradient: bool = True) -> np.ndarray:
    """The lighting of `frame` over `reference`, (H, W) float32 (1: unchanged).

    frame: uint8 BGR (H, W, 3); reference: (3, H, W) float32; trusted: bool
    (H, W), the pixels believed background (None: all). The log of the
    brightness ratio is sampled every ``GAIN_STEP_PX`` pixels (dark and
    saturated ones left out), its median taken, outliers beyond 3 robust
    sigmas dropped and, with `gradient`, a plane a + b x + c y fitted to the
    rest, twice trimmed."""
    h, w = frame.shape[:2]
    s = GAIN_STEP_PX
    yy, xx = (a.ravel() for a in np.mgrid[0:h:s, 0:w:s])
    f = frame[::s, ::s].reshape(-1, 3).astype(np.float32)
    b = reference[:, ::s, ::s].reshape(3, -1)
    fs, bs = f.sum(1), b.sum(0)
    ok = (bs > 30) & (f.max(1) < 250) & (b.max(0) < 250)
    if trusted is not None:
        t = trusted[::s, ::s].ravel()
        if np.count_nonzero(ok & t) >= 50:
            ok &= t
    if np.count_nonzero(ok) < 10:
        return np.ones((h, w), np.float32)
    r = np.log(np.maximum(fs[ok], 1.0) / bs[ok])
    med = np.median(r)
    keep = np.abs(r - med) < 3 * 1.4826 * np.median(np.abs(r - med)) + 0.02
    coef = np.array([med, 0.0, 0.0])
    if gradient and np.count_nonzero(keep) > 20:
        x = np.stack([np.ones(r.size), (xx[ok] - w / 2) / w, (yy[ok] - h / 2) / h], 1)
        for _ in range(2):
            coef = np.linalg.lstsq(x[keep], r[keep], rcond=None)[0]
            res = r - x @ coef
            keep = np.abs(res) < 3 * 1.4826 * np.median(np.abs(res[keep])) + 0.01
    cols = (np.arange(w, dtype=np.float32) - w / 2) / w
    rows = (np.arange(h, dtype=np.float32) - h / 2) / h
    return np.exp(coef[0] + coef[1] * cols[None, :] + coef[2] * rows[:, None]).astype(np.float32)


class BackgroundModel:
    """One camera's background: ``capture`` empty frames, then ``segment`` frames."""

    kind = "base"

    def __init__(self) -> None:
        self._shape: tuple[int, int] | None = None

    @property
    def ready(self) -> bool:
        return self._shape is not None

    @property
    def shape(self) -> tuple[int, int] | None:
        """(H, W) of the frames this model takes, once captured."""
        return self._shape

    def _check_capture(self, frames: Iterable[np.ndarray]) -> list[np.ndarray]:
        frames = list(frames)
        if not frames:
            raise ValueError("capture needs at least one frame of the empty studio")
        shape = check_frame(frames[0]).shape[:2]
        return [check_frame(f, shape) for f in frames]

    def _check_segment(self, frame: np.ndarray) -> np.ndarray:
        if self._shape is None:
            raise RuntimeError(f"the {self.kind} background model has no background yet: "
                               "capture frames of the empty studio first")
        return check_frame(frame, self._shape)

    def capture(self, frames: Iterable[np.ndarray]) -> None:
        raise NotImplementedError

    def segment_detail(self, frame: np.ndarray) -> Segmentation:
        raise NotImplementedError

    def segment(self, frame: np.ndarray) -> np.ndarray:
        """uint8 BGR (H, W, 3) -> uint8 (H, W) mask, 0 background / 1 performer."""
        return self.segment_detail(frame).mask

    def reset(self) -> None:
        """Forget the background; segmenting needs a new capture."""
        self._shape = None


class CleanPlate(BackgroundModel):
    """Clean-plate background with a shadow- and lighting-tolerant colour test."""

    kind = "plate"

    def __init__(self, params: PlateParams | None = None) -> None:
        super().__init__()
        self.params = params or PlateParams()
        self._planes: np.ndarray | None = None   # (3, H, W) float32 plate at the capture's lighting
        self.sigma: np.ndarray | None = None      # (H, W) float32 sensor noise, grey levels
        self._plate_var = 0.0                     # the plate's noise variance / sigma^2
        self._trusted: np.ndarray | None = None   # bool (H, W): background in the last frame

    @property
    def plate(self) -> np.ndarray | None:
        """The current plate as uint8 BGR (H, W, 3), at the lighting of the capture."""
        if self._planes is None:
            return None
        return np.clip(np.moveaxis(self._planes, 0, -1) + 0.5, 0, 255).astype(np.uint8)

    def capture(self, frames: Iterable[np.ndarray]) -> None:
        """Build the plate from uint8 BGR frames of the empty studio: at least 2,
        10-30 are plenty. Each is first divided by its lighting gain over
        their median (the light may drift during the capture); the plate is
        then their median, the noise sigma their sample variance (averaged over
        the channels and a 7 x 7 neighbourhood, so even 2 frames give 49
        degrees of freedom)."""
        frames = self._check_capture(frames)
        if len(frames) < 2:
            raise ValueError("the clean plate needs at least 2 frames of the empty studio "
                             "to measure the noise (10-30 are plenty)")
        stack = np.stack(frames).astype(np.float32)
        plate = np.median(stack, axis=0)
        if self.params.compensate_gain:
            # The light may drift during the capture: bring every frame to the
            # median's lighting first, or the drift would pass for noise.
            ref = np.ascontiguousarray(np.moveaxis(plate, -1, 0))
            for i, frame in enumerate(frames):
                stack[i] /= estimate_gain(frame, ref, None, self.params.gain_gradient)[..., None]
            plate = np.median(stack, axis=0)
        var = stack.var(axis=0, ddof=1).mean(-1)
        sigma = np.sqrt(cv2.blur(var, (7, 7)))
        self._planes = np.ascontiguousarray(np.moveaxis(plate, -1, 0))
        self.sigma = np.maximum(sigma, self.params.sigma_floor).astype(np.float32)
        # A median of n samples has the variance of a mean of n / (pi / 2) (2 frames: the mean).
        self._plate_var = 0.5 if len(frames) == 2 else np.pi / 2 / len(frames)
        self._sigma_d = self.sigma * np.float32(np.sqrt(1.0 + self._plate_var))
        self._shape = plate.shape[:2]
        self._trusted = None

    def reset(self) -> None:
        super().reset()
        self._planes = self.sigma = self._sigma_d = self._trusted = None

    def _score(self, f: np.ndarray, gain: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Foreground score (> 1: performer), brightness ratio alpha to the
        gain-corrected plate, and that plate's norm |B|; each (H, W)."""
        p, sigma, b = self.params, self._sigma_d, self._planes  # noise of frame - plate
        pbb = np.maximum(b[0] * b[0] + b[1] * b[1] + b[2] * b[2], 1e-3)
        fb = f[0] * b[0] + f[1] * b[1] + f[2] * b[2]
        norm = gain * np.sqrt(pbb)
        alpha = fb / (gain * pbb)
        if p.colour_space == "rgb":
            d = np.sqrt(sum((f[c] - gain * b[c]) ** 2 for c in range(3)))
            return d / (p.k_chroma * sigma + p.chroma_tol * norm), alpha, norm
        ff = f[0] * f[0] + f[1] * f[1] + f[2] * f[2]
        cd = np.sqrt(np.maximum(ff - fb * fb / pbb, 0.0))  # off the plate's colour line; gain-free
        score = cd / (p.k_chroma * sigma + p.chroma_tol * np.maximum(alpha, 0.0) * norm)
        score = np.maximum(score, (alpha - 1.0) * norm / (p.k_bright * sigma + p.bright_tol * norm))
        score = np.maximum(score, (p.shadow_min_ratio - alpha) * norm / (p.k_bright * sigma))
        return score.astype(np.float32), alpha, norm

    def _texture_lost(self, f: np.ndarray, gain: np.ndarray, alpha: np.ndarray,
                      found: np.ndarray) -> np.ndarray:
        """Pixels whose neighbourhood lost the plate's fine texture.

        A shadow or a lighting change scales the background, so the frame's
        high-pass luminance h_F follows alpha times the plate's h_B; a performer
        hides the background and h_F stops following it. Over a window (pixels
        already called performer left out) beta = sum(h_F h_B) / sum(h_B^2)
        estimates that factor; a pixel is performer when beta < ``texture_beta``
        alpha (most of the window lost the texture, so no halo grows around
        the performer) by ``texture_z`` standard errors. Where the plate has no
        texture the error is large and the test abstains."""
        p = self.params
        win = (p.texture_window_px,) * 2
        lum_f = (f[0] + f[1] + f[2]) * np.float32(1 / 3)
        lum_b = (self._planes[0] + self._planes[1] + self._planes[2]) * (gain / 3)
        h_f = lum_f - cv2.blur(lum_f, (3, 3))
        free = 1.0 - cv2.dilate(found.astype(np.uint8), ellipse(3)).astype(np.float32)
        h_b = (lum_b - cv2.blur(lum_b, (3, 3))) * free
        # High-pass noise of a 3-channel mean: sigma^2 (8/9) / 3. The plate's own
        # noise inflates sum(h_B^2) without following h_F: take it out.
        hp_var = self.sigma * self.sigma * np.float32(8.0 / 27.0)
        num = cv2.blur(h_f * h_b, win)
        den = cv2.blur(h_b * h_b, win) - cv2.blur(free, win) * hp_var * np.float32(self._plate_var)
        textured = den > hp_var * np.float32(self._plate_var)  # texture above the plate's noise
        den = np.maximum(den, 1e-6)
        beta = num / den
        # Neighbouring high-pass values are correlated: 1.5 x the independent-sample error.
        err = 1.5 * np.sqrt(hp_var / (win[0] * win[1] * den))
        return (textured & (beta < p.texture_beta * alpha) & (alpha - beta > p.texture_z * err)
                & (free > 0))

    def segment_detail(self, frame: np.ndarray) -> Segmentation:
        frame = self._check_segment(frame)
        p = self.params
        f = np.moveaxis(frame, -1, 0).astype(np.float32)
        if p.compensate_gain:
            gain = estimate_gain(frame, self._planes, self._trusted, p.gain_gradient)
        else:
            gain = np.ones(self._shape, np.float32)
        score, alpha, norm = self._score(f, gain)
        raw = score > 1.0
        if p.pool_ratio < 1.0:
            # A 3 x 3 median keeps coherent evidence and does not widen a step edge.
            raw |= cv2.medianBlur(score, 3) > p.pool_ratio
        shadow = np.zeros_like(raw)
        lo = hi = 1.0
        if p.colour_space == "shadow":
            if p.texture_beta < 1.0:
                raw |= self._texture_lost(f, gain, alpha, raw)
            shadow = ~raw & ((1.0 - alpha) * norm > p.k_bright * self._sigma_d + p.bright_tol * norm)
            lo, hi = p.shadow_min_ratio, 1.0 + p.bright_tol
        raw8 = raw.astype(np.uint8)
        mask = clean_mask(raw8, p.cleanup)
        if p.refine_edges:
            area = None
            if p.colour_space == "shadow":
                # Shadow-coloured blobs, not the thin rings of mixed pixels round dark clothes.
                blobs = cv2.morphologyEx(shadow.astype(np.uint8), cv2.MORPH_OPEN, ellipse(5))
                area = cv2.dilate(blobs, ellipse(5)) > 0
            mask = refine_edges(mask, f, self._planes * gain, self._sigma_d, lo, hi, area)
        near = cv2.dilate(mask, ellipse(2 * p.update_margin_px + 1)) > 0
        self._trusted = ~near & ~shadow
        if p.update_rate > 0:
            rate = (self._trusted & ~raw).astype(np.float32) * np.float32(p.update_rate)
            self._planes += rate * (f / gain - self._planes)
        return Segmentation(mask, raw8, shadow.astype(np.uint8), float(gain.mean()))


class Mog2Model(BackgroundModel):
    """OpenCV's MOG2 behind the same interface; shadows count as background."""

    kind = "mog2"

    def __init__(self, params: Mog2Params | None = None) -> None:
        super().__init__()
        self.params = params or Mog2Params()
        self._mog = None
        self._reference: np.ndarray | None = None   # (3, H, W) float32, for the gain
        self._trusted: np.ndarray | None = None

    def capture(self, frames: Iterable[np.ndarray]) -> None:
        """Learn the empty studio from uint8 BGR frames."""
        frames = self._check_capture(frames)
        p = self.params
        self._mog = cv2.createBackgroundSubtractorMOG2(history=p.history, varThreshold=p.var_threshold,
                                                       detectShadows=True)
        self._mog.setShadowThreshold(p.shadow_threshold)
        for f in frames:
            self._mog.apply(f, learningRate=-1)
        plate = np.median(np.stack(frames), axis=0).astype(np.float32)
        self._reference = np.ascontiguousarray(np.moveaxis(plate, -1, 0))
        self._shape = plate.shape[:2]
        self._trusted = None

    def reset(self) -> None:
        super().reset()
        self._mog = self._reference = self._trusted = None

    def segment_detail(self, frame: np.ndarray) -> Segmentation:
        frame = self._check_segment(frame)
        p = self.params
        gain = np.ones(self._shape, np.float32)
        if p.compensate_gain:
            gain = estimate_gain(frame, self._reference, self._trusted)
            frame = np.clip(frame / gain[..., None] + 0.5, 0, 255).astype(np.uint8)
        out = self._mog.apply(frame, learningRate=p.learning_rate)
        raw = (out == 255).astype(np.uint8)
        shadow = (out == 127).astype(np.uint8)  # MOG2 marks shadow pixels 127
        mask = clean_mask(raw, p.cleanup)
        self._trusted = (cv2.dilate(mask, ellipse(19)) == 0) & (shadow == 0)
        return Segmentation(mask, raw, shadow, float(gain.mean()))


def make_background_model(kind: str = "plate", params: PlateParams | Mog2Params | None = None
                          ) -> BackgroundModel:
    """A background model by name: "plate" (:class:`CleanPlate`) or "mog2" (:class:`Mog2Model`)."""
    models = {"plate": (CleanPlate, PlateParams), "mog2": (Mog2Model, Mog2Params)}
    if kind not in models:
        raise ValueError(f"unknown background model {kind!r}: choose 'plate' or 'mog2'")
    cls, params_cls = models[kind]
    if params is not None and not isinstance(params, params_cls):
        raise ValueError(f"the {kind} model takes {params_cls.__name__}, got {type(params).__name__}")
    return cls(params)
