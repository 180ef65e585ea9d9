"""Built-in IMU drivers (entry point `imu`): serial devices (FuseCap hubs,
WitMotion, Xsens MTi) and SlimeVR trackers over UDP.

Registered sources:

- "serial": ``create_serial(port, protocol="fusecap", baudrate=None, sensor_id=0, name=None)``,
  a :class:`plugins.imu.serial_source.SerialImuSource`;
- "slimevr": ``create_slimevr(host="0.0.0.0", port=6969, name="slimevr")``,
  a :class:`plugins.imu.slimevr.SlimeVrReceiver`.

The drivers are imported when a source is created, so registering costs nothing.
"""

from __future__ import annotations


def create_serial(port: str, protocol: str = "fusecap", baudrate: int | None = None,
                  sensor_id: int = 0, name: str | None = None):
    from plugins.imu.serial_source import SerialImuSource

    return SerialImuSource(port, protocol=protocol, baudrate=baudrate, sensor_id=sensor_id, name=name)


def create_slimevr(host: str = "0.0.0.0", port: int = 6969, name: str = "slimevr"):
    from plugins.imu.slimevr import SlimeVrReceiver

    return SlimeVrReceiver(host=host, port=port, name=name)


def register(registry) -> None:
    registry.add_imu_source("serial", create_serial)
    registry.add_imu_source("slimevr", create_slimevr)
