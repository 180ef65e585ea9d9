"""The performer's bone lengths: per take, and online for a live session.

Lengths come from the network's joints where both ends are confident
(:data:`MIN_CONFIDENCE`), as medians, the left and right bones of a pair
averaged (people are near enough symmetric, and the average halves the
noise). Live, :class:`LengthEstimator` gathers frames until every bone has
:data:`MIN_SAMPLES` samples and its median moved less than
:data:`STABLE_MM` over the last :data:`STABLE_WINDOW` confident frames, then
freezes: the skeleton an animator receives no longer changes. With no
camera at all, :func:`default_offsets` scales FuseCap's template to the
performer's stature.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from core import skeleton as sk
from core.posefit import skeleton_offsets, torso_rest_directions

J = sk.NUM_JOINTS
MIN_CONFIDENCE = 0.5
MIN_SAMPLES = 45
MIN_SURE = 5  # confident samples a bone needs before the others are left out
STABLE_MM = 2.0
STABLE_WINDOW = 30
BUFFER_FRAMES = 300
_PAIRS = [(sk.JOINT_INDEX[a], sk.JOINT_INDEX["Right" + a[4:]]) for a in sk.JOINTS if a.startswith("Left")]


def symmetric(lengths_mm: np.ndarray) -> np.ndarray:
    """Lengths with each left/right pair set to the pair's mean."""
    out = np.array(lengths_mm, np.float64)
    for a, b in _PAIRS:
        out[a] = out[b] = 0.5 * (out[a] + out[b])
    return out


def _bone_samples(joints_mm: np.ndarray, confidence: np.ndarray | None) -> np.ndarray:
    """(T, J) bone lengths, NaN where an end is missing or not confident."""
    x = np.asarray(joints_mm, np.float64)
    parents = np.array(sk.PARENTS[1:])
    d = np.full(x.shape[:2], np.nan)
    d[:, 1:] = np.linalg.norm(x[:, 1:] - x[:, parents], axis=2)
    if confidence is not None:
        c = np.nan_to_num(np.asarray(confidence, np.float64))
        sure = np.ones_like(d, bool)
        sure[:, 1:] = (c[:, 1:] >= MIN_CONFIDENCE) & (c[:, parents] >= MIN_CONFIDENCE)
        d[~sure] = np.nan
    return d


def take_lengths(joints_mm: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """(J,) bone lengths of a take (root 0): medians over the confident
    frames, symmetric. A bone with no confident frame falls back to all its
    finite frames; with none at all, ValueError."""
    d = _bone_samples(joints_mm, confidence)
    loose = _bone_samples(joints_mm, None)
    out = np.zeros(J)
    for j in range(1, J):
        col = d[:, j][np.isfinite(d[:, j])]
        if col.size == 0:
            col = loose[:, j][np.isfinite(loose[:, j])]
        if col.size == 0:
            raise ValueError(f"no frame shows both {sk.JOINTS[sk.PARENTS[j]]} and {sk.JOINTS[j]}: "
                             "cannot measure that bone")
        out[j] = float(np.median(col))
    return symmetric(out)


def default_offsets(stature_mm: float = 1750.0) -> np.ndarray:
    """(J, 3) FuseCap's template skeleton scaled to a stature (no camera)."""
    def frac(name: str) -> np.ndarray:
        own = sk.REST_OFFSET_FRACTIONS.get(name)
        return np.array(own if own is not None else sk.REST_OFFSET_FRACTIONS["Left" + name[5:]], np.float64)

    lengths = np.array([np.linalg.norm(frac(n)) for n in sk.JOINTS]) * float(stature_mm)
    lengths[sk.ROOT] = 0.0
    return skeleton_offsets(lengths)


class LengthEstimator:
    """Bone lengths gathered from live frames, frozen once stable."""

    def __init__(self) -> None:
        self._samples: list[deque] = [deque(maxlen=BUFFER_FRAMES) for _ in range(J)]
        self._loose: list[deque] = [deque(maxlen=BUFFER_FRAMES) for _ in range(J)]  # confident or not
        self._frames: deque = deque(maxlen=BUFFER_FRAMES)
        self._history: deque = deque(maxlen=STABLE_WINDOW)
        self.frozen_offsets: np.ndarray | None = None
        self._offsets: np.ndarray | None = None

    @property
    def frozen(self) -> bool:
        return self.frozen_offsets is not None

    def update(self, joints_mm: np.ndarray, confidence: np.ndarray | None) -> None:
        """Take one frame's network joints (J, 3) and confidences (J,)."""
        if self.frozen:
            return
        x = np.asarray(joints_mm, np.float64)
        d = _bone_samples(x[None], None if confidence is None else np.asarray(confidence)[None])[0]
        loose = _bone_samples(x[None], None)[0]
        if not np.isfinite(loose[1:]).any():
            return
        for j in range(1, J):
            if np.isfinite(d[j]):
                self._samples[j].append(d[j])
            if np.isfinite(loose[j]):
                self._loose[j].append(loose[j])
        if np.isfinite(x).all():
            self._frames.append(x)
        lengths = self.lengths()
        if lengths is None:
            return
        self._history.append(lengths)
        self._offsets = None
        counts = min(max(len(s), len(loose)) for s, loose in zip(self._samples[1:], self._loose[1:]))
        if counts >= MIN_SAMPLES and len(self._history) == STABLE_WINDOW and len(self._frames) >= 3:
            moved = np.abs(self._history[-1] - self._history[0]).max()
            if moved < STABLE_MM:
                self.frozen_offsets = self.offsets()

    def lengths(self) -> np.ndarray | None:
        """(J,) current estimate (root 0), None until every bone has a
        sample. A bone the network is never confident about (both ends at
        :data:`MIN_CONFIDENCE` or more) is measured on all its frames."""
        if any(len(s) == 0 for s in self._loose[1:]):
            return None
        out = np.zeros(J)
        for j in range(1, J):
            sure = self._samples[j]
            out[j] = float(np.median(sure if len(sure) >= MIN_SURE else self._loose[j]))
        return symmetric(out)

    def offsets(self) -> np.ndarray | None:
        """(J, 3) the skeleton now (frozen, or the current estimate; None: not yet)."""
        if self.frozen_offsets is not None:
            return self.frozen_offsets
        if self._offsets is None:
            lengths = self.lengths()
            if lengths is None:
                return None
            dirs = torso_rest_directions(np.stack(self._frames)) if len(self._frames) >= 3 else None
            self._offsets = skeleton_offsets(lengths, dirs)
        return self._offsets
