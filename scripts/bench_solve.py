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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.deepfuse.evaluate import Benchmark, cmu_heldout  # noqa: E402
from core.deepfuse.weights import load_weights, shipped_model_path  # noqa: E402
from core.solve.bench import record_sequences, score_sequences, solve_table  # noqa: E402
from core.take.process import file_sha256  # noqa: E402

FPS = 15.0


class _Tail:
    """A benchmark's last n sequences (the validation ones)."""

    def __init__(self, bench: Benchmark, n: int) -> None:
        self._bench, self._n = bench, n

    def sequences(self):
        return self._bench.sequences()[-self._n:]

    def __getattr__(self, name):
        return getattr(self._bench, name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lite")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--motion-dir", default=os.environ.get("FUSECAP_MOTION_DIR"))
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "fusecap" / "solve-bench"))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", choices=("procedural", "cmu"), default=None)
    ap.add_argument("--validation", action="store_true",
                    help="other sequences than the default ones (procedural seeds 4-7, the CMU clips between "
                    "the default picks): for checking settings chosen on the default ones")
    ap.add_argument("--planted", action="store_true",
                    help="the simulated performer's feet held still on the floor (core.sim.motion.planting), "
                    "so that foot skate can be judged; procedural motion only (the CMU clips are kept on "
                    "stage by taking their travel off, which planted feet cannot do)")
    args = ap.parse_args(argv)
    if args.planted:
        args.only, args.motion_dir = "procedural", None

    path = Path(args.model) if Path(args.model).exists() else shipped_model_path(args.model)
    model, _ = load_weights(path)
    weights_sha = file_sha256(path)
    benches = []
    if args.only in (None, "procedural"):
        n = args.sequences * (2 if args.validation else 1)
        proc = Benchmark(seconds=args.seconds, fps=FPS, sequences_per_kind=n, random_rigs=False,
                         planted_feet=args.planted)
        if args.validation:

            proc = _Tail(proc, args.sequences)
        benches.append(("procedural", proc))
    if args.motion_dir and args.only in (None, "cmu"):
        b = cmu_heldout(args.motion_dir, seconds=args.seconds, fps=FPS)
        step = max(1, len(b.motion_clips) // args.sequences)
        clips = b.motion_clips[step // 2 if args.validation else 0:: step][: args.sequences]
        benches.append(("cmu-heldout", Benchmark(seconds=args.seconds, fps=FPS, motion_clips=clips)))
    results = {}
    for label, bench in benches:
        label = f"{label} (validation)" if args.validation else label
        label = f"{label} (planted)" if args.planted else label
        t0 = time.perf_counter()
        # The cache is the weights' own: a new file under the same name records afresh.
        name = (f"{label.split()[0]}-{args.seconds:g}s-{path.stem}-{weights_sha[:12]}"
                + ("-planted" if args.planted else ""))
        recs = record_sequences(model, bench, Path(args.cache) / name,
                                threads=args.threads)
        print(f"{label}: {len(recs)} sequences recorded in {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        results[label] = score_sequences(recs)
        frames = sum(len(r.times_s) for r in recs)
        print(f"{label}: scored in {time.perf_counter() - t0:.0f} s ({frames} frames)", flush=True)
    print(solve_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
