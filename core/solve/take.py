"""The whole-take skeleton solve (offline: `process`, exports).

Per take:
  1. the bone lengths from the confident frames (core.solve.lengths), the
     torso's shape measured on the take (core.posefit.torso_rest_directions);
  2. a first solve of overlapping windows of :data:`WINDOW` frames (the
     residuals of core.solve.pose with the acceleration prior over each
     window; the last :data:`OVERLAP` frames of a window are solved again as
     the start of the next, whose first two frames are held fixed);
  3. foot contacts detected on that solve (core.solve.contacts, with the foot
     IMUs' angular speed); with plant_feet, each contact anchored at the
     mean position of the ball of the foot over it (the floor height when
     the floor is known), and
  4. a second solve with the feet held at their anchors, the hold faded in
     and out over :data:`RELEASE_S` at each end of a contact so the foot
     plants and lifts without a jump.

Exports and `process` plant the feet (`main.py export --no-plant-feet`
does not). Planting is judged on a simulated performer whose feet hold
still (`scripts/bench_solve.py --planted`): the simulator's own motions let
planted feet slide, and against them holding the solved feet still moves
them away from the truth (docs/RESULTS.md).

Frames the network missed are solved from the IMUs and the motion prior;
frames with neither are filled by interpolation (core.posefit's rules). The
result is a core.posefit.PoseFit, what the exports take.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.kinematics import forward_kinematics
from core.posefit import (
    MIN_JOINTS,
    PoseFit,
    _analytic,
    _fill_invalid,
    _fill_missing_targets,
    _imu_matrices,
    skeleton_offsets,
    torso_rest_directions,
)
from core.rotations import to_wxyz
from core.solve.contacts import ContactConfig, contact_intervals, detect_contacts, own_floor
from core.solve.lengths import take_lengths
from core.solve.live import local_rotations
from core.solve.pose import BALLS, Frames, SolveConfig, State, WindowSolver, angular_speed_deg_s, tame_start

J = sk.NUM_JOINTS
WINDOW = 48
OVERLAP = 8
RELEASE_S = 0.25
Progress = Callable[[int, int], None]
_FOOT_IMUS = (sk.IMU_INDEX["LeftFoot"], sk.IMU_INDEX["RightFoot"])


def _windows(n: int) -> list[tuple[int, int, int]]:
    """(start, stop, keep_until) of each window over n frames."""
    out, s = [], 0
    while s < n:
        e = min(n, s + WINDOW)
        keep = e if e == n else e - OVERLAP
        out.append((s, e, keep))
        s = keep
    return out


def _solve_pass(solver: WindowSolver, obs: Frames, init: State, progress: Progress | None,
                done0: int, total: int) -> State:
    n = obs.count
    out = init.copy()
    out.positions = np.empty((n, J, 3))
    for s, e, keep in _windows(n):
        sl = slice(s, e)
        part = Frames(obs.times_s[sl], obs.joints_mm[sl], obs.confidence[sl], obs.imu[sl], obs.imu_ok[sl],
                      None if obs.imu_sigma_deg is None else obs.imu_sigma_deg[sl],
                      None if obs.pins is None else obs.pins[sl],
                      None if obs.pin_weight is None else obs.pin_weight[sl])
        b0 = max(0, s - 2)
        before = None
        if s > 0:
            before = State(out.root[b0:s].copy(), out.glob[b0:s].copy(), out.positions[b0:s].copy())
        start = State(out.root[sl].copy(), out.glob[sl].copy())
        st = solver.solve(part, start, before, obs.times_s[b0:s] if s > 0 else None)
        k = slice(s, keep)
        out.root[k], out.glob[k], out.positions[k] = st.root[: keep - s], st.glob[: keep - s], \
            st.positions[: keep - s]
        if progress is not None:
            progress(done0 + keep, total)
    return out


def _pins(times_s: np.ndarray, contact: np.ndarray, balls: np.ndarray,
          floor_z_mm: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Anchors (T, 2, 3) and hold weights (T, 2) of every contact."""
    n = len(times_s)
    pins = np.full((n, 2, 3), np.nan)
    weight = np.zeros((n, 2))
    for side in range(2):
        for a, b in contact_intervals(contact[:, side]):
            anchor = np.nanmean(balls[a:b, side], axis=0)
            if floor_z_mm is not None:
                anchor[2] = max(anchor[2], floor_z_mm)
            t0, t1 = times_s[a], times_s[b - 1]
            # Full hold inside, fading out over RELEASE_S either side.
            lo = np.searchsorted(times_s, t0 - RELEASE_S)
            hi = np.searchsorted(times_s, t1 + RELEASE_S, side="right")
            for i in range(lo, hi):
                w = 1.0 if a <= i < b else max(0.0, 1.0 - min(abs(times_s[i] - t0), abs(times_s[i] - t1)) / RELEASE_S)
                if w > weight[i, side]:
                    weight[i, side] = w
                    pins[i, side] = anchor
    return pins, weight


# How the take solve finds the feet it plants, on its own first pass: against the solved feet's own
# floor, stricter on speed and looser on height than core.solve.contacts' defaults (those were set on
# simulated feet that slide; the network's feet stand 20-70 mm above the floor in stance and wobble by a
# few centimetres). Chosen on the 8 sequences of scripts/bench_solve.py --planted (feet that hold still;
# no untouched set is left for it): foot skate 67.6 -> 4.3 mm per contact, MPJPE 36.4 -> 36.1 mm.
CONTACTS = ContactConfig(height_mm=90.0, height_leave_mm=120.0, speed_mm_s=300.0, speed_leave_mm_s=600.0)


def solve_take(times_s: np.ndarray, joints_mm: np.ndarray, bone_wxyz: np.ndarray | None = None,
               confidence: np.ndarray | None = None, config: SolveConfig = SolveConfig(),
               progress: Progress | None = None, plant_feet: bool = False,
               floor_z_mm: float | None = None) -> PoseFit:
    """The whole-take solve (see the module notes). times_s (T,); joints_mm
    (T, J, 3) raw network joints (NaN: missing); bone_wxyz (T, 13, 4)
    calibrated IMU bones (NaN rows: missing) or None; confidence (T, J).
    Raises ValueError for a take with no solved frame."""
    x = np.asarray(joints_mm, np.float64)
    t = np.asarray(times_s, np.float64)
    n = x.shape[0]
    if x.ndim != 3 or x.shape[1:] != (J, 3) or t.shape != (n,):
        raise ValueError(f"times_s (T,) and joints_mm (T, {J}, 3) expected, got {t.shape} and {x.shape}")
    seen = np.isfinite(x).all(axis=2)
    solved = seen[:, sk.ROOT] & (seen.sum(axis=1) >= MIN_JOINTS)
    if not solved.any():
        raise ValueError("no frame has a solved performer: nothing to fit")
    conf = seen.astype(float) if confidence is None else np.where(seen, np.nan_to_num(confidence), 0.0)
    imu, ok = _imu_matrices(bone_wxyz, n)
    # Frames the solve covers: from the first to the last frame with anything to go on.
    has = solved | ok.any(axis=1)
    first = int(np.flatnonzero(solved)[0])
    last = int(np.flatnonzero(has)[-1])
    span = slice(first, last + 1)
    xs = np.where(seen[:, :, None], x, np.nan)[solved]
    lengths = take_lengths(xs, conf[solved])
    offsets = skeleton_offsets(lengths, torso_rest_directions(xs))

    # Start: the analytic pose where the network saw the performer, held over gaps.
    targets = _fill_missing_targets(np.where(seen[:, :, None], x, np.nan)[solved], seen[solved])
    g_s, p_s = _analytic(targets, conf[solved], (imu[solved], ok[solved]), offsets)
    tame_start(g_s)
    root = np.empty((n, 3))
    glob = np.empty((n, J, 3, 3))
    idx = np.flatnonzero(solved)
    near = idx[np.clip(np.searchsorted(idx, np.arange(n)), 0, len(idx) - 1)]
    pos_in_s = np.searchsorted(idx, near)
    root[:] = p_s[pos_in_s, sk.ROOT]
    glob[:] = g_s[pos_in_s]
    init = State(root[span].copy(), glob[span].copy())

    obs = Frames(t[span], np.where(solved[:, None, None], x, np.nan)[span], conf[span], imu[span], ok[span])
    solver = WindowSolver(offsets, config)
    total = 2 * obs.count if plant_feet else obs.count
    st = _solve_pass(solver, obs, init, progress, 0, total)
    contact = np.zeros((obs.count, 2), bool)
    if plant_feet:
        spin = _foot_spin(obs.times_s, imu[span], ok[span])
        # Against the solved feet's own floor: the network's feet float or sink a few centimetres.
        contact = detect_contacts(obs.times_s, st.positions, own_floor(st.positions, CONTACTS),
                                  angular_speed_deg_s=spin)
        obs.pins, obs.pin_weight = _pins(obs.times_s, contact, st.positions[:, list(BALLS)], floor_z_mm)
        st = _solve_pass(solver, obs, st, progress, obs.count, total)

    valid = np.zeros(n, bool)
    valid[span] = True
    root_all, local = _fill_invalid(valid, st.root, local_rotations(st.glob))
    local_rot = Rotation.from_matrix(local.reshape(-1, 3, 3))
    pos = forward_kinematics(offsets, root_all, local_rot).positions_mm
    dist = np.linalg.norm(pos - x, axis=2)
    dist[~(solved[:, None] & seen)] = np.nan
    contacts_all = np.zeros((n, 2), bool)
    contacts_all[span] = contact
    return PoseFit(t.copy(), offsets, root_all, to_wxyz(local_rot).reshape(n, J, 4), pos, solved, lengths, dist,
                   contacts_all)


def fit_globals(fit: PoseFit) -> np.ndarray:
    """(T, J, 3, 3) global rotations of a fitted take (end joints: their parent's)."""
    return forward_kinematics(fit.offsets_mm, fit.root_mm, fit.local_rotations()).rotations


def _foot_spin(times_s: np.ndarray, imu: np.ndarray, ok: np.ndarray) -> np.ndarray | None:
    """(T, 2) the foot IMUs' angular speed (deg/s; 0 where a sensor is missing), None without foot IMUs."""
    feet = list(_FOOT_IMUS)
    if not ok[:, feet].any() or len(times_s) < 2:
        return None
    rate = angular_speed_deg_s(times_s, imu[:, feet])
    both = ok[:, feet] & np.concatenate([ok[:1, feet], ok[:-1, feet]])
    return np.where(both & np.isfinite(rate), rate, 0.0)




def fit_imus_only(times_s: np.ndarray, bone_wxyz: np.ndarray, stature_mm: float = 1750.0,
                  progress: Callable[[int, int], None] | None = None) -> PoseFit:
    """A take recorded with IMUs alone as one PoseFit: the IMU-only solve
    (core.solve.live.solve_imus_only: the template skeleton of `stature_mm`,
    posed by the calibrated IMU bones (T, 13, 4), its root moved by the
    feet). Frames with no sensor in are filled as PoseFit's are; there are
    no network joints (distance_mm all NaN). Raises ValueError when no frame
    has a sensor."""
    from core.solve.lengths import default_offsets
    from core.solve.live import solve_imus_only

    t = np.asarray(times_s, np.float64)
    _, _, poses = solve_imus_only(t, np.asarray(bone_wxyz, np.float64), stature_mm, progress)
    valid = np.array([p is not None for p in poses], bool)
    if not valid.any():
        raise ValueError("no frame has an IMU bone orientation: is the take's IMU calibration for these sensors?")
    n = len(t)
    offsets = default_offsets(stature_mm)
    root_v = np.stack([p.root_mm for p in poses if p is not None])
    local_v = np.stack([p.local.as_matrix() for p in poses if p is not None])
    root_all, local = _fill_invalid(valid, root_v, local_v)
    local_rot = Rotation.from_matrix(local.reshape(-1, 3, 3))
    pos = forward_kinematics(offsets, root_all, local_rot).positions_mm
    lengths = np.linalg.norm(offsets, axis=1)
    contacts = np.zeros((n, 2), bool)
    contacts[valid] = np.stack([p.contacts for p in poses if p is not None])
    return PoseFit(t.copy(), offsets, root_all, to_wxyz(local_rot).reshape(n, J, 4), pos, valid, lengths,
                   np.full((n, J), np.nan), contacts)
