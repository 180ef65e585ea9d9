"""The skeleton a solve version stores beside its joints.

`main.py process` runs the whole-take skeleton solve (core.solve.take) on
the joints it stores and keeps the result in the version's folder, so an
export with the same settings writes it instead of solving again. Older
takes, and exports with other settings (smoothing, planted feet, no IMUs),
solve as before.

``solves/NNN/skeleton.npz``: an .npz archive (no pickles) of

  times_s (T,) float64            the joints' times, s from the take's start
  offsets_mm (J, 3) float64       rest offsets (T-pose, world axes, root row 0)
  root_mm (T, 3) float64          Hips positions, world mm (Z up)
  local_wxyz (T, J, 4) float64    local rotations, scalar-first (rest: identity)
  valid (T,) bool                 frames the network solved (others are filled)
  bone_lengths_mm (J,) float64    the performer's bone lengths (root 0)
  contacts (T, 2) bool            left, right foot held planted

The joint positions follow by forward kinematics and are computed when the
file is read, as are the distances to the stored joints.

The ``skeleton`` entry of the version's solve.json commits the file: its
SHA-256 and size, and the settings it was solved with (IMUs used, planted
feet, smoothing, core.solve.pose.SolveConfig, the window, FuseCap's
version). Writing follows the take's rule: the archive goes to a temporary
file that is renamed into place, then solve.json is rewritten (atomically)
with the entry. A crash in between leaves a version without the entry, which
exports solve again. A file that does not match its entry, or holds other
arrays, is reported (SkeletonFileError, naming the file) and never used.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from core import skeleton as sk
from core.files import atomic_write_bytes, read_json, write_json
from core.kinematics import forward_kinematics
from core.posefit import PoseFit
from core.rotations import from_wxyz
from core.solve.pose import SolveConfig
from core.solve.take import OVERLAP, WINDOW, solve_take
from core.take.chunks import ChunkError, decode_payload
from core.take.layout import APP_VERSION, Joints, TakeError, TakeLayout

Progress = Callable[[int, int], None]

SKELETON_FILE = "skeleton.npz"
FORMAT = "fusecap-skeleton"
FORMAT_VERSION = 1
J = sk.NUM_JOINTS
_MAX_MM = 1e7  # 10 km: no capture volume is near it; beyond it a file is not one process wrote


class SkeletonFileError(TakeError):
    """A stored skeleton that cannot be used; the message names the file."""


def skeleton_path(layout: TakeLayout, version: int) -> Path:
    return layout.solve_dir(version) / SKELETON_FILE


def as_stored(joints: Joints) -> Joints:
    """The joints as a solve version stores them (positions and confidences in float32)."""
    return Joints(np.asarray(joints.times_s, np.float64), np.asarray(joints.index, np.int64),
                  np.asarray(joints.joints_mm, np.float32).astype(np.float64),
                  np.asarray(joints.confidence, np.float32).astype(np.float64))


def imu_bones(take, times_s: np.ndarray, use_imu: bool = True) -> np.ndarray | None:
    """(T, 13, 4) the calibrated IMU bone orientations at the times (NaN rows:
    missing), through the calibration the take was recorded with; None
    without IMUs."""
    calib = take.imu_calibration if use_imu else None
    if calib is None or len(times_s) == 0:
        return None
    quats, _ = take.imu_at(times_s)
    return np.stack([calib.bone_wxyz(q) for q in quats])


def skeleton_settings(take, use_imu: bool = True, plant_feet: bool = True,
                      config: SolveConfig = SolveConfig()) -> dict:
    """What a stored skeleton must have been solved with to stand for a new
    solve (plain JSON, compared as it is). Smoothing is always off: a
    smoothed export solves its own."""
    return {"imu": bool(use_imu and take.imu_calibration is not None), "plant_feet": bool(plant_feet),
            "filter": {"kind": "off"}, "config": asdict(config), "window": WINDOW, "overlap": OVERLAP,
            "app_version": APP_VERSION}


def solve_skeleton(take, joints: Joints, use_imu: bool = True, plant_feet: bool = True,
                   progress: Progress | None = None, config: SolveConfig = SolveConfig()) -> PoseFit:
    """The whole-take skeleton solve of these joints with the take's IMUs.
    Raises ValueError where no frame has a solved performer."""
    bones = imu_bones(take, joints.times_s, use_imu)
    return solve_take(joints.times_s, joints.joints_mm, bones, joints.confidence, config=config,
                      progress=progress, plant_feet=plant_feet)


def write_skeleton(layout: TakeLayout, version: int, fit: PoseFit, settings: dict, seconds: float = 0.0) -> dict:
    """Store the skeleton of solve `version` (which must exist) and commit it
    in its solve.json; the entry written there is returned."""
    contacts = np.zeros((fit.num_frames, 2), bool) if fit.contacts is None else np.asarray(fit.contacts, bool)
    buf = io.BytesIO()
    np.savez_compressed(buf, times_s=np.asarray(fit.times_s, np.float64),
                        offsets_mm=np.asarray(fit.offsets_mm, np.float64),
                        root_mm=np.asarray(fit.root_mm, np.float64),
                        local_wxyz=np.asarray(fit.local_wxyz, np.float64),
                        valid=np.asarray(fit.valid, bool),
                        bone_lengths_mm=np.asarray(fit.bone_lengths_mm, np.float64), contacts=contacts)
    data = buf.getvalue()
    atomic_write_bytes(skeleton_path(layout, version), data)
    entry = {"file": SKELETON_FILE, "format": FORMAT, "format_version": FORMAT_VERSION,
             "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "frames": fit.num_frames,
             "solved_frames": int(np.asarray(fit.valid).sum()), "seconds": round(float(seconds), 3),
             "settings": settings}
    meta = read_json(layout.solve_meta(version))
    meta["skeleton"] = entry
    write_json(layout.solve_meta(version), meta)
    return entry


def store_skeleton(take, version: int, use_imu: bool = True, progress: Progress | None = None) -> dict:
    """Solve and store the skeleton of a solve version already in the take
    (one stored before process solved skeletons); the solve.json entry."""
    joints = take.solved_joints(version)
    t = time.perf_counter()
    fit = solve_skeleton(take, joints, use_imu=use_imu, progress=progress)
    return write_skeleton(take.layout, version, fit, skeleton_settings(take, use_imu=use_imu),
                          time.perf_counter() - t)


def read_skeleton(take, version: int, joints: Joints, settings: dict) -> PoseFit | None:
    """The skeleton stored with solve `version`, as core.solve.take.solve_take
    returns it for these joints (the version's own); None when the version
    stores none, or one solved with other settings. Raises SkeletonFileError
    (or TakeError from solve.json) for one that is stored but cannot be used."""
    entry = take.solve_info(version).get("skeleton")
    if entry is None:
        return None
    path = skeleton_path(take.layout, version)

    def bad(what: str) -> SkeletonFileError:
        return SkeletonFileError(f"{path}: the stored skeleton cannot be used ({what})")

    if not isinstance(entry, dict):
        raise bad("its entry in solve.json is not an object")
    if entry.get("settings") != settings:
        return None
    if entry.get("format") != FORMAT or entry.get("format_version") != FORMAT_VERSION:
        raise bad(f"format {entry.get('format')!r} version {entry.get('format_version')!r}, "
                  f"this FuseCap reads {FORMAT} version {FORMAT_VERSION}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise bad(f"cannot be read: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise bad(f"its {len(data)} bytes are not the ones process stored: damaged or changed")
    try:
        arrays = decode_payload(data, str(path))
    except ChunkError as exc:
        raise bad(str(exc)) from None
    return _fit_from(arrays, joints, bad)


def _fit_from(arrays: dict[str, np.ndarray], joints: Joints, bad: Callable[[str], SkeletonFileError]) -> PoseFit:
    n = len(joints)
    want = {"times_s": ((n,), "f"), "offsets_mm": ((J, 3), "f"), "root_mm": ((n, 3), "f"),
            "local_wxyz": ((n, J, 4), "f"), "valid": ((n,), "b"), "bone_lengths_mm": ((J,), "f"),
            "contacts": ((n, 2), "b")}
    for name, (shape, kind) in want.items():
        a = arrays.get(name)
        if a is None:
            raise bad(f"no {name}")
        if a.shape != shape or a.dtype.kind != kind:
            raise bad(f"{name} is {a.dtype} of shape {a.shape}, expected {'bool' if kind == 'b' else 'float'} "
                      f"of shape {shape}")
        if kind == "f" and not (np.isfinite(a).all() and (np.abs(a) < _MAX_MM).all()):
            raise bad(f"{name} holds values that are not finite or out of range")
    t = arrays["times_s"].astype(np.float64)
    if not np.allclose(t, joints.times_s, rtol=0.0, atol=1e-6):
        raise bad("its frame times are not the solve's")
    q = arrays["local_wxyz"].astype(np.float64)
    if n and np.abs(np.linalg.norm(q, axis=-1) - 1.0).max() > 1e-6:
        raise bad("a rotation that is not a unit quaternion")
    offsets, root = arrays["offsets_mm"].astype(np.float64), arrays["root_mm"].astype(np.float64)
    with np.errstate(all="ignore"):
        pos = forward_kinematics(offsets, root, from_wxyz(q.reshape(-1, 4))).positions_mm if n \
            else np.zeros((0, J, 3))
    if not np.isfinite(pos).all() or (np.abs(pos) >= _MAX_MM).any():
        raise bad("joint positions out of range")
    x = np.asarray(joints.joints_mm, np.float64)
    valid = arrays["valid"].astype(bool)
    dist = np.linalg.norm(pos - x, axis=2)
    dist[~(valid[:, None] & np.isfinite(x).all(axis=2))] = np.nan
    return PoseFit(t, offsets, root, q, pos, valid, arrays["bone_lengths_mm"].astype(np.float64), dist,
                   arrays["contacts"].astype(bool))
