"""Motion quality of an estimated take against the truth, as docs/RESULTS.md reports it.

Inputs are world positions in mm (T, J, 3) on the skeleton of
:mod:`core.skeleton`, global rotation matrices (T, J, 3, 3) (bone frame ->
world), times in seconds (strictly increasing, steps need not be equal). A
joint of the estimate with a non-finite value is "not solved" in that frame
and is skipped, as is a joint the truth lacks; nothing raises on NaN. Where a
measure has nothing to average (too few frames) it is NaN and its count 0.

Definitions (a "valid" joint in a frame: finite in both estimate and truth):

- ``frames``: frames with at least one valid joint.
- ``mpjpe_mm``: mean Euclidean distance between estimated and true joint,
  over every valid (frame, joint).
- ``worst_tenth_mm``: each frame's MPJPE (mean over its valid joints); the
  mean of the worst ceil(frames / 10) of them (at least one frame).
- ``accel_error_mm_s2``: jitter. For every joint and every frame t whose
  neighbours t-1 and t+1 are valid too (three consecutive frames), the
  acceleration by the non-uniform three-point second difference
  a_t = 2 (h1 x_{t+1} - (h1 + h2) x_t + h2 x_{t-1}) / (h1 h2 (h1 + h2)),
  h1 = t_t - t_{t-1}, h2 = t_{t+1} - t_t (exact for a quadratic; (x_{t+1} -
  2 x_t + x_{t-1}) / h^2 for equal steps); the mean of |a_est - a_true|
  (Euclidean norm) over all those (frame, joint). White noise of sigma per
  coordinate on equal steps h gives sigma sqrt(6) / h^2 * 2 sqrt(2 / pi).
- ``max_turn_deg``: the largest frame-to-frame turn of any joint's global
  orientation in the estimate, the angle of R_{t+1} R_t^T, over the frame
  pairs where the truth's same joint turns less than 10 degrees (a turn the
  truth does not make: a flip, a snap). End joints (nobody's parent:
  HeadTop, hands, toes, core.skeleton.END_JOINTS) are left out, their
  rotation drives nothing. Pairs where either frame's rotation (estimate or
  truth) is not finite are skipped.
- ``turns_over_30``: how many (frame pair, joint) cases of that set turn by
  more than 30 degrees.
  Without rotations (either one None): NaN and 0.
- Foot skate, over the truth's contacts: ``true_contacts`` (T, 2) bool per
  [left, right] foot, or when None, :func:`core.solve.contacts.detect_contacts`
  on the true positions with :data:`TRUE_CONTACTS` (a foot still on the
  floor), with the floor where the truth's feet are lowest
  (the 2nd percentile over frames of its lowest foot point, so a performer
  standing above z = 0, such as a recorded clip on a raised floor, still
  has contacts). For each contact interval of each foot, the slide
  of the ESTIMATED foot: the largest horizontal (x, y) distance of its ball
  (ToeBase) from where it was at the interval's first frame (the first
  frame where it is finite), over the interval's frames where it is finite.
  ``foot_skate_mm``: the mean over contacts; ``foot_skate_p95_mm``: their
  95th percentile (linear interpolation); ``contacts``: how many intervals
  had the estimated ball finite in at least one frame.
  ``true_skate_mm``: the same slide of the true ball over the same
  intervals (what the truth itself scores; the mean over intervals with a
  finite true ball). On a capture with planted feet it is small (the ball
  still comes down as the foot rolls off the heel: 9.7 mm per contact on the
  simulator's planted feet, core.sim.motion.planting); the simulated
  performer's own motions let planted feet slide (docs/RESULTS.md), so on
  those read foot_skate_mm against it, or read relative_skate_mm.
  ``relative_skate_mm``: the slide of the estimate relative to the truth's
  own, per interval the largest horizontal distance |(e_k - e_0) - (g_k - g_0)|
  of the estimated ball's displacement e_k - e_0 from the true ball's
  g_k - g_0, over the frames where both are finite (0 the first of them); the
  mean over the intervals where there are any. The skate an estimate adds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core import skeleton as sk
from core.solve.contacts import FOOT_JOINTS, ContactConfig, contact_intervals, detect_contacts, own_floor

# Joints whose rotation drives a child: the turn measures use only these.
TURN_JOINTS: tuple[int, ...] = tuple(j for j in range(sk.NUM_JOINTS) if j not in sk.END_JOINTS)
TRUTH_STILL_DEG = 10.0
BIG_TURN_DEG = 30.0


@dataclass(frozen=True)
class MotionQuality:
    """One take's quality against the truth; the module docstring defines each field."""

    frames: int
    mpjpe_mm: float
    worst_tenth_mm: float
    accel_error_mm_s2: float
    max_turn_deg: float
    turns_over_30: int
    foot_skate_mm: float
    foot_skate_p95_mm: float
    contacts: int
    true_skate_mm: float
    relative_skate_mm: float

    def row(self, label: str) -> dict:
        """One row of a results table: the label and every field, rounded for reading."""
        out: dict = {"label": label}
        for name, value in self.__dict__.items():
            out[name] = value if isinstance(value, int) else round(float(value), 2)
        return out

    def __str__(self) -> str:
        return (f"{self.frames} frames  MPJPE {self.mpjpe_mm:.1f} mm  worst 10% {self.worst_tenth_mm:.1f} mm  "
                f"accel err {self.accel_error_mm_s2 / 1000.0:.2f} m/s^2  max turn {self.max_turn_deg:.1f} deg "
                f"({self.turns_over_30} > 30)  skate {self.foot_skate_mm:.1f} mm (p95 {self.foot_skate_p95_mm:.1f}, "
                f"{self.contacts} contacts; truth {self.true_skate_mm:.1f}, relative {self.relative_skate_mm:.1f})")


def _position_errors(est: np.ndarray, true: np.ndarray) -> tuple[float, float, int]:
    """MPJPE, worst-tenth MPJPE and frames used."""
    valid = np.isfinite(est).all(axis=-1) & np.isfinite(true).all(axis=-1)          # (T, J)
    err = np.where(valid, np.linalg.norm(np.where(valid[..., None], est - true, 0.0), axis=-1), 0.0)
    per_joint = valid.sum(axis=1)
    used = per_joint > 0
    frames = int(used.sum())
    if frames == 0:
        return math.nan, math.nan, 0
    per_frame = err.sum(axis=1)[used] / per_joint[used]
    worst = np.sort(per_frame)[-max(1, math.ceil(frames / 10)):]
    return float(err.sum() / valid.sum()), float(worst.mean()), frames


def second_difference(times_s: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(T - 2, ...) accelerations at frames 1..T-2 of x (T, ...) by the non-uniform
    three-point formula (units of x per s^2); NaN where any of the three frames is."""
    t = np.asarray(times_s, np.float64)
    shape = (-1,) + (1,) * (x.ndim - 1)
    h1 = (t[1:-1] - t[:-2]).reshape(shape)
    h2 = (t[2:] - t[1:-1]).reshape(shape)
    return 2.0 * (h1 * x[2:] - (h1 + h2) * x[1:-1] + h2 * x[:-2]) / (h1 * h2 * (h1 + h2))


def _accel_error(times_s: np.ndarray, est: np.ndarray, true: np.ndarray) -> float:
    if est.shape[0] < 3:
        return math.nan
    with np.errstate(invalid="ignore"):
        diff = second_difference(times_s, est) - second_difference(times_s, true)   # (T-2, J, 3)
    ok = np.isfinite(diff).all(axis=-1)
    if not ok.any():
        return math.nan
    return float(np.linalg.norm(diff[ok], axis=-1).mean())


def turn_angles_deg(rotations: np.ndarray) -> np.ndarray:
    """(T - 1, ...) angle of R_{t+1} R_t^T in degrees for rotations (T, ..., 3, 3); NaN where
    either is not finite. From the chord, 2 asin(|R_{t+1} - R_t|_F / (2 sqrt 2)), which
    keeps its precision at small angles (arccos of the trace does not)."""
    chord = np.linalg.norm(rotations[1:] - rotations[:-1], axis=(-2, -1)) / (2.0 * math.sqrt(2.0))
    return np.degrees(2.0 * np.arcsin(np.minimum(chord, 1.0)))


def _turns(est_rot: np.ndarray | None, true_rot: np.ndarray | None) -> tuple[float, int]:
    if est_rot is None or true_rot is None or est_rot.shape[0] < 2:
        return math.nan, 0
    idx = list(TURN_JOINTS)
    est_turn = turn_angles_deg(np.asarray(est_rot, np.float64)[:, idx])             # (T-1, K)
    true_turn = turn_angles_deg(np.asarray(true_rot, np.float64)[:, idx])
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(est_turn) & (true_turn < TRUTH_STILL_DEG)
    if not ok.any():
        return math.nan, 0
    return float(est_turn[ok].max()), int((est_turn[ok] > BIG_TURN_DEG).sum())


def _slide(ball_xy: np.ndarray) -> float | None:
    """Largest horizontal distance from the first finite position, over the finite ones."""
    ok = np.isfinite(ball_xy).all(axis=-1)
    if not ok.any():
        return None
    pts = ball_xy[ok]
    return float(np.linalg.norm(pts - pts[0], axis=-1).max())


def _skates(est: np.ndarray, true: np.ndarray, contacts: np.ndarray) -> tuple[list[float], list[float], list[float]]:
    """Per contact interval with a finite estimated ball: its slide, the truth's slide
    (NaN if none) and the relative slide (NaN if no frame has both)."""
    est_slides, true_slides, relative = [], [], []
    for f, (_, ball) in enumerate(FOOT_JOINTS):
        for a, b in contact_intervals(contacts[:, f]):
            e, g = est[a:b, ball, :2], true[a:b, ball, :2]
            s = _slide(e)
            if s is None:
                continue
            est_slides.append(s)
            sg = _slide(g)
            true_slides.append(math.nan if sg is None else sg)
            both = np.isfinite(e).all(axis=-1) & np.isfinite(g).all(axis=-1)
            sr = _slide(e[both] - g[both]) if both.any() else None
            relative.append(math.nan if sr is None else sr)
    return est_slides, true_slides, relative


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


# The truth's contacts: a foot on the floor and still, as a real one is planted (slower than 0.3 m/s to
# start, 0.5 m/s to end, up to 40 mm off the floor). Looser thresholds (core.solve.contacts' defaults:
# 0.7 / 1.8 m/s, 60 mm) count the landing and lift-off too, where the foot still moves: on feet that
# hold still (scripts/bench_solve.py --planted) they made the truth's own slide 31.5 mm per contact, these 9.7.
TRUE_CONTACTS = ContactConfig(speed_mm_s=300.0, speed_leave_mm_s=500.0, height_leave_mm=40.0)


def motion_quality(times_s: np.ndarray, est_positions_mm: np.ndarray, true_positions_mm: np.ndarray,
                   est_rotations: np.ndarray | None = None, true_rotations: np.ndarray | None = None,
                   true_contacts: np.ndarray | None = None,
                   contact_config: ContactConfig | None = None) -> MotionQuality:
    """The quality of an estimated take against the truth (module docstring: definitions).

    times_s (T,) s; positions (T, J, 3) world mm; rotations (T, J, 3, 3) or None;
    true_contacts (T, 2) bool per [left, right] foot, or None to detect them
    on the true positions with contact_config.
    """
    t = np.asarray(times_s, np.float64).ravel()
    est = np.asarray(est_positions_mm, np.float64)
    true = np.asarray(true_positions_mm, np.float64)
    T = t.shape[0]
    if est.shape != true.shape or est.ndim != 3 or est.shape[0] != T or est.shape[2] != 3:
        raise ValueError(f"positions must both be (T, J, 3) with T = {T}: {est.shape}, {true.shape}")
    if T > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("times_s must be strictly increasing")
    mpjpe, worst, frames = _position_errors(est, true)
    accel = _accel_error(t, est, true)
    max_turn, over_30 = _turns(est_rotations, true_rotations)
    if true_contacts is None:
        contacts = detect_contacts(t, true, own_floor(true, contact_config or TRUE_CONTACTS))
    else:
        contacts = np.asarray(true_contacts, bool).reshape(T, 2)
    est_slides, true_slides, relative = _skates(est, true, contacts)
    if est_slides:
        skate, p95 = float(np.mean(est_slides)), float(np.percentile(est_slides, 95))
    else:
        skate = p95 = math.nan
    return MotionQuality(frames=frames, mpjpe_mm=mpjpe, worst_tenth_mm=worst, accel_error_mm_s2=accel,
                         max_turn_deg=max_turn, turns_over_30=over_30, foot_skate_mm=skate,
                         foot_skate_p95_mm=p95, contacts=len(est_slides), true_skate_mm=_nanmean(true_slides),
                         relative_skate_mm=_nanmean(relative))
