"""Calibrate cameras from board images with aniposelib, as `anipose calibrate` does.

Runs under the peer environment's python (.venv-peer, made by
scripts/setup_peer.sh), never FuseCap's: it imports nothing from the FuseCap
repository, so the peer's numbers come from the peer's code alone.

    .venv-peer/bin/python scripts/peer_anipose.py IMAGES_DIR BOARD_JSON OUT_TOML

IMAGES_DIR holds one folder per camera (the folder's name is the camera's,
cameras in name order), each with PNG images; images of the same file name in
different folders were taken at the same moment. BOARD_JSON is a FuseCap board
definition (BoardSpec.to_dict). OUT_TOML receives aniposelib's camera group
(CameraGroup.dump). One JSON line goes to stdout:

    {"seconds": ..., "detect_seconds": ..., "calibrate_seconds": ..., "error_px": ...,
     "cameras": [...], "detections": {...}, "aniposelib": ..., "opencv": ...}

error_px is what calibrate_rows returns and anipose stores as the TOML's
metadata.error: over the board corners seen by two cameras or more, the median
of each corner's mean reprojection error (px), the corner triangulated from
the cameras, not placed by the board's model, so it reads lower than an error
against the board's geometry (on rendered views: 0.05 px here, while the
detected corners lie a median 0.15 px from the true ones). Everything
aniposelib prints goes to stderr. Exit status 1 with a message on stderr when
the images, the board or the calibration fail.

How it follows anipose (anipose 1.1.24, calibrate.py, with aniposelib 0.8.0):

- the board is aniposelib's own CharucoBoard, built from the definition's
  squares, its square and marker sizes in millimetres (aniposelib's lengths are
  in whatever unit the board is given in, so translations come out in mm) and
  the dictionary as aniposelib names them (marker bits, dictionary size);
- detection is the board's own `detect_image` (its CharucoDetector with
  aniposelib's adaptive-threshold settings) on every image, then
  `fill_points_rows`, as `detect_images` does; an image where nothing was found
  gives no row, as in `detect_video`. Rows are numbered by the image's position
  in the sorted list of all file names, so the same moment has the same number
  in every camera, which is how `merge_rows` pairs the cameras' views;
- `CameraGroup.from_names` with the folder names, each camera's size set from
  its images (anipose reads it from the videos), then
  `calibrate_rows(init_intrinsics=True, init_extrinsics=True)` with the
  arguments anipose passes (max_nfev=200, n_iters=6, n_samp_iter=200,
  n_samp_full=1000: aniposelib's defaults), and the metadata anipose writes
  (adjusted = false, error).

Two departures, neither changing the method: numpy's random generator is seeded
(`--seed`, 0 by default), because aniposelib samples the points of each
bundle-adjustment round at random, and a benchmark should be repeatable; and a
board marked `legacy` gets OpenCV's pre-4.6 layout on aniposelib's board object
(aniposelib never sets it, and on such a board with an even number of rows
it finds no corners at all).

What aniposelib fits, for whoever reads its numbers: each camera's matrix starts
from cv2.initCameraMatrix2D over the views with 9 corners or more (principal
point at the image centre, no distortion), and its bundle adjustment refines
the camera's pose, one focal length (fx = fy) and k1. The principal point, k2,
p1, p2 and k3 are never fitted (the TOML holds k1 and four zeros). The board's
corners are free 3D points tied to each board pose by a soft term, not a rigid
board.

Timing: `detect_seconds` is reading and detecting the images, `seconds` that
plus the calibration, wall clock, without the imports and the TOML write. The
calibration includes numba's and jax's first-call compilation, which every
anipose run pays too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np

# calibrate_rows' min_corners_intrinsic: views with fewer corners are left out of
# its initial camera matrix; a camera with none would fail inside aniposelib with
# an unpacking error, so it is named here instead.
MIN_CORNERS_INTRINSIC = 9


class PeerError(Exception):
    """A failure to report in one line on stderr, exit status 1."""


def load_board(path: Path):
    """aniposelib's CharucoBoard for a FuseCap board definition (JSON).

    aniposelib names a dictionary by marker bits and size ((5, 100) for
    DICT_5X5_100) and offers only the DICT_NxN_M family, so other dictionaries
    are refused rather than silently replaced."""
    from aniposelib.boards import CharucoBoard

    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PeerError(f"{path}: cannot read the board definition ({exc})") from exc
    if not isinstance(spec, dict):
        raise PeerError(f"{path}: not a board definition")
    if spec.get("kind", "charuco") != "charuco":
        raise PeerError(f"{path}: a {spec.get('kind')!r} board; the peer calibration needs a ChArUco board")
    try:
        nx, ny = int(spec["squares_x"]), int(spec["squares_y"])
        square, marker = float(spec["square_mm"]), float(spec["marker_mm"])
        dictionary = str(spec.get("dictionary", "DICT_5X5_100"))
        legacy = bool(spec.get("legacy", False))
    except (KeyError, TypeError, ValueError) as exc:
        raise PeerError(f"{path}: malformed board definition ({exc!r})") from exc
    m = re.fullmatch(r"DICT_(\d)X(\d)_(\d+)", dictionary)
    if m is None or m.group(1) != m.group(2):
        raise PeerError(f"{path}: dictionary {dictionary!r} is not one aniposelib offers "
                        "(it takes DICT_<bits>X<bits>_<size> dictionaries only)")
    bits, size = int(m.group(1)), int(m.group(3))
    try:
        board = CharucoBoard(nx, ny, square_length=square, marker_length=marker, marker_bits=bits, dict_size=size)
    except KeyError:
        raise PeerError(f"{path}: aniposelib has no {dictionary} dictionary") from None
    if legacy:
        # Set OpenCV's old layout on aniposelib's own cv2 board, then build its
        # corner detector again from that board exactly as aniposelib's
        # constructor does (same board, same detector parameters).
        board.board.setLegacyPattern(True)
        board.charuco_detector = cv2.aruco.CharucoDetector(board.board)
        board.charuco_detector.setDetectorParameters(board.detector_params)
    return board


def list_images(images_dir: Path) -> tuple[list[str], dict[str, dict[str, Path]], list[str]]:
    """Camera names (sub-folders, sorted), each camera's PNG files by file name,
    and the sorted union of file names (a row number for each moment)."""
    if not images_dir.is_dir():
        raise PeerError(f"{images_dir}: no such folder")
    names = sorted(p.name for p in images_dir.iterdir() if p.is_dir())
    if len(names) < 2:
        raise PeerError(f"{images_dir}: needs a sub-folder for each of at least 2 cameras, found {len(names)}")
    files = {}
    for name in names:
        pngs = {p.name: p for p in (images_dir / name).iterdir() if p.is_file() and p.suffix.lower() == ".png"}
        if not pngs:
            raise PeerError(f"{images_dir / name}: no PNG images")
        files[name] = pngs
    moments = sorted(set().union(*(f.keys() for f in files.values())))
    return names, files, moments


def detect(board, names, files, moments) -> tuple[list[list[dict]], list[tuple[int, int]]]:
    """aniposelib's rows for each camera, and each camera's (width, height)."""
    all_rows, sizes = [], []
    for name in names:
        rows, size = [], None
        for num, fname in enumerate(moments):
            path = files[name].get(fname)
            if path is None:
                continue
            frame = cv2.imread(str(path))
            if frame is None:
                raise PeerError(f"{path}: cannot read the image")
            this = (frame.shape[1], frame.shape[0])
            if size is not None and this != size:
                raise PeerError(f"{path}: {this[0]}x{this[1]}, but camera {name}'s other images are "
                                f"{size[0]}x{size[1]}")
            size = this
            corners, ids = board.detect_image(frame)
            if len(corners) > 0:
                rows.append({"framenum": num, "corners": corners, "ids": ids, "fname": str(path)})
        if not rows:
            raise PeerError(f"camera {name}: the board was found in none of its {len(files[name])} images")
        if not any(len(r["ids"]) >= MIN_CORNERS_INTRINSIC for r in rows):
            raise PeerError(f"camera {name}: no image shows {MIN_CORNERS_INTRINSIC} or more of the board's corners, "
                            "which aniposelib needs to start the camera's intrinsics")
        all_rows.append(board.fill_points_rows(rows))
        sizes.append(size)
    return all_rows, sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images_dir", type=Path)
    parser.add_argument("board_json", type=Path)
    parser.add_argument("out_toml", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="numpy seed for aniposelib's point sampling")
    parser.add_argument("--verbose", action="store_true", help="aniposelib's progress output (to stderr)")
    args = parser.parse_args(argv)
    try:
        import aniposelib
        from aniposelib.cameras import CameraGroup

        board = load_board(args.board_json)
        names, files, moments = list_images(args.images_dir)
        t0 = time.perf_counter()
        all_rows, sizes = detect(board, names, files, moments)
        t_detect = time.perf_counter() - t0
        detections = {name: len(rows) for name, rows in zip(names, all_rows)}
        cgroup = CameraGroup.from_names(names)
        for cam, size in zip(cgroup.cameras, sizes):
            cam.set_size(size)
        np.random.seed(args.seed)
        t1 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(sys.stderr):
                error = cgroup.calibrate_rows(all_rows, board, init_intrinsics=True, init_extrinsics=True,
                                              max_nfev=200, n_iters=6, n_samp_iter=200, n_samp_full=1000,
                                              verbose=args.verbose)
        except Exception as exc:  # aniposelib raises bare ValueErrors, AssertionErrors, numpy errors...
            reason = " ".join(str(exc).split())  # aniposelib's messages span several lines
            raise PeerError(f"aniposelib's calibration failed: {type(exc).__name__}: {reason}") from exc
        t_end = time.perf_counter()
        error = float(error)
        if not math.isfinite(error):
            raise PeerError(f"aniposelib's calibration gave a reprojection error of {error}")
        cgroup.metadata = {"adjusted": False, "error": error}  # what anipose writes
        args.out_toml.parent.mkdir(parents=True, exist_ok=True)
        cgroup.dump(str(args.out_toml))
    except PeerError as exc:
        print(f"peer_anipose: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"seconds": round(t_end - t0, 3), "detect_seconds": round(t_detect, 3),
                      "calibrate_seconds": round(t_end - t1, 3), "error_px": error, "cameras": names,
                      "detections": detections, "aniposelib": aniposelib.__version__,
                      "opencv": cv2.__version__}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
