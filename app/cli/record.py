"""`main.py record --demo --seconds N --out DIR`: record a take from the
simulated studio without a window.

The cameras run on capture threads and the IMUs on their own thread; the
recorder writes every sample through its lossless readers while the live
path solves the newest frame (skipping frames when it falls behind, as in
the app). One line a second shows what has been written."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_record_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo", action="store_true", help="record the simulated studio (no hardware)")
    p.add_argument("--out", type=Path, required=True, help="the new take folder")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to record (default 10)")
    p.add_argument("--fps", type=float, default=15.0, help="camera frame rate (default 15)")
    p.add_argument("--seed", type=int, default=0, help="performer, motion and sensor seed")
    p.add_argument("--motion", metavar="CLIP.bvh", help="play a BVH clip instead of procedural actions")
    p.add_argument("--video", action="store_true", help="also store each camera's images as motion JPEG")
    p.add_argument("--model", default="lite",
                   help="DeepFuse weights for the live solve: lite (default), full, a file, or none")
    p.add_argument("--vmc", metavar="HOST:PORT",
                   help="stream the live pose over the VMC protocol (OSC/UDP) to this receiver")
    p.add_argument("--live-filter", choices=("one-euro", "off"), default="one-euro",
                   help="causal smoothing of the live pose sent over VMC (default one-euro); the take "
                   "always stores the joints as solved")
    p.add_argument("--flush", type=float, default=0.5, metavar="S",
                   help="seconds between writes to the disk (at most 1; default 0.5)")


def simulated_imu_calibration(studio):
    """The simulated sensors' true wear offsets and start headings: what a
    wear-offset capture measures (core.imu.calibration.ImuCalibration)."""
    from core.imu.calibration import ImuCalibration

    return ImuCalibration(studio.imus.wear_offsets, studio.imus.heading_offsets.copy(), pose="T")


def identity_pairing(source: str):
    """Sensor k of `source` on IMU bone k (the simulated hub's layout)."""
    from core import skeleton as sk
    from core.imu.pairing import Pairing, SensorKey

    p = Pairing()
    for b in range(sk.NUM_IMUS):
        p.assign(b, SensorKey(source, b))
    return p


def parse_host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    try:
        value = int(port)
    except ValueError:
        value = -1
    if not sep or not host or not 0 < value < 65536:
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:39539), got {text!r}")
    return host, value


def run_record(args: argparse.Namespace) -> int:
    if not args.demo:
        print("this command records the simulated studio (--demo); recording from real devices "
              "is done in the desktop app", file=sys.stderr)
        return 2
    if args.seconds <= 0 or args.fps <= 0:
        print("--seconds and --fps must be positive", file=sys.stderr)
        return 2
    from app.cli.demo import _engine
    from core.capture.live import LiveCapture, LiveWorker
    from core.pipeline import Pipeline
    from core.registry import registry
    from core.sim.studio import StudioConfig
    from core.take.recorder import Recorder
    from core.take.layout import TakeError, json_safe

    reg = registry()
    if "simulated" not in reg.studios:
        print(f"the simulated studio plugin is not installed ({reg.errors or 'no entry point'})", file=sys.stderr)
        return 1
    config = StudioConfig(seed=args.seed, motion_bvh=args.motion, camera_fps=args.fps)
    try:
        devices = reg.studios["simulated"](config, realtime=True)
    except (OSError, ValueError) as exc:
        print(f"cannot start the simulated studio: {exc}", file=sys.stderr)
        return 1
    sender = None
    if args.vmc:
        try:
            host, port = parse_host_port(args.vmc)
            from core.stream.vmc import VmcSender

            sender = VmcSender(host, port)
        except (ValueError, OSError) as exc:
            print(f"--vmc: {exc}", file=sys.stderr)
            return 2
    engine, label = _engine(args.model, devices.rig)
    if engine is False:
        return 2
    from core.filters import FilterConfig, live_filter

    live_config = FilterConfig(kind=args.live_filter)
    smoother = live_filter(live_config)
    calib = simulated_imu_calibration(devices.studio)
    pipeline = Pipeline(devices.rig, engine or None, lambda b: calib.bone_wxyz(b.imu_wxyz))
    from app.cli.progress import progress_bar

    with progress_bar("preparing camera lookup tables") as report:
        pipeline.prepare(report)
    live = LiveCapture(devices.cameras, devices.imus, args.fps)
    readers = live.recorder_readers()
    t0 = devices.t0_s  # studio time 0: the performer starts when recording starts
    meta = json_safe({
        "source": f"simulated studio (seed {args.seed})", "t0_s": t0, "frame_rate": args.fps,
        "cameras": devices.rig.names, "rig": devices.rig.to_dict(),
        "imu_pairing": identity_pairing(devices.imus[0].name).to_dict(),
        "imu_calibration": calib.to_dict(),
        "model": None if not engine else _model_info(label),
        "live_filter": live_config.to_dict(),
    })
    try:
        recorder = Recorder(args.out, meta, len(devices.rig), readers, video=args.video, flush_s=args.flush)
    except (TakeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    live.imu.listeners.append(recorder.put_imu)
    state = {"solved": 0, "offsets": None}

    def handle(bundle) -> None:
        result = pipeline.process(bundle)
        if result.solve is None:
            return
        recorder.put_joints(bundle.t_s, bundle.index, result.solve.joints_mm, result.solve.confidence)
        state["solved"] += 1
        if sender is not None:
            smooth = smoother.filter(bundle.t_s, result.solve.joints_mm)
            state["offsets"] = _stream_vmc(sender, bundle, smooth, calib, state["offsets"])

    worker = LiveWorker(live, handle)
    recorder.start()
    live.start()
    worker.start()
    print(f"recording {args.seconds:g} s of the simulated studio ({len(devices.rig)} cameras at "
          f"{args.fps:g} fps, 13 IMUs) into {recorder.root}; live solve: {label if engine else 'off'}", flush=True)
    start = time.monotonic()
    end = start + args.seconds
    try:
        while recorder.error is None:
            now = time.monotonic()
            if now >= end:
                break
            time.sleep(min(1.0 - ((now - start) % 1.0), end - now))
            s = recorder.stats
            print(f"  {time.monotonic() - start:5.1f} s  camera frames written {sum(s.camera_frames):6d}  "
                  f"IMU samples {s.imu_samples:6d}  live solves {state['solved']:4d}  "
                  f"{s.bytes / 1e6:7.2f} MB", flush=True)
    except KeyboardInterrupt:
        print("stopped")
    finally:
        worker.stop()
        live.stop()
        stats = recorder.stop()
        if sender is not None:
            sender.close()
    if worker.error:
        print(f"warning: the live solve failed ({worker.error}); the recording is complete", file=sys.stderr)
    if recorder.error:
        print(f"error: {recorder.error}", file=sys.stderr)
        return 1
    print(f"take {recorder.root}: {min(stats.camera_frames)}-{max(stats.camera_frames)} frames per camera, "
          f"{stats.imu_samples} IMU samples, {stats.live_frames} live-solved frames, "
          f"{stats.bytes / 1e6:.2f} MB; frames lost by the recorder: {stats.lost_frames}; "
          f"frames the cameras dropped (the machine fell behind): "
          f"{sum(getattr(c, 'dropped', 0) for c in devices.cameras)}; "
          f"frames the live path skipped: {live.skipped}")
    return 0


def _model_info(spec: str) -> dict:
    """The live model's name and file digest, for the take's metadata."""
    from core.deepfuse.weights import SHIPPED, shipped_model_path
    from core.take.process import file_sha256

    path = shipped_model_path(spec) if spec in SHIPPED else Path(spec)
    return {"name": spec, "file": path.name, "sha256": file_sha256(path)}


def _stream_vmc(sender, bundle, joints_mm, calib, offsets):
    """Fit the live joints to the skeleton and send the pose; the skeleton's
    bone lengths are fixed on the first solved frame."""
    import numpy as np

    from core.posefit import bone_lengths, fit_frame, skeleton_offsets, torso_rest_directions

    if offsets is None:
        if not np.isfinite(joints_mm).all():
            return None
        offsets = skeleton_offsets(bone_lengths(joints_mm[None]), torso_rest_directions(joints_mm[None]))
    root, local = fit_frame(joints_mm, calib.bone_wxyz(bundle.imu_wxyz), offsets)
    sender.send_pose(bundle.t_s, root, local)
    return offsets
