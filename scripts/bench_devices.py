"""The real-camera live path on this machine: colour footage of the
simulated studio (core.sim.footage: lossless video per camera, the stage
empty for the first 1.5 s) played as live cameras on the host clock,
segmented on each camera's capture thread against the background captured
at the start, and solved live by the network, headless (no window).

For each configuration (cameras x frame rate) one row: what each camera
delivered (frames/s, frames skipped to keep up), how many cameras the live
bundles held, the solve rate, the latency from a frame's time to its
result, the silhouettes' IoU against the true masks and the joints' error
(vision only: no IMU calibration). Then the per-frame costs on one core:
decoding a frame and cutting its silhouette. A benchmark, not a test.

    .venv/bin/python scripts/bench_devices.py
    .venv/bin/python scripts/bench_devices.py --config 4x5 --config 8x10 --seconds 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import machine_line  # noqa: E402

from core.session.opening import open_device_session  # noqa: E402
from core.session.studios import DeviceSetup  # noqa: E402
from core.sim.footage import render_footage  # noqa: E402

EMPTY_S = 1.5


def cameras_of(n: int) -> tuple[int, ...]:
    """n of the standard studio's 8 cameras, spread around the area."""
    return tuple(int(k) for k in np.round(np.linspace(0, 8, n, endpoint=False)).astype(int) % 8)


def run(n: int, fps: float, seconds: float, model: str, folder: Path) -> dict:
    footage = render_footage(folder, seconds=seconds + EMPTY_S + 2.0, fps=fps, empty_s=EMPTY_S,
                             cameras=cameras_of(n), seed=7)
    setup = DeviceSetup(cameras=(str(folder),), fps=fps, background_frames=max(2, int(EMPTY_S * fps) - 2))
    session = open_device_session(setup, footage.rig, model)
    frames = []
    session.events.frame.connect(frames.append)
    session.prepare()
    session.start()
    time.sleep(seconds + EMPTY_S)
    status = session.camera_status()
    session.stop()
    ious, errors, counts, latency = [], [], [], []
    for f in frames:
        t_rec = session.studio.footage.recorded_time(f.bundle.t_s)
        i = footage.frame_at(t_rec)
        if i < footage.empty_frames or i >= len(footage.masks):
            continue
        present = [m for m in f.bundle.silhouettes if m is not None]
        counts.append(len(present))
        latency.append((f.t_ready_s - f.bundle.t_s) * 1e3)
        ious.extend(float((m & t).sum() / max(1, (m | t).sum()))
                    for m, t in zip(f.bundle.silhouettes, footage.masks[i]) if m is not None)
        if f.result.solve is not None:
            truth = footage.studio.truth(t_rec).joints_mm
            errors.append(float(np.linalg.norm(f.result.solve.joints_mm - truth, axis=1).mean()))
    live_s = seconds
    return {"cams": n, "fps": fps, "delivered": np.mean([s.fps for s in status]),
            "skipped": sum(c.dropped for c in session.studio.cameras) / n,
            "in_bundle": np.mean(counts) if counts else float("nan"), "solved": len(errors) / live_s,
            "latency": np.median(latency) if latency else float("nan"),
            "iou": np.mean(ious) if ious else float("nan"),
            "mpjpe": np.median(errors) if errors else float("nan")}


def per_frame_costs(folder: Path) -> tuple[float, float]:
    """(decode ms, segment ms) per 480x270 frame, one thread."""
    from core.silhouette import make_background_model
    from plugins.cameras.video_files import VideoFiles

    cam = VideoFiles(folder, realtime=False).cameras[0]
    cam.open()
    t0 = time.perf_counter()
    images = [cam.read().image for _ in range(30)]
    decode = (time.perf_counter() - t0) / 30 * 1e3
    cam.close()
    model = make_background_model("plate")
    model.capture(images[:5])
    t0 = time.perf_counter()
    for img in images[10:30]:
        model.segment(img)
    return decode, (time.perf_counter() - t0) / 20 * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append", default=None, metavar="CAMSxFPS",
                    help="cameras x frames/s, repeatable (default 4x5, 4x10, 8x5, 8x10)")
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds of performer per configuration")
    ap.add_argument("--model", default="lite", help="live model: lite, full, none or a file")
    args = ap.parse_args()
    configs = [tuple(float(v) for v in c.lower().split("x")) for c in (args.config or ["4x5", "4x10", "8x5", "8x10"])]
    print(machine_line())
    print(f"footage: the standard studio's cameras at 480x270, FFV1; {args.seconds:g} s of performer after "
          f"{EMPTY_S:g} s of empty stage; live model {args.model}\n")
    print("| cameras | asked fps | delivered fps | skipped per camera | cameras per bundle | solved fps "
          "| latency ms | silhouette IoU | MPJPE mm |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (n, fps) in enumerate(configs):
            r = run(int(n), fps, args.seconds, args.model, Path(tmp) / f"f{i}")
            print(f"| {r['cams']} | {r['fps']:g} | {r['delivered']:.1f} | {r['skipped']:.0f} | {r['in_bundle']:.1f} "
                  f"| {r['solved']:.1f} | {r['latency']:.0f} | {r['iou']:.3f} | {r['mpjpe']:.0f} |", flush=True)
        decode, segment = per_frame_costs(Path(tmp) / "f0")
    print(f"\nper camera frame, one thread: decode {decode:.1f} ms, silhouette {segment:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
