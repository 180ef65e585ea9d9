"""Silhouettes from colour images: accuracy and speed of the background models.

For each subject (a studio seed: body, motion, outfit and room differ), the
standard 8-camera studio renders colour images (:mod:`core.sim.scene`:
textured room, shaded performer, soft floor shadow, sensor noise, lighting
drifting by up to 15 %). Each camera's background model learns from
``--plate-frames`` frames of the empty studio taken before the performer
enters, then segments every frame of ``--seconds`` of the take; every mask is
scored against the true silhouette by intersection over union. One row per
(subject, model) and a summary row per model. A benchmark, not a test:
nothing is asserted.

    .venv/bin/python scripts/bench_silhouette.py
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import machine_line  # noqa: E402

from core.silhouette import make_background_model, mask_iou  # noqa: E402
from core.sim.scene import SceneRenderer  # noqa: E402
from core.sim.studio import SimulatedStudio, StudioConfig  # noqa: E402


def run_subject(seed: int, args) -> tuple[dict[str, dict], str, tuple[int, int]]:
    studio = SimulatedStudio(StudioConfig(seed=seed, image_scale=args.scale))
    scene = SceneRenderer(studio, seed=seed)
    n_cam = len(scene.cameras)
    empties = [scene.empty_frame(-(args.plate_frames - i) / args.fps) for i in range(args.plate_frames)]
    models = {kind: [make_background_model(kind) for _ in range(n_cam)] for kind in args.models}
    for per_camera in models.values():
        for k, model in enumerate(per_camera):
            model.capture([e[k] for e in empties])
    stats = {kind: {"iou": [], "seconds": 0.0} for kind in args.models}
    times = np.arange(0.0, args.seconds, 1.0 / args.fps)
    for t in times:
        frame = scene.render(float(t))
        for kind, per_camera in models.items():
            for k, model in enumerate(per_camera):
                t0 = time.perf_counter()
                mask = model.segment(frame.images[k])
                stats[kind]["seconds"] += time.perf_counter() - t0
                stats[kind]["iou"].append(mask_iou(mask, frame.masks[k]))
    return stats, scene.outfit_note, (len(times), n_cam)


def row(label: str, kind: str, frames: int, cams: int, iou: np.ndarray, ms: float, note: str) -> str:
    return (f"| {label:>7} | {kind:5} | {frames:6d} | {cams:4d} | {iou.mean():.4f} | {iou.min():.4f} | "
            f"{np.percentile(iou, 5):.4f} | {ms:6.2f} | {note} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)),
                        help="studio seeds, one subject (body, motion, outfit, room) each")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each take")
    parser.add_argument("--fps", type=float, default=10.0, help="frames segmented per second of take")
    parser.add_argument("--plate-frames", type=int, default=20, help="empty-studio frames for the background")
    parser.add_argument("--scale", type=float, default=0.25, help="image scale (0.25: 480x270)")
    parser.add_argument("--models", nargs="+", default=["plate", "mog2"], choices=["plate", "mog2"])
    args = parser.parse_args()

    w, h = SimulatedStudio(StudioConfig(image_scale=args.scale)).rig[0].size
    print("command: " + " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).as_posix()] + sys.argv[1:]))
    print(machine_line())
    print(f"standard studio, {w}x{h}, {args.plate_frames} empty frames for the background, "
          f"{args.seconds:g} s per take at {args.fps:g} frames/s, lighting drifting by up to 15 %")
    print()
    print("| subject | model | frames | cams | mean IoU | min IoU | p5 IoU | ms/cam-frame | outfit |")
    print("|--------:|:------|-------:|-----:|---------:|--------:|-------:|-------------:|:-------|")
    totals = {kind: {"iou": [], "seconds": 0.0} for kind in args.models}
    frames_total = 0
    cams = 0
    for seed in args.seeds:
        stats, note, (frames, cams) = run_subject(seed, args)
        frames_total += frames
        for kind, s in stats.items():
            iou = np.array(s["iou"])
            ms = 1000 * s["seconds"] / iou.size
            print(row(f"seed {seed}", kind, frames, cams, iou, ms, note), flush=True)
            totals[kind]["iou"] += s["iou"]
            totals[kind]["seconds"] += s["seconds"]
    for kind, s in totals.items():
        iou = np.array(s["iou"])
        print(row("all", kind, frames_total, cams, iou, 1000 * s["seconds"] / iou.size, ""))


if __name__ == "__main__":
    main()
