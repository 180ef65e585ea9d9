"""Temporal filtering of solved joints (world mm).

Two filters, one per use:

- :class:`OneEuroFilter`, causal and low-latency, for the live view and the
  live link: the One Euro filter (Casiez, Roussel and Vogel, "1 € Filter: A
  Simple Speed-based Low-pass Filter for Noisy Input in Interactive
  Systems", CHI 2012). A first-order low-pass whose cutoff rises with the
  joint's speed, ``fc = min_cutoff + beta * |dx/dt|``: still joints are
  smoothed hard, fast ones follow with little lag.
- :func:`smooth_zero_phase`, for a whole take offline: a Butterworth
  low-pass run forwards and backwards (``scipy.signal.sosfiltfilt``), so it
  has no lag at all.

:class:`FilterConfig` names one of them (or "off") with its parameters; it
is stored as JSON in a take's metadata. Filtering is for what an animator
sees and exports: accuracy is always evaluated with filtering off.

Arrays are (J, 3) per frame or (T, J, 3) per take, millimetres; a joint
with any non-finite coordinate is "not solved" in that frame. Times are
seconds. See docs/FILTERING.md for the choices and measured numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
from scipy import signal

KINDS = ("off", "one-euro", "zero-phase")


# --------------------------------------------------------------------------- live


class LiveFilter(Protocol):
    """A causal per-frame filter: one call per solved frame, in time order."""

    def reset(self) -> None: ...

    def filter(self, t_s: float, joints_mm: np.ndarray) -> np.ndarray: ...


class PassThroughFilter:
    """The live filter of "off" (and of zero-phase, which needs the whole take)."""

    def reset(self) -> None:
        pass

    def filter(self, t_s: float, joints_mm: np.ndarray) -> np.ndarray:
        return joints_mm


def _alpha(cutoff_hz: np.ndarray | float, dt_s: np.ndarray) -> np.ndarray:
    """Smoothing factor of a first-order low-pass sampled every dt_s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz))
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """The One Euro filter over every joint of a skeleton, with real timestamps.

    min_cutoff_hz: cutoff of a still joint (jitter against lag at low speed).
    beta_per_mm: how fast the cutoff rises with speed, in Hz per mm/s (that
        is, per mm). At a steady speed v the filter lags by at most
        1 / (2 pi (min_cutoff + beta v)) seconds (14.5 ms at 1 m/s with the
        defaults), so a joint in steady motion trails by at most
        1 / (2 pi beta) mm (16 mm with the default).
    d_cutoff_hz: cutoff of the low-pass on the speed estimate itself.
    max_gap_s: a joint unseen for longer than this restarts (its next
        sample passes through) instead of being pulled from a stale state.

    Each joint keeps its own state. A frame (or joint) with non-finite
    coordinates is "no solve": the output is NaN there and the joint's state
    is held, so one missed solve does not restart the joint; a gap longer
    than max_gap_s does. A timestamp that does not advance (a replay, a
    clock reset) restarts the whole filter.
    """

    def __init__(self, min_cutoff_hz: float = 1.0, beta_per_mm: float = 0.01,
                 d_cutoff_hz: float = 1.0, max_gap_s: float = 0.25) -> None:
        for name, value in (("min_cutoff_hz", min_cutoff_hz), ("d_cutoff_hz", d_cutoff_hz),
                            ("max_gap_s", max_gap_s)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if not beta_per_mm >= 0:
            raise ValueError(f"beta_per_mm must be >= 0, got {beta_per_mm}")
        self.min_cutoff_hz = float(min_cutoff_hz)
        self.beta_per_mm = float(beta_per_mm)
        self.d_cutoff_hz = float(d_cutoff_hz)
        self.max_gap_s = float(max_gap_s)
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None      # last output, (J, 3)
        self._dx: np.ndarray | None = None     # last filtered velocity, mm/s
        self._t: np.ndarray | None = None      # per joint: time of its last sample (NaN: none)
        self._t_last: float | None = None      # time of the last frame, for the order check

    def filter(self, t_s: float, joints_mm: np.ndarray) -> np.ndarray:
        """Filtered joints (J, 3) mm for the frame at t_s seconds (a new array)."""
        x = np.asarray(joints_mm, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != 3:
            raise ValueError(f"joints must be (J, 3), got shape {x.shape}")
        t = float(t_s)
        if not math.isfinite(t):
            raise ValueError(f"frame time must be finite, got {t_s}")
        if self._x is not None and (x.shape != self._x.shape):
            raise ValueError(f"joint count changed from {self._x.shape[0]} to {x.shape[0]}")
        if self._t_last is not None and not t > self._t_last:
            self.reset()
        if self._x is None:
            self._x = np.full(x.shape, np.nan)
            self._dx = np.zeros(x.shape)
            self._t = np.full(x.shape[0], np.nan)
        self._t_last = t

        valid = np.isfinite(x).all(axis=1)
        dt = t - self._t                                   # NaN where the joint has no state
        fresh = valid & ~(dt <= self.max_gap_s)            # no state, or a stale one: restart
        going = valid & ~fresh

        out = np.full(x.shape, np.nan)
        out[fresh] = x[fresh]
        self._dx[fresh] = 0.0
        if going.any():
            dtg = dt[going][:, None]
            xp = self._x[going]
            a_d = _alpha(self.d_cutoff_hz, dtg)
            dx = a_d * (x[going] - xp) / dtg + (1.0 - a_d) * self._dx[going]
            cutoff = self.min_cutoff_hz + self.beta_per_mm * np.linalg.norm(dx, axis=1, keepdims=True)
            a = _alpha(cutoff, dtg)
            out[going] = a * x[going] + (1.0 - a) * xp
            self._dx[going] = dx
        self._x[valid] = out[valid]
        self._t[valid] = t
        return out


def one_euro_take(times_s: np.ndarray, joints_mm: np.ndarray, **params: float) -> np.ndarray:
    """Run a fresh :class:`OneEuroFilter` over a take (T, J, 3): what the live path gave."""
    times, joints = _check_take(times_s, joints_mm)
    f = OneEuroFilter(**params)
    return np.stack([f.filter(t, x) for t, x in zip(times, joints)]) if len(times) else joints.copy()


# --------------------------------------------------------------------------- offline


def nominal_rate_hz(times_s: np.ndarray) -> float:
    """A take's frame rate: one over the median time step (robust to dropped frames)."""
    dt = np.diff(np.asarray(times_s, np.float64))
    dt = dt[np.isfinite(dt) & (dt > 0)]
    if dt.size == 0:
        raise ValueError("need at least two increasing timestamps to know the frame rate")
    return float(1.0 / np.median(dt))


def butterworth_sos(cutoff_hz: float, fs_hz: float, order: int) -> np.ndarray:
    """Low-pass sections whose forward-backward pass is -3 dB at cutoff_hz.

    A forward-backward pass squares the magnitude, so the single pass is
    designed a little higher: |H|^2 = 1 / (1 + (tan(pi f/fs) / tan(pi fd/fs))^(2n))
    equals 1/sqrt(2) at f = cutoff when tan(pi fd/fs) = tan(pi cutoff/fs) /
    (sqrt(2) - 1)^(1/2n) (Winter's correction, on the digital frequency axis).
    """
    if not 0 < cutoff_hz < fs_hz / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz must lie between 0 and the Nyquist "
                         f"frequency ({fs_hz / 2:g} Hz at {fs_hz:g} frames/s)")
    warped = math.tan(math.pi * cutoff_hz / fs_hz) / (math.sqrt(2.0) - 1.0) ** (1.0 / (2 * order))
    design_hz = math.atan(warped) * fs_hz / math.pi
    return signal.butter(order, design_hz, btype="low", fs=fs_hz, output="sos")


def pad_samples(cutoff_hz: float, fs_hz: float, order: int) -> int:
    """Samples of odd-reflected padding at each end of a run.

    The filter starts at rest on the first padded sample; padding about one
    cutoff period (at least scipy's own default) lets that start-up decay
    before the real samples, so a straight line passes through unchanged.
    """
    default = 3 * (2 * math.ceil(order / 2) + 1)
    return max(default, math.ceil(1.5 * fs_hz / cutoff_hz))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of True in a 1-D mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def smooth_zero_phase(times_s: np.ndarray, joints_mm: np.ndarray, cutoff_hz: float = 6.0,
                      order: int = 2, max_gap_s: float = 0.25) -> np.ndarray:
    """Zero-lag low-pass of a whole take: (T,) seconds, (T, J, 3) mm -> (T, J, 3) mm.

    A Butterworth of `order` in second-order sections, run forwards and
    backwards (`scipy.signal.sosfiltfilt`), -3 dB at cutoff_hz overall. The
    rate is the take's nominal one (median time step); small timing jitter
    and single dropped frames are treated as evenly spaced. Each joint is
    filtered over runs of consecutive solved frames: a non-finite frame or a
    time step longer than max_gap_s ends a run, so gaps stay gaps and never
    bleed into their neighbours. A run shorter than the padding
    (:func:`pad_samples`, 0.3 s at 30 frames/s with the defaults) is left
    as it is: too short to filter without start-up artefacts. Runs are
    padded by odd reflection, which continues a straight line, so ramps and
    steady motion pass through unchanged.
    """
    times, joints = _check_take(times_s, joints_mm)
    out = joints.copy()
    if len(times) < 2:
        return out
    fs = nominal_rate_hz(times)
    sos = butterworth_sos(cutoff_hz, fs, int(order))
    pad = pad_samples(cutoff_hz, fs, int(order))
    valid = np.isfinite(joints).all(axis=2)                           # (T, J)
    split = np.concatenate([[False], np.diff(times) > max_gap_s])     # a gap before frame t
    # Joints that share a validity pattern (usually all of them) go through together.
    patterns, group = np.unique(valid.T, axis=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        cols = np.flatnonzero(group.ravel() == g)
        for start, stop in _runs(pattern):
            cuts = [start, *(start + 1 + np.flatnonzero(split[start + 1:stop])), stop]
            for a, b in zip(cuts[:-1], cuts[1:]):
                if b - a > pad:
                    seg = joints[a:b][:, cols]
                    out[a:b, cols] = signal.sosfiltfilt(sos, seg, axis=0, padtype="odd", padlen=pad)
    return out


def _check_take(times_s: np.ndarray, joints_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    times = np.asarray(times_s, np.float64).ravel()
    joints = np.asarray(joints_mm, np.float64)
    if joints.ndim != 3 or joints.shape[2] != 3 or joints.shape[0] != times.shape[0]:
        raise ValueError(f"expected times (T,) and joints (T, J, 3); got {times.shape} and {joints.shape}")
    return times, joints


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class FilterConfig:
    """Which filter, with its parameters; stored in take metadata as JSON.

    kind: "off" (the input, untouched), "one-euro" (causal, live) or
    "zero-phase" (offline, whole take). The One Euro parameters are
    min_cutoff_hz, beta_per_mm, d_cutoff_hz; the zero-phase ones
    cutoff_hz and order; max_gap_s (a longer gap restarts the filter) is
    shared.
    """

    kind: str = "off"
    min_cutoff_hz: float = 1.0
    beta_per_mm: float = 0.01
    d_cutoff_hz: float = 1.0
    cutoff_hz: float = 6.0
    order: int = 2
    max_gap_s: float = 0.25

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown filter kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        for name in ("min_cutoff_hz", "d_cutoff_hz", "cutoff_hz", "max_gap_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.beta_per_mm >= 0:
            raise ValueError(f"beta_per_mm must be >= 0, got {self.beta_per_mm}")
        if isinstance(self.order, bool) or int(self.order) != self.order or not 1 <= self.order <= 8:
            raise ValueError(f"order must be an integer from 1 to 8, got {self.order}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FilterConfig":
        """Missing keys take their defaults; unknown keys (a newer version's) are ignored."""
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if "order" in known:
            known["order"] = int(known["order"])
        return cls(**known)

    def one_euro_params(self) -> dict:
        return {"min_cutoff_hz": self.min_cutoff_hz, "beta_per_mm": self.beta_per_mm,
                "d_cutoff_hz": self.d_cutoff_hz, "max_gap_s": self.max_gap_s}


def apply_filter(config: FilterConfig, times_s: np.ndarray, joints_mm: np.ndarray) -> np.ndarray:
    """Filter a whole take (T, J, 3) mm as the config says. "off" returns joints_mm itself."""
    if config.kind == "off":
        return joints_mm
    if config.kind == "one-euro":
        return one_euro_take(times_s, joints_mm, **config.one_euro_params())
    return smooth_zero_phase(times_s, joints_mm, config.cutoff_hz, config.order, config.max_gap_s)


def live_filter(config: FilterConfig) -> LiveFilter:
    """The per-frame filter for the live path.

    Zero-phase smoothing needs the whole take, so live it passes joints
    through unchanged (as "off" does); the take is smoothed when processed.
    """
    if config.kind == "one-euro":
        return OneEuroFilter(**config.one_euro_params())
    return PassThroughFilter()
