"""`main.py calibrate FOLDER`: calibrate cameras from recorded board views.

FOLDER holds one folder of images per camera, or one video per camera (the
layouts anipose and FreeMoCap use; core/calibration/recordings.py). The board
is given as the definition `main.py board` writes beside the printable file
(FILE.pdf.json), or by its numbers. Every lens is started from its own
camera's views and refined together with the rig (core/calibration/extrinsics.py,
`calibrate_cameras`, the function the desktop app's Cameras panel uses too).
It prints each camera's reprojection error and the verdict, and writes
FuseCap's calibration (JSON, with the board and the quality report) and
aniposelib's camera-group TOML.

The world: with --floor, the moment the board lay flat on the floor, face up
(origin at its centre, X along its rows, Z up, mm). Without one, or when no
camera found that board, the world is the --reference camera's frame (the
first camera's by default); the calibration is still written, and the floor
is set later in the app (from the board on the floor, or from the performer
standing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_calibrate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="a folder of camera folders of images, or of one video per camera")
    p.add_argument("--board", type=Path, help="the board definition (FILE.json beside the board `main.py board` "
                   "wrote, or a FuseCap calibration made with the board)")
    p.add_argument("--squares", default=None, metavar="XxY", help="the board's squares across and down, e.g. 7x5 "
                   "(instead of --board)")
    p.add_argument("--square-mm", type=float, default=None, help="side of a square as printed, mm")
    p.add_argument("--marker-mm", type=float, default=None, help="ArUco marker side, mm (default 3/4 of a square)")
    p.add_argument("--dictionary", default="DICT_5X5_100", help="ArUco dictionary (default DICT_5X5_100)")
    p.add_argument("--legacy", action="store_true", help="the board uses OpenCV's pre-4.6 ChArUco layout")
    p.add_argument("--out", type=Path, default=None,
                   help="FuseCap calibration to write (default FOLDER/calibration.json)")
    p.add_argument("--toml", type=Path, default=None,
                   help="aniposelib camera-group TOML to write (default FOLDER/calibration.toml)")
    p.add_argument("--floor", default=None, metavar="MOMENT",
                   help="the moment the board lay on the floor: an image's file name, a video frame number, "
                   "'first' or 'last' (default: no floor; the world is the reference camera's frame)")
    p.add_argument("--reference", default=None, metavar="CAMERA",
                   help="the camera whose frame is the world when there is no floor (default the first)")
    p.add_argument("--step", type=int, default=1, help="use every N-th frame of videos or image (default 1)")
    for flag, what in (("fix-principal-point", "keep the principal point at the image centre"),
                       ("fix-aspect-ratio", "keep square pixels (fy = fx)"),
                       ("fix-tangential", "keep the tangential distortion at zero")):
        p.add_argument(f"--{flag}", nargs="*", default=None, metavar="CAMERA",
                       help=f"{what}, for the cameras named (all cameras when none is named)")
    p.add_argument("--free-k3", action="store_true", help="fit k3 too (only with views reaching the image corners)")


def _board(args: argparse.Namespace):
    from core.calibration.board import BoardError, BoardSpec

    if args.board is not None:
        try:
            doc = json.loads(args.board.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise BoardError(f"{args.board}: cannot read the board definition ({exc})") from None
        if isinstance(doc, dict) and doc.get("format") == "fusecap-calibration":
            doc = doc.get("board")
            if doc is None:
                raise BoardError(f"{args.board}: this calibration holds no board (it was imported)")
        try:
            return BoardSpec.from_dict(doc)
        except (BoardError, OverflowError) as exc:  # OverflowError: a count of squares like 1e400
            raise BoardError(f"{args.board}: {exc}") from None
    if args.squares is None or args.square_mm is None:
        raise BoardError("give the board: --board FILE.json, or --squares XxY and --square-mm")
    try:
        nx, ny = (int(v) for v in args.squares.lower().split("x"))
    except ValueError:
        raise BoardError(f"--squares takes two numbers like 7x5, not {args.squares!r}") from None
    return BoardSpec(kind="charuco", squares_x=nx, squares_y=ny, square_mm=args.square_mm,
                     marker_mm=args.marker_mm if args.marker_mm is not None else 0.75 * args.square_mm,
                     dictionary=args.dictionary, legacy=args.legacy)


def _freedom(args: argparse.Namespace, names: list[str]) -> dict:
    from core.calibration.bundle import LensFreedom

    def named(flag, option):
        if option is None:
            return set()
        unknown = sorted(set(option) - set(names))
        if unknown:
            raise ValueError(f"{flag}: no camera named {', '.join(unknown)}; the cameras are {', '.join(names)}")
        return set(option) if option else set(names)

    pp, aspect, tangential = (named("--fix-principal-point", args.fix_principal_point),
                              named("--fix-aspect-ratio", args.fix_aspect_ratio),
                              named("--fix-tangential", args.fix_tangential))
    return {n: LensFreedom(fix_principal_point=n in pp, fix_aspect_ratio=n in aspect, fix_tangential=n in tangential,
                           fix_k3=not args.free_k3) for n in names}


def _floor_moment(arg: str | None, labels: list[str]) -> int | None:
    """The floor's moment among the recording's moments (their labels: file names or "frame N")."""
    if arg is None or arg == "none":
        return None
    if arg == "first":
        return 0
    if arg == "last":
        return len(labels) - 1
    if arg in labels:
        return labels.index(arg)
    if arg.isdigit() and f"frame {int(arg)}" in labels:
        return labels.index(f"frame {int(arg)}")
    raise ValueError(f"--floor {arg}: no such moment (an image's file name, a video frame number read with "
                     f"--step, 'first' or 'last')")


def run_calibrate(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from app.cli.progress import progress_bar
    from core.calibration.board import BoardError
    from core.calibration.extrinsics import calibrate_cameras
    from core.calibration.intrinsics import CalibrationError
    from core.calibration.quality import assess
    from core.calibration.recordings import RecordingError, find_recording, read_views
    from core.calibration.steps import write_calibration
    from core.take.recorder import describe_os_error

    try:
        board = _board(args)
    except BoardError as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 2
    if board.kind != "charuco":
        print("calibrate: several cameras need a ChArUco board (a chessboard looks the same turned half round)",
              file=sys.stderr)
        return 2
    out = args.out if args.out is not None else args.folder / "calibration.json"
    toml = args.toml if args.toml is not None else args.folder / "calibration.toml"
    for flag, path in (("--out", out), ("--toml", toml)):
        if path.suffix.lower() not in (".json", ".toml"):  # said now, not after the whole calibration
            print(f"calibrate: {flag} {path}: save a calibration as .json (FuseCap) or .toml (anipose / FreeMoCap)",
                  file=sys.stderr)
            return 2
    t0 = time.monotonic()
    try:
        rec = find_recording(args.folder, step=args.step)
        # The options that name cameras and moments are checked before the board is looked for in every image.
        floor = _floor_moment(args.floor, rec.moments)
        freedom = _freedom(args, rec.names)
        if args.reference is not None and args.reference not in rec.names:
            raise ValueError(f"--reference {args.reference}: no such camera; the cameras are {', '.join(rec.names)}")
        print(f"{len(rec.names)} cameras ({', '.join(rec.names)}), {len(rec.moments)} moments of {rec.kind}; "
              f"board {board.squares_x}x{board.squares_y} squares of {board.square_mm:g} mm")
        with progress_bar("finding the board") as report:
            views = read_views(rec, board, report)
        for name in rec.unreadable:
            print(f"note: could not read {name}; skipped")
        counts = views.counts()
        print("board found in " + ", ".join(f"{n} {c}" for n, c in zip(views.names, counts))
              + f" views; {views.shared()} moments seen by two cameras or more")
        with progress_bar("calibrating") as report:
            res = calibrate_cameras(views, board, freedom=freedom, floor_moment=floor, reference=args.reference,
                                    progress=report)
    except (RecordingError, CalibrationError, ValueError) as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - t0
    distance = None if res.floor_aligned else res.board_distance_mm()
    report_q = assess(res.rig, res.camera_rms_px, distance_mm=distance)
    print(f"{'camera':<12} {'views':>5} {'focal px':>9} {'centre px':>15} {'RMS px':>7} {'at 1 m+ mm':>10}  verdict")
    for cam, n, q in zip(res.rig, res.observations, report_q.cameras):
        mm = "-" if q.reprojection_mm is None else f"{q.reprojection_mm:.2f}"
        px = "-" if q.reprojection_px is None else f"{q.reprojection_px:.2f}"
        print(f"{cam.name:<12} {int(n):>5} {(cam.K[0, 0] + cam.K[1, 1]) / 2:>9.1f} "
              f"{cam.K[0, 2]:>7.1f},{cam.K[1, 2]:>7.1f} {px:>7} {mm:>10}  {q.verdict}")
    rejected = f", {len(res.rejected)} views left out" if res.rejected else ""
    print(f"RMS {res.rms_px:.2f} px over all corners (from {res.initial_rms_px:.2f} before the adjustment"
          f"{rejected}); {report_q.summary}")
    if res.floor_aligned:
        print(f"world: the board on the floor ({views.labels[floor]}): origin at its centre, Z up, mm")
    else:
        print(f"world: {res.world}'s frame" + (f" ({res.floor_message})" if res.floor_message else
                                               "; set the floor in the app, or calibrate again with --floor"))
    quality = {"kind": "rig", **report_q.to_dict(), "rms_px": res.rms_px, "views": [int(n) for n in res.observations],
               "calibration_size": list(res.rig[0].size), "world": res.world, "lens_start": list(res.lens_start),
               "lens_freedom": {n: f.to_dict() for n, f in freedom.items()}, "source": str(args.folder),
               "seconds": round(seconds, 1)}
    try:
        write_calibration(out, res.rig, board, quality)
        write_calibration(toml, res.rig, board, quality)
    except OSError as exc:
        print(f"calibrate: cannot write the calibration: {describe_os_error(exc, exc.filename or '')}",
              file=sys.stderr)
        return 1
    print(f"wrote {out} and {toml} in {seconds:.1f} s")
    return 0 if np.isfinite(res.rms_px) else 1
