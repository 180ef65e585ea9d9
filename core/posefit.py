"""Fitting a constant-length skeleton to solved joints, for export and live links.

The network gives joint positions per frame (world mm, Z up); animation
tools want a rig: fixed bone lengths, a T-pose rest and one local rotation
per joint (:mod:`core.kinematics`). :func:`fit_pose` makes that rig for a
whole take, :func:`fit_frame` poses it for one live frame.

Skeleton. Each bone's length is the median over the take's valid frames of
the distance between its two joints; its rest direction is the skeleton's
T-pose direction (:data:`core.skeleton.REST_DIRECTIONS`), except inside the
two rigid torso clusters (the Hips with Spine and both hip joints, the Chest
with Neck and both clavicles): the network places those joints where the
performer's body puts them, so their directions are measured on the take
(:func:`torso_rest_directions`), made left-right symmetric. Limbs keep the skeleton's T-pose directions.

Pose, analytic (both functions). Joints are posed from the root down; each
bone aims from its already fitted start joint at the raw position of its
end joint, so errors do not pile up along a chain:
  - one child, IMU on the bone: the IMU's bone orientation turned by the
    smallest rotation that lays its bone axis on the aimed direction, so the
    measured roll about the bone (forearm pronation, shin roll) comes through;
  - one child, no IMU (or the sensor missing, or more than 90 degrees off the
    solved direction): the parent's rotation turned the same smallest way
    (no twist relative to the parent);
  - several children (Hips, Chest): the rotation that best fits all of them
    (weighted Kabsch, the solution of ``Rotation.align_vectors``); the pelvis
    and sternum IMUs are not needed there, three joints fix the rotation;
  - end joints (HeadTop, hands, toes): no rotation of their own.

Refinement (:func:`fit_pose`, solved in :mod:`core.posefit_refine`).
scipy.optimize.least_squares moves the root and every joint's rotation,
chunks of frames at once with an analytic sparse Jacobian, to minimise
the distance between fitted and raw joints (weighted by confidence when
given). A small regulariser holds each bone's twist near the analytic one:
twist does not move any joint, positions alone cannot fix it. The
rotations are then rebuilt from the refined positions by the analytic
rules, so the twist is exactly the IMU's (or the minimal one).

Frames with no solve (NaN Hips, or fewer than :data:`MIN_JOINTS` finite
joints) are marked invalid and filled: the root is interpolated linearly
and each local rotation slerped between the nearest valid frames; before
the first and after the last valid frame the nearest valid pose is held.
A finite frame with a few NaN joints is valid: the missing joints are
aimed at their Hips-relative position interpolated over time and left out
of the refinement's residual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from core import skeleton as sk
from core.kinematics import forward_kinematics
from core.posefit_refine import RefineProblem
from core.rotations import from_wxyz, skew, to_wxyz

Progress = Callable[[int, int], None]

J = sk.NUM_JOINTS
MIN_JOINTS = 12                      # finite joints a frame needs to count as solved
CHUNK_FRAMES = 128                   # frames per least-squares problem
_IMU_AT = {b.start: i for i, b in enumerate(sk.IMU_BONES) if len(sk.CHILDREN[b.start]) == 1}
_CLUSTERS = {sk.JOINT_INDEX["Hips"]: ("Spine", "LeftUpLeg", "RightUpLeg"),
             sk.JOINT_INDEX["Chest"]: ("Neck", "LeftShoulder", "RightShoulder")}
_FLIP_X = np.array([-1.0, 1.0, 1.0])


# ----------------------------------------------------------------------------- skeleton

def rest_directions() -> np.ndarray:
    """(J, 3) unit T-pose direction of each joint's offset from its parent
    (world axes: faces -Y, left +X, Z up); the root's row is zero. A copy of
    :data:`core.skeleton.REST_DIRECTIONS`."""
    return sk.REST_DIRECTIONS.copy()


def bone_lengths(joints_mm: np.ndarray) -> np.ndarray:
    """(J,) median length of the bone ending at each joint over the frames
    where both its joints are finite (mm; 0 for the root)."""
    x = _as_joints(joints_mm)
    parents = np.array(sk.PARENTS[1:])
    d = np.linalg.norm(x[:, 1:] - x[:, parents], axis=2)
    out = np.zeros(J)
    for j in range(1, J):
        col = d[:, j - 1]
        col = col[np.isfinite(col)]
        if col.size == 0:
            raise ValueError(f"no frame has both {sk.JOINTS[sk.PARENTS[j]]} and {sk.JOINTS[j]}: "
                             "cannot measure that bone")
        out[j] = float(np.median(col))
    return out


def torso_rest_directions(joints_mm: np.ndarray, directions: np.ndarray | None = None) -> np.ndarray:
    """Rest directions with the Hips' and Chest's children measured on these
    frames: each cluster's shape in its own frame (median over frames), turned
    to lie closest to the skeleton's and made left-right symmetric."""
    x = _as_joints(joints_mm)
    dirs = rest_directions() if directions is None else np.array(directions, np.float64)
    for j, names in _CLUSTERS.items():
        kids = [sk.JOINT_INDEX[n] for n in names]
        rel = x[:, kids] - x[:, j, None]
        length = np.linalg.norm(rel, axis=2)
        ok = (np.isfinite(length) & (length > 1e-6)).all(axis=1)
        if ok.sum() < 3:
            continue
        rel = rel[ok] / np.linalg.norm(rel[ok], axis=2, keepdims=True)
        shape = dirs[kids]
        for _ in range(3):  # alternate: per-frame rotation, then the median shape in the cluster frame
            rot = _best_rotation(shape, rel, np.ones(rel.shape[:2]))
            local = np.einsum("nji,nkj->nki", rot, rel)
            shape = np.median(local, axis=0)
            shape /= np.linalg.norm(shape, axis=1, keepdims=True)
        # The cluster's overall orientation is a free gauge: put it nearest the rest pose.
        turn = _best_rotation(shape, dirs[kids][None], np.ones((1, len(kids))))[0]
        shape = shape @ turn.T
        # Left-right symmetric: the middle child in the mid-plane, the sides mirrored.
        mid, left, right = shape
        mid = mid * np.array([0.0, 1.0, 1.0])
        side = 0.5 * (left + right * _FLIP_X)
        shape = np.stack([mid, side, side * _FLIP_X])
        dirs[kids] = shape / np.linalg.norm(shape, axis=1, keepdims=True)
    return dirs


def skeleton_offsets(lengths_mm: np.ndarray, directions: np.ndarray | None = None) -> np.ndarray:
    """(J, 3) rest offsets: length times rest direction (root row zero)."""
    dirs = rest_directions() if directions is None else np.asarray(directions, np.float64)
    off = np.asarray(lengths_mm, np.float64)[:, None] * dirs
    off[sk.ROOT] = 0.0
    return off


# ----------------------------------------------------------------------------- rotations

def _best_rotation(rest: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations R minimising sum_k w |R rest_k - target_nk|^2 (Kabsch;
    the same answer as Rotation.align_vectors, batched over n frames)."""
    h = np.einsum("nk,nki,kj->nij", weights, target, rest)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))
    d[d == 0] = 1.0
    u[:, :, 2] *= d[:, None]
    return u @ vt


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 3) cross products of (n, 3) rows (np.cross costs more on a few rows)."""
    out = np.empty(a.shape)
    out[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    out[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    out[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return out


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 3, 3) smallest rotations turning directions a (n, 3) onto b (n, 3)."""
    a = a / np.sqrt(np.einsum("ni,ni->n", a, a))[:, None]
    b = b / np.sqrt(np.einsum("ni,ni->n", b, b))[:, None]
    axis = _cross(a, b)
    sin = np.sqrt(np.einsum("ni,ni->n", axis, axis))
    cos = np.einsum("ni,ni->n", a, b)
    length = sin.copy()
    flip = (sin < 1e-9) & (cos < 0)
    if flip.any():  # opposite directions: half a turn about any axis across a
        other = np.where(np.abs(a[flip, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        axis[flip] = np.cross(a[flip], other)
        length[flip] = np.linalg.norm(axis[flip], axis=1)
        sin[flip], cos[flip] = 0.0, -1.0
    unit = axis / np.maximum(length, 1e-12)[:, None]
    # Rodrigues: R = I + sin K + (1 - cos) K^2, K = [unit]x (plain arrays: SciPy's Rotation
    # objects cost more than the arithmetic at the live solve's few rows a call).
    k = skew(unit)
    return np.eye(3) + sin[:, None, None] * k + (1.0 - cos)[:, None, None] * (k @ k)


def _aim(ref: np.ndarray, rest: np.ndarray, aim: np.ndarray) -> np.ndarray:
    """ref (n, 3, 3) turned the smallest way so that it maps the rest offset(s)
    rest ((3,) or (n, 3)) onto aim (n, 3); unchanged where aim is NaN or zero."""
    cur = np.einsum("nij,nj->ni", ref, np.broadcast_to(rest, (ref.shape[0], 3)))
    aim = np.where(np.isfinite(aim).all(axis=1, keepdims=True), aim, 0.0)
    short = np.einsum("ni,ni->n", aim, aim) < 1e-12
    aim = np.where(short[:, None], cur, aim)
    return _swing(cur, aim) @ ref


def _imu_matrices(bone_wxyz: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 13, 3, 3) bone rotations and (n, 13) validity from wxyz quaternions."""
    mats = np.tile(np.eye(3), (n, sk.NUM_IMUS, 1, 1))
    ok = np.zeros((n, sk.NUM_IMUS), bool)
    if bone_wxyz is None:
        return mats, ok
    q = np.asarray(bone_wxyz, np.float64)
    if q.shape != (n, sk.NUM_IMUS, 4):
        raise ValueError(f"bone_wxyz must be ({n}, {sk.NUM_IMUS}, 4), got {q.shape}")
    ok = np.isfinite(q).all(axis=2) & (np.linalg.norm(np.nan_to_num(q), axis=2) > 0.5)
    if ok.any():
        mats[ok] = from_wxyz(q[ok]).as_matrix()
    return mats, ok


def _analytic(targets: np.ndarray, weights: np.ndarray, imu: tuple[np.ndarray, np.ndarray],
              offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global rotations (n, J, 3, 3) and positions (n, J, 3) posed by the
    analytic rules on targets (n, J, 3) (finite Hips; a NaN joint leaves its
    bone at the reference orientation); weights (n, J) weigh the children of
    the Hips and Chest. The Hips stay at their targets."""
    n = targets.shape[0]
    glob = np.empty((n, J, 3, 3))
    pos = np.empty((n, J, 3))
    pos[:, sk.ROOT] = targets[:, sk.ROOT]
    mats, ok = imu
    eye = np.broadcast_to(np.eye(3), (n, 3, 3))
    for j, p in enumerate(sk.PARENTS):
        base = eye if p < 0 else glob[:, p]
        kids = sk.CHILDREN[j]
        if not kids:
            glob[:, j] = base
            continue
        if len(kids) == 1:
            c = kids[0]
            aim = targets[:, c] - pos[:, j]
            ref = base
            if j in _IMU_AT:
                k = _IMU_AT[j]
                sensor = mats[:, k]
                agrees = ok[:, k] & ~(np.einsum("nij,j,ni->n", sensor, offsets[c], aim) <= 0)
                ref = np.where(agrees[:, None, None], sensor, base)
            glob[:, j] = _aim(ref, offsets[c], aim)
        else:
            rel = targets[:, kids] - pos[:, j, None]
            seen = np.isfinite(rel).all(axis=2)
            w = np.where(seen, np.maximum(weights[:, kids], 1e-3), 0.0)
            rot = _best_rotation(offsets[list(kids)], np.nan_to_num(rel), w)
            few = seen.sum(axis=1) < 2  # one child or none: aim that one, else follow the parent
            if few.any():
                first = np.argmax(seen[few], axis=1)
                aim = rel[few, first]
                rot[few] = _aim(base[few], offsets[np.array(kids)[first]], aim)
            glob[:, j] = rot
        for c in kids:
            pos[:, c] = pos[:, j] + glob[:, j] @ offsets[c]
    return glob, pos


def _to_local(glob: np.ndarray) -> np.ndarray:
    """(n, J, 3, 3) local rotations from global ones."""
    local = glob.copy()
    parents = np.array(sk.PARENTS[1:])
    local[:, 1:] = np.swapaxes(glob[:, parents], 2, 3) @ glob[:, 1:]
    return local


def fit_frame(joints_mm: np.ndarray, bone_wxyz: np.ndarray | None,
              offsets_mm: np.ndarray) -> tuple[np.ndarray, Rotation]:
    """Pose a fitted skeleton on one frame, analytically (no optimisation).

    joints_mm: (J, 3) raw world joints; a bone whose end joint is NaN keeps its
    IMU's orientation, or else its parent's.
    bone_wxyz: (13, 4) IMU bone orientations, scalar-first (NaN rows:
    missing), or None. offsets_mm: (J, 3) the skeleton (e.g. PoseFit.offsets_mm).
    Returns the root position (3,) mm and J local rotations; raises
    ValueError when the Hips are not finite (no performer)."""
    x = np.asarray(joints_mm, np.float64)
    offsets = np.asarray(offsets_mm, np.float64)
    if x.shape != (J, 3) or offsets.shape != (J, 3):
        raise ValueError(f"joints_mm and offsets_mm must be ({J}, 3), got {x.shape} and {offsets.shape}")
    if not np.isfinite(x[sk.ROOT]).all():
        raise ValueError("the Hips are not finite: no performer in this frame")
    seen = np.isfinite(x).all(axis=1)
    imu = _imu_matrices(None if bone_wxyz is None else np.asarray(bone_wxyz)[None], 1)
    glob, _ = _analytic(x[None], seen[None].astype(float), imu, offsets)
    return x[sk.ROOT].copy(), Rotation.from_matrix(_to_local(glob)[0])


# ----------------------------------------------------------------------------- the take

@dataclass(frozen=True)
class FitReport:
    """Fitted-to-raw joint distance over the valid frames' observed joints, mm."""

    mean_mm: float
    p95_mm: float
    max_mm: float
    frames: int

    def __str__(self) -> str:
        return (f"fitted-to-raw over {self.frames} frames: mean {self.mean_mm:.2f} mm, "
                f"p95 {self.p95_mm:.2f} mm, max {self.max_mm:.2f} mm")


@dataclass(frozen=True, eq=False)
class PoseFit:
    """A take fitted with one constant-length skeleton.

    times_s (T,); offsets_mm (J, 3) rest offsets (T-pose, world axes, root
    row zero); root_mm (T, 3) Hips positions; local_wxyz (T, J, 4) local
    rotations, scalar-first (rest = identity); positions_mm (T, J, 3) forward
    kinematics of the fit; valid (T,) frames that had a solve (the others are
    filled, see the module notes); bone_lengths_mm (J,) (root 0);
    distance_mm (T, J) fitted-to-raw distance, NaN where no raw joint;
    contacts (T, 2) the feet the solve held planted (core.solve.take), or None."""

    times_s: np.ndarray
    offsets_mm: np.ndarray
    root_mm: np.ndarray
    local_wxyz: np.ndarray
    positions_mm: np.ndarray
    valid: np.ndarray
    bone_lengths_mm: np.ndarray
    distance_mm: np.ndarray
    contacts: np.ndarray | None = None  # (T, 2) left/right foot planted, where the solve detected contacts

    @property
    def num_frames(self) -> int:
        return int(self.times_s.shape[0])

    def local_rotations(self) -> Rotation:
        """T*J local rotations, frame-major (as core.kinematics takes them)."""
        return from_wxyz(self.local_wxyz.reshape(-1, 4))

    def report(self) -> FitReport:
        d = self.distance_mm[np.isfinite(self.distance_mm)]
        if d.size == 0:
            return FitReport(float("nan"), float("nan"), float("nan"), 0)
        return FitReport(float(d.mean()), float(np.percentile(d, 95)), float(d.max()),
                         int(self.valid.sum()))


def _as_joints(joints_mm: np.ndarray) -> np.ndarray:
    x = np.asarray(joints_mm, np.float64)
    if x.ndim != 3 or x.shape[1:] != (J, 3):
        raise ValueError(f"joints_mm must be (T, {J}, 3), got {x.shape}")
    return x


def _fill_missing_targets(x: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Targets for valid frames: missing joints at their Hips-relative position
    interpolated over the frames that saw them (held at the ends)."""
    out = x.copy()
    frames = np.arange(x.shape[0])
    for j in range(J):
        miss = ~seen[:, j]
        if not miss.any():
            continue
        rel = x[seen[:, j], j] - x[seen[:, j], sk.ROOT]
        for a in range(3):
            out[miss, j, a] = x[miss, sk.ROOT, a] + np.interp(frames[miss], frames[seen[:, j]], rel[:, a])
    return out


def fit_pose(times_s: np.ndarray, joints_mm: np.ndarray, bone_wxyz: np.ndarray | None = None,
             progress: Progress | None = None, *, confidence: np.ndarray | None = None,
             refine: bool = True) -> PoseFit:
    """Fit one constant-length skeleton to a take (see the module notes).

    times_s (T,) seconds; joints_mm (T, J, 3) raw world joints (NaN rows and
    frames allowed); bone_wxyz (T, 13, 4) IMU bone orientations scalar-first
    (NaN rows: missing) or None; confidence (T, J) in [0, 1] weights the
    refinement (None: equal). refine=False keeps the analytic pose.
    progress(done, total) counts frames. Raises ValueError on bad shapes or
    a take with no valid frame."""
    x = _as_joints(joints_mm)
    t = np.asarray(times_s, np.float64)
    if t.shape != (x.shape[0],):
        raise ValueError(f"times_s must be ({x.shape[0]},), got {t.shape}")
    n_all = x.shape[0]
    seen = np.isfinite(x).all(axis=2)
    valid = seen[:, sk.ROOT] & (seen.sum(axis=1) >= MIN_JOINTS)
    if not valid.any():
        raise ValueError("no frame has a solved performer: nothing to fit")
    weights = seen.astype(np.float64)
    if confidence is not None:
        conf = np.asarray(confidence, np.float64)
        if conf.shape != (n_all, J):
            raise ValueError(f"confidence must be ({n_all}, {J}), got {conf.shape}")
        weights *= np.clip(np.nan_to_num(conf), 0.05, 1.0)
    imu_all = _imu_matrices(bone_wxyz, n_all)

    xv = np.where(seen[:, :, None], x, np.nan)[valid]
    lengths = bone_lengths(xv)
    offsets = skeleton_offsets(lengths, torso_rest_directions(xv))
    targets = _fill_missing_targets(xv, seen[valid])
    wv = weights[valid]
    imu = (imu_all[0][valid], imu_all[1][valid])

    n = targets.shape[0]
    glob = np.empty((n, J, 3, 3))
    root_v = np.empty((n, 3))
    for start in range(0, n, CHUNK_FRAMES):
        s = slice(start, min(start + CHUNK_FRAMES, n))
        part = (imu[0][s], imu[1][s])
        g, p = _analytic(targets[s], wv[s], part, offsets)
        if refine:
            p = RefineProblem(targets[s], wv[s], g, p[:, sk.ROOT], offsets).solve()
            g, _ = _analytic(p, np.ones_like(wv[s]), part, offsets)
        glob[s], root_v[s] = g, p[:, sk.ROOT]
        if progress is not None:
            progress(int(np.flatnonzero(valid)[s.stop - 1]) + 1, n_all)

    root, local = _fill_invalid(valid, root_v, _to_local(glob))
    local_rot = Rotation.from_matrix(local.reshape(-1, 3, 3))
    pos = forward_kinematics(offsets, root, local_rot).positions_mm
    dist = np.linalg.norm(pos - x, axis=2)
    dist[~(valid[:, None] & seen)] = np.nan
    if progress is not None and not valid[-1]:
        progress(n_all, n_all)
    return PoseFit(t.copy(), offsets, root, to_wxyz(local_rot).reshape(n_all, J, 4), pos,
                   valid, lengths, dist)


def _fill_invalid(valid: np.ndarray, root_v: np.ndarray,
                  local_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full-length root (T, 3) and local rotations (T, J, 3, 3): valid frames
    as fitted, the others interpolated by frame number (root linearly,
    rotations by slerp) between their valid neighbours, the nearest valid
    pose held at the ends. By frame number, as a BVH plays them."""
    n_all = valid.shape[0]
    root = np.empty((n_all, 3))
    local = np.empty((n_all, J, 3, 3))
    root[valid], local[valid] = root_v, local_v
    missing = ~valid
    if not missing.any():
        return root, local
    idx = np.arange(n_all)
    vi = idx[valid]
    for a in range(3):
        root[missing, a] = np.interp(idx[missing], vi, root_v[:, a])
    if vi.size == 1:
        local[missing] = local_v[0]
        return root, local
    pos = np.clip(idx[missing], vi[0], vi[-1]).astype(np.float64)
    for j in range(J):
        local[missing, j] = Slerp(vi.astype(np.float64), Rotation.from_matrix(local_v[:, j]))(pos).as_matrix()
    return root, local
