"""The Cameras panel's three calibration steps, from board views to a
CalibrationOutcome, without Qt: the lenses, the rig, the floor.

`views` supplies the board views: core.calibration.guided's
SimulatedBoardCalibration (rendered through the simulated studio's true
cameras) or core.calibration.live_board's LiveBoardViews (the real cameras' own images).
`base` is the rig at the live cameras' size: its names, sizes and area are
kept, and for the lenses its extrinsics too. `progress(done, total)` is the
progress dialog's callback (it raises Cancelled).

The floor can also come from the performer standing still in the area
(set_floor_from_performer): `frames_source` gives the running studio's
newest camera frames (CaptureSession.newest_frames), whose silhouettes
core.calibration.floor.floor_from_performer reads.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from core.calibration import files
from core.calibration.board import BoardSpec
from core.calibration.bundle import LensFreedom
from core.calibration.extrinsics import Intrinsics, calibrate_cameras
from core.calibration.floor import floor_aligned, floor_from_performer
from core.calibration.guided import CalibrationOutcome, ErrorRow, Steps, error_rows, num
from core.calibration.intrinsics import CalibrationError, MeasuredLens
from core.calibration.quality import assess
from core.calibration.views import BoardViews
from core.camera.model import Camera
from core.camera.rig import CameraRig
from core.devices import IMAGE_SILHOUETTE

# The rig step refines the lenses from the lens step with the walked board, within twice the lens step's standard
# deviations (core.calibration.bundle). Measured on the simulated studio (10 draws of the panel's settings): the
# mean camera centre error 4.2-7.1 mm (worst camera 8.6-13.7 mm); with the lenses held, worst cameras 11-27 mm;
# refined without the lens step's deviations, the far board traded focal length for distance (up to 26 mm).
LENS_FREEDOM = LensFreedom()


def calibrate_lenses(views, progress, base: CameraRig, n_views: int, board: BoardSpec) -> CalibrationOutcome:
    """Intrinsics of every camera from `n_views` board views each."""
    steps = Steps(progress, len(base) * n_views)
    cams, results = views.intrinsics(n_views, steps)
    live = tuple(Camera(ic.at_size(b.size).K, ic.dist, b.R, b.t, b.size, b.name) for ic, b in zip(cams, base))
    at_calib = CameraRig(tuple(Camera(ic.K, ic.dist, b.R, b.t, ic.size, b.name) for ic, b in zip(cams, base)),
                         base.area)
    rms = np.array([r.rms_px for r in results])
    report = assess(at_calib, rms)
    rows = error_rows(base, [len(r.used) for r in results], rms, report)
    quality = {"kind": "intrinsics", **report.to_dict(), "views": [len(r.used) for r in results],
               "calibration_size": list(cams[0].size)}
    detail = (f"{len(cams)} cameras calibrated from {n_views} board views each at {cams[0].size[0]} px wide: "
              f"RMS {float(np.max(rms)):.2f} px at worst")
    return CalibrationOutcome("intrinsics", CameraRig(live, base.area), rows, board, quality, detail, cams)


def calibrate_walked_rig(views, progress, base: CameraRig, lenses, moments: int, n_views: int,
                         lens_board: BoardSpec, board: BoardSpec,
                         freedom: LensFreedom = LENS_FREEDOM) -> CalibrationOutcome:
    """Extrinsics by bundle adjustment from the board walked around the area
    (and, where `views.floor_in_rig`, the world from the board on the floor).
    `lenses`: intrinsic cameras from an earlier step, used when they are for
    these cameras; otherwise the lenses are calibrated first."""
    reuse = lenses is not None and [c.name for c in lenses] == base.names and all(
        abs(c.width * b.height - b.width * c.height) == 0 for c, b in zip(lenses, base))
    floor = views.floor_in_rig
    steps = Steps(progress, (0 if reuse else len(base) * n_views) + moments + floor + 4)
    if not reuse:
        lenses, _ = views.intrinsics(n_views, steps)
    detections = views.rig_views(moments, steps, floor=floor)
    intr = [Intrinsics(c.name, c.K, c.dist, c.size, ic.sigma_at(c.width) if isinstance(ic, MeasuredLens) else None)
            for ic, c in ((ic, views.at_rig_size(ic, k)) for k, ic in enumerate(lenses))]
    before = steps.done

    def stage(i, n):
        steps.progress(before + i, steps.total)

    board_views = BoardViews(tuple(c.name for c in intr), tuple(c.size for c in intr))
    for m, row in enumerate(detections):
        board_views.add(row, "board on the floor" if floor and m == len(detections) - 1 else f"board position {m + 1}")
    res = calibrate_cameras(board_views, board, lenses=intr, freedom=freedom,
                            floor_moment=len(detections) - 1 if floor else None, area=base.area, progress=stage)
    live = CameraRig(res.rig.cameras, base.area).at_sizes(base.sizes)
    report = assess(res.rig, res.camera_rms_px)
    rows = error_rows(base, [int(n) for n in res.observations], res.camera_rms_px, report)
    quality = {"kind": "rig", **report.to_dict(), "rms_px": res.rms_px,
               "views": [int(n) for n in res.observations], "calibration_size": list(res.rig[0].size)}
    detail = (f"rig calibrated from {len(detections) - floor} board positions"
              f"{' and the floor' if floor else ''}: RMS {res.rms_px:.2f} px ({report.verdict})"
              + ("" if floor else "; next, lay the board flat at the origin and press Set floor"))
    return CalibrationOutcome("rig", live, rows, board, quality, detail, tuple(lenses))


def set_floor_from_board(views, progress, base: CameraRig, board: BoardSpec, made_with: BoardSpec | None,
                         quality: dict) -> CalibrationOutcome:
    """`base` moved into the world of the board lying on the floor at the
    origin; `made_with` and `quality` are the calibration's own, kept."""
    steps = Steps(progress, 2)
    row = views.floor_view(steps)
    at_views = CameraRig(tuple(views.at_rig_size(b, k) for k, b in enumerate(base)), base.area)
    moved, used = floor_aligned(at_views, row, board)
    live = CameraRig(tuple(moved), base.area).at_sizes(base.sizes)
    steps.tick()
    shift = float(np.linalg.norm(live[0].centre - base[0].centre))
    detail = f"floor and origin set from {used} camera(s) (camera {base[0].name} moved {shift:.0f} mm)"
    return CalibrationOutcome("floor", live, (), made_with, quality, detail)


# The performer stands still while each camera's silhouette differs from the
# first frame's by at most this share of the two together (|A xor B| / |A or B|,
# the median over the cameras: one flickering camera does not hold the floor up).
# On the simulated studio a held pose measures 0; its performer on the move reached 0.23-1.0 within a second
# (8 draws), 0.07-0.63 within 0.1 s.
STILL_MISMATCH = 0.2


def set_floor_from_performer(frames_source, progress, base: CameraRig, made_with: BoardSpec | None, quality: dict,
                             frames: int = 10, *, min_gap_s: float = 0.1, stale_s: float = 0.5,
                             poll_s: float = 0.03, timeout_s: float = 30.0) -> CalibrationOutcome:
    """`base` moved into the world set by the performer standing still in the
    area (core.calibration.floor.floor_from_performer: Z up the body, the floor
    under the soles, the origin under the performer, X along the first camera's
    x); `made_with` and `quality` are the calibration's own, kept (the floor
    found is added to the quality as "floor").

    frames_source(): each camera's newest frame (CaptureSession.newest_frames;
    None for a camera without one), polled every `poll_s`. A frame is taken
    when the newest is `min_gap_s` past the last taken: each camera's newest
    silhouette no more than `stale_s` older than it (a camera still handing on
    images, with no background yet, has none). `frames` of them in a row with
    two cameras or more seeing the performer and every one like the row's first
    (STILL_MISMATCH) are the performer standing still; one that is not starts
    the row again. The rig is scaled to the silhouettes' sizes for the fit and
    back to base's sizes.

    Raises CalibrationError from floor_from_performer (not a standing person,
    ...) or after `timeout_s` without such a row (saying what was missing),
    ValueError when the silhouettes do not fit base's cameras."""
    steps = Steps(progress, frames + 1)
    masks = _still_performer(frames_source, steps, frames, min_gap_s, stale_s, poll_s, timeout_s)
    sizes = list(base.sizes)
    for row in masks:
        for k, m in enumerate(row):
            if m is not None:
                sizes[k] = (m.shape[1], m.shape[0])
    moved, fit = floor_from_performer(base.at_sizes(sizes), masks)
    live = CameraRig(moved.cameras, base.area).at_sizes(base.sizes)
    steps.tick()
    floor = {"from": "performer", "cameras": list(fit.cameras), "frames": fit.frames,
             "height_mm": round(fit.height_mm, 1), "up_spread_deg": round(fit.up_spread_deg, 2)}
    detail = (f"floor set from the performer standing: {len(fit.cameras)} cameras, {fit.frames} frames, "
              f"{fit.height_mm:.0f} mm tall, up within {fit.up_spread_deg:.1f} degrees between the frames")
    return CalibrationOutcome("floor", live, (), made_with, {**quality, "floor": floor}, detail)


def _still_performer(frames_source, steps: Steps, frames: int, min_gap_s: float, stale_s: float, poll_s: float,
                     timeout_s: float) -> list[list]:
    """`frames` rows of the cameras' silhouettes of the performer standing
    still (see set_floor_from_performer); steps.done follows the row's length."""
    row_of: list[list] = []
    last_t = -np.inf
    why = "no camera has delivered a frame"
    started = time.monotonic()
    while True:
        steps.progress(steps.done, steps.total)  # raises Cancelled once the user cancelled
        got = frames_source()
        times = [f.t_s for f in got if f is not None]
        if times and max(times) - last_t >= min_gap_s:
            last_t = newest = max(times)
            row = [f.image if f is not None and f.kind == IMAGE_SILHOUETTE and newest - f.t_s <= stale_s else None
                   for f in got]
            seen = sum(1 for m in row if m is not None and np.count_nonzero(m))
            if all(m is None for m in row):
                why, row_of = "no camera gives silhouettes yet (real cameras: capture the background first)", []
            elif seen < 2:
                why, row_of = f"{seen} camera(s) with a silhouette of the performer, two needed", []
            elif row_of and _mismatch(row_of[0], row) > STILL_MISMATCH:
                why, row_of = "the performer kept moving", [row]
            else:
                row_of.append(row)
            steps.done = len(row_of)
            if len(row_of) >= frames:
                return row_of
        if time.monotonic() - started > timeout_s:
            raise CalibrationError(f"no performer standing still after {timeout_s:.0f} s: {why}; stand still in "
                                   "the middle of the area, arms down, for a second")
        time.sleep(poll_s)


def _mismatch(a: list, b: list) -> float:
    """The median over the cameras with a silhouette in both rows of |A xor B| / |A or B|."""
    shares = []
    for x, y in zip(a, b):
        if x is None or y is None:
            continue
        x, y = x != 0, y != 0
        union = np.count_nonzero(x | y)
        if union:
            shares.append(np.count_nonzero(x ^ y) / union)
    return float(np.median(shares)) if shares else 0.0


def rows_from_quality(rig: CameraRig, quality: dict) -> list[ErrorRow]:
    """The error table's rows from a calibration file's quality report."""
    cams = quality.get("cameras") if isinstance(quality, dict) else None
    views = quality.get("views") if isinstance(quality, dict) else None
    rows = []
    for k, cam in enumerate(rig):
        q = cams[k] if isinstance(cams, list) and k < len(cams) and isinstance(cams[k], dict) else {}
        n = views[k] if isinstance(views, list) and k < len(views) and isinstance(views[k], int) else 0
        rows.append(ErrorRow(cam.name, n, num(q.get("reprojection_px")), num(q.get("reprojection_mm")),
                             str(q.get("verdict", "")) if q.get("reprojection_px") is not None else ""))
    return rows


# -- files -------------------------------------------------------------------------------------


def write_calibration(path: Path, rig: CameraRig, board: BoardSpec | None, quality: dict) -> None:
    """.json: FuseCap's own file (with the board and quality report); .toml:
    anipose / FreeMoCap. ValueError for another suffix, OSError from the disk."""
    suffix = path.suffix.lower()
    if suffix == ".toml":
        rms = quality.get("rms_px")
        files.write_anipose_toml(path, rig, error_px=rms if isinstance(rms, (int, float)) else None)
    elif suffix == ".json":
        files.save_calibration(path, files.CalibrationFile(rig, board, quality))
    else:
        raise ValueError(f"{path.name}: save a calibration as .json (FuseCap) or .toml (anipose / FreeMoCap)")


def read_calibration_for(path: Path, ref: CameraRig | None, running: bool) -> files.CalibrationFile:
    """A calibration file, its rig scaled to the image sizes of `ref` (the
    cameras in use) when it is for as many cameras. While a studio runs it
    must be for its cameras; a stopped one takes any calibration (other
    cameras, for another source), checked at the next start. Raises
    CalibrationFileError (naming the file) or OSError."""
    calib = files.load_calibration(path, area=None if ref is None else ref.area)
    rig = calib.rig
    if ref is not None and len(rig) != len(ref) and running:
        raise files.CalibrationFileError(f"{path}: {len(rig)} cameras in the file, {len(ref)} in the studio; "
                                         "not loaded")
    if ref is not None and len(rig) == len(ref):
        try:
            calib.rig = rig.at_sizes(ref.sizes)
        except ValueError as exc:
            if running:
                raise files.CalibrationFileError(f"{path}: {exc}; not loaded") from exc
    return calib

