"""Board views from recorded images or videos on disk: the layouts anipose and
FreeMoCap use, so a calibration recorded for them calibrates here too.

- A folder of image folders: ``FOLDER/<camera>/<frame>.png`` (or .jpg,
  .jpeg, .bmp, .tif, .tiff). The camera's name is its folder's; images with
  the same file name in different folders were taken at the same moment
  (a camera without that file did not take it).
- A folder of videos: ``FOLDER/<camera>.mp4`` (or .avi, .mov, .mkv, .m4v,
  .webm), started together: frame i of every video is one moment. The
  shortest video sets the length. `step` reads every step-th frame (a
  minute of video at 30 frames/s has 1,800 frames; a board moved by hand
  needs far fewer).

Cameras and image files are in the order of their names, numbers by their
value (cam2 before cam10, 9.png before 10.png). An image that cannot be
read is reported and skipped (the others are kept); a camera whose images
have different sizes, a video that cannot be opened, or a folder with
neither images nor videos raises RecordingError naming the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from core.calibration.board import BoardDetector, BoardSpec
from core.calibration.views import BoardViews

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


class RecordingError(ValueError):
    """A calibration recording that cannot be read; the message names the file."""


@dataclass
class Recording:
    """What was found on disk: the cameras, the kind ("images" or "videos"),
    per camera its source (a folder or a video file), the moments' names
    (file names, or "frame N"), and files that could not be read."""

    folder: Path
    kind: str
    names: list[str]
    sources: list[Path]
    moments: list[str]
    step: int = 1
    unreadable: list[str] = field(default_factory=list)


def find_recording(folder: str | Path, step: int = 1) -> Recording:
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordingError(f"{folder}: no such folder")
    if step < 1:
        raise RecordingError(f"step must be at least 1, got {step}")
    subdirs = sorted((p for p in folder.iterdir() if p.is_dir() and _images_in(p)), key=lambda p: _in_order(p.name))
    videos = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES),
                    key=lambda p: _in_order(p.name))
    if subdirs and videos:
        raise RecordingError(f"{folder}: holds both image folders ({', '.join(p.name for p in subdirs)}) and "
                             f"videos ({', '.join(p.name for p in videos)}); use one layout")
    if subdirs:
        names = sorted({f.name for d in subdirs for f in _images_in(d)}, key=_in_order)
        return Recording(folder, "images", [d.name for d in subdirs], subdirs, names[::step], step)
    if videos:
        frames = [_frame_count(v) for v in videos]
        return Recording(folder, "videos", [v.stem for v in videos], videos,
                         [f"frame {i}" for i in range(0, min(frames), step)], step)
    raise RecordingError(f"{folder}: no camera folders of images ({', '.join(IMAGE_SUFFIXES)}) and no videos "
                         f"({', '.join(VIDEO_SUFFIXES)}): put each camera's images in a folder named after it, "
                         "or one video per camera")


def _in_order(name: str) -> tuple:
    """A name's sort key with its numbers by value: frames written as 0.png ... 10.png (no leading zeros)
    keep their order, so --floor last is the last one."""
    parts = re.split(r"(\d+)", name)  # the numbers at the odd places
    return tuple((0, int(part), part) if i % 2 else (1, 0, part) for i, part in enumerate(parts))


def _images_in(d: Path) -> list[Path]:
    return sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _frame_count(video: Path) -> int:
    cap = cv2.VideoCapture(str(video))
    try:
        if not cap.isOpened():
            raise RecordingError(f"{video}: cannot be opened as a video")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if n <= 0:  # some containers do not say: count by reading
            n = 0
            while cap.grab():
                n += 1
        if n <= 0:
            raise RecordingError(f"{video}: holds no frames")
        return n
    finally:
        cap.release()


def read_views(recording: Recording, board: BoardSpec,
               progress: Callable[[int, int], None] | None = None) -> BoardViews:
    """Detect the board in every moment of every camera."""
    detector = BoardDetector(board)
    n_cams, n_moments = len(recording.names), len(recording.moments)
    columns: list[list] = [[None] * n_moments for _ in range(n_cams)]
    sizes: list[tuple[int, int] | None] = [None] * n_cams
    total = n_cams * n_moments
    step = recording.step
    done = 0

    def found(k: int, image: np.ndarray, where: str):
        size = (image.shape[1], image.shape[0])
        if sizes[k] is None:
            sizes[k] = size
        elif sizes[k] != size:
            raise RecordingError(f"{where}: {size[0]}x{size[1]}, but camera {recording.names[k]}'s other "
                                 f"images are {sizes[k][0]}x{sizes[k][1]}")
        return detector.detect(image)

    for k, source in enumerate(recording.sources):
        if recording.kind == "images":
            for m, name in enumerate(recording.moments):
                path = source / name
                if path.is_file():
                    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
                    if image is None or image.size == 0:
                        recording.unreadable.append(str(path))
                    else:
                        columns[k][m] = found(k, image, str(path))
                done += 1
                if progress:
                    progress(done, total)
        else:
            cap = cv2.VideoCapture(str(source))
            try:
                if not cap.isOpened():
                    raise RecordingError(f"{source}: cannot be opened as a video")
                frame = 0
                for m in range(n_moments):
                    while frame < m * step:  # skip to the frame without decoding it
                        if not cap.grab():
                            break
                        frame += 1
                    ok, image = cap.read()
                    frame += 1
                    if not ok or image is None:
                        recording.unreadable.append(f"{source} frame {m * step}")
                    else:
                        columns[k][m] = found(k, image, f"{source} frame {m * step}")
                    done += 1
                    if progress:
                        progress(done, total)
            finally:
                cap.release()
    missing = [recording.names[k] for k in range(n_cams) if sizes[k] is None]
    if missing:
        raise RecordingError(f"{recording.folder}: no readable image from camera(s) {', '.join(missing)}")
    views = BoardViews(tuple(recording.names), tuple(sizes))
    for m, name in enumerate(recording.moments):
        views.add([columns[k][m] for k in range(n_cams)], name)
    return views
