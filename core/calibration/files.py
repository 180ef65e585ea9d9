"""Calibration files: FuseCap's own (JSON, with the board it was made with and
its quality report) and aniposelib's camera-group TOML, which anipose and
FreeMoCap write, so calibrations made with those tools can be brought in.

aniposelib's TOML holds one table per camera, ``[cam_0]``, ``[cam_1]``, ...
with ``name``, ``size = [width, height]``, ``matrix`` (3x3), ``distortions``
(OpenCV's k1 k2 p1 p2 k3, sometimes fewer), ``rotation`` (a Rodrigues vector)
and ``translation``: world-to-camera, x_cam = R(rotation) x + translation, the
same convention as FuseCap's cameras. Its length unit is the board's square
size unit, which for anipose and FreeMoCap is millimetres; `units_mm` converts
other units. Its world frame is wherever that tool put it (often the first
camera), so a rig read from TOML usually needs its floor set before capture.
A trailing ``[metadata]`` table is kept as it is. Fisheye cameras
(``fisheye = true``) use another lens model and are refused with a clear error.

Writes go to a temporary file that then replaces the target, so a full disk or
a crash never leaves half a calibration behind.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tomli_w

from core.calibration.board import BoardError, BoardSpec
from core.camera.model import Camera
from core.camera.rig import CameraRig, CaptureArea
from core.files import atomic_write_text, read_json, write_json  # noqa: F401  (re-exported)

FORMAT = "fusecap-calibration"
VERSION = 1


class CalibrationFileError(ValueError):
    """A calibration file that cannot be read; the message names the file and the problem."""


@dataclass
class CalibrationFile:
    """What a FuseCap calibration file holds: the rig, the board it was made
    with (None for an imported rig), and the quality report (plain JSON)."""

    rig: CameraRig
    board: BoardSpec | None = None
    quality: dict = field(default_factory=dict)


def save_calibration(path: str | Path, calib: CalibrationFile) -> None:
    doc = {"format": FORMAT, "version": VERSION, "rig": calib.rig.to_dict(),
           "board": None if calib.board is None else calib.board.to_dict(), "quality": calib.quality}
    atomic_write_text(path, json.dumps(doc, indent=1))


def load_calibration(path: str | Path, area: CaptureArea | None = None, units_mm: float = 1.0) -> CalibrationFile:
    """Read a FuseCap calibration (.json; a bare FuseCap rig file too) or an
    aniposelib / FreeMoCap camera group (.toml)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationFileError(f"{path}: no such file")
    if path.suffix.lower() == ".toml":
        return CalibrationFile(read_anipose_toml(path, area=area or CaptureArea(), units_mm=units_mm))
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: bad JSON, or an integer of > 4300 digits
        raise CalibrationFileError(f"{path}: not a calibration file (not valid JSON: {exc})") from exc
    except RecursionError:
        raise CalibrationFileError(f"{path}: not a calibration file (nested too deeply)") from None
    if not isinstance(doc, dict):
        raise CalibrationFileError(f"{path}: not a calibration file")
    try:
        if doc.get("format") == "fusecap-rig":
            return CalibrationFile(CameraRig.from_dict(doc))
        if doc.get("format") != FORMAT:
            raise CalibrationFileError(f"{path}: not a FuseCap calibration (format is {doc.get('format')!r})")
        if doc.get("version") != VERSION:
            raise CalibrationFileError(f"{path}: calibration version {doc.get('version')!r} is not supported "
                                       f"(this FuseCap reads version {VERSION})")
        with np.errstate(all="ignore"):  # NaN and Infinity are refused by _finite, without numpy's warnings
            rig = _finite(path, CameraRig.from_dict(doc["rig"]))
        board = None if doc.get("board") is None else BoardSpec.from_dict(doc["board"])
        quality = doc.get("quality") or {}
        return CalibrationFile(rig, board, quality if isinstance(quality, dict) else {})
    except CalibrationFileError:
        raise
    except (BoardError, ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError) as exc:
        # Fields of the wrong type or shape: a list where a table belongs, a
        # number too large for an image size, ...
        raise CalibrationFileError(f"{path}: {exc}") from exc


def _finite(path: Path, rig: CameraRig) -> CameraRig:
    """The rig, when every number in it is finite (JSON may hold NaN and Infinity)."""
    a = rig.area
    if not np.isfinite([a.x_min, a.x_max, a.y_min, a.y_max]).all():
        raise CalibrationFileError(f"{path}: the capture area holds a value that is not finite")
    for cam in rig:
        for name, value in (("K", cam.K), ("dist", cam.dist), ("R", cam.R), ("t_mm", cam.t)):
            if not np.isfinite(value).all():
                raise CalibrationFileError(f"{path}: camera {cam.name!r}: {name} holds a value that is not finite")
    return rig


# -- aniposelib TOML --------------------------------------------------------------

def read_anipose_toml(path: str | Path, area: CaptureArea = CaptureArea(), units_mm: float = 1.0) -> CameraRig:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: TOMLDecodeError, or an integer of > 4300 digits
        raise CalibrationFileError(f"{path}: not a camera-group TOML file ({exc})") from exc
    except RecursionError:
        raise CalibrationFileError(f"{path}: not a camera-group TOML file (nested too deeply)") from None
    keys = sorted((k for k in doc if k.startswith("cam_")), key=lambda k: (len(k), k))
    if not keys:
        raise CalibrationFileError(f"{path}: no [cam_N] tables: not an anipose / FreeMoCap calibration")
    cams = []
    for key in keys:
        table = doc[key]
        where = f"{path}: [{key}]"
        if not isinstance(table, dict):
            raise CalibrationFileError(f"{where} is not a table")
        if table.get("fisheye"):
            raise CalibrationFileError(f"{where} is a fisheye camera; FuseCap reads pinhole cameras only")
        try:
            name = str(table.get("name", key))
            size = tuple(int(v) for v in table["size"])
            K = np.array(table["matrix"], float)
            dist = np.array(table.get("distortions", []), float).ravel()
            rvec = np.array(table["rotation"], float).reshape(3)
            tvec = np.array(table["translation"], float).reshape(3) * units_mm
        except KeyError as exc:
            raise CalibrationFileError(f"{where} has no {exc.args[0]!r}") from exc
        except (TypeError, ValueError, OverflowError) as exc:
            raise CalibrationFileError(f"{where}: {exc}") from exc
        if len(size) != 2 or K.shape != (3, 3) or not np.isfinite(K).all() or not np.isfinite(rvec).all() \
                or not np.isfinite(tvec).all() or not np.isfinite(dist).all():
            raise CalibrationFileError(f"{where}: size must be [w, h], matrix 3x3, all values finite")
        if dist.size not in (0, 4, 5, 8):
            d = np.zeros(5 if dist.size < 5 else 8)
            d[: dist.size] = dist  # aniposelib sometimes stores only k1 (or k1 k2)
            dist = d
        R, _ = cv2.Rodrigues(rvec)
        if not np.isfinite(R).all():  # a rotation vector too long for float64 arithmetic
            raise CalibrationFileError(f"{where}: rotation {rvec.tolist()} is not a usable rotation vector")
        try:
            cams.append(Camera(K, dist, R, tvec, size, name))
        except ValueError as exc:
            raise CalibrationFileError(f"{where}: {exc}") from exc
    return CameraRig(tuple(cams), area)


def write_anipose_toml(path: str | Path, rig: CameraRig, error_px: float | None = None, units_mm: float = 1.0) -> None:
    """Write the rig as aniposelib does (lengths divided by `units_mm`)."""
    doc: dict = {}
    for k, cam in enumerate(rig):
        rvec, _ = cv2.Rodrigues(cam.R)
        dist = cam.dist8[:5] if cam.dist.size <= 5 else cam.dist8
        doc[f"cam_{k}"] = {
            "name": str(cam.name),
            "size": [int(cam.width), int(cam.height)],
            "matrix": [[float(v) for v in row] for row in cam.K],
            "distortions": [float(v) for v in dist],
            "rotation": [float(v) for v in rvec.ravel()],
            "translation": [float(v / units_mm) for v in cam.t],
        }
    doc["metadata"] = {"adjusted": True}
    if error_px is not None and math.isfinite(error_px):
        doc["metadata"]["error"] = float(error_px)
    atomic_write_text(path, tomli_w.dumps(doc))
