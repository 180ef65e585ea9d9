"""`main.py record --demo --seconds N --out DIR`: record a take from the
simulated studio without a window; `main.py record --cameras 0,1,2,3
--calibration rig.json [--imu PORT --pairing P.json --imu-calibration W.json]
--out DIR`: from real cameras and IMUs (core.session.opening, docs/DEVICES.md);
`main.py record --imu PORT [--imu-protocol P] [--stature MM] --out DIR`
(or `--demo --imus-only`): with IMUs alone, no camera. The performer first
holds the known pose and does the routine's moves as the command prompts
them (core.imu.wear_capture.STEPS); the IMUs are calibrated from that
(core.imu.calibration.calibrate_without_cameras) and the recording starts.
On real cameras the stage must be empty when the command starts: the first
`--background-frames` frames of every camera are its background, and the
recording starts once every camera has one.

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
    p.add_argument("--cameras", metavar="LIST",
                   help="real cameras: device numbers, stream URLs or video files separated by commas, "
                   "or one footage folder (needs --calibration)")
    p.add_argument("--calibration", type=Path, metavar="FILE",
                   help="the cameras' calibration (FuseCap JSON or anipose / FreeMoCap TOML)")
    p.add_argument("--imu", metavar="PORT", default="",
                   help="the IMUs' serial port: with --cameras, or alone for a capture with IMUs only")
    p.add_argument("--imus-only", action="store_true",
                   help="with --demo: the simulated studio's IMUs alone, no camera")
    p.add_argument("--stature", type=float, default=1750.0, metavar="MM",
                   help="IMUs only: the performer's height in mm (sizes the skeleton; default 1750)")
    p.add_argument("--pose", choices=("T", "N"), default="T",
                   help="IMUs only: the known pose the calibration starts from (default T)")
    p.add_argument("--calibration-timeout", type=float, default=60.0, metavar="S",
                   help="IMUs only: how long to wait for the calibration routine (default 60 s)")
    p.add_argument("--imu-protocol", choices=("fusecap", "witmotion", "xsens"), default="fusecap")
    p.add_argument("--pairing", type=Path, metavar="FILE", help="the IMU pairing saved by the IMUs panel")
    p.add_argument("--imu-calibration", type=Path, metavar="FILE",
                   help="the wear offsets saved by the Wear offsets panel")
    p.add_argument("--background-frames", type=int, default=15, metavar="N",
                   help="frames of the empty stage each real camera takes as its background (default 15)")
    p.add_argument("--out", type=Path, required=True, help="the new take folder")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to record (default 10)")
    p.add_argument("--fps", type=float, default=15.0, help="camera frame rate (default 15)")
    p.add_argument("--seed", type=int, default=0, help="performer, motion and sensor seed")
    p.add_argument("--motion", metavar="CLIP.bvh", help="play a BVH clip instead of procedural actions")
    p.add_argument("--body", choices=("mesh", "capsule"), default="mesh",
                   help="the simulated performer: a skinned Anny mesh, some in loose clothing (default), "
                   "or capsules (docs/BODIES.md)")
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


def _imus_only(args: argparse.Namespace) -> bool:
    return (args.demo and args.imus_only) or (not args.demo and not args.cameras and bool(args.imu))


def run_record(args: argparse.Namespace) -> int:
    if args.imus_only and not args.demo:
        print("--imus-only is for --demo; real IMUs alone: --imu PORT without --cameras", file=sys.stderr)
        return 2
    if not _imus_only(args) and args.demo == bool(args.cameras):
        print("record either the simulated studio (--demo), real cameras (--cameras with --calibration) "
              "or IMUs alone (--imu PORT)", file=sys.stderr)
        return 2
    if args.cameras and args.calibration is None:
        print("--cameras needs --calibration: the cameras' calibration file", file=sys.stderr)
        return 2
    if args.seconds <= 0 or args.fps <= 0 or args.background_frames < 2:
        print("--seconds and --fps must be positive, --background-frames at least 2", file=sys.stderr)
        return 2
    from app.cli.progress import progress_bar
    from core.devices import DeviceError
    from core.take.layout import TakeError

    sender = None
    if args.vmc:
        try:
            from core.stream.vmc import VmcSender, parse_host_port

            host, port = parse_host_port(args.vmc)

            sender = VmcSender(host, port)
        except (ValueError, OSError) as exc:
            print(f"--vmc: {exc}", file=sys.stderr)
            return 2
    imus_only = _imus_only(args)
    what = ("the IMUs alone" if imus_only else "the simulated studio" if args.demo else "the cameras and IMUs")
    try:
        session = _open(args)
    except (OSError, ValueError) as exc:
        print(f"error: cannot start {what}: {exc}", file=sys.stderr)
        return 1
    if session.pipeline is not None:
        with progress_bar("preparing camera lookup tables") as report:
            session.prepare(report)
    session.set_vmc(sender)
    try:
        if imus_only:
            session.start()
            if session.imu_calibration is None:
                _calibrate(session, args)
            recorder = session.start_recording(args.out, flush_s=args.flush)
        elif args.demo:
            # Studio time 0 is the start of the take: the performer starts moving as it starts.
            recorder = session.start_recording(args.out, video=args.video, flush_s=args.flush, t0_s=session.studio.t0_s)
            session.start()
        else:
            session.start()
            print("capturing the background: keep the stage empty "
                  f"({session.studio.setup.background_frames} frames a camera)", flush=True)
            session.studio.wait_for_backgrounds()
            recorder = session.start_recording(args.out, video=args.video, flush_s=args.flush)
    except (TakeError, ValueError, DeviceError, OSError, TimeoutError, KeyboardInterrupt) as exc:
        print("stopped" if isinstance(exc, KeyboardInterrupt) else f"error: {exc}", file=sys.stderr)
        session.stop()
        return 1
    cameras = 0 if session.rig is None else len(session.rig)
    print(f"recording {args.seconds:g} s of {what} ({cameras} cameras at {args.fps:g} fps, "
          f"{'13 IMUs' if args.demo or args.imu else 'no IMUs'}) into {recorder.root}; live solve: {session.label}",
          flush=True)
    start = time.monotonic()
    end = start + args.seconds
    try:
        while recorder.error is None:
            now = time.monotonic()
            if now >= end:
                break
            time.sleep(min(1.0 - ((now - start) % 1.0), end - now))
            s = recorder.stats
            frames = (f"skeleton frames {session.posed:4d}" if imus_only else
                      f"camera frames written {sum(s.camera_frames):6d}")
            solves = "" if imus_only else f"live solves {session.solved:4d}  "
            print(f"  {time.monotonic() - start:5.1f} s  {frames}  IMU samples {s.imu_samples:6d}  {solves}"
                  f"{s.bytes / 1e6:7.2f} MB", flush=True)
    except KeyboardInterrupt:
        print("stopped")
    finally:
        live = session.stats()
        stats = session.stop()
    if session.worker.error:
        print(f"warning: the live solve failed ({session.worker.error}); the recording is complete",
              file=sys.stderr)
    if recorder.error:
        print(f"error: {recorder.error}", file=sys.stderr)
        return 1
    per_camera = (f"{min(stats.camera_frames)}-{max(stats.camera_frames)} frames per camera"
                  if stats.camera_frames else "no camera")
    solved = f"{session.posed} skeleton frames live" if imus_only else f"{stats.live_frames} live-solved frames"
    print(f"take {recorder.root}: {per_camera}, {stats.imu_samples} IMU samples, {solved}, "
          f"{stats.bytes / 1e6:.2f} MB; frames lost by the recorder: {stats.lost_frames}; "
          f"frames the cameras dropped (the machine fell behind): {live.dropped}; "
          f"frames the live path skipped: {live.skipped}")
    return 0


def _calibrate(session, args: argparse.Namespace) -> None:
    """Prompt the calibration routine step by step until the IMUs are
    calibrated; ValueError when the calibration fails, TimeoutError when it
    does not come in time."""
    from core.imu.wear_capture import STEPS

    tracking = session.imu_tracking
    print(f"IMU calibration: stand still in the {args.pose}-pose, facing the way the animation should face; "
          "the routine starts once every sensor is in", flush=True)
    deadline = time.monotonic() + args.calibration_timeout
    shown = 0
    while tracking.calibration is None:
        if tracking.error is not None:
            raise ValueError(f"the IMU calibration failed: {tracking.error}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no IMU calibration after {args.calibration_timeout:g} s "
                               f"({tracking.state().message}): are all 13 sensors sending?")
        started = tracking.capture_started_s
        if started is not None:
            elapsed = time.monotonic() - started
            while shown < len(STEPS) and elapsed >= STEPS[shown][0]:
                print(f"  {STEPS[shown][0]:4.0f} s  {STEPS[shown][1].format(pose=args.pose)}", flush=True)
                shown += 1
        time.sleep(0.1)
    fits = tracking.calibration.fits
    weak = [f.bone for f in fits if not f.observable]
    print("IMUs calibrated" + (f"; no heading for {', '.join(weak)} (they barely tilted during the moves: "
                               "the routine again gives them one)" if weak else ""), flush=True)


def _open(args: argparse.Namespace):
    """The session for the simulated studio or the real devices the arguments name."""
    if _imus_only(args):
        from core.session.opening import identity_pairing, open_imu_session
        from core.session.studios import DeviceSetup

        setup = DeviceSetup(cameras=(), imu_port=args.imu, imu_protocol=args.imu_protocol, fps=args.fps)
        calib = None
        if args.imu_calibration is not None:
            from core.imu.calibration import ImuCalibration

            calib = ImuCalibration.load(args.imu_calibration)
        if args.demo:
            from core.registry import registry
            from core.sim.studio import StudioConfig

            config = StudioConfig(seed=args.seed, motion_bvh=args.motion, camera_fps=args.fps, body=args.body,
                                  calibration_pose=args.pose)
            devices = registry().studios["simulated"](config, realtime=True)
            session = open_imu_session(setup, args.stature, args.pose, calib, imus=devices.imus)
            session.set_pairing(identity_pairing(devices.imus[0].name))
            return session
        session = open_imu_session(setup, args.stature, args.pose, calib)
        if args.pairing is not None:
            from core.imu.pairing import Pairing

            session.set_pairing(Pairing.load(args.pairing))
        return session
    if args.demo:
        from core.session.opening import open_simulated_session
        from core.sim.studio import StudioConfig

        config = StudioConfig(seed=args.seed, motion_bvh=args.motion, camera_fps=args.fps, body=args.body)
        return open_simulated_session(config, args.model, args.live_filter)
    from core.calibration.files import load_calibration
    from core.imu.calibration import ImuCalibration
    from core.imu.pairing import Pairing
    from core.session.opening import open_device_session
    from core.session.studios import DeviceSetup

    rig = load_calibration(args.calibration).rig
    setup = DeviceSetup(cameras=DeviceSetup.parse_cameras(args.cameras), imu_port=args.imu,
                        imu_protocol=args.imu_protocol, fps=args.fps, background_frames=args.background_frames)
    pairing = None if args.pairing is None else Pairing.load(args.pairing)
    imu_calibration = None if args.imu_calibration is None else ImuCalibration.load(args.imu_calibration)
    session = open_device_session(setup, rig, args.model, args.live_filter)
    session.set_pairing(pairing)
    session.set_imu_calibration(imu_calibration)
    return session
