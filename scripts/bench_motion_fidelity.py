"""How faithfully BVH clips play on FuseCap's skeleton: for each clip in a
folder (default: the recorded CMU clips beside the repository), the
spine-to-neck angle of the played performer against the clip's own, and the
worst direction error of the Chest->Neck bone, sampled every 0.25 s on the
reference body. Prints one line for the folder.

    .venv/bin/python scripts/bench_motion_fidelity.py [FOLDER]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import axes  # noqa: E402
from core import skeleton as sk  # noqa: E402
from core.sim.motion import BvhMotion, Performer, load_bvh  # noqa: E402
from core.sim.subject import Subject  # noqa: E402

J = sk.JOINT_INDEX


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def clip_row(path: Path) -> tuple[float, float, float]:
    """(our median spine-to-neck angle, worst |ours - clip's| angle, worst Chest->Neck direction error), degrees."""
    clip = load_bvh(path)
    motion = BvhMotion(clip, loop=False)
    t = np.arange(0.0, motion.duration_s, 0.25)
    x = Performer(Subject.from_seed(0), motion).poses_at(t).positions_mm
    glob = clip.global_rotations()
    src = {ours: clip.names.index(theirs) for ours, theirs in motion.mapping.items()}
    frame = np.minimum(np.round(t / clip.frame_time_s).astype(int), clip.num_frames - 1)
    at = {n: axes.y_up_to_world(clip.positions(src[n], glob))[frame] for n in ("Spine", "Chest", "Neck")}
    ours = angle_deg(x[:, J["Chest"]] - x[:, J["Spine"]], x[:, J["Neck"]] - x[:, J["Chest"]])
    theirs = angle_deg(at["Chest"] - at["Spine"], at["Neck"] - at["Chest"])
    neck = angle_deg(x[:, J["Neck"]] - x[:, J["Chest"]], at["Neck"] - at["Chest"])
    return float(np.median(ours)), float(np.abs(ours - theirs).max()), float(neck.max())


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/motion/cmu"
    paths = sorted(folder.glob("*.bvh"))
    if not paths:
        print(f"no .bvh clips in {folder}", file=sys.stderr)
        return 2
    rows = np.array([clip_row(p) for p in paths])
    print(f"{len(paths)} clips in {folder}: spine-to-neck angle (median per clip) {rows[:, 0].min():.1f}-"
          f"{rows[:, 0].max():.1f} deg; largest difference from the clip's own {rows[:, 1].max():.3f} deg; "
          f"Chest->Neck direction error at most {rows[:, 2].max():.3f} deg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
