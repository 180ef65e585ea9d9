"""Fuzzing the IMU readers with well-formed packets around arbitrary
contents (the checksums are right, so the parsers look inside), with
damaged real streams, and the SlimeVR receiver with arbitrary datagrams
over UDP. A parser never raises: what it cannot use is counted, and every
sample it gives is a unit quaternion with finite vectors. (Random bytes
alone are fuzzed in tests/test_imu_protocols.py.)"""

import math
import socket
import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugins.imu import fusecap_protocol as fc
from plugins.imu import witmotion as wm
from plugins.imu import xsens as xs
from plugins.imu.parsing import unit_quaternion
from plugins.imu.slimevr import (
    BUNDLE,
    HANDSHAKE,
    HEADER,
    ROTATION,
    ROTATION_2,
    ROTATION_DATA,
    SENSOR_INFO,
    SlimeVrReceiver,
)
from tests.mutations import mutated_bytes

FUZZ = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _check_samples(samples) -> None:
    for s in samples:
        q = np.asarray(s.quat_wxyz)
        assert q.shape == (4,) and np.isfinite(q).all() and abs(np.linalg.norm(q) - 1.0) < 1e-9, q
        for v in (s.accel_mps2, s.gyro_radps):
            assert v is None or (np.shape(v) == (3,) and np.isfinite(v).all())
        assert math.isnan(s.t_s) or math.isfinite(s.t_s)


def _feed(parser, data: bytes, cuts) -> list:
    out, last = [], 0
    for c in sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]:
        out += parser.feed(data[last:c])
        last = c
    assert parser.pending_bytes <= parser.max_packet_bytes
    return out


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        x.sensor_id == y.sensor_id and np.array_equal(x.quat_wxyz, y.quat_wxyz)
        and (x.t_s == y.t_s or (math.isnan(x.t_s) and math.isnan(y.t_s))) for x, y in zip(a, b))


def test_crc16_ccitt_false_check_value_and_continuation():
    assert fc.crc16_ccitt_false(b"123456789") == 0x29B1  # the CRC catalogue's check value
    assert fc.crc16_ccitt_false(b"") == 0xFFFF
    assert fc.crc16_ccitt_false(b"A") == 0xB915
    assert fc.crc16_ccitt_false(b"56789", fc.crc16_ccitt_false(b"1234")) == 0x29B1  # fed in pieces
    assert fc.crc16_ccitt_false(bytearray(b"123456789")) == fc.crc16_ccitt_false(memoryview(b"123456789")) == 0x29B1


def _fusecap_packet(body: bytes) -> bytes:
    """A FuseCap hub packet with a right CRC around any body (LEN first)."""
    return fc.SYNC + body + struct.pack("<H", fc.crc16_ccitt_false(body))


_FLOAT_BITS = st.one_of(st.floats(width=32).map(lambda f: struct.pack(">f", f)), st.binary(min_size=4, max_size=4))
_DOUBLE_BITS = st.one_of(st.floats().map(lambda f: struct.pack(">d", f)), st.binary(min_size=8, max_size=8),
                         st.sampled_from([1e308, -1e308, 1e200, 5e-324]).map(lambda f: struct.pack(">d", f)))


@st.composite
def _fusecap_packets(draw):
    flags = draw(st.integers(0, 3))
    length = fc.body_length(flags)
    body = bytes((length,)) + draw(st.binary(min_size=length, max_size=length))
    if draw(st.booleans()):  # keep the flags consistent with the length, so the packet is parsed
        body = body[:2] + bytes((flags,)) + body[3:]
    return _fusecap_packet(body)


@st.composite
def _xsens_messages(draw):
    items = b""
    for _ in range(draw(st.integers(0, 5))):
        data_id = draw(st.sampled_from([xs.QUATERNION, xs.QUATERNION | xs.FLOAT64, xs.ACCELERATION,
                                        xs.ACCELERATION | xs.FLOAT64, xs.RATE_OF_TURN, xs.RATE_OF_TURN | xs.FLOAT64,
                                        xs.SAMPLE_TIME_FINE, xs.PACKET_COUNTER]) | st.integers(0, 0xFFFF))
        n = {xs.QUATERNION: 4, xs.ACCELERATION: 3, xs.RATE_OF_TURN: 3}.get(data_id & ~xs.FLOAT64)
        if n is not None and data_id & 0xF in (0, 3) and draw(st.booleans()):
            data = b"".join(draw(_DOUBLE_BITS if data_id & xs.FLOAT64 else _FLOAT_BITS) for _ in range(n))
        else:
            data = draw(st.binary(max_size=20))
        items += xs.encode_item(data_id, data)
    items += draw(st.binary(max_size=3))  # sometimes a trailing fragment
    return xs.encode_message(draw(st.sampled_from([xs.MTDATA2, xs.MTDATA2, xs.WAKEUP, 0x00])), items)


@st.composite
def _witmotion_frames(draw):
    kind = draw(st.sampled_from(sorted(wm.KNOWN_TYPES)))
    return wm.encode_frame(kind, draw(st.lists(st.integers(-32768, 32767), min_size=4, max_size=4)))


PACKETS = {
    "fusecap": (fc.FuseCapParser, _fusecap_packets()),
    "xsens": (xs.XsensParser, _xsens_messages()),
    "witmotion": (wm.WitMotionParser, _witmotion_frames()),
}


@pytest.mark.parametrize("name", sorted(PACKETS))
@FUZZ
@given(data=st.data(), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_well_formed_packets_with_any_contents(name, data, cuts):
    """Any packet contents: a usable sample or counted, whatever the split."""
    make, packets = PACKETS[name]
    stream = b"".join(data.draw(st.lists(packets, min_size=1, max_size=6)))
    whole = make()
    got = whole.feed(stream)
    _check_samples(got)
    assert whole.packets + whole.corrupt >= 1
    split = make()
    assert _same(_feed(split, stream, cuts), got)
    assert split.counters() == whole.counters()


@pytest.mark.parametrize("name", sorted(PACKETS))
@FUZZ
@given(data=st.data(), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_damaged_real_streams(name, data, cuts):
    make, _ = PACKETS[name]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    qs = rng.normal(size=(6, 4))
    if name == "fusecap":
        real = b"".join(fc.encode_packet(i, 1000 * i, q, accel_mps2=[0, 0, 9.8], gyro_radps=[0.1, 0, 0])
                        for i, q in enumerate(qs))
    elif name == "xsens":
        real = b"".join(xs.encode_mtdata2(q, sample_time_fine=100 * i, packet_counter=i, accel_mps2=[0, 0, 9.8])
                        for i, q in enumerate(qs))
    else:
        real = b"".join(wm.encode_accel([0, 0, 9.8]) + wm.encode_quaternion(q / np.linalg.norm(q)) for q in qs)
    blob = data.draw(mutated_bytes(real, max_edits=6))
    parser = make()
    got = _feed(parser, blob, cuts)
    _check_samples(got)
    assert len(got) <= len(qs) + len(blob) // 11


@pytest.mark.parametrize("q, unit", [
    ([1e200, 1e200, 0.0, 0.0], [0.5**0.5, 0.5**0.5, 0.0, 0.0]),   # the squares overflow a float64
    ([1e308, -1e308, 1e308, 1e308], [0.5, -0.5, 0.5, 0.5]),
    ([3.0, 4.0, 0.0, 0.0], [0.6, 0.8, 0.0, 0.0]),
    ([5e-324, 0.0, 0.0, 0.0], None),                              # too short to have a direction
    ([0.0, 0.0, 0.0, 1e-4], None),
    ([np.inf, 0.0, 0.0, 0.0], None),
])
def test_unit_quaternion_of_extreme_values(q, unit):
    got = unit_quaternion(q)
    if unit is None:
        assert got is None
    else:
        np.testing.assert_allclose(got, unit, rtol=1e-12)


# -- SlimeVR over UDP --------------------------------------------------------------

def _handshake(mac: bytes = b"\x02\x11\x22\x33\x44\x55") -> bytes:
    body = struct.pack(">iii", 4, 8, 2) + struct.pack(">iii", 0, 0, 0) + struct.pack(">i", 19)
    return HEADER.pack(HANDSHAKE, 0) + body + bytes([5]) + b"0.5.3" + mac


_KINDS = st.sampled_from([ROTATION_DATA] * 4 + [ROTATION, ROTATION_2, BUNDLE, BUNDLE, SENSOR_INFO, HANDSHAKE,
                          0, 4, 10, 22, 99, 2**32 - 1])


def _body(draw, kind: int, depth: int = 0) -> bytes:
    """A packet body: mostly the layout `kind` has (with any values), sometimes any bytes."""
    if kind == ROTATION_DATA and draw(st.integers(0, 3)):
        return bytes((draw(st.integers(0, 255)), draw(st.sampled_from([1, 1, 1, 2, 0])))) \
            + b"".join(draw(_FLOAT_BITS) for _ in range(4)) + draw(st.binary(max_size=2))
    if kind in (ROTATION, ROTATION_2) and draw(st.booleans()):
        return b"".join(draw(_FLOAT_BITS) for _ in range(4))
    if kind == SENSOR_INFO and draw(st.booleans()):
        return draw(st.binary(min_size=2, max_size=3))
    if kind == BUNDLE and depth == 0:
        body = b""
        for _ in range(draw(st.integers(0, 4))):
            inner_kind = draw(_KINDS)
            inner = struct.pack(">I", inner_kind) + _body(draw, inner_kind, depth + 1)
            length = len(inner) if draw(st.integers(0, 4)) else draw(st.integers(0, 0xFFFF))
            body += struct.pack(">H", length) + inner
        return body + (draw(st.binary(max_size=3)) if not draw(st.integers(0, 4)) else b"")
    return draw(st.binary(max_size=80))


@st.composite
def _datagram(draw, number: int) -> bytes:
    """Datagram `number` of a tracker's stream: mostly a packet in order, sometimes
    one with an odd number, sometimes a fragment shorter than a header."""
    if not draw(st.integers(0, 19)):
        return draw(st.binary(max_size=HEADER.size - 1))
    kind = draw(_KINDS)
    if not draw(st.integers(0, 9)):
        number = draw(st.sampled_from([0, 2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1))
    return HEADER.pack(kind, number) + _body(draw, kind)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), count=st.integers(1, 12), handshake=st.integers(0, 4).map(bool))
def test_slimevr_datagrams_with_any_contents(data, count, handshake):
    datagrams = [data.draw(_datagram(i + 1)) for i in range(count)]
    rx = SlimeVrReceiver(host="127.0.0.1", port=0, heartbeat_interval_s=10.0)
    rx.open()
    tracker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tracker.bind(("127.0.0.1", 0))
        sent = ([_handshake()] if handshake else []) + datagrams
        for d in sent:
            tracker.sendto(d, rx.address)
        samples, deadline = [], time.monotonic() + 5.0
        while rx.datagrams < len(sent) and time.monotonic() < deadline:
            samples += rx.read(0.05)
        samples += rx.read(0.0)
        assert rx.datagrams == len(sent)
        _check_samples(samples)
        assert sum(rx.samples.values()) == len(samples)
        assert set(s.sensor_id for s in samples) <= set(rx.sensor_ids().values())
        assert rx.garbage + rx.out_of_order + rx.handshakes <= len(sent)
        if not handshake and not any(len(d) >= HEADER.size and HEADER.unpack_from(d)[0] == HANDSHAKE
                                     for d in datagrams):
            assert samples == [] and rx.garbage == len(sent)  # strangers are never heard
    finally:
        tracker.close()
        rx.close()
