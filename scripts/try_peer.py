"""End-to-end check of the peer calibration (scripts/peerlib.py): render board
views of a known rig with FuseCap's renderer, calibrate them with aniposelib in
its own environment, and compare its cameras with the truth.

    .venv/bin/python scripts/try_peer.py [--moments 40] [--seed 1] [--squares 7x5] [--legacy]
                                         [--dist K1,K2] [--keep DIR]

The rig: 4 cameras of 1280 x 720 with a 70 degree field of view on a ring 3 m
across, 1.8 m high, aimed at 1 m above the middle, with a little barrel
distortion (k1 -0.05, k2 0.02 as the standard studio's lenses; --dist to
change it); the board 7 x 5 squares of 80 mm walked around the middle and shown
to two neighbouring cameras at a time. (With the cameras 3 m from the middle, an
80 mm square is about 24 px at this size and its markers too small to decode
once the board is turned 45 degrees to two cameras.) A camera that sees fewer
than 6 printed corners at a moment gets no image (aniposelib would find
nothing in it anyway).

aniposelib's world is its own (near its first camera's frame), so its camera
centres are brought onto the true ones by the similarity (rotation,
translation, scale) that fits them best, and the rotation errors are measured
after that rotation. The centre errors are also given for the fit with the
scale held at 1: aniposelib's lengths are the board's millimetres, so its scale
error is a real error of its rig, which the similarity hides.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import peerlib  # noqa: E402

from core.calibration.board import BoardSpec  # noqa: E402
from core.camera.model import Camera  # noqa: E402
from core.camera.rig import CameraRig  # noqa: E402
from core.sim.board_view import board_corners_px, board_pose_facing, render_board_view  # noqa: E402
from core.sim.calibration_scene import similarity  # noqa: E402


def ring_rig(n: int = 4, radius_mm: float = 1500.0, height_mm: float = 1800.0, size=(1280, 720),
             fov_deg: float = 70.0, dist=(-0.05, 0.02, 0.0, 0.0, 0.0)) -> CameraRig:
    focal = size[0] / 2 / np.tan(np.radians(fov_deg) / 2)
    cams = []
    for k in range(n):
        a = 2 * np.pi * k / n + np.pi / n
        cams.append(Camera.look_at([radius_mm * np.cos(a), radius_mm * np.sin(a), height_mm], [0.0, 0.0, 1000.0],
                                   focal, size, dist=np.array(dist), name=f"cam{k + 1}"))
    return CameraRig(tuple(cams))


def pair_poses(rig: CameraRig, board: BoardSpec, count: int, rng: np.random.Generator,
               spread_mm: float = 400.0, max_tilt_deg: float = 20.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Board poses of someone showing the board to two neighbouring cameras at
    once: its face turned towards the midpoint of a random pair of adjacent
    cameras (give or take 15 degrees), tilted and rolled a little. Poses facing
    a random direction (waved_board_poses) rarely face two cameras of a ring of
    four well enough for both to find the board, and a calibration needs the
    cameras to see it together."""
    n = len(rig)
    poses = []
    for _ in range(count):
        k = int(rng.integers(n))
        c = np.r_[rng.uniform(-spread_mm, spread_mm, 2), rng.uniform(700.0, 1300.0)]
        mid = (rig[k].centre + rig[(k + 1) % n].centre) / 2 - c
        a = np.arctan2(mid[1], mid[0]) + np.radians(rng.uniform(-15, 15))
        viewer = c + 1000.0 * np.array([np.cos(a), np.sin(a), 0.0])
        poses.append(board_pose_facing(viewer, c, board, tuple(rng.uniform(-max_tilt_deg, max_tilt_deg, 2)),
                                       rng.uniform(-20, 20)))
    return poses


def render_views(rig: CameraRig, board: BoardSpec, moments: int, seed: int, out: Path) -> dict[str, int]:
    """Board images in the peer's layout: out/<camera>/<moment>.png."""
    rng = np.random.default_rng(seed)
    poses = pair_poses(rig, board, moments, rng)
    counts = {cam.name: 0 for cam in rig}
    for cam in rig:
        (out / cam.name).mkdir(parents=True, exist_ok=True)
    for m, (R, t) in enumerate(poses):
        for cam in rig:
            _, seen = board_corners_px(cam, board, R, t)
            if seen.sum() < 6:
                continue
            img = render_board_view(cam, board, R, t, rng)
            cv2.imwrite(str(out / cam.name / f"{m:04d}.png"), img)
            counts[cam.name] += 1
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moments", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--squares", default="7x5", help="board squares, XxY (80 mm squares, 60 mm markers)")
    ap.add_argument("--dist", default="-0.05,0.02",
                    help="the true lenses' k1,k2 (write --dist=-0.15,0.05 for a negative k1)")
    ap.add_argument("--legacy", action="store_true", help="OpenCV's pre-4.6 ChArUco layout (differs for even Y)")
    ap.add_argument("--keep", type=Path, help="keep the images and the TOML in this folder")
    args = ap.parse_args()
    if not peerlib.peer_available():
        print("the peer environment is missing: run scripts/setup_peer.sh")
        return 1
    k1, k2 = (float(v) for v in args.dist.split(","))
    rig = ring_rig(dist=(k1, k2, 0.0, 0.0, 0.0))
    sx, sy = (int(v) for v in args.squares.lower().split("x"))
    board = BoardSpec(squares_x=sx, squares_y=sy, square_mm=80.0, marker_mm=60.0, dictionary="DICT_5X5_100",
                      legacy=args.legacy)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        counts = render_views(rig, board, args.moments, args.seed, work / "images")
        print("images a camera:", counts)
        got, info = peerlib.run_anipose(work / "images", board, work / "peer")
    print("peer:", info)
    truth = {cam.name: cam for cam in rig}
    names = got.names
    c_true = np.array([truth[n].centre for n in names])
    c_got = np.array([cam.centre for cam in got])
    s, Ra, ta = similarity(c_got, c_true)
    err = np.linalg.norm(s * c_got @ Ra.T + ta - c_true, axis=1)
    # The same fit with the scale held at 1: aniposelib's lengths are the board's mm, so a scale
    # error is a real error of its rig, which the similarity would hide.
    _, Rr, tr = similarity(c_got, c_true, with_scale=False)
    err_rigid = np.linalg.norm(c_got @ Rr.T + tr - c_true, axis=1)
    print(f"similarity scale {s:.5f} (1 = aniposelib's mm are true mm)")
    print("camera  centre mm  rot deg  focal px (true)   focal %   cx, cy (true)              k1, k2 (true)")
    for name, cam, e in zip(names, got, err):
        t = truth[name]
        # world-to-camera rotation of the aligned peer camera: R_got @ Ra.T
        dR = (cam.R @ Ra.T) @ t.R.T
        rot = np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1, 1)))
        f, ft = (cam.K[0, 0] + cam.K[1, 1]) / 2, t.K[0, 0]
        print(f"{name:6s}  {e:9.2f}  {rot:7.3f}  {f:8.1f} ({ft:6.1f})  {100 * (f - ft) / ft:+7.3f}   "
              f"{cam.K[0, 2]:.1f}, {cam.K[1, 2]:.1f} ({t.K[0, 2]:.1f}, {t.K[1, 2]:.1f})   "
              f"{cam.dist8[0]:+.4f}, {cam.dist8[1]:+.4f} ({t.dist8[0]:+.3f}, {t.dist8[1]:+.3f})")
    print(f"centre error: mean {err.mean():.2f} mm, worst {err.max():.2f} mm "
          f"(scale held at 1: mean {err_rigid.mean():.2f}, worst {err_rigid.max():.2f}); "
          f"aniposelib error {info['error_px']:.3f} px; {info['seconds']:.1f} s "
          f"(detection {info['detect_seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
