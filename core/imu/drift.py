"""Continuous heading-drift correction against the vision skeleton.

An IMU without a magnetometer drifts in heading (its reference frame turns
slowly about the vertical): left alone, a long take's IMU bones turn away
from the body at a degree or more a minute. While capturing, the tracker
keeps a window of recent frames (sensor orientations and the bone
directions the cameras see), and every `every_s` it fits each sensor's
heading over that window (in closed form: the heading that turns the
sensor's bone directions onto the cameras' is atan2 of two sums) and moves
a fraction `gain` of the way there. Sensors whose bone stayed nearly
vertical over the window (the heading then changes nothing the cameras can
see; `min_horizontal` is the mean product of the two directions' horizontal
parts) wait until the bone moves again, and a fit more than `search_deg`
away is a bad skeleton, not drift, and is ignored. Only the heading
changes; the wear offsets captured at calibration stay.

Time constant: with the defaults (a 10 s window, an update every second,
gain 0.2) a heading error decays by e in about 5 s of observable motion;
drift is far slower (a degree or a few a minute), and the long window
averages out the vision skeleton's noise, which a shorter window turns into
heading jitter (tests/test_imu_calibration.py holds every bone within 3°
over a 60 s take with these defaults). One update of 13 sensors
takes a few milliseconds.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from core import skeleton as sk
from core.imu.calibration import BONE_DIRECTIONS, ImuCalibration
from core.rotations import from_wxyz


class HeadingTracker:
    def __init__(self, calib: ImuCalibration, window_s: float = 10.0, every_s: float = 1.0, gain: float = 0.2,
                 search_deg: float = 20.0, min_horizontal: float = 0.08) -> None:
        self.calib = calib
        self.window_s = float(window_s)
        self.every_s = float(every_s)
        self.gain = float(gain)
        self.search = np.radians(search_deg)
        self.min_horizontal = float(min_horizontal)
        self._frames: deque = deque()
        self._last_update = -np.inf
        self.corrections_deg = np.zeros(sk.NUM_IMUS)  # total correction applied, per sensor
        self.updates = 0

    def add(self, t_s: float, imu_wxyz: np.ndarray, joints_mm: np.ndarray | None,
            confidence: np.ndarray | None = None) -> None:
        """One frame: sensor orientations (13, 4) (NaN: missing) and the vision
        joints (22, 3) (None when the cameras solved nothing). Joints with a
        confidence below 0.5 are left out of the fit."""
        if joints_mm is not None:
            j = np.asarray(joints_mm, float).copy()
            if confidence is not None:
                j[np.asarray(confidence) < 0.5] = np.nan
            self._frames.append((float(t_s), np.asarray(imu_wxyz, float), j))
        while self._frames and self._frames[0][0] < t_s - self.window_s:
            self._frames.popleft()
        if t_s - self._last_update >= self.every_s and len(self._frames) >= 10:
            self._update()
            self._last_update = t_s

    def _update(self) -> None:
        q_all = np.stack([f[1] for f in self._frames])       # (T, 13, 4)
        j_all = np.stack([f[2] for f in self._frames])       # (T, 22, 3)
        for k in range(sk.NUM_IMUS):
            ok = ~np.isnan(q_all[:, k, 0])
            if ok.sum() < 10:
                continue
            # The bone's frame in the sensor's reference frame: q W^-1 (heading left out).
            ref = from_wxyz(q_all[ok, k]) * self.calib.wear[k].inv()
            A = B = 0.0
            n = 0
            for i, (a, b, _) in enumerate(BONE_DIRECTIONS[k]):
                d = self.calib.rest_dirs[k, i]
                o = j_all[ok][:, b] - j_all[ok][:, a]
                good = np.isfinite(o).all(1)
                if not good.any():
                    continue
                o = o[good] / np.maximum(np.linalg.norm(o[good], axis=1, keepdims=True), 1e-9)
                v = ref[good].apply(d)
                # argmin over psi of sum |Rz(psi) v - o|^2 is atan2(B, A):
                A += float((o[:, 0] * v[:, 0] + o[:, 1] * v[:, 1]).sum())
                B += float((o[:, 1] * v[:, 0] - o[:, 0] * v[:, 1]).sum())
                n += len(o)
            if n < 10:
                continue
            # Horizontal agreement per frame: near 0 when the bone stayed vertical (heading unobservable).
            if np.hypot(A, B) / n < self.min_horizontal:
                continue
            psi0 = float(self.calib.heading_rad[k])
            err = float(np.angle(np.exp(1j * (np.arctan2(B, A) - psi0))))
            if abs(err) > self.search:
                continue  # a jump this large is a bad skeleton, not drift
            step = self.gain * err
            self.calib.heading_rad[k] = float(np.angle(np.exp(1j * (psi0 + step))))
            self.corrections_deg[k] += np.degrees(step)
        self.updates += 1
