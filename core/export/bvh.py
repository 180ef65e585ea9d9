"""BVH export of a fitted take, for Blender, Maya, MotionBuilder, Unity and Unreal.

Axes. FuseCap's world is Z up with the T-pose facing -Y (left +X); a BVH is
Y up with the character facing +Z. The file's axes are the Y-up axes of
:mod:`core.axes`, the world's turned -90 degrees about X:

    file (x, y, z) = world (x, z, -y)

so the performer faces +Z, their left is +X and up is +Y. FuseCap reads a
BVH clip through the same module, so an exported take plays back in the
simulated studio the right way up. The CSV exports use the same axes
(:mod:`core.export.csv`).

Hierarchy. Every skeleton joint (:data:`core.skeleton.JOINTS`) is a named
JOINT (the Hips the ROOT), end joints included, so the BVH's names are the
CSV's names. OFFSETs are the fit's rest offsets (median bone lengths along
T-pose directions); the root's OFFSET is zero and its position channels
carry the Hips' position. Each end joint (HeadTop, LeftHand, RightHand,
LeftToeBase, RightToeBase) closes with an End Site a quarter of its own
bone's length further along that bone (:data:`END_SITE_FRACTION`), so tools
that draw a bone per joint show a short stub there.

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
from core.files import atomic_write_text
from core.posefit import PoseFit

Progress = Callable[[int, int], None]

UNITS: dict[str, float] = {"mm": 1.0, "cm": 0.1, "m": 0.001}   # file units per millimetre
_DECIMALS = {"mm": 3, "cm": 4, "m": 6}                         # positions to the micrometre
END_SITE_FRACTION = 0.25
_ROWS_PER_CALL = 500


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


def write_bvh(path: str | Path, fit: PoseFit, fps: float, units: str = "cm",
              progress: Progress | None = None) -> None:
    """Write the fit as a BVH file (see the module notes), atomically.

    units: "cm" (Blender, Maya, MotionBuilder and most BVH readers expect
    it), "m" or "mm". ValueError on an unknown unit, a bad fps or a fit whose
    arrays disagree."""
    if units not in UNITS:
        raise ValueError(f"unknown BVH units {units!r}; use one of {sorted(UNITS)}")
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    n = check_fit(fit)
    scale, dec = UNITS[units], _DECIMALS[units]
    offsets = to_file_axes(fit.offsets_mm) * scale

    # Channel columns follow the hierarchy's depth-first order, which is JOINTS order.
    assert sk.topological_order() == tuple(range(sk.NUM_JOINTS))
    lines = ["HIERARCHY"]
    _joint_lines(sk.ROOT, 0, offsets, dec, lines)
    lines += ["MOTION", f"Frames: {n}", f"Frame Time: {1.0 / fps:.8f}"]

    local = rotations_to_file_axes(fit.local_rotations())
    euler = continuous_euler_zxy(local, n)                    # (n, J, 3) z, x, y
    root = to_file_axes(fit.root_mm) * scale
    # Rounded first, then + 0.0, so the file never shows "-0.0000".
    table = np.concatenate([np.round(root, dec), np.round(euler.reshape(n, -1), 4)], axis=1) + 0.0
    row_fmt = " ".join([f"%.{dec}f"] * 3 + ["%.4f"] * (table.shape[1] - 3))
    for start in range(0, n, _ROWS_PER_CALL):
        stop = min(start + _ROWS_PER_CALL, n)
        lines.extend(row_fmt % tuple(row) for row in table[start:stop])
        if progress is not None:
            progress(stop, n)
    atomic_write_text(path, "\n".join(lines) + "\n")


def _joint_lines(j: int, depth: int, offsets: np.ndarray, dec: int, lines: list[str]) -> None:
    """Append joint j's block (and its children's) to lines."""
    pad = "\t" * depth
    if j == sk.ROOT:
        lines += [f"ROOT {sk.JOINTS[j]}", "{", f"\tOFFSET {_fmt(np.zeros(3), dec)}",
                  "\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"]
    else:
        lines += [f"{pad}JOINT {sk.JOINTS[j]}", f"{pad}{{", f"{pad}\tOFFSET {_fmt(offsets[j], dec)}",
                  f"{pad}\tCHANNELS 3 Zrotation Xrotation Yrotation"]
    kids = sk.children(j)
    for c in kids:
        _joint_lines(c, depth + 1, offsets, dec, lines)
    if not kids:
        lines += [f"{pad}\tEnd Site", f"{pad}\t{{",
                  f"{pad}\t\tOFFSET {_fmt(offsets[j] * END_SITE_FRACTION, dec)}", f"{pad}\t}}"]
    lines.append(f"{pad}}}")


def _fmt(v: np.ndarray, dec: int) -> str:
    return " ".join(f"{x:.{dec}f}" for x in np.round(v, dec) + 0.0)
