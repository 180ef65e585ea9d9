"""IMU wear offsets and headings: from sensor orientations to bone
orientations in the camera world.

Each sensor k reports q_k(t): sensor -> its own reference frame. That frame
has Z up (gravity) but an unknown heading, reference -> world = Rz(psi_k),
slowly drifting. The sensor sits on its bone at an unknown wear offset W_k
(sensor -> bone). The bone's orientation (bone -> world) is

    G_b(t) = Rz(psi_k(t)) * q_k(t) * W_k^-1                (DEEPFUSE.md eq. 1-2)

Capture (``calibrate``), from the vision skeleton and the IMUs recorded
together while the performer does the calibration routine
(core.sim.motion.calibration describes it):

1. **Known pose.** The performer holds a T-pose or N-pose. Stillness is
   detected from the sensors (every one turning less than `still_deg` over
   `still_s`); the vision skeleton of the same moment gives the performer's
   facing, so every bone's orientation G_b(t0) is known. One still moment
   ties W_k to the heading: W_k = G_b(t0)^-1 Rz(psi_k) q_k(t0).
2. **Heading.** A still pose cannot tell psi_k from W_k (any heading has a
   wear offset that explains the pose), so the moves that follow decide it:
   with W_k written as above, the bone direction predicted by the sensor is
   d(t) = Rz(psi) Dq(t) Rz(-psi) d(t0), Dq(t) = q_k(t) q_k(t0)^-1, and psi_k
   is the heading whose predictions best match the bone directions the
   vision skeleton sees over the moves (a 1-D search, robust to the
   skeleton's noise by averaging over hundreds of frames). A bone that only
   turned about the vertical during the moves has no observable heading;
   the report says which and by how much the fit is determined.

The pelvis and sternum also use the line between the hip joints / shoulder
joints (their rest direction is the body's left, +X) as a second direction
(the shoulder joints move a little with the collarbones, which the fit
averages out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import minimize_scalar
from scipy.spatial.transform import Rotation

from core import skeleton as sk
from core.imu.routine import pose_globals
from core.rotations import from_wxyz, to_wxyz, yaw

J = sk.JOINT_INDEX

# Directions each IMU bone shows the cameras: (from joint, to joint, direction in the bone frame).
_LEFT = np.array([1.0, 0.0, 0.0])
BONE_DIRECTIONS: tuple[tuple[tuple[int, int, np.ndarray], ...], ...] = tuple(
    ((b.start, b.end, sk.IMU_BONE_REST_DIRECTIONS[i]),)
    + (((J["RightUpLeg"], J["LeftUpLeg"], _LEFT),) if b.name == "Pelvis" else ())
    + (((J["RightArm"], J["LeftArm"], _LEFT),) if b.name == "Sternum" else ())
    for i, b in enumerate(sk.IMU_BONES)
)


class ImuCalibrationError(RuntimeError):
    """The capture could not calibrate; the message says what the performer should do."""


def bone_orientations(quat_wxyz: np.ndarray, sensor_id: np.ndarray, wear, heading) -> Rotation:
    """G_b = Rz(heading) * q * W^-1 for quaternions (N, 4) wxyz of sensors
    `sensor_id` (N,). wear: 13 wear offsets (sensor -> bone) as a Rotation or
    (13, 4) wxyz; heading: (N,) rad (or a Rotation of length N)."""
    quat_wxyz = np.asarray(quat_wxyz, np.float64).reshape(-1, 4)
    sensor_id = np.asarray(sensor_id).reshape(-1)
    if not isinstance(wear, Rotation):
        wear = from_wxyz(np.asarray(wear, np.float64).reshape(-1, 4))
    if len(wear) != sk.NUM_IMUS:
        raise ValueError(f"need {sk.NUM_IMUS} wear offsets, got {len(wear)}")
    ref = heading if isinstance(heading, Rotation) else yaw(np.asarray(heading, np.float64).reshape(-1))
    if len(quat_wxyz) == 0:
        return Rotation.identity(0)
    if len(ref) != len(quat_wxyz):
        raise ValueError(f"need one heading per sample ({len(quat_wxyz)}), got {len(ref)}")
    return ref * from_wxyz(quat_wxyz) * wear[sensor_id].inv()


def known_pose(pose: str, facing_rad: float) -> Rotation:
    """The 13 IMU bones' orientations (bone -> world) in a known pose, the
    performer facing `facing_rad` (0: facing -Y, positive turns left)."""
    return pose_globals(pose, facing_rad)[[b.start for b in sk.IMU_BONES]]


def performer_facing(joints_mm: np.ndarray) -> float:
    """Facing (rad, 0 = -Y) from the hips and shoulders lines of one skeleton (22, 3)."""
    left = (joints_mm[J["LeftUpLeg"]] - joints_mm[J["RightUpLeg"]]
            + joints_mm[J["LeftArm"]] - joints_mm[J["RightArm"]])
    return float(np.arctan2(left[1], left[0]))


def still_frames(imu_wxyz: np.ndarray, times_s: np.ndarray, window_s: float = 1.0,
                 max_deg: float = 4.0) -> np.ndarray:
    """(T,) bool: frames inside a window of `window_s` over which no present
    sensor turned more than `max_deg` from the window's first frame (at most
    one sensor may be missing). imu_wxyz: (T, 13, 4), NaN rows for missing
    sensors; frames evenly spaced."""
    T = len(times_s)
    out = np.zeros(T, bool)
    if T < 3:
        return out
    n = max(2, int(round(window_s / float(np.median(np.diff(times_s))))) + 1)
    if n > T:
        return out
    q = np.nan_to_num(np.asarray(imu_wxyz, float).reshape(-1, 4), nan=0.0)
    q[np.all(q == 0, axis=1)] = [1.0, 0.0, 0.0, 0.0]
    rot = from_wxyz(q)
    present = ~np.isnan(np.asarray(imu_wxyz)[..., 0])                       # (T, 13)
    starts = T - n + 1
    worst = np.zeros((starts, sk.NUM_IMUS))
    for m in range(1, n):  # angle between each window's first frame and its m-th
        a = np.arange(starts)
        ang = (rot[(a[:, None] * sk.NUM_IMUS + np.arange(sk.NUM_IMUS)).ravel()].inv()
               * rot[((a[:, None] + m) * sk.NUM_IMUS + np.arange(sk.NUM_IMUS)).ravel()]).magnitude()
        worst = np.maximum(worst, np.degrees(ang).reshape(starts, sk.NUM_IMUS))
    for i in range(starts):
        ok = present[i:i + n].all(0)
        if ok.sum() >= sk.NUM_IMUS - 1 and worst[i, ok].max() <= max_deg:
            out[i:i + n] = True
    return out


@dataclass
class SensorFit:
    bone: str
    heading_deg: float
    residual_deg: float
    observability_deg: float
    frames: int
    observable: bool


@dataclass
class ImuCalibration:
    """wear: (13) sensor -> bone; heading_rad: (13,) reference -> world yaw at
    time t_s (updated by drift correction); pose and fit report."""

    wear: Rotation
    heading_rad: np.ndarray
    t_s: float = 0.0
    pose: str = "T"
    fits: list[SensorFit] = field(default_factory=list)
    #: (13, 2, 3) the directions of BONE_DIRECTIONS in each bone's frame, as
    #: measured on this performer in the pose (NaN: none; default: nominal).
    rest_dirs: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rest_dirs is None:
            self.rest_dirs = np.full((sk.NUM_IMUS, 2, 3), np.nan)
            for k, dirs in enumerate(BONE_DIRECTIONS):
                for i, (_, _, d) in enumerate(dirs):
                    self.rest_dirs[k, i] = d
        self.heading_rad = np.asarray(self.heading_rad, float).copy()

    def bone_orientations(self, imu_wxyz: np.ndarray) -> tuple[Rotation, np.ndarray]:
        """(13, 4) sensor quaternions (NaN rows: missing) -> bone rotations of the
        present sensors and the (13,) present mask."""
        q = np.asarray(imu_wxyz, np.float64).reshape(sk.NUM_IMUS, 4)
        ok = ~np.isnan(q[:, 0])
        sid = np.flatnonzero(ok)
        return bone_orientations(q[ok], sid, self.wear, self.heading_rad[sid]), ok

    def bone_wxyz(self, imu_wxyz: np.ndarray) -> np.ndarray:
        """(13, 4) bone orientations, NaN rows for missing sensors (what the engine takes)."""
        rot, ok = self.bone_orientations(imu_wxyz)
        out = np.full((sk.NUM_IMUS, 4), np.nan)
        if ok.any():
            out[ok] = to_wxyz(rot)
        return out

    def to_dict(self) -> dict:
        return {"format": "fusecap-imu-calibration", "version": 1, "pose": self.pose, "t_s": self.t_s,
                "wear_wxyz": to_wxyz(self.wear).tolist(), "heading_deg": np.degrees(self.heading_rad).tolist(),
                "fits": [f.__dict__ for f in self.fits],
                "rest_dirs": np.where(np.isnan(self.rest_dirs), None, self.rest_dirs).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "ImuCalibration":
        if not isinstance(d, dict) or d.get("format") != "fusecap-imu-calibration":
            raise ValueError("not a FuseCap IMU calibration (format: fusecap-imu-calibration)")
        if d.get("version") != 1:
            raise ValueError(f"unsupported IMU calibration version {d.get('version')!r}")
        try:
            wear = np.array(d["wear_wxyz"], float)
            heading = np.radians(np.array(d["heading_deg"], float))
            if wear.shape != (sk.NUM_IMUS, 4) or heading.shape != (sk.NUM_IMUS,) or not np.isfinite(wear).all():
                raise ValueError(f"needs {sk.NUM_IMUS} wear quaternions and headings")
            fits = [SensorFit(**f) for f in d.get("fits", [])]
            rest = d.get("rest_dirs")
            rest = None if rest is None else np.array(
                [[[np.nan if v is None else v for v in vec] for vec in bone] for bone in rest], float)
            if rest is not None and rest.shape != (sk.NUM_IMUS, 2, 3):
                raise ValueError("rest_dirs must be 13 x 2 x 3")
            return cls(from_wxyz(wear), heading, float(d.get("t_s", 0.0)), str(d.get("pose", "T")), fits, rest)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed IMU calibration: {exc}") from exc

    def save(self, path: str | Path) -> None:
        from core.files import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "ImuCalibration":
        from core.files import read_json

        try:
            return cls.from_dict(read_json(path))
        except ValueError as exc:
            raise ValueError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from exc


def _directions(joints_mm: np.ndarray, a: int, b: int) -> np.ndarray:
    v = joints_mm[:, b] - joints_mm[:, a]
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def fit_heading(q0: Rotation, q: Rotation, G0: Rotation, observed: list[np.ndarray]
                ) -> tuple[float, np.ndarray, float, float]:
    """The heading psi (rad) of one sensor, and its bone's directions in the
    bone frame, from the bone directions the cameras saw.

    q0: the sensor in the known pose; G0: the bone in the known pose; q (T):
    the sensor at the frames of `observed` (each (T, 3) unit vectors, world).
    With heading psi, frame t's observation turned back into the bone frame is
    B_t = G0^-1 Rz(psi) Dq_t^-1 Rz(-psi) o_t (Dq_t = q_t q0^-1); the right
    heading makes all B_t agree, so psi maximises |mean_t B_t| and the bone
    direction is that mean, normalised: the performer's own geometry, not a
    nominal one. Returns (psi, directions (n, 3), residual deg, observability
    deg: how much worse the worst heading fits)."""
    dq_inv = (q * q0.inv()).inv()
    g0_inv = G0.inv()

    def spread(psi: float, out: list | None = None) -> float:
        h = yaw(psi)
        total = 0.0
        for o in observed:
            B = g0_inv.apply((h * dq_inv).apply(h.inv().apply(o)))
            m = B.mean(0)
            total += 1.0 - float(np.linalg.norm(m))
            if out is not None:
                out.append(m / np.linalg.norm(m))
        return total / len(observed)

    grid = np.radians(np.arange(-180.0, 180.0, 3.0))
    costs = np.array([spread(p) for p in grid])
    best = grid[int(np.argmin(costs))]
    res = minimize_scalar(spread, bounds=(best - np.radians(3), best + np.radians(3)), method="bounded",
                          options={"xatol": 1e-4})
    dirs: list = []
    spread(float(res.x), dirs)
    # 1 - |mean| of unit vectors ~ (RMS angle)^2 / 2.
    def to_deg(c):
        return float(np.degrees(np.sqrt(2 * max(c, 0.0))))
    return float(np.angle(np.exp(1j * res.x))), np.stack(dirs), to_deg(res.fun), to_deg(costs.max()) - to_deg(res.fun)


# Limb bones whose direction in the known pose holds on any body (arms along
# the shoulders' line, legs straight down): they tell the performer's facing.
FACING_BONES = tuple(sk.IMU_INDEX[n] for n in ("LeftUpperArm", "RightUpperArm", "LeftForeArm", "RightForeArm",
                                               "LeftThigh", "RightThigh", "LeftShank", "RightShank"))


def refine_facing(pose: str, facing: float, psis: list[float], data: list, span_deg: float = 90.0) -> float:
    """The performer's facing (rad) during the known pose that best explains
    the limbs' directions (and the hips' and shoulders' lines) the cameras saw over the whole routine, given each
    sensor's heading: with facing f the bone is G(t) = Rz(psi) Dq(t) Rz(-psi)
    G0(f), and its nominal rest direction turned by it should be the one
    seen. The hips and shoulders lines alone (a baseline of 20-35 cm on a
    vision skeleton) are easily tens of degrees off; eight limbs over the
    hold and the moves are not. Searched within span_deg of `facing`.
    data[k] = (q0, q (T), observed directions [(T, 3), ...]) as calibrate holds them."""
    pre = []
    # The limbs' own directions, and the hips' and shoulders' lines (left-right
    # on any body, and horizontal in an N-pose, where every limb hangs
    # vertical and says nothing of the facing until the moves).
    uses = [(k, 0) for k in FACING_BONES] + [(sk.IMU_INDEX["Pelvis"], 1), (sk.IMU_INDEX["Sternum"], 1)]
    for k, i in uses:
        q0, q, observed = data[k]
        h = yaw(psis[k])
        turn = h * (q * q0.inv()) * h.inv()                      # (T): world rotation since the pose
        pre.append((k, turn, observed[i], BONE_DIRECTIONS[k][i][2]))

    def cost(f: float) -> float:
        G0 = known_pose(pose, f)
        total = 0.0
        for k, turn, obs, d in pre:
            pred = turn.apply(G0[k].apply(d))
            total += float(np.mean(1.0 - (pred * obs).sum(1)))
        return total

    grid = facing + np.radians(np.arange(-span_deg, span_deg + 1e-9, 2.0))
    best = float(grid[int(np.argmin([cost(f) for f in grid]))])
    res = minimize_scalar(cost, bounds=(best - np.radians(2), best + np.radians(2)), method="bounded",
                          options={"xatol": 1e-4})
    return float(np.angle(np.exp(1j * res.x)))


def _held_pose(times_s: np.ndarray, imu_wxyz: np.ndarray, pose: str, still_s: float, still_deg: float
               ) -> tuple[np.ndarray, int]:
    """The frames of the known pose (the middle of the first still stretch:
    its ends may hold the first or last degree of a movement) and the index
    just after the stretch."""
    still = still_frames(imu_wxyz, times_s, still_s, still_deg)
    if not still.any():
        raise ImuCalibrationError(f"no still moment found: hold the {pose}-pose for {still_s + 1:g} s "
                                  "without moving")
    first = int(np.argmax(still))
    last = first + int(np.argmin(still[first:])) if not still[first:].all() else len(still)
    hold = np.arange(first, last)
    trim = int(round(0.5 / max(float(np.median(np.diff(times_s))), 1e-3)))
    if trim and len(hold) > 3 * trim:  # frames over a second apart (a loaded machine) leave nothing to trim
        hold = hold[trim:-trim]
    return hold, last


# Solved frames further apart than this (median) cannot follow the routine's moves.
MAX_FRAME_GAP_S = 0.5


def calibrate(times_s: np.ndarray, imu_wxyz: np.ndarray, joints_mm: np.ndarray, pose: str = "T",
              still_s: float = 1.0, still_deg: float = 4.0, min_observability_deg: float = 5.0,
              moves_s: float = 12.0) -> ImuCalibration:
    """Wear offsets and headings from the calibration routine.

    times_s: (T,) camera frame times; imu_wxyz: (T, 13, 4) each sensor's
    orientation at those times (NaN rows: missing; sensor k is IMU bone k,
    after pairing); joints_mm: (T, 22, 3) the vision skeleton. The first still
    stretch is the known pose; the `moves_s` after it fit the headings."""
    times_s = np.asarray(times_s, float)
    imu_wxyz = np.asarray(imu_wxyz, float)
    joints_mm = np.asarray(joints_mm, float)
    if not (len(times_s) == len(imu_wxyz) == len(joints_mm)):
        raise ValueError("times, IMU orientations and joints need one row per frame")
    gap = float(np.median(np.diff(times_s))) if len(times_s) > 1 else np.inf
    if gap > MAX_FRAME_GAP_S:
        # Measured: frames 1.1 s apart calibrated the feet 49 degrees off the same routine at 30 frames/s.
        raise ImuCalibrationError(f"the cameras' frames came {gap:.1f} s apart during the routine; calibrating "
                                  f"needs at least {1 / MAX_FRAME_GAP_S:g} a second (is the machine overloaded?)")
    hold, last = _held_pose(times_s, imu_wxyz, pose, still_s, still_deg)
    i0 = hold[len(hold) // 2]
    t0 = float(times_s[i0])
    facing = float(np.angle(np.mean(np.exp(1j * np.array([performer_facing(j) for j in joints_mm[hold]])))))
    moves = np.flatnonzero((times_s > times_s[last - 1]) & (times_s <= times_s[last - 1] + moves_s))
    if len(moves) < 10:
        raise ImuCalibrationError("no movement after the pose: after holding it, bow and squat "
                                  "as the routine shows, so each sensor's heading can be found")
    # The skeleton's frame-to-frame noise (worst on short bones such as the
    # feet) is smoothed over about 70 ms before directions are taken; the
    # moves are slow enough that this blurs nothing the fit needs.
    dt = float(np.median(np.diff(times_s))) if len(times_s) > 1 else 1 / 30
    smooth = gaussian_filter1d(joints_mm, sigma=max(0.07 / dt, 0.5), axis=0, mode="nearest")
    data = []
    for k, bone in enumerate(sk.IMU_BONES):
        qh = imu_wxyz[hold, k]
        if np.isnan(qh[:, 0]).any():
            raise ImuCalibrationError(f"the {bone.name} sensor sent nothing during the pose")
        use = np.concatenate([hold, moves])
        use = use[~np.isnan(imu_wxyz[use, k, 0])]
        if len(use) - len(hold) < 10:
            raise ImuCalibrationError(f"the {bone.name} sensor sent too little during the moves")
        observed = [_directions(smooth[use], a, b) for (a, b, _) in BONE_DIRECTIONS[k]]
        data.append((from_wxyz(qh).mean(), from_wxyz(imu_wxyz[use, k]), observed))
    # A sensor's heading does not depend on the performer's facing (see
    # fit_heading), so the headings come first; the facing the skeleton's
    # hips and shoulders gave is then refined against the limbs.
    G0 = known_pose(pose, facing)
    psis = [fit_heading(q0, q, G0[k], obs)[0] for k, (q0, q, obs) in enumerate(data)]
    facing = refine_facing(pose, facing, psis, data)
    G0 = known_pose(pose, facing)
    wear = []
    headings = np.zeros(sk.NUM_IMUS)
    rest_dirs = np.full((sk.NUM_IMUS, 2, 3), np.nan)
    fits = []
    for k, (bone, (q0, q, observed)) in enumerate(zip(sk.IMU_BONES, data)):
        psi, dirs, resid, obs = fit_heading(q0, q, G0[k], observed)
        rest_dirs[k, : len(dirs)] = dirs
        headings[k] = psi
        wear.append(G0[k].inv() * yaw(psi) * q0)
        fits.append(SensorFit(bone.name, float(np.degrees(psi)), resid, obs, len(q),
                              obs >= min_observability_deg))
    return ImuCalibration(Rotation.concatenate(wear), headings, t0, pose, fits, rest_dirs)


def calibrate_without_cameras(times_s: np.ndarray, imu_wxyz: np.ndarray, pose: str = "T",
                              still_s: float = 1.0, still_deg: float = 4.0,
                              min_observability_deg: float = 10.0) -> ImuCalibration:
    """Wear offsets and headings from the calibration routine with no camera:
    an IMU-only capture (core.imu.routine).

    times_s: (T,) evenly spaced times; imu_wxyz: (T, 13, 4) each sensor's
    orientation at them (NaN rows: missing; sensor k is IMU bone k). With no
    camera there is no room to place the performer in: the world is the
    performer's own at the known pose, standing at the origin facing -Y
    (facing 0), and every sensor's heading puts it there.

    1. The first still stretch is the known pose: G_b(t0) is known, which
       ties each wear offset to its heading (as in `calibrate`).
    2. Each move of the routine (bow, squat, toes up) turns each bone about a
       known axis: the key pose's rotation from the known pose,
       G_key G_0^-1, in the performer's frame. The sensor sees the same turn
       in its own reference frame, Dq = q(t) q0^-1, at the moment it is
       furthest from the pose within the move's stretch of the routine's
       timing. Rz(psi) turns the one axis onto the other: psi is the
       weighted yaw Procrustes over the moves (a closed form), each move
       weighted by how far it turned the bone off the vertical. The timing
       and the depth of each move need not match the routine's: only the
       axes of the turns matter.

    A sensor whose moves all turned it about the vertical has no heading; its
    fit is reported not observable (its `observability_deg`: how much worse
    the worst heading explains the moves, under `min_observability_deg`)."""
    from core.imu.routine import MOVE_KEYS, MOVES

    times_s = np.asarray(times_s, float)
    imu_wxyz = np.asarray(imu_wxyz, float)
    if len(times_s) != len(imu_wxyz):
        raise ValueError("times and IMU orientations need one row per frame")
    hold, last = _held_pose(times_s, imu_wxyz, pose, still_s, still_deg)
    t0 = float(times_s[hold[len(hold) // 2]])
    t_end = float(times_s[last - 1])  # the moves start about here
    tau = times_s - t_end
    if tau[-1] < MOVES[-1][2] - 1.0:
        raise ImuCalibrationError("the capture ended before the moves did: after holding the pose, bow, "
                                  "squat and rock onto the heels as the routine shows")
    G0 = known_pose(pose, 0.0)
    imu_joint = [b.start for b in sk.IMU_BONES]
    expected = [pose_globals(pose, 0.0, MOVE_KEYS[1][key])[imu_joint] * G0.inv()
                for _, _, _, key in MOVES]
    wear, headings, fits = [], np.zeros(sk.NUM_IMUS), []
    for k, bone in enumerate(sk.IMU_BONES):
        qh = imu_wxyz[hold, k]
        if np.isnan(qh[:, 0]).any():
            raise ImuCalibrationError(f"the {bone.name} sensor sent nothing during the pose")
        q0 = from_wxyz(qh).mean()
        seen, want = [], []
        for m, (name, a, b, _) in enumerate(MOVES):
            sel = np.flatnonzero((tau >= a - 0.5) & (tau <= b + 0.5) & ~np.isnan(imu_wxyz[:, k, 0]))
            if len(sel) < 3:
                raise ImuCalibrationError(f"the {bone.name} sensor sent too little during the {name}")
            turn = from_wxyz(imu_wxyz[sel, k]) * q0.inv()
            seen.append(turn[int(np.argmax(turn.magnitude()))].as_rotvec())
            want.append(expected[m][k].as_rotvec())
        seen, want = np.array(seen), np.array(want)
        cross = float(np.sum(seen[:, 0] * want[:, 1] - seen[:, 1] * want[:, 0]))
        dot = float(np.sum(seen[:, 0] * want[:, 0] + seen[:, 1] * want[:, 1]))
        psi = float(np.arctan2(cross, dot))

        def misfit(p: float) -> float:  # RMS angle (deg) between the turned measured axes*angles and the expected
            turned = yaw(p).apply(seen)
            return float(np.degrees(np.sqrt(np.mean(np.sum((turned - want) ** 2, axis=1)))))

        resid = misfit(psi)
        worst = max(misfit(p) for p in psi + np.radians(np.arange(0.0, 360.0, 15.0)))
        headings[k] = psi
        wear.append(G0[k].inv() * yaw(psi) * q0)
        fits.append(SensorFit(bone.name, float(np.degrees(psi)), resid, worst - resid, len(hold) + 3,
                              worst - resid >= min_observability_deg))
    return ImuCalibration(Rotation.concatenate(wear), headings, t0, pose, fits)
