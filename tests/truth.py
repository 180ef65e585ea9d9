"""The simulator's own answers, for tests that need a known starting point
(a calibration to record a take with, a reference to score against). The
product never reads these: its simulated paths estimate the IMU
calibration from the routine (core.imu.tracking)."""

from __future__ import annotations


def true_imu_calibration(studio):
    """The simulated sensors' true wear offsets and start headings
    (core.imu.calibration.ImuCalibration): what a perfect capture would give."""
    from core.imu.calibration import ImuCalibration

    return ImuCalibration(studio.imus.wear_offsets, studio.imus.heading_offsets.copy(), pose="T")
