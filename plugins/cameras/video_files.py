"""Recorded multi-view footage as camera sources: one video file per camera,
plus the time each frame was taken.

Layout (a folder)::

    footage/
        cam0.avi          one video per camera, any container/codec OpenCV
        cam1.avi          reads (.avi .mp4 .mkv .mov .m4v .webm .mpg .mpeg .wmv);
        ...               cameras in natural name order (cam2 before cam10)
        timestamps.csv    optional: when each frame was taken

``timestamps.csv`` has the header ``camera,frame,t_s`` and one row per frame
of every video: ``camera`` is the video's name without its extension,
``frame`` the 0-based frame index, ``t_s`` the capture time in seconds on one
clock shared by all cameras (e.g. host monotonic time). Rows may come in any
order; blank lines and lines starting with ``#`` are ignored. Each camera's
frames must be exactly 0..N-1, N being the frame count of its video, with
strictly increasing times.

Without ``timestamps.csv`` frame i of every camera is at i / fps (the file's
own frame rate), i.e. the cameras are taken to have started together.

Playback: `realtime=True` delivers each frame at its time relative to the
earliest frame of all views (divided by `speed`), starting when the first
view opens, so the views stay in step as live cameras would; `realtime=False`
delivers frames as fast as they decode (offline processing). Frames are not
skipped either way, and each carries its recorded timestamp; with
`live_clock=True` (real time only) it carries instead the host monotonic time
it is due at, so footage stands in for live cameras beside live IMUs and
recorders, on their clock (`recorded_time` maps back), and a view that
falls behind skips to the frame due now, as a live camera would. After a
view's last
frame `read` raises `EndOfStream`.
"""

from __future__ import annotations

import csv
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from core.devices import IMAGE_BGR, IMAGE_GRAY, CameraFrame, DeviceError, EndOfStream

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")
TIMESTAMPS_FILE = "timestamps.csv"
TIMESTAMPS_HEADER = ("camera", "frame", "t_s")


class FootageError(DeviceError):
    """Recorded footage that cannot be played; the message names the file (and row)."""


@dataclass(frozen=True)
class ViewInfo:
    name: str        # the video's name without extension; the `camera` column of timestamps.csv
    path: Path
    frames: int
    fps: float       # the file's own frame rate (0 when it does not say)
    width: int
    height: int


def find_videos(folder: str | os.PathLike) -> list[Path]:
    """The videos in `folder`, in natural name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FootageError(f"footage folder {folder} does not exist")
    videos = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
    if not videos:
        raise FootageError(f"footage folder {folder} holds no videos ({' '.join(VIDEO_EXTENSIONS)})")
    return sorted(videos, key=_natural_key)


def probe(path: Path) -> ViewInfo:
    """A video's name, frame count, frame rate and size; counts frames by
    decoding when the container does not say."""
    if not path.is_file():
        raise FootageError(f"video file {path} does not exist")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise FootageError(f"video file {path} could not be opened: is it a complete video "
                               f"in a format FFmpeg decodes?")
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if frames <= 0:
            frames = 0
            while cap.grab():
                frames += 1
        return ViewInfo(path.stem, path, frames, float(cap.get(cv2.CAP_PROP_FPS)),
                        int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()


def read_timestamps(csv_path: Path, views: Sequence[ViewInfo]) -> list[np.ndarray]:
    """Each view's frame times (seconds) from a timestamps CSV, checked
    against the videos; FootageError names the file and line of any fault."""
    by_name = {v.name: k for k, v in enumerate(views)}
    times: list[dict[int, tuple[float, int]]] = [{} for _ in views]
    rows, line = [], 0
    try:
        # utf-8-sig: a byte order mark, as spreadsheet programs write, is not part of the header.
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for row in reader:
                if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#"):
                    rows.append((line + 1, row))  # the row's first line (a quoted field may span lines)
                line = reader.line_num
    except OSError as exc:
        raise FootageError(f"{csv_path} cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise FootageError(f"{csv_path} is not a text file in UTF-8 ({exc.reason})") from None
    except csv.Error as exc:  # a field over the csv module's size limit, a broken quote at the end
        raise FootageError(f"{csv_path}, line {line + 1}: not a CSV row ({exc})") from None
    if not rows:
        raise FootageError(f"{csv_path} is empty; expected the header {','.join(TIMESTAMPS_HEADER)}")
    line, header = rows[0]
    if tuple(c.strip() for c in header) != TIMESTAMPS_HEADER:
        raise FootageError(f"{csv_path}, line {line}: expected the header "
                           f"{','.join(TIMESTAMPS_HEADER)}, found {','.join(header)}")
    for line, row in rows[1:]:
        where = f"{csv_path}, line {line}"
        if len(row) != 3:
            raise FootageError(f"{where}: expected 3 values (camera,frame,t_s), found {len(row)}")
        name, frame_text, t_text = (c.strip() for c in row)
        if name not in by_name:
            raise FootageError(f"{where}: no video named {name!r} (videos: {', '.join(by_name)})")
        try:
            frame = int(frame_text)
        except ValueError:
            raise FootageError(f"{where}: frame {frame_text!r} is not a whole number") from None
        try:
            t = float(t_text)
        except ValueError:
            raise FootageError(f"{where}: t_s {t_text!r} is not a number of seconds") from None
        if not math.isfinite(t):
            raise FootageError(f"{where}: t_s {t_text!r} is not a finite number of seconds")
        k = by_name[name]
        view = views[k]
        if not 0 <= frame < view.frames:
            raise FootageError(f"{where}: frame {frame} of {name!r} is outside 0..{view.frames - 1} "
                               f"({view.path} holds {view.frames} frames)")
        if frame in times[k]:
            raise FootageError(f"{where}: frame {frame} of {name!r} is listed twice "
                               f"(first on line {times[k][frame][1]})")
        times[k][frame] = (t, line)
    out = []
    for view, given in zip(views, times):
        if len(given) != view.frames:
            missing = next(i for i in range(view.frames) if i not in given)
            raise FootageError(f"{csv_path}: camera {view.name!r} has {len(given)} timestamps but "
                               f"{view.path} holds {view.frames} frames (frame {missing} has none)")
        t = np.array([given[i][0] for i in range(view.frames)])
        bad = np.flatnonzero(np.diff(t) <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise FootageError(f"{csv_path}, line {given[i][1]}: t_s of {view.name!r} frame {i} "
                               f"({float(t[i])!r}) is not after frame {i - 1}'s ({float(t[i - 1])!r})")
        out.append(t)
    return out


class _Playback:
    """Shared pacing of the views: device time of the earliest frame, fixed
    when the first view opens."""

    def __init__(self, t_first_s: float, realtime: bool, speed: float, live_clock: bool = False) -> None:
        self.t_first_s = t_first_s
        self.realtime = realtime
        self.speed = speed
        self.live_clock = live_clock
        self.wall0: float | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self.wall0 is None:
                self.wall0 = time.monotonic()

    def due(self, t_s: float) -> float:
        """The wall (monotonic) time at which a frame taken at `t_s` is delivered."""
        return self.wall0 + (t_s - self.t_first_s) / self.speed

    def recorded(self, due_s: float) -> float:
        """The recorded time of the frame due at the monotonic time `due_s`."""
        return self.t_first_s + (due_s - self.wall0) * self.speed


class VideoFileCamera:
    """One view of the footage: a CameraSource delivering its frames in order
    with their recorded timestamps. Reopening resumes at the next frame."""

    def __init__(self, view: ViewInfo, times_s: np.ndarray, index: int, playback: _Playback) -> None:
        self.view = view
        self.times_s = times_s
        self.index = index
        self.name = f"video:{view.name}"
        self.playback = playback
        self.next_frame = 0
        self.dropped = 0  # frames skipped to keep up on the live clock
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        self.close()
        if not self.view.path.is_file():
            raise FootageError(f"{self.name}: video file {self.view.path} does not exist")
        cap = cv2.VideoCapture(str(self.view.path))
        if not cap.isOpened():
            raise FootageError(f"{self.name}: video file {self.view.path} could not be opened")
        for i in range(self.next_frame):  # resume exactly where we were, whatever the codec
            if not cap.grab():
                cap.release()
                raise FootageError(f"{self.name}: {self.view.path} ended at frame {i}, "
                                   f"before the {self.next_frame} already played")
        self._cap = cap
        self.playback.start()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def rewind(self) -> None:
        """Play from the first frame at the next open."""
        self.close()
        self.next_frame = 0

    def _catch_up(self, cap: cv2.VideoCapture, i: int) -> tuple[int, float]:
        """On the live clock a reader that fell behind gets the frame due now,
        as from a live camera: the frames it missed are skipped (grabbed, not
        decoded) and counted in `dropped`."""
        now = time.monotonic()
        while i + 1 < len(self.times_s) and self.playback.due(float(self.times_s[i + 1])) <= now:
            if not cap.grab():
                raise FootageError(f"{self.name}: {self.view.path} ended or broke at frame {i}")
            i += 1
            self.dropped += 1
        self.next_frame = i
        return i, float(self.times_s[i])

    def read(self, timeout_s: float = 1.0) -> CameraFrame | None:
        cap = self._cap
        if cap is None:
            raise DeviceError(f"{self.name} is not open")
        i = self.next_frame
        if i >= len(self.times_s):
            raise EndOfStream(f"{self.name}: end of footage after {i} frames")
        t_s = float(self.times_s[i])
        if self.playback.live_clock:
            i, t_s = self._catch_up(cap, i)
        if self.playback.realtime:
            wait = self.playback.due(t_s) - time.monotonic()
            if wait > timeout_s:
                time.sleep(max(0.0, timeout_s))
                return None
            if wait > 0:
                time.sleep(wait)
        ok, image = cap.read()
        if not ok or image is None:
            raise FootageError(f"{self.name}: {self.view.path} ended or broke at frame {i} "
                               f"of {len(self.times_s)}")
        self.next_frame = i + 1
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0].copy()
        if self.playback.live_clock:
            t_s = self.playback.due(t_s)
        return CameraFrame(self.index, t_s, image, IMAGE_GRAY if image.ndim == 2 else IMAGE_BGR)


class VideoFiles:
    """K views of recorded footage; `cameras` are the K CameraSources, in
    view order (CameraFrame.camera is the position in that order).

    source: a footage folder (see the module's layout) or a list of video
    files (their names must differ). timestamps: a CSV in the layout's
    format; default: timestamps.csv beside the videos, if there is one."""

    def __init__(self, source: str | os.PathLike | Sequence[str | os.PathLike],
                 timestamps: str | os.PathLike | None = None, realtime: bool = True,
                 speed: float = 1.0, live_clock: bool = False) -> None:
        if isinstance(source, (str, os.PathLike)):
            paths = find_videos(source)
        else:
            paths = [Path(p) for p in source]
            if not paths:
                raise FootageError("no video files given")
        names = [p.stem for p in paths]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise FootageError(f"two videos share the name {twice[0]!r}: the cameras need distinct names")
        if speed <= 0:
            raise ValueError(f"playback speed must be positive, not {speed}")
        if live_clock and not realtime:
            raise ValueError("the live clock needs real-time playback")
        self.views = [probe(p) for p in paths]
        if timestamps is None and (paths[0].parent / TIMESTAMPS_FILE).is_file():
            timestamps = paths[0].parent / TIMESTAMPS_FILE
        self.timestamps_path = Path(timestamps) if timestamps is not None else None
        if self.timestamps_path is not None:
            if not self.timestamps_path.is_file():
                raise FootageError(f"timestamps file {self.timestamps_path} does not exist")
            times = read_timestamps(self.timestamps_path, self.views)
        else:
            times = [self._times_from_rate(v) for v in self.views]
        t_first = min((float(t[0]) for t in times if len(t)), default=0.0)
        self.playback = _Playback(t_first, realtime, speed, live_clock)
        self.cameras = [VideoFileCamera(v, t, k, self.playback) for k, (v, t) in enumerate(zip(self.views, times))]

    @staticmethod
    def _times_from_rate(view: ViewInfo) -> np.ndarray:
        if not view.fps > 0:
            raise FootageError(f"{view.path} does not say its frame rate; give a {TIMESTAMPS_FILE}")
        return np.arange(view.frames) / view.fps

    def rewind(self) -> None:
        """Play every view from its first frame again (closes them; open again to play)."""
        for cam in self.cameras:
            cam.rewind()
        with self.playback._lock:
            self.playback.wall0 = None

    def recorded_time(self, t_s: float) -> float:
        """A frame's recorded time from its timestamp (the same without `live_clock`)."""
        return self.playback.recorded(t_s) if self.playback.live_clock else t_s

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.views]

    @property
    def span_s(self) -> tuple[float, float]:
        """The first and last timestamps over all views."""
        ts = [c.times_s for c in self.cameras if len(c.times_s)]
        return (min(float(t[0]) for t in ts), max(float(t[-1]) for t in ts)) if ts else (0.0, 0.0)


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]
