"""Camera calibration against the truth, and against aniposelib on the same
views: a table for docs/CALIBRATION.md.

Each draw is a calibration scene (core.sim.calibration_scene): 4 cameras of
1280x720 with drawn lenses and poses, a 7 x 5 ChArUco board of 80 mm squares
walked through 40 positions (the first moment lying on the floor), drawn blur
and noise. Its images are written as a user records them (a folder per
camera); FuseCap calibrates them as `main.py calibrate` does (find the
recording, detect, `calibrate_cameras`), and aniposelib calibrates the same
folder as `anipose calibrate` does (scripts/peerlib.py; skipped where the
peer's environment, scripts/setup_peer.sh, is missing). Errors are against
the true cameras, centres and rotations after a similarity alignment (each
tool's world is its own). Seconds: FuseCap's from reading the images to the
result; aniposelib's as it reports them (detection and calibration).

Scenarios: "arc" (cameras on a half circle on one side, the board turned
towards them: a home or small-studio set-up), "ring" (cameras all round, the
board turned towards two neighbours at a time: few views a camera),
"centre" (the arc, the board held near the middle: every camera sees it near
its image centre only), "arc-centred" (the arc with every principal point
at the image centre: the lens aniposelib's model assumes).

    .venv/bin/python scripts/bench_camera_calibration.py --draws 4
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import peerlib  # noqa: E402
from benchlib import machine_line  # noqa: E402

from core.calibration.bundle import LensFreedom  # noqa: E402
from core.calibration.extrinsics import calibrate_cameras  # noqa: E402
from core.calibration.intrinsics import CalibrationError  # noqa: E402
from core.calibration.recordings import find_recording, read_views  # noqa: E402
from core.sim.calibration_scene import draw_scene, rig_errors, write_scene  # noqa: E402

SCENARIOS = {"arc": dict(arc_deg=180.0, spread_mm=500.0), "ring": dict(arc_deg=360.0, spread_mm=500.0),
             "centre": dict(arc_deg=180.0, spread_mm=0.0),
             "arc-centred": dict(arc_deg=180.0, spread_mm=500.0, principal_offset=0.0)}
ROWS = (("camera centre, mean mm", "centre", np.mean, "<= 5"),
        ("camera centre, worst mm", "centre", np.max, ""),
        ("rotation, worst deg", "rotation", np.max, ""),
        ("focal (fx+fy)/2, mean %", "focal", np.mean, "<= 0.5"),
        ("focal (fx+fy)/2, worst %", "focal", np.max, ""),
        ("fx or fy, worst %", "focal_xy", np.max, ""),
        ("principal point, mean px", "pp", np.mean, "<= 5"),
        ("principal point, worst px", "pp", np.max, ""),
        ("seconds", "seconds", np.mean, "< 30"))


def errors(truth, rig) -> dict:
    e = rig_errors(truth, rig)
    return {"centre": e.centre_mm, "rotation": e.rotation_deg, "focal": e.focal_pct, "focal_xy": e.focal_xy_pct,
            "pp": e.principal_px}


def fusecap(folder: Path, board, freedom: LensFreedom) -> tuple[dict | None, str]:
    t0 = time.perf_counter()
    try:
        views = read_views(find_recording(folder), board)
        res = calibrate_cameras(views, board, floor_moment=0, freedom=freedom)
    except CalibrationError as exc:
        return None, str(exc)
    return {"rig": res.rig, "seconds": time.perf_counter() - t0, "views": views.counts()}, ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=list(SCENARIOS))
    ap.add_argument("--no-peer", action="store_true", help="FuseCap only")
    ap.add_argument("--fix-principal-point", action="store_true",
                    help="FuseCap keeps every principal point at the image centre (main.py calibrate's option)")
    ap.add_argument("--json", type=Path, default=None, help="also write every draw's numbers here")
    args = ap.parse_args()
    peer = not args.no_peer and peerlib.peer_available()
    t_start = time.time()
    results: dict = {}
    for scenario in args.scenarios:
        rng = np.random.default_rng([args.seed, list(SCENARIOS).index(scenario)])
        results[scenario] = {"fusecap": [], "aniposelib": [], "failed": {"fusecap": 0, "aniposelib": 0}}
        for d in range(args.draws):
            scene = draw_scene(rng, **SCENARIOS[scenario])
            work = Path(tempfile.mkdtemp(prefix="fusecap-calib-"))
            try:
                folder = write_scene(scene, work / "views", rng)
                out, why = fusecap(folder, scene.board, LensFreedom(fix_principal_point=args.fix_principal_point))
                if out is None:
                    results[scenario]["failed"]["fusecap"] += 1
                    print(f"{scenario} draw {d}: FuseCap failed: {why}", file=sys.stderr)
                else:
                    row = {**errors(scene.rig, out["rig"]), "seconds": np.array([out["seconds"]])}
                    results[scenario]["fusecap"].append(row)
                    print(f"{scenario} draw {d}: FuseCap views {out['views']}, centre {row['centre'].round(1)} mm, "
                          f"pp {row['pp'].round(1)} px, {out['seconds']:.1f} s", file=sys.stderr)
                if peer:
                    try:
                        got = peerlib.run_anipose(folder, scene.board, work / "peer")
                    except peerlib.PeerFailed as exc:
                        got = None
                        print(f"{scenario} draw {d}: aniposelib failed: {exc}", file=sys.stderr)
                    if got is None:
                        results[scenario]["failed"]["aniposelib"] += 1
                    else:
                        rig, info = got
                        row = {**errors(scene.rig, rig), "seconds": np.array([info["seconds"]])}
                        results[scenario]["aniposelib"].append(row)
                        print(f"{scenario} draw {d}: aniposelib centre {row['centre'].round(1)} mm, "
                              f"pp {row['pp'].round(1)} px, {info['seconds']:.1f} s", file=sys.stderr)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    command = " ".join(["scripts/bench_camera_calibration.py"] + sys.argv[1:])
    print(f"`{command}`; {machine_line()}; {time.time() - t_start:.0f} s\n")
    for scenario, res in results.items():
        print(f"**{scenario}** ({args.draws} draws; failed: FuseCap {res['failed']['fusecap']}, "
              f"aniposelib {res['failed']['aniposelib'] if peer else '-'})\n")
        print("| measure | FuseCap | aniposelib 0.8.0 | target |")
        print("|---|---|---|---|")
        for label, key, reduce, target in ROWS:
            cells = []
            for tool in ("fusecap", "aniposelib"):
                draws = res[tool]
                cells.append("-" if not draws else f"{float(np.mean([reduce(r[key]) for r in draws])):.2f}")
            print(f"| {label} | {cells[0]} | {cells[1]} | {target} |")
        print()
    if args.json:
        args.json.write_text(json.dumps({s: {t: [{k: v.tolist() for k, v in r.items()} for r in res[t]]
                                             for t in ("fusecap", "aniposelib")} for s, res in results.items()},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
