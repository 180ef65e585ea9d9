"""Speed and agreement of the two simulated bodies (capsule, Anny mesh).

    .venv/bin/python scripts/bench_bodies.py [--frames 60] [--seeds 8]

Prints one table: per body, ms a frame to pose (skin) and to render 8
cameras at 480x270 (the standard studio at scale 0.25), the total and frames
a second, single process; the mesh body's build time for a new seed (Anny
loaded) and its cached load; and the silhouette IoU between the capsule and
mesh drawings of the same subjects and poses, and clothing's area growth.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.camera.rig import standard_studio  # noqa: E402
from core.sim import anny_body as ab  # noqa: E402
from core.sim.bodies import as_capsules, make_subject, pose_body, render_body_silhouettes  # noqa: E402
from core.sim.motion import Performer, ProceduralMotion  # noqa: E402
from core.sim.splits import TEST_SUBJECT_SEEDS  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--seeds", type=int, default=8)
    args = ap.parse_args()
    rig = standard_studio().scaled(0.25)
    seeds = list(TEST_SUBJECT_SEEDS)[: args.seeds]

    t0 = time.perf_counter()
    mesh = {s: make_subject(s, "mesh") for s in seeds}
    t_all = time.perf_counter() - t0
    ab.clear_memory_cache()
    t0 = time.perf_counter()
    for s in seeds:
        ab.load_mesh_subject(s)
    cached_ms = (time.perf_counter() - t0) / len(seeds) * 1000
    new_seed = 10_000_000 + int(time.time()) % 100_000
    t0 = time.perf_counter()
    ab.load_mesh_subject(new_seed, use_cache=False)
    build_s = time.perf_counter() - t0

    rows = []
    frames = {}
    for s in seeds:
        p = Performer(mesh[s].subject, ProceduralMotion(s)).poses_at(np.linspace(0, 20, args.frames // len(seeds) + 1))
        frames[s] = p
    for kind in ("capsule", "mesh"):
        t_pose = t_render = 0.0
        n = 0
        for s in seeds:
            sb = mesh[s] if kind == "mesh" else as_capsules(mesh[s])
            p = frames[s]
            for t in range(len(p)):
                a = time.perf_counter()
                posed = pose_body(sb, p.positions_mm[t], p.rotations[t])
                b = time.perf_counter()
                render_body_silhouettes(posed, rig)
                c = time.perf_counter()
                t_pose += b - a
                t_render += c - b
                n += 1
        tot = (t_pose + t_render) / n * 1000
        rows.append((kind, t_pose / n * 1000, t_render / n * 1000, tot, 1000 / tot))

    ious = []
    for s in seeds:
        p = frames[s]
        for t in range(len(p)):
            m = render_body_silhouettes(pose_body(mesh[s], p.positions_mm[t], p.rotations[t]), rig)
            c = render_body_silhouettes(pose_body(as_capsules(mesh[s]), p.positions_mm[t], p.rotations[t]), rig)
            ious += [(a & b).sum() / max((a | b).sum(), 1) for a, b in zip(m, c)]

    print(f"8 cameras at {rig[0].width}x{rig[0].height}, {sum(len(f) for f in frames.values())} frames "
          f"of {len(seeds)} subjects, single process")
    print(f"{'body':8s} {'skin ms':>8s} {'render ms':>10s} {'total ms':>9s} {'fps':>6s}")
    for r in rows:
        print(f"{r[0]:8s} {r[1]:8.2f} {r[2]:10.2f} {r[3]:9.2f} {r[4]:6.1f}")
    print(f"mesh subjects: first make_subject of {len(seeds)} seeds {t_all:.2f} s "
          f"(builds what the cache lacks); a new seed with Anny loaded {build_s:.2f} s; "
          f"cached load {cached_ms:.1f} ms a seed")
    print(f"silhouette IoU capsule vs mesh, same subject and pose: mean {np.mean(ious):.3f}, "
          f"min {np.min(ious):.3f}, max {np.max(ious):.3f} ({len(ious)} views)")
    clothed = [s for s in seeds if mesh[s].clothing]
    print("clothing:", {s: mesh[s].clothing for s in clothed})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
