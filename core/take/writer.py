"""Writing a take: the folder, its metadata and its append-only streams."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.files import write_json
from core.take.chunks import ChunkWriter
from core.take.layout import APP_VERSION, FORMAT, SCHEMA, Joints, TakeError, TakeLayout, _now_iso


class TakeWriter:
    """Creates a take folder and appends to its streams. Not thread-safe: the
    recorder's thread is its only user. OSErrors propagate (the recorder
    turns them into a stop with a message)."""

    def __init__(self, root: str | Path, meta: dict) -> None:
        self.layout = TakeLayout(root)
        root = self.layout.root
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise TakeError(f"{root}: already exists and is not an empty folder; choose a new take folder")
        root.mkdir(parents=True, exist_ok=True)
        self.layout.cameras.mkdir(exist_ok=True)
        self.meta = {"format": FORMAT, "schema": SCHEMA, "app_version": APP_VERSION,
                     "created": _now_iso(), "finished": False, **meta}
        write_json(self.layout.meta, self.meta)
        self._imu = ChunkWriter(self.layout.imu)
        self._live = ChunkWriter(self.layout.live)
        self._sil: dict[int, ChunkWriter] = {}
        self._video: dict[int, ChunkWriter] = {}

    def write_imu(self, t_s: np.ndarray, sensor: np.ndarray, quat_wxyz: np.ndarray,
                  accel: np.ndarray | None = None) -> None:
        n = len(t_s)
        if n == 0:
            return
        acc = np.full((n, 3), np.nan, np.float32) if accel is None else np.asarray(accel, np.float32)
        self._imu.append({"t_s": np.asarray(t_s, np.float64), "sensor": np.asarray(sensor, np.int16),
                          "quat_wxyz": np.asarray(quat_wxyz, np.float32), "accel_mps2": acc})

    def write_silhouettes(self, camera: int, t_s: np.ndarray, seq: np.ndarray, masks: list[np.ndarray]) -> None:
        if not masks:
            return
        w = self._sil.get(camera)
        if w is None:
            w = self._sil[camera] = ChunkWriter(self.layout.silhouettes(camera), compress=True)
        stack = np.stack([np.asarray(m, bool) for m in masks])
        self._sil[camera].append({"t_s": np.asarray(t_s, np.float64), "seq": np.asarray(seq, np.int64),
                                  "width": np.int32(stack.shape[2]), "bits": np.packbits(stack, axis=2)})

    def write_video(self, camera: int, t_s: np.ndarray, seq: np.ndarray, jpegs: list[bytes]) -> None:
        if not jpegs:
            return
        w = self._video.get(camera)
        if w is None:
            w = self._video[camera] = ChunkWriter(self.layout.video(camera))
        sizes = np.array([len(j) for j in jpegs], np.int64)
        w.append({"t_s": np.asarray(t_s, np.float64), "seq": np.asarray(seq, np.int64),
                  "sizes": sizes, "data": np.frombuffer(b"".join(jpegs), np.uint8)})

    def write_live(self, t_s: np.ndarray, index: np.ndarray, joints_mm: np.ndarray,
                   confidence: np.ndarray) -> None:
        if len(t_s) == 0:
            return
        self._live.append({"t_s": np.asarray(t_s, np.float64), "index": np.asarray(index, np.int64),
                           "joints_mm": np.asarray(joints_mm, np.float32),
                           "confidence": np.asarray(confidence, np.float32)})

    @property
    def bytes_written(self) -> int:
        return sum(w.bytes for w in [self._imu, self._live, *self._sil.values(), *self._video.values()])

    def close(self, **final: object) -> None:
        """Close the streams and rewrite take.json with `finished` and `final` fields."""
        for w in [self._imu, self._live, *self._sil.values(), *self._video.values()]:
            w.close()
        self.meta.update({"finished": True, "ended": _now_iso(), **final})
        write_json(self.layout.meta, self.meta)


def write_solve(layout: TakeLayout, info: dict, joints: Joints) -> int:
    """Store an offline solve as a new version; the raw streams are untouched.

    The joints are written first and solve.json last (atomically), so a solve
    interrupted half-way is never taken for a finished one."""
    version = layout.next_solve_version()
    folder = layout.solve_dir(version)
    folder.mkdir(parents=True)
    w = ChunkWriter(layout.solve_joints(version))
    try:
        step = 4096
        for a in range(0, max(len(joints), 1), step):
            sl = slice(a, a + step)
            w.append({"t_s": joints.times_s[sl], "index": joints.index[sl],
                      "joints_mm": joints.joints_mm[sl].astype(np.float32),
                      "confidence": joints.confidence[sl].astype(np.float32)})
    finally:
        w.close()
    write_json(layout.solve_meta(version), {"format": "fusecap-solve", "version": 1, "solve": version,
                                            "created": _now_iso(), "frames": len(joints), **info})
    return version
