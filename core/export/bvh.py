"""BVH export of a fitted take, for Blender, Maya, MotionBuilder, Unity and Unreal.

Targets. The file is written for one tool (:mod:`core.export.targets`):
the target fixes the length unit, so that the tool imports the performer
at true size (metres for Blender and Unity, centimetres for Maya,
MotionBuilder and Unreal), and the joint names its humanoid mapping knows
(Mixamo / HumanIK names, or the UE5 Mannequin's). The default target is
Blender. An explicit unit overrides the target's.

Axes. FuseCap's world is Z up with the T-pose facing -Y (left +X); a BVH is
Y up with the character facing +Z. The file's axes are the Y-up axes of
:mod:`core.axes`, the world's turned -90 degrees about X:

    file (x, y, z) = world (x, z, -y)

so the performer faces +Z, their left is +X and up is +Y. FuseCap reads a
BVH clip through the same module, so an exported take plays back in the
simulated studio the right way up. The CSV exports use the same axes
(:mod:`core.export.csv`).

Hierarchy. Every skeleton joint (:data:`core.skeleton.JOINTS`) is a named
JOINT (the Hips the ROOT), end joints included, in the target's names.
OFFSETs are the fit's rest offsets (median bone lengths along T-pose
directions), with one change at the root: the BVH's Hips sit at the
midpoint of the two hip joints (LeftUpLeg, RightUpLeg), not at FuseCap's
pelvis centre (:func:`skeleton_with_root_between_hips`). Importers that
draw a bone per joint aim a joint with several children at the mean of
their heads (Blender does); from the pelvis centre, above the hip joints,
that mean lies a centimetre below and behind, and the Hips bone would be
a stub pointing down and back. From the midpoint the legs sit at +-x and
the mean lies straight up the spine: the Hips bone points up, a third of
the way to the Spine joint. The root's OFFSET is zero and its position
channels carry that midpoint; every other joint is where the fit puts it,
and the rotations are the fit's. Each end joint (HeadTop, LeftHand,
RightHand, LeftToeBase, RightToeBase) closes with an End Site a quarter of
its own bone's length further along that bone (:data:`END_SITE_FRACTION`),
so tools that draw a bone per joint show a short stub there.

Channels. Root: Xposition Yposition Zposition Zrotation Xrotation
Yrotation; every other joint: Zrotation Xrotation Yrotation. Angles in
degrees, composed in the order listed as intrinsic rotations:
v_parent = Rz(z) Rx(x) Ry(y) v_child (SciPy's "ZXY"). Each joint's angles
are kept continuous from frame to frame (of the two equivalent triples the
one nearest the previous frame, unwrapped by whole turns), so curve editors
show no 360-degree jumps. Frame Time = 1 / fps; one BVH frame per fitted
frame, filled frames included (see :mod:`core.posefit`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from scipy.spatial.transform import Rotation

from core import axes
from core import skeleton as sk
from core.export.targets import DEFAULT_TARGET, get_target
from core.files import atomic_write_text
from core.posefit import PoseFit
from core.rotations import from_wxyz

Progress = Callable[[int, int], None]

UNITS: dict[str, float] = {"mm": 1.0, "cm": 0.1, "m": 0.001}   # file units per millimetre
_DECIMALS = {"mm": 3, "cm": 4, "m": 6}                         # positions to the micrometre
END_SITE_FRACTION = 0.25
_ROWS_PER_CALL = 500
_LEGS = [sk.JOINT_INDEX["LeftUpLeg"], sk.JOINT_INDEX["RightUpLeg"]]  # the hip joints


def to_file_axes(vectors_mm: np.ndarray) -> np.ndarray:
    """World vectors (..., 3) in the export axes (Y up, performer facing +Z)."""
    return axes.world_to_y_up(vectors_mm)


def rotations_to_file_axes(rot: Rotation) -> Rotation:
    """Rotations acting on world vectors, re-expressed to act on file vectors."""
    return axes.world_to_y_up_rotation(rot)


def check_fit(fit: PoseFit) -> int:
    """The fit's frame count; ValueError when its arrays disagree or are not finite."""
    j = sk.NUM_JOINTS
    t = np.asarray(fit.times_s)
    if t.ndim != 1 or t.shape[0] < 1:
        raise ValueError(f"a fit needs at least one frame, times_s has shape {t.shape}")
    n = t.shape[0]
    expect = {"offsets_mm": (j, 3), "root_mm": (n, 3), "local_wxyz": (n, j, 4),
              "positions_mm": (n, j, 3), "valid": (n,)}
    for name, shape in expect.items():
        got = np.shape(getattr(fit, name))
        if got != shape:
            raise ValueError(f"fit.{name} must have shape {shape}, got {got}")
    for name in ("times_s", "offsets_mm", "root_mm", "local_wxyz", "positions_mm"):
        if not np.isfinite(np.asarray(getattr(fit, name), np.float64)).all():
            raise ValueError(f"fit.{name} holds NaN or infinite values")
    return n


def continuous_euler_zxy(rot: Rotation, frames: int) -> np.ndarray:
    """(frames, J, 3) intrinsic Z, X, Y angles in degrees of frame-major
    rotations, continuous along each joint's frames."""
    ang = rot.as_euler("ZXY", degrees=True).reshape(frames, -1, 3)
    alt = ang + np.array([180.0, 0.0, 180.0])
    alt[..., 1] = 180.0 - ang[..., 1]           # Rz(z+180) Rx(180-x) Ry(y+180) is the same rotation
    out = np.empty_like(ang)
    out[0] = ang[0]
    for f in range(1, frames):
        prev = out[f - 1]
        near = [c - 360.0 * np.round((c - prev) / 360.0) for c in (ang[f], alt[f])]
        take_alt = np.abs(near[1] - prev).sum(axis=1) < np.abs(near[0] - prev).sum(axis=1)
        out[f] = np.where(take_alt[:, None], near[1], near[0])
    return out



def skeleton_with_root_between_hips(fit: PoseFit) -> tuple[np.ndarray, np.ndarray]:
    """(offsets_mm (J, 3), root_mm (T, 3)): the fit's skeleton with its root
    moved from FuseCap's Hips (the pelvis centre) to the midpoint of the two
    hip joints, world axes, mm. The Spine's and the legs' offsets are taken
    from the new root; the root's path follows the midpoint (the Hips' own
    rotation carries it). With the fit's rotations, forward kinematics puts
    every other joint exactly where the fit does."""
    shift = np.asarray(fit.offsets_mm, np.float64)[_LEGS].mean(axis=0)   # Hips -> midpoint, rest frame
    offsets = np.array(fit.offsets_mm, np.float64)
    offsets[list(sk.children(sk.ROOT))] -= shift
    offsets[sk.ROOT] = 0.0
    root = np.asarray(fit.root_mm, np.float64) + from_wxyz(np.asarray(fit.local_wxyz)[:, sk.ROOT]).apply(shift)
    return offsets, root.reshape(-1, 3)


def write_bvh(path: str | Path, fit: PoseFit, fps: float, target: str = DEFAULT_TARGET,
              units: str | None = None, progress: Progress | None = None) -> None:
    """Write the fit as a BVH file for `target` (see the module notes), atomically.

    target: "blender" (the default), "maya", "motionbuilder", "unity" or
    "unreal" (:data:`core.export.targets.TARGETS`): joint names and units.
    units: "m", "cm" or "mm" to override the target's. ValueError on an
    unknown target or unit, a bad fps or a fit whose arrays disagree."""
    spec = get_target(target)
    units = spec.units if units is None else units
    if units not in UNITS:
        raise ValueError(f"unknown BVH units {units!r}; use one of {sorted(UNITS)}")
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    n = check_fit(fit)
    scale, dec = UNITS[units], _DECIMALS[units]
    offsets_mm, root_mm = skeleton_with_root_between_hips(fit)
    offsets = to_file_axes(offsets_mm) * scale

    # Channel columns follow the hierarchy's depth-first order, which is JOINTS order.
    assert sk.topological_order() == tuple(range(sk.NUM_JOINTS))
    lines = ["HIERARCHY"]
    _joint_lines(sk.ROOT, 0, offsets, dec, spec.names, lines)
    lines += ["MOTION", f"Frames: {n}", f"Frame Time: {1.0 / fps:.8f}"]

    local = rotations_to_file_axes(fit.local_rotations())
    euler = continuous_euler_zxy(local, n)                    # (n, J, 3) z, x, y
    root = to_file_axes(root_mm) * scale
    # Rounded first, then + 0.0, so the file never shows "-0.0000".
    table = np.concatenate([np.round(root, dec), np.round(euler.reshape(n, -1), 4)], axis=1) + 0.0
    row_fmt = " ".join([f"%.{dec}f"] * 3 + ["%.4f"] * (table.shape[1] - 3))
    for start in range(0, n, _ROWS_PER_CALL):
        stop = min(start + _ROWS_PER_CALL, n)
        lines.extend(row_fmt % tuple(row) for row in table[start:stop])
        if progress is not None:
            progress(stop, n)
    atomic_write_text(path, "\n".join(lines) + "\n")


def _joint_lines(j: int, depth: int, offsets: np.ndarray, dec: int, names: tuple[str, ...],
                 lines: list[str]) -> None:
    """Append joint j's block (and its children's) to lines."""
    pad = "\t" * depth
    if j == sk.ROOT:
        lines += [f"ROOT {names[j]}", "{", f"\tOFFSET {_fmt(np.zeros(3), dec)}",
                  "\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"]
    else:
        lines += [f"{pad}JOINT {names[j]}", f"{pad}{{", f"{pad}\tOFFSET {_fmt(offsets[j], dec)}",
                  f"{pad}\tCHANNELS 3 Zrotation Xrotation Yrotation"]
    kids = sk.children(j)
    for c in kids:
        _joint_lines(c, depth + 1, offsets, dec, names, lines)
    if not kids:
        lines += [f"{pad}\tEnd Site", f"{pad}\t{{",
                  f"{pad}\t\tOFFSET {_fmt(offsets[j] * END_SITE_FRACTION, dec)}", f"{pad}\t}}"]
    lines.append(f"{pad}}}")


def _fmt(v: np.ndarray, dec: int) -> str:
    return " ".join(f"{x:.{dec}f}" for x in np.round(v, dec) + 0.0)
