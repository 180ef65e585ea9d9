"""The live skeleton solve: one frame at a time, in the solve worker.

:class:`LiveSolver` keeps what a live solve needs between frames: the
performer's bone lengths (:class:`core.solve.lengths.LengthEstimator`,
frozen once stable), the two frames before (the constant-velocity motion
prior of :class:`core.solve.pose.WindowSolver`), the feet's contacts
(:class:`core.solve.contacts.ContactTracker` on the solved pose and the foot
IMUs' angular speed) with their anchors, and how far each IMU is trusted.

Each frame it takes the network's joints and confidences (or nothing, when no
camera sees the performer) and the calibrated IMU bone orientations, and
returns the solved pose. With no network joints the pose comes from the IMUs,
the root from the last known one moved by the planted foot, as an inertial
suit's does.

Trust. A sensor's sigma starts from :data:`IMU_SIGMA_DEG` (per bone: the arm
and shank sensors sit on soft tissue that slides over the bone, and their
calibrated orientations were measured 7-14 degrees off against 2-5 for the
pelvis, sternum, head and thighs) and grows with the median angle, over
the last :data:`TRUST_WINDOW` frames, between the sensor's bone direction
and the network's where both of the bone's joints are confident: a sensor
that slipped on the body is believed less until it agrees again.

Planted feet (plant_feet=True; off by default live). When a foot's contact
starts, the ball of the foot is anchored where the solve put it; while the
contact lasts the solve holds it there; when it ends, the hold fades out
over :data:`RELEASE_S` so the foot lifts smoothly. Live, an anchor is
taken from one frame's solve, and a wrong one drags the body: on recorded
network joints holding the feet raised the live error from 33 to 64 mm
(scripts/bench_solve.py), so live contacts are reported and the whole-take
solve (core.solve.take) plants the feet, from contacts over whole intervals.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.posefit import MIN_JOINTS, _analytic, _imu_matrices, _to_local
from core.solve.contacts import ContactTracker
from core.solve.inertial import FootPlacement, standing_root_mm
from core.solve.lengths import LengthEstimator, default_offsets
from core.solve.pose import (
    BALLS,
    Frames,
    SolveConfig,
    State,
    WindowSolver,
    angular_speed_deg_s,
    tame_start,
    tie_end_joints,
)

J = sk.NUM_JOINTS
# Base sigma per IMU bone (degrees), in core.skeleton.IMU_BONES order.
IMU_SIGMA_DEG = np.array([4.0, 4.0, 5.0, 12.0, 12.0, 9.0, 9.0, 5.0, 5.0, 9.0, 9.0, 7.0, 7.0])
TRUST_WINDOW = 30
TRUST_FREE_DEG = 20.0     # disagreement with the network up to this is the network's own error
RELEASE_S = 0.25
HISTORY_GAP_S = 0.5       # frames further apart than this do not feed the motion prior
# Live: a looser motion prior than offline (a causal prior that is too stiff trails fast moves and
# overshoots: on recorded network joints at 15 frames/s, accel 12 m/s^2 gave 40.1 mm against the raw
# joints' 40.1, 24 m/s^2 33.2 mm; scripts/bench_solve.py), and 3 iterations a frame.
LIVE_CONFIG = SolveConfig(accel_mm_s2=24000.0, angular_accel_deg_s2=6000.0, iterations=3)
_FOOT_IMUS = (sk.IMU_INDEX["LeftFoot"], sk.IMU_INDEX["RightFoot"])
_IMU_START = np.array([b.start for b in sk.IMU_BONES])
_IMU_END = np.array([b.end for b in sk.IMU_BONES])


@dataclass(frozen=True, eq=False)
class SolvedPose:
    """One solved frame. root_mm (3,); local: J local rotations (an end
    joint's is the identity); positions_mm (J, 3); glob (J, 3, 3);
    contacts (2,) left/right foot planted; source: "fused" (network and
    IMUs), "cameras" (network only) or "imus" (IMUs only); offsets_mm (J, 3)
    the skeleton; lengths_frozen: the skeleton no longer changes."""

    t_s: float
    root_mm: np.ndarray
    local: Rotation
    positions_mm: np.ndarray
    glob: np.ndarray
    contacts: np.ndarray
    source: str
    offsets_mm: np.ndarray
    lengths_frozen: bool

    @property
    def bone_lengths_mm(self) -> np.ndarray:
        return np.linalg.norm(self.offsets_mm, axis=1)


def local_rotations(glob: np.ndarray) -> np.ndarray:
    """(T, J, 3, 3) or (J, 3, 3) local rotations from globals (end joints: identity)."""
    one = glob.ndim == 3
    local = _to_local(glob[None] if one else glob)
    local[:, list(sk.END_JOINTS)] = np.eye(3)
    return local[0] if one else local


class LiveSolver:
    """See the module notes. stature_mm sizes the template skeleton used
    when the IMUs must carry the pose before any camera measured the
    performer."""

    def __init__(self, config: SolveConfig = LIVE_CONFIG, stature_mm: float = 1750.0,
                 start_root_mm: np.ndarray | None = None, plant_feet: bool = False) -> None:
        self.config = config
        self.plant_feet = plant_feet
        self.lengths = LengthEstimator()
        self.contacts = ContactTracker()
        self._template = default_offsets(stature_mm)
        self._start_root = None if start_root_mm is None else np.asarray(start_root_mm, np.float64)
        self._hist: deque = deque(maxlen=2)  # (t_s, State of one frame)
        self._anchor = np.full((2, 3), np.nan)
        self._released_at = np.full(2, -np.inf)
        self._was = np.zeros(2, bool)
        self._disagree: list[deque] = [deque(maxlen=TRUST_WINDOW) for _ in range(sk.NUM_IMUS)]
        self._last_foot: tuple[float, np.ndarray] | None = None
        self._solver: WindowSolver | None = None
        self._solver_offsets: np.ndarray | None = None
        self.placement = FootPlacement()

    @classmethod
    def imus_only(cls, stature_mm: float = 1750.0, config: SolveConfig = LIVE_CONFIG) -> "LiveSolver":
        """A solver for a capture with no camera: the template skeleton of
        `stature_mm`, standing at the origin in the known pose (the world of
        core.imu.calibration.calibrate_without_cameras)."""
        from core.kinematics import forward_kinematics

        template = default_offsets(stature_mm)
        rest = forward_kinematics(template, np.zeros((1, 3)), Rotation.identity(J)).positions_mm[0]
        return cls(config, stature_mm, start_root_mm=standing_root_mm(rest))

    # -- pieces ------------------------------------------------------------------------
    def _offsets(self, have_joints: bool) -> np.ndarray | None:
        off = self.lengths.offsets()
        if off is None and not have_joints:
            off = self._template
        return off

    def _solver_for(self, offsets: np.ndarray) -> WindowSolver:
        if self._solver is None or self._solver_offsets is not offsets:
            self._solver = WindowSolver(offsets, self.config, causal=True)
            self._solver_offsets = offsets
        return self._solver

    def imu_sigma_deg(self) -> np.ndarray:
        """(13,) the sigma each sensor is given now (degrees)."""
        out = IMU_SIGMA_DEG.copy()
        for b, d in enumerate(self._disagree):
            if len(d) >= 5:
                extra = max(0.0, float(np.median(d)) - TRUST_FREE_DEG)
                out[b] = float(np.hypot(out[b], extra))
        return out

    def _track_trust(self, x: np.ndarray, conf: np.ndarray, imu: np.ndarray, ok: np.ndarray) -> None:
        sure = (conf[_IMU_START] >= 0.5) & (conf[_IMU_END] >= 0.5) & ok
        for b in np.flatnonzero(sure):
            seen = x[_IMU_END[b]] - x[_IMU_START[b]]
            n = np.linalg.norm(seen)
            if not np.isfinite(n) or n < 1e-6:
                continue
            rest = self._template[_IMU_END[b]]
            have = imu[b] @ rest
            cos = float(seen @ have / (n * np.linalg.norm(have)))
            self._disagree[b].append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))

    def _foot_spin(self, t_s: float, imu: np.ndarray, ok: np.ndarray) -> np.ndarray | None:
        feet = imu[list(_FOOT_IMUS)]
        have = ok[list(_FOOT_IMUS)].all()
        prev, self._last_foot = self._last_foot, (t_s, feet) if have else None
        if not have or prev is None or t_s <= prev[0]:
            return None
        return angular_speed_deg_s(np.array([prev[0], t_s]), np.stack([prev[1], feet]))[1]

    def _pins(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        weight = np.zeros(2)
        if not self.plant_feet:
            return self._anchor[None].copy(), weight[None]
        for side in range(2):
            if not np.isfinite(self._anchor[side]).all():
                continue
            if self._was[side]:
                weight[side] = 1.0
            else:
                weight[side] = max(0.0, 1.0 - (t_s - self._released_at[side]) / RELEASE_S)
        return self._anchor[None].copy(), weight[None]

    # -- one frame ---------------------------------------------------------------------
    def update(self, t_s: float, joints_mm: np.ndarray | None, confidence: np.ndarray | None,
               bone_wxyz: np.ndarray | None) -> SolvedPose | None:
        """Solve one frame. joints_mm (J, 3) and confidence (J,) from the
        network (None or a frame with no Hips: no camera sees the
        performer); bone_wxyz (13, 4) calibrated IMU bone orientations
        (NaN rows missing; None: no IMUs). None when there is nothing to
        solve from (no joints and no IMUs, or IMUs only before any root is known)."""
        x = None if joints_mm is None else np.asarray(joints_mm, np.float64)
        conf = None if confidence is None else np.asarray(confidence, np.float64)
        have = x is not None and np.isfinite(x[sk.ROOT]).all() and np.isfinite(x).all(axis=1).sum() >= MIN_JOINTS
        imu, ok = _imu_matrices(None if bone_wxyz is None else np.asarray(bone_wxyz)[None], 1)
        imu, ok = imu[0], ok[0]
        if not have and not ok.any():
            return None
        if have:
            if conf is None:
                conf = np.isfinite(x).all(axis=1).astype(float)
            self.lengths.update(x, conf)
            self._track_trust(x, conf, imu, ok)
        offsets = self._offsets(have)
        hist = [h for h in self._hist if t_s - h[0] < HISTORY_GAP_S and h[0] < t_s]
        if offsets is None or (not have and not hist and self._start_root is None):
            return None
        # Start: the analytic pose on the network's joints, else the last frame.
        if have:
            targets = np.where(np.isfinite(x), x, x[sk.ROOT])[None]
            g0, p0 = _analytic(targets, conf[None], (imu[None], ok[None]), offsets)
            tame_start(g0)
            init = State(p0[:, sk.ROOT].copy(), g0)
        elif hist:
            last = hist[-1][1]
            init = State(last.root.copy(), last.glob.copy())
        else:
            g = np.tile(np.eye(3), (1, J, 1, 1))
            init = State(self._start_root[None].copy(), g)
        if not have:
            # Bones with a sensor start from it.
            init.glob[0, _IMU_START[ok]] = imu[ok]
            tie_end_joints(init.glob)
        pins, pin_w = self._pins(t_s)
        obs = Frames(np.array([t_s]), np.full((1, J, 3), np.nan) if not have else x[None],
                     np.zeros((1, J)) if not have else conf[None], imu[None], ok[None],
                     self.imu_sigma_deg()[None], pins, pin_w)
        before = None
        times_before = None
        if hist:
            before = State(np.concatenate([h[1].root for h in hist]), np.concatenate([h[1].glob for h in hist]))
            before.positions = np.concatenate([h[1].positions for h in hist])
            times_before = np.array([h[0] for h in hist])
        st = self._solver_for(offsets).solve(obs, init, before, times_before)
        if have:
            self.placement.reset()
        else:  # no camera: the feet move the body (core.solve.inertial)
            last_root = hist[-1][1].root[0] if hist else self._start_root
            root = self.placement.place(st.positions[0] - st.root[0], last_root)
            st.positions[0] += root - st.root[0]
            st.root[0] = root
        self._hist.append((t_s, State(st.root.copy(), st.glob.copy(), st.positions.copy())))
        # Contacts on the solved pose; anchors where a contact starts.
        contact = self.contacts.update(t_s, st.positions[0], self._foot_spin(t_s, imu, ok))
        for side in range(2):
            if contact[side] and not self._was[side]:
                self._anchor[side] = st.positions[0, BALLS[side]]
            if self._was[side] and not contact[side]:
                self._released_at[side] = t_s
        self._was = np.array(contact, bool)
        source = "fused" if have and ok.any() else "cameras" if have else "imus"
        local = local_rotations(st.glob[0])
        return SolvedPose(float(t_s), st.root[0].copy(), Rotation.from_matrix(local), st.positions[0].copy(),
                          st.glob[0].copy(), self._was.copy(), source, offsets, self.lengths.frozen)


def solve_sequence(times_s: np.ndarray, joints_mm: np.ndarray | None, confidence: np.ndarray | None,
                   bone_wxyz: np.ndarray | None, config: SolveConfig = LIVE_CONFIG, **kwargs
                   ) -> tuple[np.ndarray, np.ndarray, list[SolvedPose | None]]:
    """Run a LiveSolver over a sequence (as the live session would):
    positions (T, J, 3) and globals (T, J, 3, 3) (NaN where nothing was
    solved), and the poses."""
    return _run(LiveSolver(config, **kwargs), times_s, joints_mm, confidence, bone_wxyz)


def solve_imus_only(times_s: np.ndarray, bone_wxyz: np.ndarray, stature_mm: float = 1750.0,
                    progress=None) -> tuple[np.ndarray, np.ndarray, list[SolvedPose | None]]:
    """An IMU-only take (no camera) solved as it was live
    (LiveSolver.imus_only: the template skeleton of `stature_mm`, the root
    moved by the feet): as solve_sequence. progress(done, total) now and then."""
    return _run(LiveSolver.imus_only(stature_mm), times_s, None, None, bone_wxyz, progress)


def _run(solver: LiveSolver, times_s, joints_mm, confidence, bone_wxyz, progress=None):
    T = len(times_s)
    pos = np.full((T, J, 3), np.nan)
    glob = np.full((T, J, 3, 3), np.nan)
    out: list[SolvedPose | None] = []
    for i, t in enumerate(times_s):
        p = solver.update(float(t), None if joints_mm is None else joints_mm[i],
                          None if confidence is None else confidence[i],
                          None if bone_wxyz is None else bone_wxyz[i])
        out.append(p)
        if p is not None:
            pos[i], glob[i] = p.positions_mm, p.glob
        if progress is not None and (i % 50 == 0 or i == T - 1):
            progress(i + 1, T)
    return pos, glob, out
