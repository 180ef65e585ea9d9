"""Offline solve: every frame of a take through an inference engine, batched,
then the whole-take skeleton solve on those joints.

The live path may skip frames; offline processing solves them all, with
the model of choice (the full one by default), in batches on the GPU when
there is one. The joints go into the take as a new solve version
(core.take.writer.write_solve); the recorded streams are never changed.
Solves are stored raw: temporal filtering is applied on export.

The skeleton (core.solve.take.solve_take on the joints as stored, with the
take's calibrated IMUs) is stored beside them (core.take.solved_skeleton),
so an export with the same settings reads it instead of solving again.
It is solved before anything is written, so cancelling through the
progress callback leaves the take as it was.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable

import numpy as np

from core import skeleton as sk
from core.imu.tracking import ImuTracking, SampleFeed, solve_tracked
from core.take.layout import APP_VERSION, Joints, TakeError
from core.take.solved_skeleton import as_stored, skeleton_settings, solve_skeleton, write_skeleton
from core.take.take import Take
from core.take.writer import write_solve

Progress = Callable[[int, int], None]


def solve_take(take: Take, engine, batch_size: int = 16, use_imu: bool = True,
               progress: Progress | None = None, imu_report: dict | None = None) -> Joints:
    """Joints for every frame of the take (NaN rows where no performer was
    found). `engine` is a core.deepfuse.engine.InferenceEngine for the take's rig.

    The IMUs are used as the live session keeps them (core.imu.tracking):
    the calibration the take was recorded with, the IMU-camera time offset
    (from the take's metadata, estimated again from the solved frames every
    few seconds) and heading drift correction, frames solved in batches, each
    batch with what the frames before it gave. imu_report, when given, is
    filled with what the tracking found: the time offset used at the end
    (s) and each sensor's total heading correction (degrees)."""
    if len(engine.rig) != len(take.cameras):
        raise TakeError(f"the engine's rig has {len(engine.rig)} cameras, the take {len(take.cameras)}")
    calib = take.imu_calibration if use_imu else None
    n = len(take)
    joints = np.full((n, sk.NUM_JOINTS, 3), np.nan)
    conf = np.zeros((n, sk.NUM_JOINTS))
    times = take.frame_times()
    if progress is not None:
        progress(0, n)
    frames = take.frames()

    def masks_for(i: int) -> list:
        return list(next(frames).silhouettes)

    def solve(items):
        return engine.solve_batch(items, batch_size=batch_size)

    if calib is None:
        tracking = None
        solved = ((i, s) for b in range(0, n, batch_size)
                  for i, s in zip(range(b, min(b + batch_size, n)),
                                  solve([(masks_for(i), None) for i in range(b, min(b + batch_size, n))])))
    else:
        tracking = ImuTracking(calibration=calib, offset_s=float(take.meta.get("imu_time_offset_s") or 0.0))
        d = take.imu_samples()
        feed = SampleFeed(tracking, d["t_s"], d["sensor"], d["quat_wxyz"])
        solved = ((i, s) for i, _, _, s in solve_tracked(tracking, feed, times, masks_for, solve, batch_size))
    for i, s in solved:
        if s is not None:
            joints[i], conf[i] = s.joints_mm, s.confidence
        if progress is not None and ((i + 1) % batch_size == 0 or i + 1 == n):
            progress(i + 1, n)
    if tracking is not None and imu_report is not None:
        state = tracking.state()
        imu_report["imu_time_offset_s"] = round(tracking.offset_s, 4)
        imu_report["heading_corrections_deg"] = [round(float(v), 2) for v in state.drift_corrections_deg]
    return Joints(times, np.arange(n), joints, conf)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_file_info(name: str, path: str | Path) -> dict:
    """A model's name, file name and SHA-256, as a take's metadata and solves record it."""
    return {"name": name, "file": Path(path).name, "sha256": file_sha256(path)}


def load_model(spec: str):
    """(model, info dict, note) for "lite", "full" or a weights file, for
    solving takes offline; a build without the full model falls back to lite
    and the note says so. Raises ValueError with a clear message."""
    from core.deepfuse.weights import SHIPPED, ModelFileError, load_weights, shipped_model_path

    note = ""
    if spec in SHIPPED:
        path = shipped_model_path(spec)
        if spec == "full" and not path.is_file():
            note = "this build ships no full model; solving with the lite model"
            spec, path = "lite", shipped_model_path("lite")
    else:
        path = Path(spec)
    try:
        model, _ = load_weights(path)
    except ModelFileError as exc:
        raise ValueError(str(exc)) from None
    return model, model_file_info(spec, path), note


def process_take(take: Take, engine, model_info: dict, batch_size: int = 16, use_imu: bool = True,
                 progress: Progress | None = None, skeleton: bool = True,
                 skeleton_progress: Progress | None = None) -> tuple[int, Joints, dict]:
    """Solve the take and store the result as a new version: (version, joints, info).

    Two phases, each reporting through its own callback: the network over
    every frame (`progress`), then, with `skeleton`, the whole-take skeleton
    solve (`skeleton_progress`, or `progress` again from 0 when it is None).
    info["skeleton"] is what solve.json records of the stored skeleton, or
    None with info["skeleton_note"] saying why there is none (a take where
    the network found no performer)."""
    t = time.perf_counter()
    imu: dict = {}
    joints = solve_take(take, engine, batch_size, use_imu, progress, imu)
    elapsed = time.perf_counter() - t
    found = int((~np.isnan(joints.joints_mm[:, 0, 0])).sum())
    info = {"app_version": APP_VERSION, "model": model_info, "device": str(engine.device),
            "batch_size": batch_size, "imu": bool(use_imu and take.imu_calibration is not None),
            "filter": {"kind": "off"}, "frames_found": found, "seconds": round(elapsed, 3), **imu}
    fit, note, skeleton_s = None, None, 0.0
    if skeleton:
        t = time.perf_counter()
        try:
            # The joints as write_solve stores them (float32), so the skeleton is the one an export of
            # the stored solve would make.
            fit = solve_skeleton(take, as_stored(joints), use_imu=use_imu,
                                 progress=skeleton_progress if skeleton_progress is not None else progress)
        except ValueError as exc:
            note = f"no skeleton stored: {exc}"
        skeleton_s = time.perf_counter() - t
    version = write_solve(take.layout, info, joints)
    info["skeleton"] = None
    if fit is not None:
        info["skeleton"] = write_skeleton(take.layout, version, fit,
                                          skeleton_settings(take, use_imu=use_imu), skeleton_s)
    elif note is not None:
        info["skeleton_note"] = note
    return version, joints, info
