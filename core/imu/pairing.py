"""Which sensor sits on which bone.

A sensor is named by its source and its id on that source (a hub carries
several sensors; two hubs may both have a sensor 0): ``SensorKey(source,
sensor_id)``. A pairing maps each of the 13 IMU bones to at most one sensor;
a sensor serves at most one bone.

"Shake to identify": the user picks a bone, shakes the sensor they are
about to strap there, and the sensor that moved most in the last seconds is
offered, provided it moved clearly more than every other (by `min_ratio`) and
fast enough to be a shake (`min_speed_dps`), so a sensor on a walking
performer is not mistaken for it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from core import skeleton as sk
from core.devices import ImuSample
from core.rotations import from_wxyz


@dataclass(frozen=True, order=True)
class SensorKey:
    source: str
    sensor_id: int

    def __str__(self) -> str:
        return f"{self.source}#{self.sensor_id}"


@dataclass
class Pairing:
    bones: dict[int, SensorKey] = field(default_factory=dict)  # IMU bone index -> sensor

    def assign(self, bone: int | str, key: SensorKey) -> None:
        """Put `key` on `bone` (an index or a name from skeleton.IMU_BONES); a
        sensor moved from another bone leaves that bone unpaired."""
        b = bone if isinstance(bone, int) else sk.IMU_INDEX.get(bone, -1)
        if not 0 <= b < sk.NUM_IMUS:
            raise ValueError(f"unknown IMU bone {bone!r}; one of {[x.name for x in sk.IMU_BONES]}")
        for other, k in list(self.bones.items()):
            if k == key and other != b:
                del self.bones[other]
        self.bones[b] = key

    def unassign(self, bone: int) -> None:
        self.bones.pop(bone, None)

    def bone_of(self, key: SensorKey) -> int | None:
        for b, k in self.bones.items():
            if k == key:
                return b
        return None

    @property
    def missing(self) -> list[str]:
        return [sk.IMU_BONES[b].name for b in range(sk.NUM_IMUS) if b not in self.bones]

    def route(self, source: str, samples: Iterable[ImuSample]) -> list[ImuSample]:
        """The samples of `source` whose sensor is paired, renumbered to their
        bone (the engine's sensor id k is IMU bone k); unpaired ones are dropped."""
        lookup = {k.sensor_id: b for b, k in self.bones.items() if k.source == source}
        return [ImuSample(lookup[s.sensor_id], s.t_s, s.quat_wxyz, s.accel_mps2, s.gyro_radps)
                for s in samples if s.sensor_id in lookup]

    # -- files ---------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": "fusecap-imu-pairing", "version": 1,
                "bones": {sk.IMU_BONES[b].name: {"source": k.source, "sensor_id": k.sensor_id}
                          for b, k in sorted(self.bones.items())}}

    @classmethod
    def from_dict(cls, d: dict) -> "Pairing":
        if not isinstance(d, dict) or d.get("format") != "fusecap-imu-pairing":
            raise ValueError("not a FuseCap IMU pairing (format: fusecap-imu-pairing)")
        if d.get("version") != 1:
            raise ValueError(f"unsupported IMU pairing version {d.get('version')!r}")
        p = cls()
        try:
            for name, v in dict(d["bones"]).items():
                key = SensorKey(str(v["source"]), int(v["sensor_id"]))
                if p.bone_of(key) is not None:
                    raise ValueError(f"sensor {key} is paired with two bones")
                p.assign(name, key)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed IMU pairing: {exc}") from exc
        return p

    def save(self, path: str | Path) -> None:
        from core.files import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "Pairing":
        from core.files import read_json

        try:
            return cls.from_dict(read_json(path))
        except ValueError as exc:
            raise ValueError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from exc


def motion_scores(samples: Iterable[tuple[str, ImuSample]], stride_s: float = 0.1) -> dict[SensorKey, float]:
    """Mean angular speed (deg/s) of each sensor over the samples given
    (pairs of source name and sample), measured over `stride_s` steps."""
    per = defaultdict(list)
    for source, s in samples:
        per[SensorKey(source, int(s.sensor_id))].append((s.t_s, s.quat_wxyz))
    out = {}
    for key, rows in per.items():
        if len(rows) < 3:
            continue
        rows.sort(key=lambda r: r[0])
        t = np.array([r[0] for r in rows])
        q = from_wxyz(np.stack([r[1] for r in rows]))
        # Turns over ~0.1 s steps: sample-to-sample differences would be mostly sensor noise.
        j = np.searchsorted(t, t + stride_s)
        i = np.flatnonzero(j < len(t))
        if len(i) == 0:
            continue
        j = j[i]
        ang = (q[i].inv() * q[j]).magnitude()
        out[key] = float(np.degrees(ang).sum() / (t[j] - t[i]).sum())
    return out


@dataclass
class ShakeResult:
    key: SensorKey | None
    speed_dps: float
    ratio: float
    message: str


def identify_shaken(samples: Iterable[tuple[str, ImuSample]], min_ratio: float = 3.0,
                    min_speed_dps: float = 120.0) -> ShakeResult:
    """The sensor shaken in this window, or None with the reason."""
    scores = motion_scores(samples)
    if not scores:
        return ShakeResult(None, 0.0, 0.0, "no sensor sent anything: check that the sensors are connected")
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    best, speed = ranked[0]
    runner = ranked[1][1] if len(ranked) > 1 else 0.0
    ratio = speed / max(runner, 1e-6)
    if speed < min_speed_dps:
        return ShakeResult(None, speed, ratio, f"no sensor was shaken (the fastest turned {speed:.0f} deg/s): "
                                               "shake it harder, for a second or two")
    if ratio < min_ratio:
        return ShakeResult(None, speed, ratio, f"{best} and {ranked[1][0]} both moved: shake only one sensor")
    return ShakeResult(best, speed, ratio, f"{best} (turning {speed:.0f} deg/s, {ratio:.0f}x any other)")
