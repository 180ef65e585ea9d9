"""Foot contacts from a pose sequence: which foot is planted, frame by frame.

World frame of :mod:`core.skeleton` (Z up, millimetres); times in seconds,
strictly increasing, not necessarily evenly spaced.

Each foot is tracked at two points, its ankle (``LeftFoot``/``RightFoot``)
and its ball (``LeftToeBase``/``RightToeBase``). A point is *low* when its
height above the floor is under a threshold: the ball's own height (the
joint sits 15-20 mm above the floor on a flat foot, so the threshold
includes that), the ankle's height less a typical ankle height (so a flat
foot's heel reads about 0). A point is *slow* when its horizontal (x, y)
speed is under a threshold: speed from central differences over the real
time steps, then averaged over about ``smooth_s`` seconds centred on the
frame. A foot is a candidate for contact when one of its points is both
low and slow: the heel carries the foot just after heel strike, the ball
just before toe-off, and each is the pivot there while the other point
moves. With foot IMUs, the foot's angular speed must also be under a limit
(a planted foot does not spin).

Hysteresis: a contact starts when a point passes the "enter" thresholds
(``height_mm``, ``speed_mm_s``, ``angular_speed_deg_s``) and lasts while
one passes the looser "leave" thresholds (``*_leave_*``), so a foot near a
threshold does not chatter. Contacts shorter than ``min_frames`` are
dropped. A frame with a non-finite ankle or ball (or angular speed) is
never in contact and ends any contact.

:func:`detect_contacts` works on a whole take (offline, centred
differences); :class:`ContactTracker` gives the same decision frame by
frame from past frames only, for a live solve (see its lag there).

Defaults were chosen on the simulated performer's walk
(:mod:`core.sim.motion`), at 15 and 30 frames/s; the numbers are in
tests/test_solve_metrics.py. Note that the simulated walk's stance foot is
not fixed: it slides backwards under the body at about 0.6 m/s (its Hips
move at constant speed while the gait is played by joint angles), so the
speed thresholds are looser than a real take's planted feet would need.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from core import skeleton as sk

SIDES: tuple[str, ...] = ("Left", "Right")

# Per side: (ankle, ball) joint indices.
FOOT_JOINTS: tuple[tuple[int, int], ...] = tuple(
    (sk.JOINT_INDEX[side + "Foot"], sk.JOINT_INDEX[side + "ToeBase"]) for side in SIDES
)


@dataclass(frozen=True)
class ContactConfig:
    """Thresholds of foot contact (mm, mm/s, deg/s, frames).

    height_mm / height_leave_mm: the highest a foot point may be above the
        floor to start / to keep a contact: the ball's joint height, or the
        ankle's height less ``ankle_height_mm``.
    speed_mm_s / speed_leave_mm_s: the fastest a low foot point may move
        horizontally to start / to keep a contact.
    angular_speed_deg_s / angular_leave_deg_s: the fastest the foot may
        rotate (its IMU's angular speed) to start / to keep a contact; only
        used when angular speeds are given.
    ankle_height_mm: the ankle joint's height above the floor on a flat
        foot (the simulated performers: 63-79 mm over statures 1.5-2.0 m).
    smooth_s: how long the speed is averaged over, seconds: offline over the
        odd number of frames whose span is nearest (3 at 30 frames/s, 1 at
        15: a central difference at 15 frames/s already spans 0.13 s); live
        over the frames less than smooth_s old.
    min_frames: shortest contact kept, in frames.
    floor_z_mm: the floor's height (the simulator's and a calibrated
        studio's floor is z = 0).

    Why these defaults (simulated walk, 130 performers, 20 s each, at 15 and
    30 frames/s; per-frame signals of one walk in the numbers below):
    - In stance the simulated ball joint sits at 12-18 mm with the heel
      20-45 mm up; in swing the foot passes within 15-35 mm of the floor at
      3-6 m/s, and slow walks drag the ball along it at 2.2-2.8 m/s. Height
      alone cannot tell them apart; speed does.
    - The stance foot slides at 0.2-1.7 m/s (median about 0.6). Entering at
      0.7 m/s and leaving only above 1.8 m/s (or 60 mm up) keeps one contact
      per step: contacts minus gait cycles per foot -5..+3, 0 or +1 for 78 %
      of feet; leaving at 1.5 m/s splits steps (up to 5 extra contacts per
      foot in 20 s at 30 frames/s, 10 performers).
    - Contact fraction per foot: mean 0.65 (0.37-0.85; lower the faster the
      walk), the same at 15 and 30 frames/s once smoothing is in seconds
      (3 frames at both rates made 15 frames/s merge steps).
    - Angular speed: during these contacts the foot turns at a median 100
      deg/s, 99th percentile 255-311, at most 398: 300 / 500 changes none
      of them and keeps a spinning foot off the floor.
    - Standing (idle): in contact in >= 98.9 % of frames, one contact per
      foot. Jumps: no contact while the lowest foot point is more than 50 mm
      up, both feet down whenever it is on the floor.
    - The simulated run's stance foot slides at 1-2.8 m/s: it gets almost no
      contacts with these thresholds, and should not get them.
    """

    height_mm: float = 30.0
    height_leave_mm: float = 60.0
    speed_mm_s: float = 700.0
    speed_leave_mm_s: float = 1800.0
    angular_speed_deg_s: float = 300.0
    angular_leave_deg_s: float = 500.0
    ankle_height_mm: float = 70.0
    smooth_s: float = 0.1
    min_frames: int = 2
    floor_z_mm: float = 0.0

    def __post_init__(self) -> None:
        if self.height_leave_mm < self.height_mm or self.speed_leave_mm_s < self.speed_mm_s \
                or self.angular_leave_deg_s < self.angular_speed_deg_s:
            raise ValueError("a leave threshold must not be stricter than its enter threshold")
        if self.smooth_s < 0 or self.min_frames < 1:
            raise ValueError("smooth_s must be >= 0 and min_frames at least 1")


def contact_intervals(contact: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a (T,) bool array, as (start, stop) frame indices, stop exclusive."""
    c = np.asarray(contact, bool).ravel().astype(np.int8)
    edges = np.diff(np.concatenate([[0], c, [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops)]


def own_floor(positions_mm: np.ndarray, config: ContactConfig = ContactConfig()) -> ContactConfig:
    """`config` with the floor where these poses' feet are lowest: the 2nd
    percentile over frames of the lowest foot point (heel or ball, as
    :func:`_heights` measures them). A solved take's feet may float or sink
    by a few centimetres (the network's), and a recorded clip may stand on
    a raised floor; contacts are found against their own floor."""
    from dataclasses import replace

    h = _heights(np.asarray(positions_mm, np.float64), replace(config, floor_z_mm=0.0))
    h = h[np.isfinite(h).all(axis=(-1, -2))].min(axis=(-1, -2)) if h.size else h.ravel()
    return config if h.size == 0 else replace(config, floor_z_mm=float(np.percentile(h, 2)))


def _heights(positions_mm: np.ndarray, config: ContactConfig) -> np.ndarray:
    """(..., 2, 2) height above the floor of each [left, right] foot's [heel, ball], mm."""
    out = np.empty(positions_mm.shape[:-2] + (2, 2))
    for f, (ankle, ball) in enumerate(FOOT_JOINTS):
        out[..., f, 0] = positions_mm[..., ankle, 2] - config.floor_z_mm - config.ankle_height_mm
        out[..., f, 1] = positions_mm[..., ball, 2] - config.floor_z_mm
    return out


def _foot_points_xy(positions_mm: np.ndarray) -> np.ndarray:
    """(..., 2, 2, 2) horizontal position of each [left, right] foot's [ankle, ball]."""
    idx = np.array(FOOT_JOINTS)
    return positions_mm[..., idx, :2]


def _moving_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean over a centred window of n frames along axis 0 of the finite values in it (the
    window shrinks at the ends); NaN where the centre value is NaN."""
    if n <= 1 or x.shape[0] == 0:
        return x
    T = x.shape[0]
    ok = np.isfinite(x)
    zero = np.zeros((1,) + x.shape[1:])
    total = np.concatenate([zero, np.cumsum(np.where(ok, x, 0.0), axis=0)])
    count = np.concatenate([zero, np.cumsum(ok, axis=0)])
    lo = np.clip(np.arange(T) - (n - 1) // 2, 0, T)
    hi = np.clip(np.arange(T) + n // 2 + 1, 0, T)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (total[hi] - total[lo]) / (count[hi] - count[lo])
    return np.where(ok, mean, np.nan)


def _central_speed(times_s: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(T, ...) horizontal speed, mm/s, by central differences over the real time steps;
    one-sided where a neighbour is missing (the ends, next to a NaN frame)."""
    T = xy.shape[0]
    speed = np.full(xy.shape[:-1], np.nan)
    if T < 2:
        return speed
    shape = (T - 1,) + (1,) * (xy.ndim - 1)
    fwd = np.diff(xy, axis=0) / np.diff(times_s).reshape(shape)     # between t and t+1
    both = np.full(xy.shape, np.nan)
    both[1:-1] = (xy[2:] - xy[:-2]) / (times_s[2:] - times_s[:-2]).reshape((T - 2,) + shape[1:])
    back = np.concatenate([np.full((1,) + xy.shape[1:], np.nan), fwd])
    ahead = np.concatenate([fwd, np.full((1,) + xy.shape[1:], np.nan)])
    v = np.where(np.isfinite(both), both, np.where(np.isfinite(back), back, ahead))
    speed[:] = np.linalg.norm(v, axis=-1)
    return speed


def smoothing_frames(times_s: np.ndarray, smooth_s: float) -> int:
    """The odd number of frames whose span (frames x median step) is nearest smooth_s, at least 1."""
    steps = np.diff(np.asarray(times_s, np.float64))
    steps = steps[np.isfinite(steps) & (steps > 0)]
    if steps.size == 0 or smooth_s <= 0:
        return 1
    return 2 * max(0, int(np.floor((smooth_s / float(np.median(steps)) - 1.0) / 2.0 + 0.5))) + 1


def _hysteresis(enter: np.ndarray, stay: np.ndarray, min_frames: int) -> np.ndarray:
    """(T,) contact: from the first `enter` frame of each run of `stay` to the run's end,
    runs shorter than min_frames dropped. `enter` implies `stay`."""
    out = np.zeros(stay.shape, bool)
    for a, b in contact_intervals(stay):
        first = np.flatnonzero(enter[a:b])
        if first.size and b - (a + first[0]) >= min_frames:
            out[a + first[0]:b] = True
    return out


def _conditions(height: np.ndarray, speed: np.ndarray, angular: np.ndarray | None,
                config: ContactConfig) -> tuple[np.ndarray, np.ndarray]:
    """(..., 2) enter and stay conditions per foot from (..., 2, 2) point heights and speeds
    and optional (..., 2) angular speeds. NaN compares False: never in contact."""
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(height).all(axis=-1) & np.isfinite(speed).all(axis=-1)
        enter = ((height < config.height_mm) & (speed < config.speed_mm_s)).any(axis=-1) & finite
        stay = ((height < config.height_leave_mm) & (speed < config.speed_leave_mm_s)).any(axis=-1) & finite
        if angular is not None:
            enter &= angular < config.angular_speed_deg_s
            stay &= angular < config.angular_leave_deg_s
    return enter, stay


def detect_contacts(times_s: np.ndarray, positions_mm: np.ndarray, config: ContactConfig = ContactConfig(),
                    angular_speed_deg_s: np.ndarray | None = None) -> np.ndarray:
    """(T, 2) bool contact of the [left, right] foot per frame, from a whole take.

    times_s: (T,) strictly increasing seconds; positions_mm: (T, J, 3) world mm
    (NaN where unsolved); angular_speed_deg_s: (T, 2) the foot IMUs' angular
    speed per side, or None.
    """
    t = np.asarray(times_s, np.float64).ravel()
    x = np.asarray(positions_mm, np.float64)
    if x.ndim != 3 or x.shape[0] != t.shape[0] or x.shape[2] != 3:
        raise ValueError(f"positions_mm must be (T, J, 3) with T = {t.shape[0]}, got {x.shape}")
    if t.shape[0] > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("times_s must be strictly increasing")
    height = _heights(x, config)
    xy = _foot_points_xy(x)
    # A frame with any non-finite foot point counts as missing for both of its points.
    bad = ~np.isfinite(xy).all(axis=(-1, -2)) | ~np.isfinite(height).all(axis=-1)
    xy = np.where(bad[..., None, None], np.nan, xy)
    speed = _moving_mean(_central_speed(t, xy), smoothing_frames(t, config.smooth_s))
    ang = None if angular_speed_deg_s is None else np.asarray(angular_speed_deg_s, np.float64).reshape(-1, 2)
    enter, stay = _conditions(height, speed, ang, config)
    out = np.zeros((t.shape[0], 2), bool)
    for f in range(2):
        out[:, f] = _hysteresis(enter[:, f], stay[:, f], config.min_frames)
    return out


class ContactTracker:
    """Foot contacts frame by frame from past and present frames only, for a live solve.

    Same points, thresholds and hysteresis as :func:`detect_contacts`, with
    backward differences: the speed at a frame is the mean of the
    backward-difference speeds of the frames less than ``smooth_s`` old (this
    one included; 3 at 30 frames/s, 2 at 15), so it describes the motion
    about ``smooth_s / 2`` ago where the offline, centred speed has no lag. A
    contact is reported once it has lasted ``min_frames`` frames (so contacts
    shorter than that are never reported, as offline). So a contact starts
    ``min_frames - 1`` frames late plus up to the speed's lag, and ends about
    ``smooth_s / 2`` late when speed ends it (at once when height does).
    Measured with the defaults on the simulated walk (tests/test_solve_metrics.py):
    a contact starts a median 2 frames late at 15 frames/s, 3 at 30 (0.13 and
    0.1 s; up to 5 and 8 frames where the sliding simulated stance foot slows
    slowly through the speed threshold) and ends 0.8-1 frame late on average;
    the tracker agrees with :func:`detect_contacts` on 83 % (15 frames/s) and
    86 % (30) of one walk's frames, at least 72 % and 78 % over 130 walks. A foot with a
    non-finite point restarts (its next frame has no speed and is not in
    contact); a time that does not advance restarts the tracker.
    """

    def __init__(self, config: ContactConfig = ContactConfig()) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._t: float | None = None
        self._xy: list[np.ndarray | None] = [None, None]            # last (2, 2) ankle/ball xy per foot
        self._speeds: list[deque] = [deque(), deque()]              # (t_s, (2,) speeds) per foot
        self._inside = np.zeros(2, bool)
        self._run = np.zeros(2, int)

    def update(self, t_s: float, positions_mm: np.ndarray,
               angular_speed_deg_s: np.ndarray | None = None) -> np.ndarray:
        """(2,) bool contact of the [left, right] foot at this frame.
        positions_mm: (J, 3) world mm; angular_speed_deg_s: (2,) deg/s, or None."""
        t = float(t_s)
        if self._t is not None and not t > self._t:
            self.reset()
        dt = None if self._t is None else t - self._t
        self._t = t
        x = np.asarray(positions_mm, np.float64)
        height = _heights(x, self.config)                            # (2, 2)
        xy = _foot_points_xy(x)                                      # (2, 2, 2)
        speed = np.full((2, 2), np.nan)
        # Frames at least smooth_s old drop out (with a margin for rounding of the times).
        oldest = t - self.config.smooth_s * (1.0 - 1e-6)
        for f in range(2):
            history = self._speeds[f]
            if not (np.isfinite(xy[f]).all() and np.isfinite(height[f]).all()):
                self._xy[f] = None
                history.clear()
                continue
            prev = self._xy[f]
            self._xy[f] = xy[f].copy()
            if prev is None or dt is None:
                continue
            history.append((t, np.linalg.norm(xy[f] - prev, axis=-1) / dt))
            while len(history) > 1 and history[0][0] <= oldest:
                history.popleft()
            speed[f] = np.mean([v for _, v in history], axis=0)
        ang = None if angular_speed_deg_s is None else np.asarray(angular_speed_deg_s, np.float64).reshape(2)
        enter, stay = _conditions(height, speed, ang, self.config)
        self._inside = np.where(self._inside, stay, enter)
        self._run = np.where(self._inside, self._run + 1, 0)
        return self._inside & (self._run >= self.config.min_frames)
