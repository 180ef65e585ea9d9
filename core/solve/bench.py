"""Sequences for judging the skeleton solve, and the scores.

A solve is judged on what a user would give it: the network's joints from
simulated silhouettes (core.deepfuse.evaluate.run_sequence: the held-out
performers, the IMUs calibrated from the routine as a user's are, consumer
drift and latency) at the live frame rate, against the simulator's truth.
:func:`record_sequences` runs the network once and keeps, per sequence, the
times, the raw joints and confidences, the calibrated IMU bone orientations
and the true joints and bone rotations, so solves can be compared on the same
inputs (:func:`score`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core import skeleton as sk
from core.deepfuse.evaluate import Benchmark, rig_key, run_sequence
from core.kinematics import forward_kinematics
from core.posefit import fit_frame
from core.solve.metrics import MotionQuality, motion_quality

J = sk.NUM_JOINTS


@dataclass
class Recorded:
    """One sequence: times_s (T,), joints_mm (T, J, 3) raw network joints
    (NaN: no performer found), confidence (T, J), bone_wxyz (T, 13, 4)
    calibrated IMU bones (NaN: none yet), true_mm (T, J, 3), true_rot
    (T, J, 3, 3) true global rotations."""

    name: str
    times_s: np.ndarray
    joints_mm: np.ndarray
    confidence: np.ndarray
    bone_wxyz: np.ndarray
    true_mm: np.ndarray
    true_rot: np.ndarray

    def save(self, path: Path) -> None:
        np.savez_compressed(path, name=self.name, times_s=self.times_s, joints_mm=self.joints_mm,
                            confidence=self.confidence, bone_wxyz=self.bone_wxyz, true_mm=self.true_mm,
                            true_rot=self.true_rot)

    @classmethod
    def load(cls, path: Path) -> "Recorded":
        with np.load(path) as z:
            return cls(str(z["name"]), *(z[k] for k in ("times_s", "joints_mm", "confidence", "bone_wxyz",
                                                        "true_mm", "true_rot")))


def record_sequences(model, bench: Benchmark, cache: Path | None = None, threads: int | None = None,
                     progress: Callable[[int, int], None] | None = None) -> list[Recorded]:
    """Run the network over the benchmark's sequences (see the module notes);
    with `cache`, each sequence is kept there as NAME.npz and read back when
    present."""
    from core.deepfuse.engine import InferenceEngine

    engines: dict = {}

    def engine_for(rig):
        key = rig_key(rig)
        if key not in engines:
            engines.clear()
            engines[key] = InferenceEngine(model, rig, threads=threads, optimise=False)
        return engines[key]

    out = []
    seqs = bench.sequences()
    for done, seq in enumerate(seqs, 1):
        path = None if cache is None else Path(cache) / f"{seq.name}.npz"
        if path is not None and path.exists():
            out.append(Recorded.load(path))
        else:
            run = run_sequence(seq, bench, engine_for)
            t = np.array([f.t_s for f in run.frames])
            x = np.full((len(t), J, 3), np.nan)
            c = np.zeros((len(t), J))
            b = np.full((len(t), sk.NUM_IMUS, 4), np.nan)
            for i, (fr, sol) in enumerate(zip(run.frames, run.solves)):
                if sol is not None:
                    x[i], c[i] = sol.joints_mm, sol.confidence
                if fr.bone_wxyz is not None:
                    b[i] = fr.bone_wxyz
            poses = run.studio.poses(t)
            rec = Recorded(seq.name, t, x, c, b, poses.positions_mm, poses.rotations)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                rec.save(path)
            out.append(rec)
        if progress is not None:
            progress(done, len(seqs))
    return out


def raw_rotations(rec: Recorded) -> np.ndarray:
    """(T, J, 3, 3) globals of the raw joints as the frame-by-frame
    analytic fit gives them (what exports used before the solve)."""
    from core.posefit import skeleton_offsets, torso_rest_directions
    from core.solve.lengths import take_lengths

    ok = np.isfinite(rec.joints_mm).all(axis=(1, 2))
    off = skeleton_offsets(take_lengths(rec.joints_mm[ok], rec.confidence[ok]),
                           torso_rest_directions(rec.joints_mm[ok]))
    out = np.full((len(rec.times_s), J, 3, 3), np.nan)
    for i in np.flatnonzero(np.isfinite(rec.joints_mm[:, sk.ROOT]).all(axis=1)):
        bones = rec.bone_wxyz[i] if np.isfinite(rec.bone_wxyz[i]).any() else None
        root, local = fit_frame(rec.joints_mm[i], bones, off)
        out[i] = forward_kinematics(off, root[None], local).rotations[0]
    return out


def score(rec: Recorded, positions_mm: np.ndarray, rotations: np.ndarray | None) -> MotionQuality:
    """The motion-quality metrics of one estimate of a recorded sequence."""
    return motion_quality(rec.times_s, positions_mm, rec.true_mm, rotations, rec.true_rot)


ESTIMATES = ("raw network", "live solve", "take solve", "take, feet planted", "IMUs only")


def score_sequences(recs: list[Recorded], progress: Callable[[int, int], None] | None = None
                    ) -> dict[str, list[MotionQuality]]:
    """Per estimate (:data:`ESTIMATES`), the scores of every sequence: the
    raw network joints (rotations from the frame-by-frame analytic fit, what
    exports used before the solve), the live solve (frame by frame), the
    take solve (core.solve.take), the same with the feet planted
    (`export --plant-feet`) and the live solve with the IMUs alone (the
    cameras see the first solved frame, then none)."""
    from core.solve.live import solve_sequence
    from core.solve.take import fit_globals, solve_take

    rows: dict[str, list[MotionQuality]] = {k: [] for k in ESTIMATES}
    for done, rec in enumerate(recs, 1):
        rows["raw network"].append(score(rec, rec.joints_mm, raw_rotations(rec)))
        pos, glob, _ = solve_sequence(rec.times_s, rec.joints_mm, rec.confidence, rec.bone_wxyz)
        rows["live solve"].append(score(rec, pos, glob))
        fit = solve_take(rec.times_s, rec.joints_mm, rec.bone_wxyz, rec.confidence)
        rows["take solve"].append(score(rec, fit.positions_mm, fit_globals(fit)))
        fit = solve_take(rec.times_s, rec.joints_mm, rec.bone_wxyz, rec.confidence, plant_feet=True)
        rows["take, feet planted"].append(score(rec, fit.positions_mm, fit_globals(fit)))
        first = int(np.flatnonzero(np.isfinite(rec.joints_mm[:, 0, 0]))[0])
        blind = rec.joints_mm.copy()
        blind[first + 1:] = np.nan
        pos, glob, _ = solve_sequence(rec.times_s, blind, rec.confidence, rec.bone_wxyz)
        rows["IMUs only"].append(score(rec, pos, glob))
        if progress is not None:
            progress(done, len(recs))
    return rows


def summary(rows: list[MotionQuality]) -> dict[str, float]:
    """Means over sequences (the largest turn: the largest; turns over 30°: the sum)."""
    out = {}
    for k in ("mpjpe_mm", "worst_tenth_mm", "accel_error_mm_s2", "max_turn_deg", "turns_over_30",
              "foot_skate_mm", "true_skate_mm", "relative_skate_mm"):
        v = np.array([getattr(r, k) for r in rows], float)
        if not np.isfinite(v).any():
            out[k] = float("nan")
        elif k == "max_turn_deg":
            out[k] = float(np.nanmax(v))
        elif k == "turns_over_30":
            out[k] = float(np.nansum(v))
        else:
            out[k] = float(np.nanmean(v))
    return out


def solve_table(results: dict[str, dict[str, list[MotionQuality]]]) -> str:
    """A markdown table: per benchmark and estimate, the summary of its sequences."""
    lines = ["| benchmark | estimate | MPJPE mm | worst 10 % mm | jitter m/s² | max turn ° | turns > 30° "
             "| foot skate mm | truth's own skate mm |", "|" + "---|" * 9]
    for bench, rows in results.items():
        for name, rs in rows.items():
            m = summary(rs)
            lines.append(f"| {bench} | {name} | {m['mpjpe_mm']:.1f} | {m['worst_tenth_mm']:.1f} | "
                         f"{m['accel_error_mm_s2'] / 1000:.2f} | {m['max_turn_deg']:.0f} | "
                         f"{m['turns_over_30']:.0f} | {m['foot_skate_mm']:.1f} | {m['true_skate_mm']:.1f} |")
    return "\n".join(lines)
