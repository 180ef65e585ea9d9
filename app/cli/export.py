"""`main.py export TAKE --bvh FILE --glb FILE --csv FILE`: a take to animation tools.

The joints (the newest offline solve, else the live solve) go through the
whole-take skeleton solve (docs/SOLVE.md) and are written as BVH, glTF (the
character skinned to the skeleton) and CSV;
an offline solve that `process` stored with its skeleton is written from
that skeleton when the export's settings are the ones it was solved with
(no smoothing, the feet planted or not, --no-imu). --target picks the tool
the files are for (joint names, and the BVH's units; Blender by default). docs/EXPORT.md
describes the files column by column."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("take", type=Path, help="the take folder")
    p.add_argument("--bvh", type=Path, help="write a BVH file here")
    p.add_argument("--glb", type=Path, help="write a glTF 2.0 binary here: the character skinned to the skeleton "
                   "and its animation (metres, Y up)")
    p.add_argument("--csv", type=Path, help="write the joints CSV here, with FILE_rotations.csv and "
                   "FILE_raw.csv beside it")
    from core.export.targets import DEFAULT_TARGET, TARGETS

    p.add_argument("--target", choices=tuple(TARGETS), default=DEFAULT_TARGET,
                   help="the tool the files are for: joint names and the BVH's units ("
                   + "; ".join(f"{t.name}: {t.naming} names in {t.units}" for t in TARGETS.values())
                   + f"; default {DEFAULT_TARGET})")
    p.add_argument("--units", choices=("m", "cm", "mm"), default=None,
                   help="BVH units instead of the target's")
    p.add_argument("--solve", default=None, metavar="N|live",
                   help="which joints: an offline solve version, or live (default: the newest offline "
                   "solve, else the live one)")
    p.add_argument("--filter", choices=("zero-phase", "off"), default="off",
                   help="extra smoothing of the joints before the skeleton solve (default off: the solve's "
                   "motion prior smooths)")
    p.add_argument("--cutoff", type=float, default=6.0, metavar="HZ",
                   help="zero-phase smoothing cutoff frequency (default 6 Hz)")
    p.add_argument("--no-imu", action="store_true", help="ignore the IMUs (the skeleton from the joints only)")
    p.add_argument("--plant-feet", action=argparse.BooleanOptionalAction, default=True,
                   help="hold each foot still while it is on the floor (default; --no-plant-feet: follow the "
                   "network's feet; docs/SOLVE.md)")


def run_export(args: argparse.Namespace) -> int:
    from app.cli.progress import progress_bar
    from core.export.take_export import export_take
    from core.filters import FilterConfig
    from core.take.layout import TakeError
    from core.take.take import Take

    if args.bvh is None and args.csv is None and args.glb is None:
        print("nothing to write: give --bvh FILE, --glb FILE and/or --csv FILE", file=sys.stderr)
        return 2
    smoothing = FilterConfig(kind="off") if args.filter == "off" else FilterConfig(kind="zero-phase",
                                                                                   cutoff_hz=args.cutoff)
    try:
        take = Take(args.take)
        print(f"exporting {take.root}")
        with progress_bar("solving the skeleton and writing") as report:
            rep = export_take(take, args.bvh, args.csv, args.units, args.solve, smoothing,
                              use_imu=not args.no_imu, progress=report, plant_feet=args.plant_feet,
                              target=args.target, glb=args.glb)
    except (TakeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        from core.take.recorder import describe_os_error

        print(f"error: cannot write the export: {describe_os_error(exc, exc.filename or '')}", file=sys.stderr)
        return 1
    for note in rep.notes:
        print(f"note: {note}")
    lengths = rep.bone_lengths_mm
    if rep.which == "IMUs only":
        print(f"{rep.frames} frames (IMUs only); skeleton {rep.skeleton}, over {rep.solved_frames}/{rep.frames} "
              f"frames with sensors; a foot on the floor in {rep.planted_pct:.0f} % of frames")
    else:
        print(f"{rep.frames} frames ({rep.which}); skeleton {rep.skeleton}, over {rep.fit.frames}/{rep.frames} "
              f"solved frames: "
              f"solved joints to the network's mean {rep.fit.mean_mm:.1f} mm (p95 {rep.fit.p95_mm:.1f}, "
              f"max {rep.fit.max_mm:.1f}); feet planted in {rep.planted_pct:.0f} % of frames"
              + (f"; to the raw network joints mean {rep.to_raw_mm:.1f} mm" if args.filter != "off" else ""))
    if lengths is not None:
        from core import skeleton as sk

        shown = ("Spine", "LeftArm", "LeftForeArm", "LeftHand", "LeftLeg", "LeftFoot")
        print("bone lengths (mm): " + ", ".join(
            f"{sk.JOINTS[sk.PARENTS[sk.JOINT_INDEX[n]]]}-{n} {lengths[sk.JOINT_INDEX[n]]:.0f}" for n in shown))
    print("wrote " + ", ".join(str(p) for p in rep.files)
          + (f" (BVH for {rep.target} in {rep.units}, {take.fps:g} fps)" if args.bvh is not None else ""))
    return 0
