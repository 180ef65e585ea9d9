"""CSV exports of a take: fitted joints, fitted rotations, raw network joints.

All three use the BVH export's axes, the Y-up axes of :mod:`core.axes`
(file (x, y, z) = world (x, z, -y), the performer facing +Z), and
millimetres, with FuseCap's joint names (:data:`core.skeleton.JOINTS`),
whatever the BVH's target: the BVH joint of a column is the target's name
in the same place (:func:`core.export.targets.joint_names`). One row a
frame, comma-separated, a header row first, "." as the decimal mark. Column
by column (docs/EXPORT.md has the full list):

- joints: ``time_s, valid``, then ``NAME_x, NAME_y, NAME_z`` per joint:
  forward kinematics of the fit (what the BVH shows). ``Hips`` is FuseCap's
  Hips, the pelvis centre; the BVH's root sits at the midpoint of
  ``LeftUpLeg`` and ``RightUpLeg`` (:mod:`core.export.bvh`).
- rotations: ``time_s, valid, root_x, root_y, root_z`` (the BVH root's
  position: the midpoint of the hip joints), then ``NAME_w, NAME_x, NAME_y,
  NAME_z`` per joint: the BVH's local rotations as unit quaternions, scalar
  first, signs kept continuous from frame to frame (the first frame has
  w >= 0). With the BVH's offsets they pose the BVH's skeleton.
- raw: ``time_s``, then ``NAME_x, NAME_y, NAME_z, NAME_confidence`` per
  joint; cells are empty where the network gave no value.

``valid`` is 1 on frames with a solve, 0 on frames the fit filled in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from core import axes
from core import skeleton as sk
from core.export.bvh import check_fit, skeleton_with_root_between_hips
from core.files import atomic_write_text
from core.posefit import PoseFit
from core.rotations import to_wxyz

Progress = Callable[[int, int], None]

_ROWS_PER_CALL = 1000


def joints_header() -> list[str]:
    return ["time_s", "valid"] + [f"{n}_{a}" for n in sk.JOINTS for a in "xyz"]


def rotations_header() -> list[str]:
    return (["time_s", "valid", "root_x", "root_y", "root_z"]
            + [f"{n}_{a}" for n in sk.JOINTS for a in "wxyz"])


def raw_header() -> list[str]:
    return ["time_s"] + [f"{n}_{a}" for n in sk.JOINTS for a in ("x", "y", "z", "confidence")]


def write_joints_csv(path: str | Path, fit: PoseFit, progress: Progress | None = None) -> None:
    """Fitted joint positions, mm, export axes."""
    n = check_fit(fit)
    pos = axes.world_to_y_up(fit.positions_mm).reshape(n, -1)
    _write(path, joints_header(), fit.times_s, fit.valid, [(pos, 3)], progress)


def write_rotations_csv(path: str | Path, fit: PoseFit, progress: Progress | None = None) -> None:
    """The BVH root's position (the hip joints' midpoint, mm) and every
    joint's local rotation (w, x, y, z), export axes."""
    n = check_fit(fit)
    q = to_wxyz(axes.world_to_y_up_rotation(fit.local_rotations())).reshape(n, sk.NUM_JOINTS, 4)
    if n > 1:  # one hemisphere along each joint's frames: no sign flips between neighbours
        flip = np.where(np.einsum("tjk,tjk->tj", q[1:], q[:-1]) < 0, -1.0, 1.0)
        q[1:] *= np.cumprod(flip, axis=0)[:, :, None]
    root = axes.world_to_y_up(skeleton_with_root_between_hips(fit)[1])
    _write(path, rotations_header(), fit.times_s, fit.valid, [(root, 3), (q.reshape(n, -1), 7)], progress)


def write_raw_csv(path: str | Path, times_s: np.ndarray, joints_mm: np.ndarray,
                  confidence: np.ndarray | None = None, progress: Progress | None = None) -> None:
    """The network's joints as solved (T, J, 3 world mm; NaN: none) and their
    confidence (T, J) in [0, 1] (None: empty column), export axes; empty
    cells where a value is missing."""
    t = np.asarray(times_s, np.float64)
    x = np.asarray(joints_mm, np.float64)
    n, j = t.shape[0] if t.ndim == 1 else -1, sk.NUM_JOINTS
    if t.ndim != 1 or x.shape != (n, j, 3):
        raise ValueError(f"times_s (T,) and joints_mm (T, {j}, 3) expected, got {t.shape} and {x.shape}")
    if not np.isfinite(t).all():
        raise ValueError("times_s holds NaN or infinite values")
    conf = np.full((n, j), np.nan) if confidence is None else np.asarray(confidence, np.float64)
    if conf.shape != (n, j):
        raise ValueError(f"confidence must be ({n}, {j}), got {conf.shape}")
    cols = np.concatenate([axes.world_to_y_up(x), conf[:, :, None]], axis=2).reshape(n, -1)
    decimals = np.tile([3, 3, 3, 4], j)
    _write(path, raw_header(), t, None, [(cols, decimals)], progress)


def _write(path: str | Path, header: list[str], times: np.ndarray, valid: np.ndarray | None,
           blocks: list[tuple[np.ndarray, int | np.ndarray]], progress: Progress | None) -> None:
    """Rows of time_s (6 decimals), valid (if given) and each block at its
    decimals; NaN becomes an empty cell."""
    n = times.shape[0]
    table = [np.asarray(times, np.float64)[:, None]]
    dec = [6]
    if valid is not None:
        table.append(np.asarray(valid, np.float64)[:, None])
        dec.append(0)
    for values, d in blocks:
        table.append(values)
        dec.extend(np.broadcast_to(d, (values.shape[1],)).tolist())
    scale = 10.0 ** np.array(dec)
    data = np.round(np.concatenate(table, axis=1) * scale) / scale + 0.0   # + 0.0: no "-0.000"
    row_fmt = ",".join(f"%.{d}f" for d in dec)
    cell_fmts = [f"%.{d}f" for d in dec]
    gaps = ~np.isfinite(data).all(axis=1)
    lines = [",".join(header)]
    for start in range(0, n, _ROWS_PER_CALL):
        stop = min(start + _ROWS_PER_CALL, n)
        for row, gap in zip(data[start:stop], gaps[start:stop]):
            if gap:
                lines.append(",".join("" if not np.isfinite(v) else f % v for f, v in zip(cell_fmts, row)))
            else:
                lines.append(row_fmt % tuple(row))
        if progress is not None:
            progress(stop, n)
    atomic_write_text(path, "\n".join(lines) + "\n")
