"""The held-out benchmark and its metrics.

Benchmark (fixed; every seed is a test seed, never drawn in training):
- 8 sequences in the standard 8-camera studio: held-out subject i performing
  held-out procedural motion i (i = 0..7);
- 8 sequences with unseen random rigs (test rig seed i, 4-12 cameras):
  subject i, motion (i + 4) mod 8;
- frames sampled at `fps` for `seconds` each; every third frame is a
  "partial frame" (the paper's term): two cameras see the performer only in
  part (a random straight cut keeping 30-70 % of the silhouette);
- silhouettes carry mild matting noise (edges, holes, blobs).

The IMUs are calibrated as a user's are, never from the simulator's truth:
every sequence starts with the calibration routine (hold the T-pose, bow,
squat, heels; core.sim.motion.calibration), solved by the network from the
cameras alone at `calibration_fps`; core.imu.tracking.ImuTracking finds the
IMU-camera time offset and the wear offsets and headings from those joints
and the sensors' samples, then corrects heading drift from the solved frames
while the sequence is scored (in batches: a batch's bones use the headings
the frames before it gave). The simulated sensors are consumer ones (drift,
late stamps: core.sim.imu_config.ImuConfig.consumer). The truth only scores:
per bone, the angle between the bone orientation the estimated calibration
gives and the true one (`calibration` in the summary).

Recorded motion: with motion_bvh every sequence plays that clip; with
motion_clips (one clip or a folder's clips) each clip is one sequence in the
standard studio, played once from its start after the routine, for its own
length (at most `seconds`), kept on the capture area (recentred, or followed
when it walks far: core.sim.motion.stage). `cmu_heldout(folder)` is the
benchmark of the held-out CMU subjects (core.sim.splits).

Metrics, per frame and joint: MPJPE (mm, mean Euclidean joint error) and
PA-MPJPE (after a similarity Procrustes alignment per frame), for stage 1
(vision only) and stage 2 (fused), split by rig kind and full/partial frames,
and per sequence.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.linalg import orthogonal_procrustes

from core import skeleton as sk
from core.camera.rig import random_rig, standard_studio
from core.deepfuse.engine import InferenceEngine
from core.deepfuse.network import DeepFuseNet
from core.imu.tracking import ImuTracking, SampleFeed, solve_tracked
from core.rotations import from_wxyz
from core.sim.motion import load_bvh
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
    once: bool = False  # play the clip once (a clip of a folder), not looping

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
    motion_clips: tuple[str, ...] = ()
    calibration_fps: float = 10.0
    body: str = "mesh"  # the held-out performers' bodies: "mesh" (Anny, what the product shows) or "capsule"
    planted_feet: bool = False  # feet held still on the floor (core.sim.motion.planting): for judging foot skate

    def sequences(self) -> list[TestSequence]:
        n = self.sequences_per_kind
        if self.motion_clips:
            return [TestSequence(Path(c).name.split(".")[0], None, TEST_SUBJECT_SEEDS[i % len(TEST_SUBJECT_SEEDS)],
                                 TEST_MOTION_SEEDS[0], str(c), once=True) for i, c in enumerate(self.motion_clips)]
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


def clip_files(path: str | Path) -> tuple[str, ...]:
    """One BVH clip, or every clip (.bvh, .bvh.gz) of a folder, sorted by name."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith((".bvh", ".bvh.gz")))
        if not files:
            raise ValueError(f"no BVH clips (.bvh, .bvh.gz) in {path}")
        return tuple(str(p) for p in files)
    if not path.is_file():
        raise ValueError(f"BVH clip not found: {path}")
    return (str(path),)


def cmu_heldout(folder: str | Path, seconds: float = 10.0, fps: float = 10.0) -> Benchmark:
    """The held-out CMU subjects' clips of `folder` (CMU names, SSS_TT.bvh) as a benchmark."""
    from core.sim.splits import CMU_HELDOUT_SUBJECTS, cmu_clips

    clips = cmu_clips(folder, "heldout")
    if not clips:
        raise ValueError(f"no clips of the held-out CMU subjects {CMU_HELDOUT_SUBJECTS} in {folder}")
    return Benchmark(seconds=seconds, fps=fps, motion_clips=tuple(str(c) for c in clips))


@dataclass(frozen=True, eq=False)
class Frame:
    silhouettes: list
    bone_wxyz: np.ndarray | None  # what the solve was given (estimated calibration; None: none yet)
    truth_mm: np.ndarray
    partial: bool
    t_s: float


@dataclass
class CalibrationReport:
    """The IMU calibration a sequence estimated, scored against the truth.

    bone_deg: (13,) per bone, the median over scored frames of the angle
    between the bone orientation the calibration gives and the true one
    (NaN: calibration failed); offset_ms: the estimated IMU stamp lateness
    (None: no reliable estimate); true_offset_ms: the simulator's."""

    sequence: str
    bone_deg: np.ndarray
    offset_ms: float | None
    true_offset_ms: float
    error: str | None = None


@dataclass
class SequenceRun:
    studio: SimulatedStudio
    frames: list[Frame]
    solves: list
    calibration: CalibrationReport


def sequence_studio(seq: TestSequence, bench: Benchmark) -> SimulatedStudio:
    rig = standard_studio() if seq.rig_seed is None else random_rig(seq.rig_seed)
    once = None
    if seq.once:
        clip = load_bvh(seq.motion_bvh)
        once = min(bench.seconds, max(clip.num_frames - 1, 1) * clip.frame_time_s)
    return SimulatedStudio(StudioConfig(seed=seq.subject_seed, motion_seed=seq.motion_seed,
                                        motion_bvh=seq.motion_bvh, motion_once_s=once, rig=rig,
                                        calibration_pose="T", body=bench.body, planted_feet=bench.planted_feet))


def scored_times(seq: TestSequence, bench: Benchmark, studio: SimulatedStudio) -> np.ndarray:
    """Studio times of the scored frames: from the routine's end on."""
    start = studio.routine_ends_s or 0.0
    times = bench.frame_times()
    if seq.once:
        times = times[times <= studio.performer.motion.then.duration_s + 1e-9]
    return start + times


def _masks(studio: SimulatedStudio, seq: TestSequence, t: float, f: int, cut: int) -> list:
    """The frame's silhouettes with matting noise; `cut` cameras cut partial."""
    rng = np.random.default_rng([seq.subject_seed, seq.rig_seed or 0, seq.motion_seed, f, 0xE7])
    masks = apply_noise_all(studio.silhouettes(float(t)), EVAL_NOISE, rng)
    if cut:
        for k in rng.choice(len(masks), size=min(cut, len(masks)), replace=False):
            if masks[k] is not None and masks[k].any():
                masks[k] = crop_partial(masks[k], rng.uniform(0.3, 0.7), rng)
    return masks


def _bone_error_deg(bones_wxyz: np.ndarray | None, true_wxyz: np.ndarray) -> np.ndarray:
    """(13,) angle (degrees) between the bone orientations a solve was given and the true ones."""
    out = np.full(sk.NUM_IMUS, np.nan)
    if bones_wxyz is None:
        return out
    ok = np.isfinite(bones_wxyz[:, 0])
    if ok.any():
        out[ok] = np.degrees((from_wxyz(bones_wxyz[ok]).inv() * from_wxyz(true_wxyz[ok])).magnitude())
    return out


def rig_key(rig) -> str:
    """A key that tells rigs apart by their cameras (names repeat between rigs)."""
    return json.dumps(rig.to_dict(), sort_keys=True)


def run_sequence(seq: TestSequence, bench: Benchmark, engine_for: Callable[[object], InferenceEngine],
                 batch_size: int = 8) -> SequenceRun:
    """One sequence end to end: the calibration routine solved from the
    cameras alone and handed to an ImuTracking as a live capture would be,
    then the scored frames solved in batches with the IMUs as the tracking
    keeps them (core.imu.tracking.solve_tracked). engine_for(rig) gives the
    engine for the sequence's (image-scaled) rig."""
    studio = sequence_studio(seq, bench)
    engine = engine_for(studio.rig)
    end = studio.routine_ends_s
    times = scored_times(seq, bench, studio)
    tracking = ImuTracking(capture_s=end)
    samples = studio.imu_samples(0.0, float(times[-1] if len(times) else end) + 2.0)
    feed = SampleFeed(tracking, samples.t_s, samples.sensor_id, samples.quat_wxyz)

    def solve(items):
        return engine.solve_batch(items, batch_size=batch_size)

    routine = np.arange(0.0, end + 1e-9, 1.0 / bench.calibration_fps)
    for _ in solve_tracked(tracking, feed, routine, lambda i: _masks(studio, seq, routine[i], 10_000 + i, 0),
                           solve, batch_size):
        pass
    # solve_tracked asks for a batch's masks before it yields the batch, so they are kept until then.
    cut: dict[int, bool] = {}
    kept: dict[int, list] = {}

    def keep(i: int) -> list:
        cut[i] = bench.partial_every > 0 and i % bench.partial_every == bench.partial_every - 1
        kept[i] = _masks(studio, seq, times[i], i, bench.partial_cameras if cut[i] else 0)
        return kept[i]

    frames: list[Frame] = []
    solves: list = []
    errors: list[np.ndarray] = []

    for i, _, bones, sol in solve_tracked(tracking, feed, times, keep, solve, batch_size):
        truth = studio.truth(float(times[i]))
        if bones is not None:
            errors.append(_bone_error_deg(bones, truth.bone_wxyz))
        frames.append(Frame(kept.pop(i), bones, truth.joints_mm, cut[i], float(times[i])))
        solves.append(sol)
    bone_deg = np.nanmedian(np.stack(errors), axis=0) if errors else np.full(sk.NUM_IMUS, np.nan)
    report = CalibrationReport(seq.name, bone_deg, None if tracking.offset is None else tracking.offset_s * 1e3,
                               studio.config.imu.latency_s * 1e3, tracking.error)
    return SequenceRun(studio, frames, solves, report)


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
    calibration: list[CalibrationReport] = field(default_factory=list)  # one per sequence
    precision: str = ""  # the network's ("fp32", "bf16", "fp16")

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.array(getattr(self, k)) for k in ("sequence", "rig_kind", "partial", "t_s",
                                                        "e1", "e2", "pa1", "pa2", "confidence")}


def evaluate_model(model: DeepFuseNet, bench: Benchmark = Benchmark(), device: str | None = None,
                   threads: int | None = None, batch_size: int = 8, progress: Progress | None = None,
                   cpu_precision: str = "auto") -> FrameErrors:
    """The benchmark's frames through the live path (see the module notes);
    cpu_precision as core.deepfuse.engine.InferenceEngine's (`errors.precision`
    says which ran)."""
    seqs = bench.sequences()
    total = len(seqs)
    errs = FrameErrors()
    engines: dict = {}

    def engine_for(rig):
        key = rig_key(rig)
        if key not in engines:
            engines.clear()  # one rig's tables at a time
            engines[key] = InferenceEngine(model, rig, device=device, threads=threads, optimise=False,
                                           cpu_precision=cpu_precision)
            errs.precision = engines[key].precision_name
        return engines[key]

    for done, seq in enumerate(seqs, 1):
        run = run_sequence(seq, bench, engine_for, batch_size)
        errs.calibration.append(run.calibration)
        for fr, sol in zip(run.frames, run.solves):
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
        if progress is not None:
            progress(done, total)
    return errs


def summarise(errs: FrameErrors) -> dict:
    """Mean errors (mm) by rig kind x frame kind x stage, and per joint."""
    a = errs.arrays()
    out: dict = {"frames": int(len(a["e2"])), "missed": errs.missed, "precision": errs.precision,
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
    out["sequences"] = {}
    for name in dict.fromkeys(a["sequence"]):
        m = a["sequence"] == name
        row = {"frames": int(m.sum()), "mpjpe1": float(a["e1"][m].mean()), "mpjpe2": float(a["e2"][m].mean())}
        for pn, pm in (("full", ~a["partial"]), ("partial", a["partial"])):
            if (m & pm).any():
                row[f"{pn}1"] = float(a["e1"][m & pm].mean())
                row[f"{pn}2"] = float(a["e2"][m & pm].mean())
        out["sequences"][str(name)] = row
    out["calibration"] = calibration_summary(errs.calibration)
    return out


def calibration_summary(reports: list[CalibrationReport]) -> dict:
    """The estimated IMU calibrations against the truth: per bone, the mean
    over sequences of each sequence's median angle (degrees); the mean and
    worst over bones; the time offsets found; the failures."""
    if not reports:
        return {}
    ok = [r for r in reports if r.error is None and np.isfinite(r.bone_deg).any()]
    out: dict = {"sequences": len(reports), "failed": {r.sequence: r.error for r in reports if r.error}}
    if ok:
        per = np.nanmean(np.stack([r.bone_deg for r in ok]), axis=0)
        out["bone_deg"] = {b.name: float(v) for b, v in zip(sk.IMU_BONES, per)}
        out["mean_deg"] = float(np.nanmean(per))
        out["worst_bone_deg"] = float(np.nanmax(per))
    found = [r.offset_ms for r in reports if r.offset_ms is not None]
    out["true_offset_ms"] = float(reports[0].true_offset_ms)
    if found:
        out["offset_ms_median"] = float(np.median(found))
        out["offset_error_ms_max"] = float(max(abs(f - r.true_offset_ms) for f, r in
                                                zip(found, [r for r in reports if r.offset_ms is not None])))
    out["offset_found"] = len(found)
    return out

