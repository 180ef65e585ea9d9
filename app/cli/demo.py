"""`main.py demo --headless`: the simulated studio through the live pipeline,
printed one line a frame, then a summary of rates."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from app.cli.progress import progress_bar
from core.capture.lockstep import LockstepCapture
from core.registry import registry
from core.sim.silhouette_noise import SilhouetteNoise
from core.sim.studio import StudioConfig


def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution must look like 480x270, got {text!r}") from None
    if w <= 0 or h <= 0 or abs(w / h - 16 / 9) > 0.01:
        raise argparse.ArgumentTypeError("the standard studio's cameras are 16:9, e.g. 480x270")
    return w, h


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=10.0, help="how long to run (default 10)")
    p.add_argument("--fps", type=float, default=15.0, help="camera frame rate (default 15)")
    p.add_argument("--resolution", type=_resolution, default=(480, 270),
                   help="simulated camera image size (default 480x270)")
    p.add_argument("--seed", type=int, default=0, help="performer, motion and sensor seed")
    p.add_argument("--motion", metavar="CLIP.bvh", help="play a BVH clip instead of procedural actions")
    p.add_argument("--body", choices=("mesh", "capsule"), default="mesh",
                   help="the simulated performer: a skinned Anny mesh, some in loose clothing (default), "
                   "or capsules (docs/BODIES.md)")
    p.add_argument("--lockstep", action="store_true",
                   help="simulated clock: every frame is processed, as fast as the machine allows")
    p.add_argument("--noise", action="store_true", help="add silhouette noise (edges, holes, blobs)")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.add_argument("--imu-serial", action="store_true",
                   help="read the IMUs through the real serial path: a simulated FuseCap hub on a "
                   "pseudo-terminal, opened as a serial port (real time only)")
    p.add_argument("--model", default="lite",
                   help="DeepFuse weights for the joint solve: lite (default), full, a file, or none")


def run_headless_demo(args: argparse.Namespace) -> int:
    reg = registry()
    if "simulated" not in reg.studios:
        print(f"the simulated studio plugin is not installed ({reg.errors or 'no entry point'}); "
              "run scripts/bootstrap.sh", file=sys.stderr)
        return 1
    # The performer starts with the IMU calibration routine, as a user's would.
    config = StudioConfig(seed=args.seed, motion_bvh=args.motion, camera_fps=args.fps,
                          image_scale=args.resolution[0] / 1920,
                          noise=SilhouetteNoise() if args.noise else None, body=args.body, calibration_pose="T")
    try:
        devices = reg.studios["simulated"](config, realtime=not args.lockstep)
    except (OSError, ValueError) as exc:
        print(f"cannot start the simulated studio: {exc}", file=sys.stderr)
        return 1
    from core.imu.tracking import ImuTracking
    from core.pipeline import Pipeline
    from core.session.opening import load_live_engine

    try:
        engine, label = load_live_engine(args.model, devices.rig)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    routine_s = devices.studio.routine_ends_s
    tracking = ImuTracking(capture_s=routine_s, background=not args.lockstep)
    pipeline = Pipeline(devices.rig, engine, lambda b: tracking.bone_wxyz(b.imu_wxyz))
    with progress_bar("preparing camera lookup tables") as report:
        pipeline.prepare(report)
    imus, hub = devices.imus, None
    if getattr(args, "imu_serial", False):
        if args.lockstep:
            print("--imu-serial needs real time (a serial line cannot follow a simulated clock)", file=sys.stderr)
            return 2
        if "serial" not in reg.imu_sources:
            print(f"the IMU plugin is not installed ({reg.errors or 'no entry point'})", file=sys.stderr)
            return 1
        from plugins.imu.sim_hub import SimulatedHub, studio_samples

        try:
            hub = SimulatedHub(studio_samples(devices.studio))
        except OSError as exc:
            print(f"cannot open a pseudo-terminal for the simulated hub: {exc}", file=sys.stderr)
            return 1
        imus = [reg.imu_sources["serial"](hub.port, protocol="fusecap", name="simulated hub (serial)")]
    capture = LockstepCapture(devices.cameras, imus)
    capture.on_samples = tracking.add_samples
    studio = devices.studio
    n_cams = len(devices.rig)
    print(f"FuseCap demo: simulated studio, {n_cams} cameras at {args.resolution[0]}x{args.resolution[1]}, "
          f"13 IMUs, {args.fps:g} fps, {'lockstep' if args.lockstep else 'real time'}; "
          f"subject {studio.subject.height_mm:.0f} mm tall")
    print("Each line shows the performer centre found by the visual hull, the true pelvis (Hips), "
          "their distance and how many true joints lie inside the 64^3 volume" +
          (f"; then the DeepFuse {label} solve: its time and its mean joint error against the truth "
           f"(MPJPE). IMUs: the performer does the calibration routine for the first {routine_s:.0f} s; the "
           "wear offsets, headings and time offset are estimated from it, and until then the solve "
           "uses the cameras alone." if engine else
           f". No joint solve: {label}."))
    if not args.quiet:
        print(f"{'frame':>5} {'t [s]':>7}  {'centre x, y, z [mm]':>22}  {'Hips (truth) x, y, z':>22}"
              f"  {'dist':>5} {'in grid':>7}  {'voxels':>7} {'IMU':>5}  {'capture':>7} {'centre':>6} "
              f"{'volume':>6} [ms]  {'fps':>5}" + (f"  {'net ms':>6} {'MPJPE':>6}" if engine else ""))
    errors, fits, stage = [], [], {"capture": [], "centre": [], "volume": [], "network": []}
    joint_errors, vision_errors = [], []  # with the calibrated IMUs / before they are calibrated
    n_frames = int(round(args.seconds * args.fps))
    if hub is not None:
        print(f"IMUs: FuseCap protocol over the serial port {hub.port}")
        hub.start()
    capture.open()
    start = time.perf_counter()
    last = start
    try:
        for _ in range(n_frames):
            t_cap = time.perf_counter()
            bundle = capture.next_bundle(timeout_s=2.0)
            if bundle is None:
                print("no camera delivered a frame", file=sys.stderr)
                return 1
            stage["capture"].append((time.perf_counter() - t_cap) * 1e3)
            result = pipeline.process(bundle)
            for k, v in result.timings_ms.items():
                stage[k].append(v)
            truth = studio.truth(bundle.t_s - devices.t0_s)
            was = tracking.calibration
            solve = result.solve
            tracking.add_frame(bundle.t_s, bundle.imu_wxyz, None if solve is None else solve.joints_mm,
                               None if solve is None else solve.confidence)
            capture.buffer.offset_s = tracking.offset_s
            if engine is not None and was is None and (tracking.calibration is not None or tracking.error):
                _report_calibration(tracking, studio, bundle.t_s - devices.t0_s)
            now = time.perf_counter()
            fps = 1.0 / max(now - last, 1e-9)
            last = now
            if result.solve is not None:
                err = float(np.linalg.norm(result.solve.joints_mm - truth.joints_mm, axis=1).mean())
                (joint_errors if result.bone_wxyz is not None else vision_errors).append(err)
            hips = truth.joints_mm[0]
            hips_txt = f"{hips[0]:7.0f} {hips[1]:7.0f} {hips[2]:6.0f}"
            if result.centre_mm is not None:
                c = result.centre_mm
                errors.append(float(np.linalg.norm(c - hips)))
                inside = int(result.grid.contains(truth.joints_mm).sum())
                fits.append(inside == len(truth.joints_mm))
                centre_txt = f"{c[0]:7.0f} {c[1]:7.0f} {c[2]:6.0f}"
                err_txt, grid_txt = f"{errors[-1]:5.0f}", f"{inside:>4}/{len(truth.joints_mm)}"
                voxels = int(result.volume.sum())
            else:
                centre_txt, err_txt, grid_txt, voxels = f"{'not found':>22}", "    -", "      -", 0
            if not args.quiet:
                solve_txt = ""
                if result.solve is not None:
                    solve_txt = f"  {result.timings_ms['network']:6.1f} {err:6.1f}"
                print(f"{bundle.index:5d} {bundle.t_s - devices.t0_s:7.3f}  {centre_txt}  {hips_txt}  "
                      f"{err_txt} {grid_txt}  {voxels:7d} "
                      f"{int(bundle.imu_present.sum()):>2}/13  {stage['capture'][-1]:7.1f} "
                      f"{result.timings_ms.get('centre', 0):6.1f} {result.timings_ms.get('volume', 0):6.1f}"
                      f"       {fps:5.1f}{solve_txt}", flush=True)
    except KeyboardInterrupt:
        print("stopped")
    finally:
        capture.close()
        if hub is not None:
            hub.close()
    elapsed = time.perf_counter() - start
    done = len(stage["capture"])
    dropped = sum(c.dropped for c in devices.cameras) // max(n_cams, 1)
    print(f"\n{done} frames in {elapsed:.2f} s: {done / elapsed:.1f} frames/s processed, "
          f"{dropped} camera frames skipped to stay live")
    for k, v in stage.items():
        if v:
            print(f"  {k:8s} median {np.median(v):6.1f} ms   p95 {np.percentile(v, 95):6.1f} ms")
    if errors:
        print(f"  performer found in {len(errors)}/{done} frames; every true joint inside the "
              f"64^3 grid in {sum(fits)}/{len(fits)}; centre to true Hips: median {np.median(errors):.0f} mm, "
              f"p95 {np.percentile(errors, 95):.0f} mm")
    if vision_errors:
        print(f"  joints (DeepFuse {label}, cameras alone, before the IMUs were calibrated) in "
              f"{len(vision_errors)} frames: MPJPE median {np.median(vision_errors):.1f} mm")
    if joint_errors:
        print(f"  joints (DeepFuse {label}, fused with the calibrated IMUs) in {len(joint_errors)} frames: MPJPE "
              f"median {np.median(joint_errors):.1f} mm, p95 {np.percentile(joint_errors, 95):.1f} mm")
    return 0


def _report_calibration(tracking, studio, t_s: float) -> None:
    """One line on the IMU calibration just estimated, scored against the simulator's truth."""
    if tracking.calibration is None:
        print(f"IMU calibration failed at {t_s:.1f} s: {tracking.error}; the solve stays on the cameras alone")
        return
    from core.rotations import from_wxyz

    truth = studio.truth(t_s).bone_wxyz
    est = tracking.calibration.bone_wxyz(studio.imus.measure(
        studio.poses, np.full(13, t_s), np.arange(13), np.arange(13)).quat_wxyz)
    ok = np.isfinite(est[:, 0])
    deg = np.degrees((from_wxyz(est[ok]).inv() * from_wxyz(truth[ok])).magnitude())
    offset = "not found yet" if tracking.offset is None else f"{tracking.offset_s * 1e3:.0f} ms"
    print(f"IMUs calibrated from the routine at {t_s:.1f} s: bone orientations off the truth by median "
          f"{np.median(deg):.1f}°, worst {deg.max():.1f}°; IMU time offset {offset} "
          f"(simulated: {studio.config.imu.latency_s * 1e3:.0f} ms)")
