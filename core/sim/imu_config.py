"""Configuration of the simulated IMUs, and the counter-based random numbers
that make their noise independent of how a take is cut into chunks.

See :mod:`core.sim.imu` for the sensor model and its frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Standard gravity used by the simulated accelerometers, m/s^2 (points -Z in the world).
GRAVITY_MPS2 = 9.81


@dataclass(frozen=True)
class ImuConfig:
    """How the 13 simulated sensors behave. All noise is per sample, drawn
    from (rig seed, sensor, sample index), so it is reproducible and does not
    depend on how synthesis is chunked.

    Timing
      rate_hz: samples per second per sensor (typical IMUs: 60-100).
      latency_s: how late each sample is stamped: the timestamp is the
        sampling time plus this (the radio link and the receiver's buffering
        of a consumer sensor; the cameras' clock is the truth).
      jitter_s: each sample is taken at its nominal time plus a uniform offset
        in [-jitter_s, +jitter_s] (the timestamp is that true time); must be
        below a quarter period so a stream stays strictly increasing.
      dropouts: explicit outages, (sensor id, start s, end s): no samples
        with start <= t < end.
      dropout_per_min: expected random outages per sensor per minute, each
        dropout_s long (0: none).

    Orientation
      noise_deg: per-axis standard deviation of a random small rotation
        applied in the sensor frame to every sample; the expected RMS angle
        of that rotation is sqrt(3) * noise_deg.
      drift_deg_per_min: heading drift bound. Each sensor's reference frame
        turns about Z at a constant rate drawn uniformly from
        [-drift_deg_per_min, +drift_deg_per_min] (deg per minute).
      drift_walk_deg: random-walk heading drift on top of that, standard
        deviation after one minute (deg / sqrt(min)); 0 keeps the drift linear.

    Mounting (drawn once per rig)
      wear_max_deg: each sensor sits at a random rotation of up to this angle
        from its nominal mounting.
      wear_axis_aligned: when True the nominal mounting is one of the 24
        axis-aligned rotations (sensor axes need not match bone axes); when
        False it is the identity.
      surface_offset_mm: distance of the sensor from the bone's axis (it sits
        on the skin at the bone's midpoint); matters for the accelerometer.

    Inertial channels (optional, cost three pose evaluations per sample)
      accel / gyro: produce specific force (m/s^2) / angular rate (rad/s) in
        the sensor frame.
      accel_noise_mps2, gyro_noise_dps: per-axis white noise std.
      accel_bias_mps2, gyro_bias_dps: per-sensor constant bias, each axis
        uniform in [-b, b].
      fd_dt_s: half-step of the central finite differences.
    """

    rate_hz: float = 60.0
    latency_s: float = 0.0
    jitter_s: float = 0.001
    dropouts: tuple[tuple[int, float, float], ...] = ()
    dropout_per_min: float = 0.0
    dropout_s: float = 0.5
    noise_deg: float = 0.5
    drift_deg_per_min: float = 1.0
    drift_walk_deg: float = 0.0
    wear_max_deg: float = 35.0
    wear_axis_aligned: bool = True
    surface_offset_mm: float = 45.0
    accel: bool = False
    gyro: bool = False
    accel_noise_mps2: float = 0.02
    gyro_noise_dps: float = 0.1
    accel_bias_mps2: float = 0.0
    gyro_bias_dps: float = 0.0
    fd_dt_s: float = 0.002

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")
        if not 0 <= self.jitter_s < 0.25 / self.rate_hz:
            raise ValueError(f"jitter_s must be in [0, {0.25 / self.rate_hz:g}) at {self.rate_hz} Hz")
        for name in ("noise_deg", "drift_deg_per_min", "drift_walk_deg", "wear_max_deg",
                     "surface_offset_mm", "accel_noise_mps2", "gyro_noise_dps",
                     "accel_bias_mps2", "gyro_bias_dps", "dropout_per_min", "dropout_s", "latency_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not 0 < self.fd_dt_s <= 0.02:
            raise ValueError("fd_dt_s must be in (0, 0.02] s")
        if not self.wear_max_deg <= 180:
            raise ValueError("wear_max_deg must be <= 180")
        for d in self.dropouts:
            if len(d) != 3 or not d[1] <= d[2]:
                raise ValueError(f"a dropout is (sensor id, start s, end s) with start <= end, got {d}")

    @classmethod
    def consumer(cls, **overrides) -> "ImuConfig":
        """Sensors as a user's consumer suit delivers them: what the simulated
        studio uses unless told otherwise.

        - Heading drift 3 deg/min (a constant rate per sensor, drawn in
          [-3, +3]) plus a random walk of 1 deg/sqrt(min): six-axis sensors
          fusing their own gyroscope and accelerometer (no magnetometer, or
          one that indoor steel disturbs) drift about a degree to a few
          degrees a minute in heading, while gravity holds tilt.
        - Stamps 30 ms late: a Bluetooth or 2.4 GHz link and the receiver's
          buffering put 10-50 ms between sampling and the host's clock.
        - 0.5 deg orientation noise per axis, 60 Hz, 1 ms jitter (the defaults)."""
        base = dict(drift_deg_per_min=3.0, drift_walk_deg=1.0, latency_s=0.03)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def noise_free(cls, **overrides) -> "ImuConfig":
        """Perfect sensors: no orientation noise, drift, jitter or dropouts;
        wear and heading offsets are still drawn."""
        base = dict(jitter_s=0.0, noise_deg=0.0, drift_deg_per_min=0.0, drift_walk_deg=0.0,
                    accel_noise_mps2=0.0, gyro_noise_dps=0.0, accel_bias_mps2=0.0,
                    gyro_bias_dps=0.0)
        base.update(overrides)
        return cls(**base)


# Counter-based random numbers: a hash of (seed, stream, sensor, index,
# component), so the value for one sample never depends on which other
# samples were drawn in the same call.

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)

# Streams
S_JITTER, S_ORIENT, S_ACCEL, S_GYRO, S_DROPOUT, S_WALK = range(1, 7)


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _C1
    x = x ^ (x >> np.uint64(27))
    x = x * _C2
    return x ^ (x >> np.uint64(31))


def _as_u64(v) -> np.ndarray:
    a = np.asarray(v)
    if a.dtype.kind == "u":
        return a.astype(np.uint64)
    return np.asarray(a, np.int64).view(np.uint64) if a.ndim else np.uint64(int(a) % (1 << 64))


def hash_u64(seed: int, stream: int, sensor, index, component: int = 0) -> np.ndarray:
    """64-bit hash of the key; vectorised over `sensor` and `index` (int arrays, any sign)."""
    with np.errstate(over="ignore"):
        x = np.uint64(int(seed) % (1 << 64))
        x = _splitmix(np.asarray(x + _GOLDEN, np.uint64))
        for part in (stream, sensor, index, component):
            x = _splitmix((x ^ _as_u64(part)) + _GOLDEN)
        return x


def uniform(seed: int, stream: int, sensor, index, component: int = 0) -> np.ndarray:
    """Uniform floats in the open interval (0, 1)."""
    h = hash_u64(seed, stream, sensor, index, component)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53


def normal(seed: int, stream: int, sensor, index, component: int = 0) -> np.ndarray:
    """Standard normal floats (Box-Muller on two counter-based uniforms)."""
    u1 = uniform(seed, stream, sensor, index, 2 * component)
    u2 = uniform(seed, stream, sensor, index, 2 * component + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def normal3(seed: int, stream: int, sensor, index) -> np.ndarray:
    """(N, 3) standard normals, one independent triple per (sensor, index)."""
    return np.stack([normal(seed, stream, sensor, index, c) for c in range(3)], axis=-1)
