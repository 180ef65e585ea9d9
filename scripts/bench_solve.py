"""The skeleton solve against the raw network joints, on recorded and procedural motion.

    .venv/bin/python scripts/bench_solve.py [--model lite] [--seconds 6] [--sequences 4]
        [--motion-dir ../shared/motion/cmu] [--cache DIR] [--threads 2]

Runs the network once per sequence at 15 frames/s (held-out performers in the
standard studio, the IMUs calibrated from the routine; cached under --cache),
then scores, per benchmark: the raw network joints (rotations from the
frame-by-frame analytic fit, what exports used before), the live solve
(one frame at a time), and the solve with the IMUs alone. Prints a table of
MPJPE, the worst tenth of frames, jitter (mean acceleration error), the
largest frame-to-frame turn where the truth turns under 10 degrees, and
foot skate. The numbers go to docs/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.deepfuse.evaluate import Benchmark, cmu_heldout  # noqa: E402
from core.deepfuse.weights import load_weights, shipped_model_path  # noqa: E402
from core.solve.bench import raw_rotations, record_sequences, score  # noqa: E402
from core.solve.live import solve_sequence  # noqa: E402
from core.solve.metrics import MotionQuality  # noqa: E402
from core.solve.take import fit_globals, solve_take  # noqa: E402

FPS = 15.0


def _mean(rows: list[MotionQuality]) -> dict:
    keys = ("mpjpe_mm", "worst_tenth_mm", "accel_error_mm_s2", "max_turn_deg", "turns_over_30",
            "foot_skate_mm", "relative_skate_mm")
    out = {}
    for k in keys:
        v = np.array([getattr(r, k) for r in rows], float)
        out[k] = float(np.nanmax(v)) if k == "max_turn_deg" else float(np.nansum(v)) if k == "turns_over_30" \
            else float(np.nanmean(v))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lite")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--motion-dir", default=os.environ.get("FUSECAP_MOTION_DIR"))
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "fusecap" / "solve-bench"))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", choices=("procedural", "cmu"), default=None)
    args = ap.parse_args(argv)

    path = Path(args.model) if Path(args.model).exists() else shipped_model_path(args.model)
    model, _ = load_weights(path)
    benches = []
    if args.only in (None, "procedural"):
        benches.append(("procedural", Benchmark(seconds=args.seconds, fps=FPS, sequences_per_kind=args.sequences,
                                                random_rigs=False)))
    if args.motion_dir and args.only in (None, "cmu"):
        b = cmu_heldout(args.motion_dir, seconds=args.seconds, fps=FPS)
        clips = b.motion_clips[:: max(1, len(b.motion_clips) // args.sequences)][: args.sequences]
        benches.append(("cmu-heldout", Benchmark(seconds=args.seconds, fps=FPS, motion_clips=clips)))
    header = ("| benchmark | estimate | MPJPE mm | worst 10 % mm | jitter m/s² | max turn ° | turns > 30° "
              "| foot skate mm | skate beyond truth mm |")
    lines = [header, "|" + "---|" * 9]
    for label, bench in benches:
        t0 = time.perf_counter()
        recs = record_sequences(model, bench, Path(args.cache) / f"{label}-{args.seconds:g}s-{path.stem}",
                                threads=args.threads)
        print(f"{label}: {len(recs)} sequences recorded in {time.perf_counter() - t0:.0f} s", flush=True)
        rows: dict[str, list[MotionQuality]] = {"raw network": [], "live solve": [], "take solve": [],
                                                "IMUs only": []}
        solve_s = []
        for rec in recs:
            rows["raw network"].append(score(rec, rec.joints_mm, raw_rotations(rec)))
            t1 = time.perf_counter()
            pos, glob, _ = solve_sequence(rec.times_s, rec.joints_mm, rec.confidence, rec.bone_wxyz)
            solve_s.append((time.perf_counter() - t1) / len(rec.times_s))
            rows["live solve"].append(score(rec, pos, glob))
            fit = solve_take(rec.times_s, rec.joints_mm, rec.bone_wxyz, rec.confidence)
            rows["take solve"].append(score(rec, fit.positions_mm, fit_globals(fit)))
            first = int(np.flatnonzero(np.isfinite(rec.joints_mm[:, 0, 0]))[0])
            imu_only = rec.joints_mm.copy()
            imu_only[first + 1:] = np.nan   # the cameras see one frame, then none
            pos, glob, _ = solve_sequence(rec.times_s, imu_only, rec.confidence, rec.bone_wxyz)
            rows["IMUs only"].append(score(rec, pos, glob))
        print(f"{label}: live solve {1e3 * np.mean(solve_s):.1f} ms a frame", flush=True)
        for name, rs in rows.items():
            m = _mean(rs)
            lines.append(f"| {label} | {name} | {m['mpjpe_mm']:.1f} | {m['worst_tenth_mm']:.1f} | "
                         f"{m['accel_error_mm_s2'] / 1000:.2f} | {m['max_turn_deg']:.0f} | {m['turns_over_30']:.0f} | "
                         f"{m['foot_skate_mm']:.1f} | {m['relative_skate_mm']:.1f} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
