"""A take on disk: its layout, writing it, and reading it back.

One class owns the layout (`core.take.layout.TakeLayout`: every path is computed there)::

    TAKE/
      take.json                     metadata (format "fusecap-take", schema 1)
      imu.stream                    every IMU sample: time, bone id, wxyz, acceleration
      live.stream                   the joints solved live (frames the live path skipped are absent)
      cameras/NN.silhouettes.stream every silhouette of camera NN (bit-packed masks)
      cameras/NN.video.stream       optional: every image of camera NN as JPEG (motion JPEG)
      solves/NNN/solve.json         an offline solve: model, settings, when
      solves/NNN/joints.stream      its joints, one row per frame of the take

Streams are append-only chunk files (core.take.chunks), flushed and synced
at least once a second while recording, so a crash loses at most the last
second and a half-written take opens as what it holds. take.json is written
atomically when recording starts and again when it ends; a take whose
recording never ended says so (`Take.finished` is False) and opens anyway.

Times in the streams are device times (seconds, monotonic); the take's
`t0_s` is the start of the recording, and playback reports times from it.
IMU sensor ids in a take are IMU bone indices (core.skeleton.IMU_BONES), the
pairing already applied; the pairing itself is kept in the metadata.

Opening a take never writes to it. Anything that is not a take, a schema
this FuseCap does not know, a stream it cannot read, or a chunk whose
arrays are not what FuseCap writes (other types or shapes, times that are
not finite) raises `TakeError` with a message that names the file (and the
chunk's byte offset); chunks damaged (checksum) or truncated are skipped and
listed in `Take.problems`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from core import skeleton as sk
from core.camera.rig import CameraRig
from core.files import read_json
from core.frames import FrameBundle, orientations_at
from core.take.chunks import ChunkError, ChunkRef, scan_chunks
from core.take.layout import FORMAT, SCHEMA, Joints, TakeError, TakeLayout

#: IMU samples further than this from a frame's time don't count for it.
IMU_MAX_GAP_S = 0.1

# What each array a chunk may hold must be, as core.take.writer writes it:
# the kinds of number allowed (numpy dtype kinds) and the shape of one row,
# the first axis counting the chunk's samples or frames. Silhouette bits and
# video data are checked on their own (_check_chunk).
_REAL, _WHOLE = "biuf", "biu"
_ROWS: dict[str, tuple[str, tuple[int, ...]]] = {
    "t_s": (_REAL, ()), "sensor": (_WHOLE, ()), "quat_wxyz": (_REAL, (4,)), "accel_mps2": (_REAL, (3,)),
    "seq": (_WHOLE, ()), "index": (_WHOLE, ()), "sizes": (_WHOLE, ()),
    "joints_mm": (_REAL, (sk.NUM_JOINTS, 3)), "confidence": (_REAL, (sk.NUM_JOINTS,)),
}


def _check_chunk(d: dict[str, np.ndarray], keys: tuple[str, ...], where: str) -> None:
    """TakeError unless the arrays named in `keys` are what a FuseCap writer
    writes: their types, their shapes, one row each per sample or frame, finite
    times, and (for IMU samples) quaternions that are rotations."""
    def bad(what: str) -> TakeError:
        return TakeError(f"{where}: a damaged chunk ({what})")

    rows = None
    for k in keys:
        a = d[k]
        if k in _ROWS:
            kinds, row = _ROWS[k]
            if a.dtype.kind not in kinds or a.shape[1:] != row or a.ndim != 1 + len(row):
                shape = "(N" + "".join(f", {n}" for n in row) + ")"
                raise bad(f"{k} is {a.dtype} of shape {a.shape}, expected numbers of shape {shape}")
            if rows is None:
                rows = len(a)
            elif len(a) != rows:
                raise bad(f"its arrays hold different numbers of rows ({k}: {len(a)}, not {rows})")
    if "t_s" in keys and not np.isfinite(d["t_s"]).all():
        raise bad("a time that is not a finite number")
    if "quat_wxyz" in keys:
        q = d["quat_wxyz"].astype(np.float64)
        if not np.isfinite(q).all() or (np.abs(q).max(axis=1, initial=0.0) == 0.0).any():
            raise bad("an orientation that is not a rotation (zero or not finite)")
    if "bits" in keys:
        bits, width = d["bits"], d.get("width")
        if bits.dtype != np.uint8 or bits.ndim != 3 or (rows is not None and len(bits) != rows):
            raise bad(f"silhouette bits are {bits.dtype} {bits.shape}, expected uint8 (N, height, width / 8)")
        if width is None or width.shape != () or width.dtype.kind not in "iu" \
                or not 0 < int(width) <= 8 * bits.shape[2] or (int(width) + 7) // 8 != bits.shape[2]:
            raise bad(f"a silhouette width of {width!r} for {bits.shape[2]} bytes a row")
    if "data" in keys:
        data, sizes = d["data"], d.get("sizes")
        if data.dtype != np.uint8 or data.ndim != 1 or sizes is None or sizes.ndim != 1 \
                or (sizes < 0).any() or int(sizes.sum()) != len(data):
            raise bad("video frame sizes that do not add up to its data")


MAX_IMU_ONLY_S = 24 * 3600.0  # an IMU-only take's stamps spread wider than this are damaged


def _number(value) -> float:
    """A metadata value as a float; NaN when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return float("nan")


class _Stream:
    """A stream file's intact chunks, loaded on demand."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        if path.exists():
            try:
                self.refs, found = scan_chunks(path)
            except ChunkError as exc:
                raise TakeError(str(exc)) from None
            problems.extend(found)
        else:
            self.refs = []

    def load(self, ref: ChunkRef, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
        try:
            d = ref.load()
        except ChunkError as exc:
            raise TakeError(str(exc)) from None
        missing = [k for k in keys if k not in d]
        if missing:
            raise TakeError(f"{ref.path} at byte {ref.offset}: a chunk without {', '.join(missing)}")
        _check_chunk(d, keys, f"{ref.path} at byte {ref.offset}")
        return d

    def concat(self, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
        parts = [self.load(r, keys) for r in self.refs]
        if not parts:
            return None
        return {k: np.concatenate([p[k] for p in parts]) for k in keys}


class Take:
    """An open take (read only). `problems` lists what was skipped."""

    def __init__(self, root: str | Path) -> None:
        self.layout = layout = TakeLayout(root)
        root = layout.root
        if not root.is_dir():
            raise TakeError(f"{root}: no such take folder")
        if not layout.meta.is_file():
            raise TakeError(f"{root}: not a FuseCap take (no {TakeLayout.META})")
        try:
            meta = read_json(layout.meta)
        except ValueError as exc:
            raise TakeError(f"{layout.meta}: unreadable take metadata ({exc})") from None
        if meta.get("format") != FORMAT:
            raise TakeError(f"{layout.meta}: not a FuseCap take (format {meta.get('format')!r})")
        schema = meta.get("schema")
        if not isinstance(schema, int) or schema < 1:
            raise TakeError(f"{layout.meta}: malformed schema version {schema!r}")
        if schema > SCHEMA:
            raise TakeError(f"{layout.meta}: the take's schema version is {schema}, newer than this "
                            f"FuseCap reads ({SCHEMA}); open it with a newer FuseCap")
        self.meta = meta
        for key in ("t0_s", "frame_rate", "cameras"):
            if key not in meta:
                raise TakeError(f"{layout.meta}: malformed take metadata ({key!r} missing)")
        self.t0_s, self.fps = _number(meta["t0_s"]), _number(meta["frame_rate"])
        if not np.isfinite(self.t0_s):
            raise TakeError(f"{layout.meta}: malformed take metadata (t0_s is {meta['t0_s']!r}, not a number)")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise TakeError(f"{layout.meta}: malformed take metadata (frame_rate is {meta['frame_rate']!r}, "
                            "not a positive number)")
        if not isinstance(meta["cameras"], list):
            raise TakeError(f"{layout.meta}: malformed take metadata ('cameras' is not a list of names)")
        self.cameras = [str(c) for c in meta["cameras"]]
        self.problems: list[str] = []
        self._imu = _Stream(layout.imu, self.problems)
        self._live = _Stream(layout.live, self.problems)
        self._sil = [_Stream(layout.silhouettes(k), self.problems) for k in range(len(self.cameras))]
        self._video = [_Stream(layout.video(k), self.problems) for k in range(len(self.cameras))]
        self._imu_cache: dict[str, np.ndarray] | None = None
        self._index: tuple[np.ndarray, np.ndarray] | None = None

    # -- metadata -------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def finished(self) -> bool:
        return bool(self.meta.get("finished"))

    @property
    def rig(self) -> CameraRig:
        try:
            with np.errstate(all="ignore"):  # values that are not finite are refused below
                rig = CameraRig.from_dict(self.meta["rig"])
        except (KeyError, ValueError, TypeError, AttributeError, IndexError, OverflowError) as exc:
            raise TakeError(f"{self.layout.meta}: no usable rig calibration ({exc})") from None
        for cam in rig:
            if not all(np.isfinite(v).all() for v in (cam.K, cam.dist, cam.R, cam.t)):
                raise TakeError(f"{self.layout.meta}: no usable rig calibration "
                                f"(camera {cam.name!r} holds values that are not finite)")
        return rig

    @property
    def imu_calibration(self):
        """The IMU calibration the take was recorded with (core.imu.calibration.ImuCalibration), or None."""
        d = self.meta.get("imu_calibration")
        if d is None:
            return None
        from core.imu.calibration import ImuCalibration

        try:
            return ImuCalibration.from_dict(d)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError) as exc:
            raise TakeError(f"{self.layout.meta}: unusable IMU calibration ({exc})") from None

    @property
    def imus_only(self) -> bool:
        """Recorded with IMUs alone (no camera; core.session.session, "With IMUs alone")."""
        return not self.cameras and isinstance(self.meta.get("imus_only"), dict)

    @property
    def stature_mm(self) -> float:
        """An IMU-only take's performer height (the template skeleton's size)."""
        v = _number((self.meta.get("imus_only") or {}).get("stature_mm", 1750.0))
        if not (np.isfinite(v) and 500.0 <= v <= 3000.0):
            raise TakeError(f"{self.layout.meta}: malformed take metadata (stature_mm {v!r})")
        return v

    # -- IMU --------------------------------------------------------------------
    def imu_samples(self) -> dict[str, np.ndarray]:
        """Every IMU sample: t_s (from the take's start), sensor, quat_wxyz, accel_mps2."""
        if self._imu_cache is None:
            keys = ("t_s", "sensor", "quat_wxyz", "accel_mps2")
            d = self._imu.concat(keys) or {"t_s": np.zeros(0), "sensor": np.zeros(0, np.int16),
                                           "quat_wxyz": np.zeros((0, 4), np.float32),
                                           "accel_mps2": np.zeros((0, 3), np.float32)}
            d["t_s"] = d["t_s"] - self.t0_s
            self._imu_cache = d
        return self._imu_cache

    def imu_at(self, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 13, 4) sensor orientations at the take times (NaN: missing) and (N, 13) ages in s."""
        d = self.imu_samples()
        times_s = np.asarray(times_s, np.float64)
        quats = np.full((len(times_s), sk.NUM_IMUS, 4), np.nan)
        ages = np.full((len(times_s), sk.NUM_IMUS), np.inf)
        for k in range(sk.NUM_IMUS):
            sel = d["sensor"] == k
            if sel.any():
                t = d["t_s"][sel]
                order = np.argsort(t, kind="stable")
                quats[:, k], ages[:, k] = orientations_at(t[order], d["quat_wxyz"][sel][order].astype(np.float64),
                                                          times_s, IMU_MAX_GAP_S)
        return quats, ages

    # -- frames -----------------------------------------------------------------
    def _camera_times(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(times from the take's start, seq) of camera k's silhouettes, without loading the masks."""
        ts, seqs = [], []
        for ref in self._sil[k].refs:
            d = self._sil[k].load(ref, ("t_s", "seq"))
            ts.append(d["t_s"] - self.t0_s)
            seqs.append(d["seq"])
        if not ts:
            return np.zeros(0), np.zeros(0, np.int64)
        return np.concatenate(ts), np.concatenate(seqs)

    def frame_times(self) -> np.ndarray:
        """Each frame's time from the take's start (the mean of its cameras'
        times; an IMU-only take's frames are every frame period from its first
        IMU sample to its last)."""
        return self._frame_index()[0]

    def _frame_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(F,) frame times and (F, K) the position of each camera's silhouette
        in its stream (-1: that camera has none for the frame).

        Frames are formed by time: silhouettes less than half a frame period
        apart, one per camera, make one frame."""
        if self._index is None and not self.cameras:
            t = np.sort(self.imu_samples()["t_s"]) if self.imus_only else np.zeros(0)
            t = t[np.isfinite(t)]
            if len(t) and t[-1] - t[0] > MAX_IMU_ONLY_S:
                raise TakeError(f"{self.layout.imu}: IMU samples spread over {t[-1] - t[0]:.3g} s; "
                                "the stamps are damaged")
            times = (np.arange(t[0], t[-1] + 1e-9, 1.0 / self.fps) if len(t) else np.zeros(0))
            self._index = (times, np.zeros((len(times), 0), np.int64))
        if self._index is None:
            K = len(self.cameras)
            events = []
            for k in range(K):
                t, _ = self._camera_times(k)
                events.extend((float(v), k, i) for i, v in enumerate(t))
            events.sort()
            half = 0.5 / self.fps
            times, rows = [], []
            start, row = None, None
            for t, k, i in events:
                if start is None or t - start >= half or row[k] >= 0:
                    if row is not None:
                        rows.append(row)
                    start, row, members = t, np.full(K, -1, np.int64), []
                    times.append(members)
                row[k] = i
                times[-1].append(t)
            if row is not None:
                rows.append(row)
            self._index = (np.array([np.mean(m) for m in times], np.float64),
                           np.array(rows, np.int64).reshape(-1, K))
        return self._index

    def __len__(self) -> int:
        return len(self.frame_times())

    @property
    def duration_s(self) -> float:
        t = self.frame_times()
        return float(t[-1] - t[0] + 1.0 / self.fps) if len(t) else 0.0

    def _silhouettes_of(self, k: int) -> Iterator[np.ndarray]:
        stream = self._sil[k]
        for ref in stream.refs:
            d = stream.load(ref, ("t_s", "bits", "width"))
            width = int(d["width"])
            masks = np.unpackbits(d["bits"], axis=2, count=width)
            yield from masks

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[FrameBundle]:
        """The take's frames in time order, as the live pipeline sees them:
        silhouettes (None for a camera without one at that time) and the IMU
        orientations at the frame's time. Reads chunk by chunk."""
        times, rows = self._frame_index()
        stop = len(times) if stop is None else min(stop, len(times))
        if start >= stop:
            return
        quats, ages = self.imu_at(times[start:stop])
        iters = [self._silhouettes_of(k) for k in range(len(self.cameras))]
        pos = [0] * len(iters)
        # Frames hold each camera's silhouettes in stream order, so one pass per camera suffices.
        for f in range(stop):
            masks: list[np.ndarray | None] = []
            for k, it in enumerate(iters):
                want = rows[f, k]
                if want < 0:
                    masks.append(None)
                    continue
                while pos[k] <= want:
                    m = next(it)
                    pos[k] += 1
                masks.append(m)
            if f >= start:
                yield FrameBundle(f, float(times[f]), tuple(masks), quats[f - start], ages[f - start])

    def video_frames(self, camera: int) -> Iterator[tuple[float, np.ndarray]]:
        """(time from the take's start, BGR or grey image) for camera `camera`'s recorded video."""
        import cv2

        stream = self._video[camera]
        for ref in stream.refs:
            d = stream.load(ref, ("t_s", "sizes", "data"))
            ends = np.cumsum(d["sizes"])
            for t, a, b in zip(d["t_s"], ends - d["sizes"], ends):
                img = cv2.imdecode(d["data"][a:b], cv2.IMREAD_UNCHANGED)
                if img is None:
                    raise TakeError(f"{stream.path}: a video frame that cannot be decoded (time {t:.3f} s)")
                yield float(t - self.t0_s), img

    # -- joints -----------------------------------------------------------------
    def live_joints(self) -> Joints | None:
        d = self._live.concat(("t_s", "index", "joints_mm", "confidence"))
        if d is None:
            return None
        return Joints(d["t_s"] - self.t0_s, d["index"], d["joints_mm"].astype(np.float64),
                      d["confidence"].astype(np.float64))

    def solve_versions(self) -> list[int]:
        return self.layout.solve_versions()

    def solve_info(self, version: int | None = None) -> dict:
        version = self._pick_solve(version)
        try:
            return read_json(self.layout.solve_meta(version))
        except ValueError as exc:
            raise TakeError(str(exc)) from None

    def _pick_solve(self, version: int | None) -> int:
        versions = self.solve_versions()
        if not versions:
            raise TakeError(f"{self.root}: the take has no offline solve yet; run `main.py process {self.root}`")
        if version is None:
            return versions[-1]
        if version not in versions:
            raise TakeError(f"{self.root}: no solve version {version} (has {versions})")
        return version

    def solved_joints(self, version: int | None = None) -> Joints:
        """An offline solve's joints (the newest by default): one row per frame."""
        version = self._pick_solve(version)
        problems: list[str] = []
        stream = _Stream(self.layout.solve_joints(version), problems)
        d = stream.concat(("t_s", "index", "joints_mm", "confidence"))
        if problems or d is None:
            raise TakeError(f"solve {version} of {self.root} is damaged: "
                            + ("; ".join(problems) or "no joints"))
        return Joints(d["t_s"], d["index"], d["joints_mm"].astype(np.float64), d["confidence"].astype(np.float64))

    def best_joints(self) -> tuple[Joints, str]:
        """The newest offline solve if there is one, else the live joints; and which it is."""
        if self.solve_versions():
            v = self.solve_versions()[-1]
            return self.solved_joints(v), f"offline solve {v:03d}"
        live = self.live_joints()
        if live is None or len(live) == 0:
            raise TakeError(f"{self.root}: no solved joints (neither live nor offline); "
                            f"run `main.py process {self.root}`")
        return live, "live solve"

    def summary(self) -> str:
        d = self.imu_samples()
        live = self.live_joints()
        lines = [f"take {self.root}: {len(self)} frames, {self.duration_s:.2f} s at {self.fps:g} fps, "
                 f"{len(self.cameras)} cameras, {len(d['t_s'])} IMU samples, "
                 f"{0 if live is None else len(live)} live-solved frames, "
                 f"offline solves: {self.solve_versions() or 'none'}"
                 + ("" if self.finished else "; the recording did not end cleanly (opened as what it holds)")]
        if self.meta.get("stopped_because"):
            lines.append(f"recording stopped early: {self.meta['stopped_because']}")
        lines.extend(f"note: {p}" for p in self.problems)
        return "\n".join(lines)
