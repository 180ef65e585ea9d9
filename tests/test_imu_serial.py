"""The serial IMU source against a simulated hub on a real pseudo-terminal:
samples, times, line noise, unplugging; plus device-clock mapping, port
discovery, open errors and the plugin's registration."""

import errno
import os
import time

import numpy as np
import pytest
import serial
from scipy.spatial.transform import Rotation

from core.devices import DeviceError, ImuSample, ImuSource
from core.registry import Registry
from core.rotations import angle_deg, from_wxyz
from plugins.imu import witmotion as wm
from plugins.imu.clock_sync import DeviceClockMapper
from plugins.imu.fusecap_protocol import encode_packet
from plugins.imu.serial_source import PortInfo, SerialImuSource, list_ports

needs_pty = pytest.mark.skipif(not hasattr(os, "openpty"), reason="pseudo-terminals are POSIX-only")


def deg_between(q1, q2) -> float:
    return float(angle_deg(from_wxyz(q1), from_wxyz(q2)))


def random_stream(rng, n_sensors: int, rate_hz: float, duration_s: float) -> list[ImuSample]:
    """Time-sorted samples of `n_sensors` sensors at `rate_hz`, random poses and accelerations."""
    out = []
    for sid in range(n_sensors):
        t = np.arange(rng.uniform(0, 1 / rate_hz), duration_s, 1 / rate_hz)
        q = Rotation.random(len(t), random_state=rng).as_quat(scalar_first=True)
        a = rng.normal(0, 4, (len(t), 3)) + [0, 0, 9.81]
        out += [ImuSample(sid, float(t[i]), q[i], a[i]) for i in range(len(t))]
    return sorted(out, key=lambda s: s.t_s)


def read_until(source, done, timeout_s: float = 3.0) -> list[ImuSample]:
    got: list[ImuSample] = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not done(got):
        got += source.read(0.05)
    return got


@pytest.fixture
def hubs():
    from plugins.imu.sim_hub import SimulatedHub

    made = []

    def make(samples, **kw):
        hub = SimulatedHub(samples, **kw)
        made.append(hub)
        return hub

    yield make
    for hub in made:
        hub.close()


@pytest.fixture
def sources():
    made = []

    def make(*args, **kw):
        src = SerialImuSource(*args, **kw)
        made.append(src)
        return src

    yield make
    for src in made:
        src.close()


@needs_pty
def test_samples_arrive_with_ids_orientations_and_host_times(hubs, sources, rng):
    sent = random_stream(rng, n_sensors=4, rate_hz=100, duration_s=0.6)
    # The hub's clock starts 0.2 s before its 2^32 us wrap, so it wraps mid-run.
    hub = hubs(sent, record=len(sent), device_clock_start_us=2**32 - 200_000)
    src = sources(hub.port, sensor_id=10)
    src.open()
    hub.start()
    got = read_until(src, lambda g: hub.finished.is_set() and len(g) >= hub.packets_written)
    now = time.monotonic()
    assert hub.packets_written == len(sent)
    assert len(got) == len(sent)
    for g, s in zip(got, sent):
        assert g.sensor_id == s.sensor_id + 10
        assert deg_between(g.quat_wxyz, s.quat_wxyz) < 0.05
        assert g.accel_mps2 == pytest.approx(s.accel_mps2, abs=1 / 256)
    for sid in range(4):
        g_t = np.array([g.t_s for g in got if g.sensor_id == sid + 10])
        s_t = np.array([s.t_s for s in sent if s.sensor_id == sid])
        assert np.all(np.diff(g_t) > 0)  # across the device clock's wrap too
        # Host time = device time + the offset estimate, which only ever falls
        # (a running minimum): bursty arrival times would not pass this.
        assert np.all(np.diff(g_t - s_t) <= 2e-6)  # (the hub rounds to whole µs)
        assert np.max(np.abs(np.diff(g_t) - np.diff(s_t))) < 0.05
    assert max(g.t_s for g in got) <= now and now - got[-1].t_s < 1.0
    c = src.counters()
    assert c.state == "open" and c.corrupt == 0 and c.skipped_bytes == 0
    assert [s.sensor_id for s in c.sensors] == [10, 11, 12, 13]
    assert sum(s.samples for s in c.sensors) == len(sent)
    assert all(40 < s.rate_hz < 140 for s in c.sensors)  # 100 Hz, over the time since each began


@needs_pty
def test_simulated_studio_streams_through_the_hub(hubs, sources):
    from core.sim.studio import SimulatedStudio
    from plugins.imu.sim_hub import studio_samples

    hub = hubs(studio_samples(SimulatedStudio()), record=10_000)
    src = sources(hub.port)
    src.open()
    hub.start()
    got = read_until(src, lambda g: len({s.sensor_id for s in g}) == 13 and len(g) >= 200)
    sent = list(hub.sent)
    assert len(got) >= 200 and len(sent) >= len(got)
    assert {s.sensor_id for s in got} == set(range(13))
    for g, s in zip(got, sent):  # the reader was open before the first packet: nothing skipped
        assert g.sensor_id == s.sensor_id and deg_between(g.quat_wxyz, s.quat_wxyz) < 0.05


@needs_pty
def test_line_noise_is_survived_and_counted(hubs, sources, rng):
    sent = random_stream(rng, n_sensors=3, rate_hz=100, duration_s=0.6)
    hub = hubs(sent)
    src = sources(hub.port)
    src.open()
    hub.start()
    got = read_until(src, lambda g: len(g) >= 20)
    noise = bytes(rng.integers(0, 256, 300, dtype=np.uint8))
    damaged = bytearray(encode_packet(1, 123, [1, 0, 0, 0]))
    damaged[-2] ^= 0xFF
    hub.inject(noise + bytes(damaged) + b"\xfc\xa5\x14")  # noise, a bad CRC, a truncated header
    got += read_until(src, lambda g: hub.finished.is_set() and len(got) + len(g) >= len(sent))
    assert len(got) == len(sent)  # every good packet still read
    for g, s in zip(got, sent):
        assert g.sensor_id == s.sensor_id and deg_between(g.quat_wxyz, s.quat_wxyz) < 0.05
    c = src.counters()
    assert c.corrupt >= 1
    assert c.skipped_bytes >= len(noise)
    assert c.packets == len(sent)


@needs_pty
def test_unplug_and_replug_recovers(hubs, sources, rng):
    hub = hubs(random_stream(rng, n_sensors=2, rate_hz=100, duration_s=20.0))
    src = sources(hub.stable_port)  # the by-id style link that follows the device
    src.open()
    hub.start()
    assert len(read_until(src, lambda g: len(g) >= 10)) >= 10
    old_path = hub.port
    hub.unplug()
    read_until(src, lambda g: src.state == "lost", timeout_s=2.0)
    assert src.state == "lost"
    assert src.read(0.05) == [] and src.state == "lost"  # the port is gone: nothing, no exception
    assert not os.path.exists(hub.stable_port)
    hub.replug()
    assert os.path.exists(hub.stable_port)
    t_replug = time.monotonic()
    after = read_until(src, lambda g: len(g) >= 10, timeout_s=3.0)
    assert src.state == "open" and src.reconnects == 1
    assert len(after) >= 10 and {s.sensor_id for s in after} == {0, 1}
    assert time.monotonic() - t_replug < 2.0  # reopened within a few 0.5 s attempts
    assert all(s.t_s > t_replug - 0.05 for s in after)  # fresh samples, not a stale buffer
    assert old_path  # (the pty behind the link may or may not get the same number)


@needs_pty
def test_source_on_a_vanished_pty_path_stays_lost(hubs, sources, rng):
    hub = hubs(random_stream(rng, 1, 100, 20.0))
    src = sources(hub.port, reconnect_interval_s=0.05)
    src.open()
    hub.start()
    read_until(src, lambda g: len(g) >= 3)
    hub.unplug()
    read_until(src, lambda g: src.state == "lost", timeout_s=2.0)
    for _ in range(4):
        assert src.read(0.06) == []
    # It keeps trying, and says why it cannot reopen.
    assert src.state == "lost" and hub.port in src.last_error and "no such port" in src.last_error


@needs_pty
def test_witmotion_device_over_a_pty(hubs, sources):
    hub = hubs([])  # no hub packets: the line carries only what is injected
    src = sources(hub.port, protocol="witmotion", sensor_id=5)
    src.open()
    hub.start()
    q = Rotation.from_euler("ZYX", [40, 10, -20], degrees=True).as_quat(scalar_first=True)
    before = time.monotonic()
    hub.inject(wm.encode_accel([0, 0, 9.8]) + wm.encode_quaternion(q) + wm.encode_quaternion(q))
    got = read_until(src, lambda g: len(g) >= 2)
    assert [s.sensor_id for s in got] == [5, 5]
    assert all(deg_between(s.quat_wxyz, q) < 0.05 for s in got)
    assert got[0].accel_mps2 == pytest.approx([0, 0, 9.8], abs=0.01)
    assert all(before <= s.t_s <= time.monotonic() for s in got)  # arrival times


@needs_pty
def test_second_open_of_a_busy_port_is_refused(hubs, sources):
    hub = hubs([])
    first = sources(hub.port)
    first.open()
    second = sources(hub.port)
    with pytest.raises(DeviceError, match="busy") as info:
        second.open()
    assert hub.port in str(info.value)


def test_missing_port_raises_device_error_naming_it(tmp_path, sources):
    path = str(tmp_path / "ttyUSB-missing")
    src = sources(path)
    with pytest.raises(DeviceError) as info:
        src.open()
    assert path in str(info.value) and "no such port" in str(info.value)
    with pytest.raises(DeviceError, match="not open"):
        src.read(0.0)


def test_permission_denied_is_explained(monkeypatch, sources):
    def refuse(url, **kw):
        raise serial.SerialException(errno.EACCES, f"could not open port {url}: [Errno 13] Permission denied")

    monkeypatch.setattr(serial, "serial_for_url", refuse)
    with pytest.raises(DeviceError) as info:
        sources("/dev/ttyACM7").open()
    assert "/dev/ttyACM7" in str(info.value) and "dialout" in str(info.value)


def test_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="witmotion"):
        SerialImuSource("/dev/null", protocol="nmea")


def test_list_ports_reports_device_description_and_hwid(monkeypatch):
    from serial.tools.list_ports_common import ListPortInfo

    a = ListPortInfo("/dev/ttyUSB1", skip_link_detection=True)
    a.description, a.hwid = "CP2102 USB to UART", "USB VID:PID=10C4:EA60 SER=0001"
    b = ListPortInfo("/dev/ttyACM0", skip_link_detection=True)
    b.description, b.hwid = "ESP32-S3", "USB VID:PID=303A:1001"
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: [a, b])
    assert list_ports() == [PortInfo("/dev/ttyACM0", "ESP32-S3", "USB VID:PID=303A:1001"),
                            PortInfo("/dev/ttyUSB1", "CP2102 USB to UART", "USB VID:PID=10C4:EA60 SER=0001")]


def test_plugin_registers_serial_and_slimevr():
    import plugins.imu
    from plugins.imu.slimevr import SlimeVrReceiver

    reg = Registry()
    plugins.imu.register(reg)
    assert set(reg.imu_sources) == {"serial", "slimevr"}
    src = reg.imu_sources["serial"]("/dev/ttyUSB0", protocol="xsens", sensor_id=3)
    assert isinstance(src, SerialImuSource) and isinstance(src, ImuSource)
    assert (src.protocol, src.baudrate, src.state) == ("xsens", 115200, "closed")
    rx = reg.imu_sources["slimevr"](host="127.0.0.1", port=0)
    assert isinstance(rx, SlimeVrReceiver) and isinstance(rx, ImuSource)


# -- device clock -> host clock ----------------------------------------------------

def test_clock_mapper_finds_the_offset_from_the_fastest_packets(rng):
    offset = rng.uniform(-1000, 1000)
    device = np.arange(0, 60, 0.01) + 3.0
    delay = rng.exponential(0.004, len(device)) + 0.001  # never below 1 ms
    host = device + offset + delay
    m = DeviceClockMapper(window_s=10.0)
    mapped = np.array([m.to_host(d, h) for d, h in zip(device, host)])
    assert np.all(mapped <= host + 1e-12)  # never later than arrival
    err = mapped[1000:] - (device[1000:] + offset)  # once the window is full
    assert np.all(err >= 0.001 - 1e-9) and np.max(err) < 0.0012
    # The spacing is the device's, not the jittery arrivals'.
    assert np.std(np.diff(mapped[1000:])) < 1e-4 < np.std(np.diff(host))


def test_clock_mapper_follows_drift_and_restarts():
    drift = 50e-6  # the host clock runs 50 ppm fast against the device's
    device = np.arange(0, 120, 0.01)
    host = 100.0 + device * (1 + drift) + 0.002
    m = DeviceClockMapper(window_s=10.0)
    mapped = np.array([m.to_host(d, h) for d, h in zip(device, host)])
    assert np.max(np.abs(mapped - host)[1000:]) < 0.001  # within the window's drift
    # The device reboots: its clock starts from 0 again, 120 s "behind".
    t_after = host[-1] + 0.01
    assert m.to_host(0.0, t_after) == pytest.approx(t_after)
    assert m.to_host(0.01, t_after + 0.01) == pytest.approx(t_after + 0.01)
    assert m.restarts == 1


@needs_pty
def test_samples_missing_from_a_sensor_are_counted_from_its_device_clock(hubs, sources, rng):
    stream = random_stream(rng, 2, 100.0, 1.0)
    ours = [s for s in stream if s.sensor_id == 1]
    lost = int(rng.integers(3, 9))
    gone = {id(s) for s in ours[40:40 + lost]}  # a run of samples the hub never sent
    hub = hubs([s for s in stream if id(s) not in gone]).start()
    src = sources(hub.port, protocol="fusecap")
    src.open()
    read_until(src, lambda got: sum(s.sensor_id == 1 for s in got) >= len(ours) - lost - 1, timeout_s=10.0)
    counts = {c.sensor_id: c for c in src.counters().sensors}
    assert counts[1].dropped == lost
    assert counts[0].dropped == 0
    # The hub may still hold the stream's very last packet when it runs dry.
    assert len(ours) - lost - 1 <= counts[1].samples <= len(ours) - lost
