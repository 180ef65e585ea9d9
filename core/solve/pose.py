"""The pose that best agrees with everything measured: one frame or a window.

Unknowns per frame: the root (Hips) position and the global rotation of every
joint that has a child (17 of the 22; an end joint's rotation is its
parent's). Positions follow by forward kinematics on the performer's
constant-length skeleton (``offsets``, core.posefit). Globals rather than
locals as unknowns keep the Jacobian sparse: turning joint a moves exactly the
joints below it, and touches only the IMU bone and the limits at a.

Residuals, each divided by its standard deviation (a Gauss-Newton /
Levenberg-Marquardt solve of their sum of squares):
  - joints: solved minus network joint, mm, over ``joint_sigma_mm`` divided
    by the square root of the joint's confidence;
  - IMU bones: the world-frame angle between the solved bone orientation and
    the calibrated sensor's (swing and twist), over the sensor's sigma;
  - joint limits: knees and elbows bend one way, twist and turn sideways
    within a range (:data:`LIMITS`, degrees of the local rotation vector),
    zero inside the range;
  - a rest prior on the joints no IMU measures the twist of (Spine, Neck,
    clavicles; weak: the cameras decide where they see);
  - the motion prior: live, the distance from the constant-velocity
    prediction of the two frames before (positions and rotations), which
    lets steady motion through with no lag; offline (a window), the
    acceleration of every joint, the second difference of positions and of
    rotations over the real time steps;
  - planted feet: the ball of a foot in contact held at its anchor.

Robust: joint and IMU residuals are re-weighted each iteration with Cauchy
weights, so a sensor knocked on the body or a left-right swap of the network
pulls less than its square would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sparse
from scipy.sparse.linalg import spsolve

from core import skeleton as sk
from core.rotations import skew

J = sk.NUM_JOINTS
ROTATING: tuple[int, ...] = tuple(j for j in range(J) if sk.CHILDREN[j])
SLOT = {j: i for i, j in enumerate(ROTATING)}              # joint -> its rotation's slot
NV = 3 + 3 * len(ROTATING)                                 # unknowns per frame
_IMU_START = np.array([b.start for b in sk.IMU_BONES])
_MEASURED = set(int(s) for s in _IMU_START)
REST_PRIOR_JOINTS: tuple[int, ...] = tuple(j for j in ROTATING if j not in _MEASURED and j != sk.ROOT)
BALLS = (sk.JOINT_INDEX["LeftToeBase"], sk.JOINT_INDEX["RightToeBase"])

# Local rotation vector bounds (degrees, parent frame: x left, y back, z up at rest).
# Knees flex about +x (the shin swings back), with little twist or sideways bend;
# elbows flex about -z (left) / +z (right), the forearm swinging forward. An elbow
# is bounded in flexion only: its twist is pronation, which the forearm IMU measures,
# and bounding twist and sideways bend as well made the solve turn the upper arm
# away from its own sensor where the network's wrist was unsure (two turns of 40
# degrees on a held-out CMU clip, none without: scripts/bench_solve.py).
_FREE = (-np.inf, np.inf)
LIMITS: dict[str, tuple[tuple[float, float], ...]] = {
    "LeftLeg": ((-5.0, 160.0), (-15.0, 15.0), (-30.0, 30.0)),
    "RightLeg": ((-5.0, 160.0), (-15.0, 15.0), (-30.0, 30.0)),
    "LeftForeArm": (_FREE, _FREE, (-160.0, 5.0)),
    "RightForeArm": (_FREE, _FREE, (-5.0, 160.0)),
}
_LIMIT_JOINTS = tuple(sk.JOINT_INDEX[n] for n in LIMITS)
_LIMIT_LO = np.radians([[b[0] for b in LIMITS[n]] for n in LIMITS])
_LIMIT_HI = np.radians([[b[1] for b in LIMITS[n]] for n in LIMITS])


@dataclass(frozen=True)
class SolveConfig:
    """Standard deviations of what is measured, and the solve's effort.

    joint_sigma_mm: the network's joint error at confidence 1; imu_sigma_deg:
    a trusted sensor's error after calibration; accel_mm_s2 and
    angular_accel_deg_s2: how hard joints typically accelerate (the motion
    prior; live it becomes the constant-velocity prediction's spread, accel
    times dt squared); limit_sigma_deg: how softly limits hold; rest_sigma_deg:
    the rest prior on unmeasured twists; pin_sigma_mm: how firmly a planted
    foot stays; robust: Cauchy scale in sigmas (0: plain least squares)."""

    joint_sigma_mm: float = 40.0
    imu_sigma_deg: float = 8.0
    accel_mm_s2: float = 12000.0
    angular_accel_deg_s2: float = 3000.0
    limit_sigma_deg: float = 6.0
    # 20 rather than 30: where the network is unsure of the trunk (confidence under 0.1) the spine
    # between the pelvis and sternum sensors wandered, turning 31 degrees in one frame live on a
    # validation sequence; with 20 every row of scripts/bench_solve.py (and --validation) is a little
    # better and the largest live turn is 25 (docs/RESULTS.md).
    rest_sigma_deg: float = 20.0
    pin_sigma_mm: float = 5.0
    robust: float = 3.0
    imu_robust: float = 0.0  # Cauchy scale of the IMU terms (0: plain least squares; live, trust handles slips)
    iterations: int = 6
    tolerance: float = 1e-3  # stop when an iteration lowers the cost by less than this share


@dataclass
class Frames:
    """What a window of T frames measured.

    times_s (T,); joints_mm (T, J, 3), NaN where the network gave nothing;
    confidence (T, J) in [0, 1]; imu (T, 13, 3, 3) calibrated bone
    orientations with imu_ok (T, 13); imu_sigma_deg (T, 13) per-sensor
    trust (None: the config's); pins (T, 2, 3) anchors of the left and right
    ball of the foot with pin_weight (T, 2) in [0, 1] (0: free)."""

    times_s: np.ndarray
    joints_mm: np.ndarray
    confidence: np.ndarray
    imu: np.ndarray
    imu_ok: np.ndarray
    imu_sigma_deg: np.ndarray | None = None
    pins: np.ndarray | None = None
    pin_weight: np.ndarray | None = None

    @property
    def count(self) -> int:
        return int(self.times_s.shape[0])


@dataclass
class State:
    """Poses of T frames: root (T, 3) mm and globals (T, J, 3, 3)."""

    root: np.ndarray
    glob: np.ndarray
    positions: np.ndarray = field(default=None)  # type: ignore[assignment]
    cost: float = float("nan")

    def copy(self) -> "State":
        return State(self.root.copy(), self.glob.copy(),
                     None if self.positions is None else self.positions.copy())


# ----------------------------------------------------------------------------- rotations

# exp_map and log_map do what SciPy's Rotation.from_rotvec().as_matrix() and
# from_matrix().as_rotvec() do, on plain arrays: building Rotation objects was
# most of a live frame's solve time (profiled: 0.68 of 2.9 s over 40 frames).
# tests/test_solve.py checks them against SciPy.
def exp_map(v: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices of rotation vectors (..., 3) (Rodrigues)."""
    th = np.linalg.norm(v, axis=-1)[..., None, None]
    k = skew(v)
    small = th < 1e-8
    a = np.where(small, 1.0, np.sin(th) / np.where(small, 1.0, th))
    b = np.where(small, 0.5, (1.0 - np.cos(th)) / np.where(small, 1.0, th) ** 2)
    return np.eye(3) + a * k + b * (k @ k)


def log_map(m: np.ndarray) -> np.ndarray:
    """(..., 3) rotation vectors of rotation matrices (..., 3, 3).

    The angle from atan2 of the skew part's length and the trace (exact from
    0 to well past a right angle); rotations beyond 150 degrees, where the
    skew part fades, through the quaternion (Shepperd's choice of the largest
    diagonal term). The live solve calls this about twenty times a frame on
    a few matrices each, so the common case is a handful of array operations."""
    shape = m.shape[:-2]
    r = m.reshape(-1, 3, 3)
    v = np.stack([r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]], axis=1)
    c = 0.5 * (r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2] - 1.0)  # cos(angle)
    s = 0.5 * np.sqrt(np.einsum("ni,ni->n", v, v))           # sin(angle)
    angle = np.arctan2(s, c)
    f = 0.5 * np.where(s > 1e-12, angle / np.where(s > 1e-12, s, 1.0), 1.0)
    out = v * f[:, None]
    far = c < _FAR_COS
    if far.any():
        out[far] = _log_map_quaternion(r[far])
    return out.reshape(shape + (3,))


_FAR_COS = float(np.cos(np.radians(150.0)))


def _log_map_quaternion(r: np.ndarray) -> np.ndarray:
    """(n, 3) rotation vectors of (n, 3, 3) matrices through the quaternion
    (Shepperd's choice of the largest diagonal term): exact up to 180 degrees."""
    d0, d1, d2 = r[:, 0, 0], r[:, 1, 1], r[:, 2, 2]
    tr = d0 + d1 + d2
    case = np.argmax(np.stack([tr, d0, d1, d2], axis=1), axis=1)
    q = np.empty((r.shape[0], 4))                      # w, x, y, z
    s21, s02, s10 = r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]
    a01, a02, a12 = r[:, 0, 1] + r[:, 1, 0], r[:, 0, 2] + r[:, 2, 0], r[:, 1, 2] + r[:, 2, 1]
    for c, big, rest in ((0, 1.0 + tr, (s21, s02, s10)), (1, 1.0 + d0 - d1 - d2, (s21, a01, a02)),
                         (2, 1.0 - d0 + d1 - d2, (s02, a01, a12)), (3, 1.0 - d0 - d1 + d2, (s10, a02, a12))):
        sel = case == c
        if not sel.any():
            continue
        h = 0.5 * np.sqrt(np.maximum(big[sel], 1e-300))
        others = [x[sel] / (4.0 * h) for x in rest]
        order = {0: (0, 1, 2, 3), 1: (1, 0, 2, 3), 2: (2, 0, 1, 3), 3: (3, 0, 1, 2)}[c]
        vals = [h] + others
        for slot, val in zip(order, vals):
            q[sel, slot] = val
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    v = q[:, 1:]
    n = np.linalg.norm(v, axis=1)
    angle = 2.0 * np.arctan2(n, q[:, 0])
    f = np.where(n > 1e-12, angle / np.where(n > 1e-12, n, 1.0), 2.0)
    return v * f[:, None]


def angular_speed_deg_s(times_s: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """(T, K) how fast each of K orientations (T, K, 3, 3) turns, degrees a
    second, from each frame to the next (the first frame takes the second's)."""
    turn = np.degrees(np.linalg.norm(log_map(rot[1:] @ np.swapaxes(rot[:-1], -1, -2)), axis=-1))
    rate = turn / np.maximum(np.diff(times_s), 1e-6)[:, None]
    return np.concatenate([rate[:1], rate]) if len(rate) else np.full(rot.shape[:2], np.nan)


def _jl_inv(phi: np.ndarray) -> np.ndarray:
    """(n, 3, 3) inverse left Jacobians of SO(3) at rotation vectors phi (n, 3)."""
    th = np.linalg.norm(phi, axis=1)
    big = th > 1e-6
    coef = np.full(th.shape, 1.0 / 12.0)
    t = th[big]
    coef[big] = 1.0 / t ** 2 - (1.0 + np.cos(t)) / (2.0 * t * np.sin(np.maximum(t, 1e-9)))
    k = skew(phi)
    return np.eye(3) - 0.5 * k + coef[:, None, None] * (k @ k)


def positions(offsets: np.ndarray, root: np.ndarray, glob: np.ndarray) -> np.ndarray:
    """(T, J, 3) forward kinematics from globals."""
    pos = np.empty(root.shape[:1] + (J, 3))
    pos[:, sk.ROOT] = root
    for c, p in enumerate(sk.PARENTS):
        if p >= 0:
            pos[:, c] = pos[:, p] + glob[:, p] @ offsets[c]
    return pos


def tie_end_joints(glob: np.ndarray) -> np.ndarray:
    """Globals with every end joint's set to its parent's (no own rotation)."""
    for j in sk.END_JOINTS:
        glob[:, j] = glob[:, sk.PARENTS[j]]
    return glob


# The trunk's joints between two sensors (Spine: pelvis to sternum; Neck: sternum to head) bend this far
# at most when a solve starts. The network's joints can put one far off: the Neck is about 100 mm long,
# and a head joint 150 mm off (a frame of a planted-feet benchmark sequence) aimed it sideways, from
# where the window solve spun its twist round: a turn of 98 degrees between two frames, 17 at most with
# this (scripts/bench_solve.py --planted).
START_BEND_DEG = 60.0
_TAMED = tuple(sk.JOINT_INDEX[n] for n in ("Spine", "Neck"))


def tame_start(glob: np.ndarray) -> np.ndarray:
    """Globals (T, J, 3, 3) to start a solve from, with the Spine and Neck
    following their parent where the start turns them more than
    START_BEND_DEG from it (in place; returned)."""
    limit = np.cos(np.radians(START_BEND_DEG))
    for j in _TAMED:
        p = sk.PARENTS[j]
        local = np.swapaxes(glob[:, p], 1, 2) @ glob[:, j]
        cos = (np.trace(local, axis1=1, axis2=2) - 1.0) / 2.0
        far = cos < limit
        glob[far, j] = glob[far, p]
    return glob


# ----------------------------------------------------------------------------- assembly

class _System:
    """Residual blocks (3 rows each) with their sparse Jacobian, in 3 x 3 blocks."""

    def __init__(self) -> None:
        self.res: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.mats: list[np.ndarray] = []
        self.n = 0  # residual blocks so far

    def add(self, r: np.ndarray, blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """r (N, 3) residual blocks; blocks: (which of the N (M,), the first
        column of the unknown, -1 for a fixed one (M,), d r / d unknown (M, 3, 3))."""
        n = r.shape[0]
        if n == 0:
            return
        self.res.append(r)
        for which, col, mat in blocks:
            keep = col >= 0
            self.rows.append(self.n + which[keep])
            self.cols.append(col[keep])
            self.mats.append(mat[keep])
        self.n += n

    def matrices(self, nvar: int, dense: bool = False):
        """The residual vector and the Jacobian (sparse CSR, or a dense array)."""
        r = np.concatenate(self.res).reshape(-1) if self.res else np.zeros(0)
        rows = np.concatenate(self.rows) if self.rows else np.zeros(0, int)
        cols = np.concatenate(self.cols) if self.rows else np.zeros(0, int)
        mats = np.concatenate(self.mats) if self.rows else np.zeros((0, 3, 3))
        rr = (3 * rows[:, None, None] + np.arange(3)[None, :, None]) + np.zeros((1, 1, 3), int)
        cc = (cols[:, None, None] + np.arange(3)[None, None, :]) + np.zeros((1, 3, 1), int)
        if dense:
            jac = np.zeros((3 * self.n, nvar))
            np.add.at(jac, (rr.reshape(-1), cc.reshape(-1)), mats.reshape(-1))
            return r, jac
        return r, sparse.csr_matrix((mats.reshape(-1), (rr.reshape(-1), cc.reshape(-1))), shape=(3 * self.n, nvar))


def _cauchy(r: np.ndarray, scale: float) -> np.ndarray:
    """Square roots of Cauchy IRLS weights of 3-vector residuals (..., 3) in sigmas."""
    if scale <= 0:
        return np.ones(r.shape[:-1])
    return 1.0 / np.sqrt(1.0 + np.sum(r * r, axis=-1) / scale ** 2)


class WindowSolver:
    """Solves a window of frames; `before` holds up to two solved frames just
    ahead of it (fixed), for the motion prior and continuity."""

    def __init__(self, offsets: np.ndarray, config: SolveConfig = SolveConfig(), causal: bool = False) -> None:
        self.offsets = np.asarray(offsets, np.float64)
        self.cfg = config
        self.causal = causal
        triples = []
        for k in range(J):
            c = k
            while sk.PARENTS[c] >= 0:
                triples.append((k, sk.PARENTS[c], c))
                c = sk.PARENTS[c]
        t = np.array(triples)
        self._k, self._a, self._c = t[:, 0], t[:, 1], t[:, 2]
        self._a_slot = np.array([SLOT[a] for a in self._a])
        self._ball_rows = {b: np.flatnonzero(self._k == b) for b in BALLS}

    def _position_blocks(self, frames: np.ndarray, joints: np.ndarray, scale: np.ndarray, levers: np.ndarray,
                         which: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Jacobian blocks of joint positions: frames (M,) window indices (< 0:
        fixed) of residual blocks `which` (M,) on joints (M,), scaled by
        scale (M,); levers (M, J, 3) the poses they are taken at."""
        live = frames >= 0
        out = [(which, np.where(live, frames * NV, -1), np.eye(3)[None] * scale[:, None, None])]
        # Every (residual block, chain triple) pair whose joint is the block's joint.
        sel = joints[:, None] == self._k[None, :]
        bi, ti = np.nonzero(sel)
        lever = levers[bi, self._c[ti]] - levers[bi, self._a[ti]]
        cols = np.where(live[bi], frames[bi] * NV + 3 + 3 * self._a_slot[ti], -1)
        out.append((which[bi], cols, -skew(lever) * scale[bi, None, None]))
        return out

    # -- the residuals -----------------------------------------------------------------
    def _build(self, obs: Frames, st: State, before: State | None, times_before: np.ndarray | None
               ) -> _System:
        cfg, T = self.cfg, obs.count
        sys = _System()
        pos = positions(self.offsets, st.root, st.glob)
        st.positions = pos
        idx = np.arange(T)
        # Joints: every (frame, joint) a block; missing ones weigh nothing.
        x = obs.joints_mm
        conf = np.clip(np.nan_to_num(obs.confidence), 0.0, 1.0)
        seen = np.isfinite(x).all(axis=2) & (conf > 0)
        s = np.where(seen, np.sqrt(np.maximum(conf, 0.05)), 0.0) / cfg.joint_sigma_mm
        r = np.where(seen[..., None], pos - np.nan_to_num(x), 0.0) * s[..., None]
        w = _cauchy(r, cfg.robust)
        s, r = s * w, r * w[..., None]
        frames = np.repeat(idx, J)
        joints = np.tile(np.arange(J), T)
        sys.add(r.reshape(-1, 3), self._position_blocks(frames, joints, s.reshape(-1),
                                                        np.repeat(pos, J, axis=0), np.arange(T * J)))
        # IMU bones.
        sig = np.radians(np.broadcast_to(cfg.imu_sigma_deg if obs.imu_sigma_deg is None else obs.imu_sigma_deg,
                                         (T, sk.NUM_IMUS)))
        ok = obs.imu_ok & np.isfinite(sig)
        if ok.any():
            f, b = np.nonzero(ok)
            start = _IMU_START[b]
            phi = log_map(st.glob[f, start] @ np.swapaxes(obs.imu[f, b], 1, 2))
            sc = 1.0 / sig[f, b]
            r = phi * sc[:, None]
            w = _cauchy(r, cfg.imu_robust)
            sc = sc * w
            cols = f * NV + 3 + 3 * np.array([SLOT[int(j)] for j in start])
            sys.add(r * w[:, None], [(np.arange(len(f)), cols, _jl_inv(phi) * sc[:, None, None])])
        # Limits and the rest prior: functions of local rotations.
        self._local_terms(sys, st, _LIMIT_JOINTS, 1.0 / np.radians(cfg.limit_sigma_deg), (_LIMIT_LO, _LIMIT_HI))
        self._local_terms(sys, st, REST_PRIOR_JOINTS, 1.0 / np.radians(cfg.rest_sigma_deg), None)
        # Planted feet.
        if obs.pins is not None and obs.pin_weight is not None:
            ok = (obs.pin_weight > 0) & np.isfinite(obs.pins).all(axis=2)
            if ok.any():
                f, side = np.nonzero(ok)
                balls = np.array(BALLS)[side]
                sc = obs.pin_weight[f, side] / cfg.pin_sigma_mm
                r = (pos[f, balls] - obs.pins[f, side]) * sc[:, None]
                sys.add(r, self._position_blocks(f, balls, sc, pos[f], np.arange(len(f))))
        self._motion_prior(sys, obs, st, pos, before, times_before)
        return sys

    def _local_terms(self, sys: _System, st: State, joints: tuple[int, ...], scale: float,
                     bounds: tuple[np.ndarray, np.ndarray] | None) -> None:
        jj = np.array(joints)
        pp = np.array([sk.PARENTS[j] for j in joints])
        gp = st.glob[:, pp]                                     # (T, L, 3, 3)
        phi = log_map(np.swapaxes(gp, 2, 3) @ st.glob[:, jj])  # (T, L, 3)
        if bounds is None:
            r = phi
            active = np.ones(phi.shape, bool)
        else:
            lo, hi = bounds
            r = np.minimum(phi - lo, 0.0) + np.maximum(phi - hi, 0.0)
            active = r != 0
        rows = active.any(axis=2)
        if not rows.any():
            return
        f, li = np.nonzero(rows)
        d = _jl_inv(phi[f, li]) @ np.swapaxes(gp[f, li], 1, 2) * scale
        d = d * active[f, li][:, :, None]
        n = np.arange(len(f))
        cj = f * NV + 3 + 3 * np.array([SLOT[int(j)] for j in jj[li]])
        cp = f * NV + 3 + 3 * np.array([SLOT[int(p)] for p in pp[li]])
        sys.add(r[f, li] * scale, [(n, cj, d), (n, cp, -d)])

    def _motion_prior(self, sys: _System, obs: Frames, st: State, pos: np.ndarray, before: State | None,
                      times_before: np.ndarray | None) -> None:
        cfg, T = self.cfg, obs.count
        nb = 0 if before is None else before.root.shape[0]
        t_all = obs.times_s if nb == 0 else np.concatenate([times_before, obs.times_s])
        p_all = pos if nb == 0 else np.concatenate([before.positions, pos])
        g_all = st.glob if nb == 0 else np.concatenate([before.glob, st.glob])
        rot = list(ROTATING)
        if self.causal:
            if T != 1:
                raise ValueError("the causal (live) solve takes one frame at a time")
            if nb == 0:
                return
            dt1 = max(float(t_all[-1] - t_all[-2]), 1e-3)
            if nb == 1:   # one frame before: stay near it, loosely
                pred, g_pred, loose = p_all[-2], g_all[-2], 2.0
            else:         # constant velocity from the two frames before
                dt0 = max(float(t_all[-2] - t_all[-3]), 1e-3)
                pred = p_all[-2] + (p_all[-2] - p_all[-3]) * (dt1 / dt0)
                spin = log_map(g_all[-2][rot] @ np.swapaxes(g_all[-3][rot], 1, 2)) * (dt1 / dt0)
                g_pred = g_all[-2].copy()
                g_pred[rot] = exp_map(spin) @ g_all[-2][rot]
                loose = 1.0
            acc = (pos[0] - pred)[None]                               # (1, J, 3), mm
            ang = log_map(st.glob[0][rot] @ np.swapaxes(g_pred[rot], 1, 2))[None]
            self._prior_rows(sys, acc, ang, pos[None], np.array([[0]]), np.array([[1.0]]),
                             loose * cfg.accel_mm_s2 * dt1 ** 2,
                             loose * np.radians(cfg.angular_accel_deg_s2) * dt1 ** 2)
            return
        # Offline: second differences over the real steps, frames m-1, m, m+1 (some may be fixed ones).
        m = np.arange(max(1, nb - 1), nb + T - 1)
        if m.size == 0:
            return
        h0 = np.maximum(t_all[m] - t_all[m - 1], 1e-3)
        h1 = np.maximum(t_all[m + 1] - t_all[m], 1e-3)
        scale = 2.0 / (h0 + h1)
        acc = ((p_all[m + 1] - p_all[m]) / h1[:, None, None] - (p_all[m] - p_all[m - 1]) / h0[:, None, None]) \
            * scale[:, None, None]
        w1 = log_map(g_all[m + 1][:, rot] @ np.swapaxes(g_all[m][:, rot], 2, 3)) / h1[:, None, None]
        w0 = log_map(g_all[m][:, rot] @ np.swapaxes(g_all[m - 1][:, rot], 2, 3)) / h0[:, None, None]
        ang = (w1 - w0) * scale[:, None, None]
        frames = np.stack([m - 1, m, m + 1], axis=1) - nb                 # window frame, < 0: fixed
        coef = np.stack([scale / h0, -scale * (1.0 / h0 + 1.0 / h1), scale / h1], axis=1)
        levers = np.stack([p_all[m - 1], p_all[m], p_all[m + 1]], axis=1)  # (M, 3, J, 3)
        self._prior_rows(sys, acc, ang, levers, frames, coef, cfg.accel_mm_s2, np.radians(cfg.angular_accel_deg_s2))

    def _prior_rows(self, sys: _System, acc: np.ndarray, ang: np.ndarray, levers: np.ndarray,
                    frames: np.ndarray, coef: np.ndarray, pos_sigma: float, rot_sigma: float) -> None:
        """Motion-prior blocks: acc (M, J, 3) a combination (coef (M, K)) of
        the positions of frames (M, K) (window indices, < 0: fixed), taken
        at the poses `levers` (M, K, J, 3); ang (M, R, 3) the same for the
        rotating joints' rotations."""
        M, K = frames.shape
        s = 1.0 / max(pos_sigma, 1e-9)
        rs = 1.0 / max(rot_sigma, 1e-12)
        which = np.arange(M * J)
        blocks = []
        for q in range(K):
            fr = np.repeat(frames[:, q], J)
            sc = np.repeat(coef[:, q], J) * s
            blocks += self._position_blocks(fr, np.tile(np.arange(J), M), sc,
                                            np.repeat(levers[:, q], J, axis=0), which)
        sys.add(acc.reshape(-1, 3) * s, blocks)
        R = len(ROTATING)
        which = np.arange(M * R)
        slots = np.tile(np.arange(R), M)
        blocks = []
        for q in range(K):
            fr = np.repeat(frames[:, q], R)
            cols = np.where(fr >= 0, fr * NV + 3 + 3 * slots, -1)
            blocks.append((which, cols, np.eye(3)[None] * (np.repeat(coef[:, q], R) * rs)[:, None, None]))
        sys.add(ang.reshape(-1, 3) * rs, blocks)

    # -- the solve ---------------------------------------------------------------------
    def solve(self, obs: Frames, init: State, before: State | None = None,
              times_before: np.ndarray | None = None) -> State:
        """The window's poses, starting from `init` (e.g. core.posefit's
        analytic pose, or the previous frame); `before`: up to two solved
        frames just ahead of the window, at times_before."""
        nvar = NV * obs.count
        st = init.copy()
        tie_end_joints(st.glob)
        if before is not None and before.positions is None:
            before.positions = positions(self.offsets, before.root, before.glob)
        dense = nvar <= 400
        r, jac = self._build(obs, st, before, times_before).matrices(nvar, dense)
        cost = float(r @ r)
        lam = 1e-3
        for _ in range(self.cfg.iterations):
            if dense:
                a = jac.T @ jac
                g = -(jac.T @ r)
                a[np.diag_indices(nvar)] += lam * (np.diag(a) + 1e-6)
                step = np.linalg.solve(a, g).reshape(obs.count, NV)
            else:
                jt = jac.T.tocsr()
                a = jt @ jac
                a = (a + sparse.diags(lam * (a.diagonal() + 1e-6))).tocsc()
                step = np.asarray(spsolve(a, -(jt @ r))).reshape(obs.count, NV)
            cand = self._apply(st, step)
            r_c, jac_c = self._build(obs, cand, before, times_before).matrices(nvar, dense)
            c_c = float(r_c @ r_c)
            if c_c <= cost:
                done = cost - c_c < self.cfg.tolerance * cost
                st, r, jac, cost = cand, r_c, jac_c, c_c
                lam = max(lam / 3.0, 1e-7)
                if done:
                    break
            else:
                lam *= 10.0
        st.positions = positions(self.offsets, st.root, st.glob)
        st.cost = cost
        return st

    def _apply(self, st: State, step: np.ndarray) -> State:
        out = st.copy()
        out.root = st.root + step[:, :3]
        turn = exp_map(step[:, 3:].reshape(-1, len(ROTATING), 3))
        out.glob[:, list(ROTATING)] = turn @ st.glob[:, list(ROTATING)]
        tie_end_joints(out.glob)
        return out
