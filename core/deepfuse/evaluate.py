"""The held-out benchmark and its metrics.

Benchmark (fixed; every seed is a test seed, never drawn in training):
- 8 sequences in the standard 8-camera studio: held-out subject i performing
  held-out procedural motion i (i = 0..7);
- 8 sequences with unseen random rigs (test rig seed i, 4-12 cameras):
  subject i, motion (i + 4) mod 8;
- frames sampled at `fps` for `seconds` each; every third frame is a
  "partial frame" (the paper's term): two cameras see the performer only in
  part (a random straight cut keeping 30-70 % of the silhouette);
- silhouettes carry mild matting noise (edges, holes, blobs); the 13 IMUs
  are the simulator's (noise, drift, random wear offsets), their bone
  orientations recovered with the calibrated wear offsets and headings of
  the session's start.

With motion_bvh, every sequence plays that clip (from its start) instead
of procedural motion: recorded human motion as test material.

Metrics, per frame and joint: MPJPE (mm, mean Euclidean joint error) and
PA-MPJPE (after a similarity Procrustes alignment per frame), for stage 1
(vision only) and stage 2 (fused), split by rig kind and full/partial frames.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.linalg import orthogonal_procrustes

from core import skeleton as sk
from core.camera.rig import random_rig, standard_studio
from core.deepfuse.engine import InferenceEngine
from core.deepfuse.network import DeepFuseNet
from core.rotations import to_wxyz
from core.sim.imu import recover_bone_orientations
from core.sim.silhouette_noise import SilhouetteNoise, apply_noise_all, crop_partial
from core.sim.splits import TEST_MOTION_SEEDS, TEST_RIG_SEEDS, TEST_SUBJECT_SEEDS
from core.sim.studio import SimulatedStudio, StudioConfig

Progress = Callable[[int, int], None]
EVAL_NOISE = SilhouetteNoise(p_partial=0.0, p_off=0.0)


@dataclass(frozen=True)
class TestSequence:
    name: str
    rig_seed: int | None  # None: the standard studio
    subject_seed: int
    motion_seed: int
    motion_bvh: str | None = None

    @property
    def rig_kind(self) -> str:
        return "standard" if self.rig_seed is None else "random"


@dataclass(frozen=True)
class Benchmark:
    seconds: float = 10.0
    fps: float = 5.0
    partial_every: int = 3
    partial_cameras: int = 2
    standard: bool = True
    random_rigs: bool = True
    motion_bvh: str | None = None
    sequences_per_kind: int = 8

    def sequences(self) -> list[TestSequence]:
        n = self.sequences_per_kind
        seqs = []
        if self.standard:
            seqs += [TestSequence(f"standard-s{s}", None, s, TEST_MOTION_SEEDS[i], self.motion_bvh)
                     for i, s in enumerate(TEST_SUBJECT_SEEDS[:n])]
        if self.random_rigs:
            seqs += [TestSequence(f"rig{r}-s{s}", r, s, TEST_MOTION_SEEDS[(i + 4) % 8], self.motion_bvh)
                     for i, (s, r) in enumerate(zip(TEST_SUBJECT_SEEDS[:n], TEST_RIG_SEEDS))]
        return seqs

    def frame_times(self) -> np.ndarray:
        return np.arange(int(round(self.seconds * self.fps))) / self.fps


QUICK = Benchmark(seconds=2.0, fps=5.0, sequences_per_kind=2)


@dataclass(frozen=True, eq=False)
class Frame:
    silhouettes: list
    bone_wxyz: np.ndarray
    truth_mm: np.ndarray
    partial: bool
    t_s: float


def sequence_frames(seq: TestSequence, bench: Benchmark) -> tuple[SimulatedStudio, list[Frame]]:
    rig = standard_studio() if seq.rig_seed is None else random_rig(seq.rig_seed)
    studio = SimulatedStudio(StudioConfig(seed=seq.subject_seed, motion_seed=seq.motion_seed,
                                          motion_bvh=seq.motion_bvh, rig=rig))
    imus = studio.imus
    frames = []
    for f, t in enumerate(bench.frame_times()):
        rng = np.random.default_rng([seq.subject_seed, seq.rig_seed or 0, seq.motion_seed, f, 0xE7])
        masks = apply_noise_all(studio.silhouettes(float(t)), EVAL_NOISE, rng)
        partial = bench.partial_every > 0 and f % bench.partial_every == bench.partial_every - 1
        if partial:
            for k in rng.choice(len(masks), size=min(bench.partial_cameras, len(masks)), replace=False):
                if masks[k] is not None and masks[k].any():
                    masks[k] = crop_partial(masks[k], rng.uniform(0.3, 0.7), rng)
        sid = np.arange(sk.NUM_IMUS)
        samples = imus.measure(studio.poses, np.full(sk.NUM_IMUS, float(t)), sid, f * sk.NUM_IMUS + sid)
        bones = recover_bone_orientations(samples, imus.wear_offsets, imus.heading_offsets[sid])
        frames.append(Frame(masks, to_wxyz(bones), studio.truth(float(t)).joints_mm, partial, float(t)))
    return studio, frames


def pa_align(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """pred (J, 3) moved onto truth by the best similarity transform (rotation,
    uniform scale, translation; least squares)."""
    mp, mt = pred.mean(0), truth.mean(0)
    P, T = pred - mp, truth - mt
    R, s = orthogonal_procrustes(P, T)
    scale = s / max(float((P * P).sum()), 1e-12)
    return scale * P @ R + mt


@dataclass
class FrameErrors:
    """Per-frame, per-joint errors (N, J) in mm and the frame labels."""

    sequence: list[str] = field(default_factory=list)
    rig_kind: list[str] = field(default_factory=list)
    partial: list[bool] = field(default_factory=list)
    t_s: list[float] = field(default_factory=list)
    e1: list[np.ndarray] = field(default_factory=list)
    e2: list[np.ndarray] = field(default_factory=list)
    pa1: list[np.ndarray] = field(default_factory=list)
    pa2: list[np.ndarray] = field(default_factory=list)
    confidence: list[np.ndarray] = field(default_factory=list)
    missed: int = 0
    missed_groups: list[str] = field(default_factory=list)  # "rig kind/full|partial" of each

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.array(getattr(self, k)) for k in ("sequence", "rig_kind", "partial", "t_s",
                                                        "e1", "e2", "pa1", "pa2", "confidence")}


def evaluate_model(model: DeepFuseNet, bench: Benchmark = Benchmark(), device: str | None = None,
                   threads: int | None = None, batch_size: int = 8, progress: Progress | None = None) -> FrameErrors:
    seqs = bench.sequences()
    total = len(seqs) * len(bench.frame_times())
    errs = FrameErrors()
    done = 0
    for seq in seqs:
        studio, frames = sequence_frames(seq, bench)
        engine = InferenceEngine(model, studio.rig, device=device, threads=threads, optimise=False)
        solves = engine.solve_batch([(fr.silhouettes, fr.bone_wxyz) for fr in frames], batch_size=batch_size)
        for fr, sol in zip(frames, solves):
            if sol is None:  # the centre finder saw no performer
                errs.missed += 1
                errs.missed_groups.append(f"{seq.rig_kind}/{'partial' if fr.partial else 'full'}")
                continue
            gt = fr.truth_mm
            errs.sequence.append(seq.name)
            errs.rig_kind.append(seq.rig_kind)
            errs.partial.append(fr.partial)
            errs.t_s.append(fr.t_s)
            errs.e1.append(np.linalg.norm(sol.stage1_mm - gt, axis=1))
            errs.e2.append(np.linalg.norm(sol.joints_mm - gt, axis=1))
            errs.pa1.append(np.linalg.norm(pa_align(sol.stage1_mm, gt) - gt, axis=1))
            errs.pa2.append(np.linalg.norm(pa_align(sol.joints_mm, gt) - gt, axis=1))
            errs.confidence.append(sol.confidence)
        done += len(frames)
        if progress is not None:
            progress(done, total)
    return errs


def summarise(errs: FrameErrors) -> dict:
    """Mean errors (mm) by rig kind x frame kind x stage, and per joint."""
    a = errs.arrays()
    out: dict = {"frames": int(len(a["e2"])), "missed": errs.missed,
                 "missed_by_group": dict(sorted(Counter(errs.missed_groups).items())), "groups": {}}
    if not len(a["e2"]):
        return out
    kinds = {"standard": a["rig_kind"] == "standard", "random": a["rig_kind"] == "random",
             "all": np.ones(len(a["e2"]), bool)}
    parts = {"all": np.ones(len(a["e2"]), bool), "full": ~a["partial"], "partial": a["partial"]}
    for kn, km in kinds.items():
        for pn, pm in parts.items():
            m = km & pm
            if not m.any():
                continue
            out["groups"][f"{kn}/{pn}"] = {
                "frames": int(m.sum()),
                "mpjpe1": float(a["e1"][m].mean()), "mpjpe2": float(a["e2"][m].mean()),
                "pa1": float(a["pa1"][m].mean()), "pa2": float(a["pa2"][m].mean()),
            }
    std = kinds["standard"] if kinds["standard"].any() else kinds["all"]
    out["per_joint_mm"] = {
        "stage1": dict(zip(sk.JOINTS, map(float, a["e1"][std].mean(0)))),
        "stage2": dict(zip(sk.JOINTS, map(float, a["e2"][std].mean(0)))),
    }
    conf, e = a["confidence"].ravel(), a["e2"].ravel()
    if conf.std() > 0:
        out["confidence_error_corr"] = float(np.corrcoef(conf, e)[0, 1])
    return out

