"""`main.py export TAKE --bvh FILE --csv FILE`: a take to animation tools.

The joints (the newest offline solve, else the live solve) are filtered
(zero-phase by default; `--filter off` exports them as solved), fitted to a
skeleton with the performer's median bone lengths and per-frame rotations
(IMU twist where a sensor sits on the bone), and written as BVH and CSV.
docs/EXPORT.md describes the files column by column."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("take", type=Path, help="the take folder")
    p.add_argument("--bvh", type=Path, help="write a BVH file here")
    p.add_argument("--csv", type=Path, help="write the joints CSV here, with FILE_rotations.csv and "
                   "FILE_raw.csv beside it")
    p.add_argument("--units", choices=("cm", "m", "mm"), default="cm", help="BVH units (default cm)")
    p.add_argument("--solve", default=None, metavar="N|live",
                   help="which joints: an offline solve version, or live (default: the newest offline "
                   "solve, else the live one)")
    p.add_argument("--filter", choices=("zero-phase", "off"), default="zero-phase",
                   help="temporal smoothing before the fit (default zero-phase)")
    p.add_argument("--cutoff", type=float, default=6.0, metavar="HZ",
                   help="zero-phase smoothing cutoff frequency (default 6 Hz)")
    p.add_argument("--no-imu", action="store_true", help="ignore the IMUs' twist (swing from the joints only)")


def split_csv_paths(path: Path) -> tuple[Path, Path, Path]:
    """The joints CSV and the rotations and raw CSVs beside it."""
    stem = path.with_suffix("") if path.suffix.lower() == ".csv" else path
    return (path if path.suffix else path.with_suffix(".csv"),
            stem.parent / f"{stem.name}_rotations.csv", stem.parent / f"{stem.name}_raw.csv")


def run_export(args: argparse.Namespace) -> int:
    from app.cli.progress import progress_bar
    import numpy as np

    from core.export import write_bvh, write_joints_csv, write_raw_csv, write_rotations_csv
    from core.filters import FilterConfig, apply_filter
    from core.posefit import fit_pose
    from core.take.take import Take, TakeError

    if args.bvh is None and args.csv is None:
        print("nothing to write: give --bvh FILE and/or --csv FILE", file=sys.stderr)
        return 2
    for out in (args.bvh, args.csv):
        if out is not None and out.parent and not out.parent.is_dir():
            print(f"error: the folder {out.parent} does not exist", file=sys.stderr)
            return 1
    try:
        take = Take(args.take)
        if args.solve is None:
            joints, which = take.best_joints()
        elif args.solve == "live":
            joints, which = take.live_joints(), "live solve"
            if joints is None or len(joints) == 0:
                raise TakeError(f"{take.root}: no live-solved joints")
        else:
            try:
                version = int(args.solve)
            except ValueError:
                print(f"--solve takes a version number or live, not {args.solve!r}", file=sys.stderr)
                return 2
            joints, which = take.solved_joints(version), f"offline solve {version:03d}"
        if which == "live solve":  # the live path skipped frames: put its rows on the take's frames
            joints = joints.on_frames(take.frame_times(), 0.5 / take.fps)
        calib = None if args.no_imu else take.imu_calibration
        bones = None
        if calib is not None:
            quats, _ = take.imu_at(joints.times_s)
            bones = np.stack([calib.bone_wxyz(q) for q in quats]) if len(quats) else None
    except TakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for p in take.problems:
        print(f"note: {p}")
    print(f"exporting {len(joints)} frames ({which}) of {take.root}")
    config = FilterConfig(kind="off") if args.filter == "off" else FilterConfig(kind="zero-phase",
                                                                                cutoff_hz=args.cutoff)
    try:
        smoothed = apply_filter(config, joints.times_s, joints.joints_mm)
    except ValueError as exc:
        print(f"note: no smoothing ({exc})")
        smoothed = joints.joints_mm
    if not np.isfinite(joints.joints_mm).any():
        print("error: no frame of the take has a solved performer; nothing to export", file=sys.stderr)
        return 1
    try:
        with progress_bar("fitting the skeleton") as report:
            fit = fit_pose(joints.times_s, smoothed, bones, progress=report, confidence=joints.confidence)
    except ValueError as exc:
        print(f"error: cannot fit a skeleton to this take: {exc}", file=sys.stderr)
        return 1
    rep = fit.report()
    raw_d = np.linalg.norm(fit.positions_mm - joints.joints_mm, axis=-1)
    raw_d = raw_d[fit.valid][np.isfinite(raw_d[fit.valid])]
    print(f"pose fit over {rep.frames}/{fit.num_frames} solved frames: fitted joints to the "
          f"{'smoothed' if args.filter != 'off' else 'solved'} ones mean {rep.mean_mm:.1f} mm "
          f"(p95 {rep.p95_mm:.1f}, max {rep.max_mm:.1f})"
          + (f"; to the raw network joints mean {raw_d.mean():.1f} mm" if args.filter != "off" and raw_d.size else ""))
    try:
        if args.bvh is not None:
            with progress_bar("writing BVH") as report:
                write_bvh(args.bvh, fit, take.fps, units=args.units, progress=report)
            print(f"wrote {args.bvh} ({args.units}, {take.fps:g} fps, {fit.num_frames} frames)")
        if args.csv is not None:
            paths = split_csv_paths(args.csv)
            with progress_bar("writing CSV") as report:
                write_joints_csv(paths[0], fit, progress=report)
                write_rotations_csv(paths[1], fit, progress=report)
                write_raw_csv(paths[2], joints.times_s, joints.joints_mm, joints.confidence, progress=report)
            print("wrote " + ", ".join(str(p) for p in paths))
    except OSError as exc:
        from core.take.recorder import describe_os_error

        print(f"error: cannot write the export: {describe_os_error(exc, exc.filename or '')}", file=sys.stderr)
        return 1
    return 0
