"""The frame ring (live and recorder readers, overwrites, waiting, threads)
and the capture threads on real sources: recorded footage written with
cv2.VideoWriter, and live MJPEG streams over HTTP that go away and come back."""

import threading
import time

import cv2
import numpy as np
import pytest
from footage import H, W, camera_identity, frame_identity, frame_image, servers_fixture  # noqa: F401

from core.capture.ring import FrameRing
from core.capture.threads import ENDED, LOST, RUNNING, STOPPED, CaptureGroup, CaptureThread
from plugins.cameras.opencv_source import OpenCVCamera
from plugins.cameras.video_files import VideoFiles

servers = pytest.fixture(servers_fixture)


@pytest.fixture
def groups():
    """Capture groups stopped at the end, and no capture thread left behind."""
    made = []

    def make(sources, **kw):
        made.append(CaptureGroup.from_sources(sources, **kw))
        return made[-1]

    yield make
    for g in made:
        assert g.stop(5.0)
    assert not [t for t in threading.enumerate() if t.name.startswith("capture ")]


def write_footage(folder, counts, fps=25.0):
    folder.mkdir()
    for k, n in enumerate(counts):
        w = cv2.VideoWriter(str(folder / f"cam{k}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
        for i in range(n):
            w.write(frame_image(i, k))
        w.release()
    return folder


def take(reader, n: int, timeout_s: float = 5.0) -> list:
    """n reads from a ring reader, failing if they do not come in time."""
    out = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n:
        r = reader.read(max(0.0, deadline - time.monotonic()))
        assert r is not None, f"only {len(out)} of {n} frames within {timeout_s} s"
        out.append(r)
    return out


# -- FrameRing -----------------------------------------------------------------

def test_latest_reader_skips_to_the_newest_and_counts(rng):
    capacity = int(rng.integers(2, 20))
    ring = FrameRing(capacity)
    live = ring.latest_reader()
    assert live.read() is None and ring.newest() is None
    n = int(rng.integers(1, 3 * capacity))
    for i in range(n):
        assert ring.push(f"f{i}") == i
    r = live.read()
    assert (r.item, r.seq, r.skipped) == (f"f{n - 1}", n - 1, n - 1)
    assert live.read() is None  # nothing newer
    ring.push("a")
    ring.push("b")
    r = live.read()
    assert (r.item, r.skipped) == ("b", 1)
    assert live.skipped == ring.skipped == n
    late = ring.latest_reader()  # sees only what comes after it
    assert late.read() is None


def test_next_reader_is_lossless_in_order_and_told_of_overwrites(rng):
    capacity = int(rng.integers(3, 30))
    ring = FrameRing(capacity)
    rec = ring.next_reader()
    n = int(rng.integers(1, capacity + 1))
    for i in range(n):
        ring.push(i)
    assert rec.backlog == n
    assert [(r.item, r.seq, r.skipped) for r in iter(rec.read, None)] == [(i, i, 0) for i in range(n)]
    # The recorder falls `behind` frames past the ring's capacity: it is told, once.
    behind = int(rng.integers(1, 50))
    for i in range(n, n + capacity + behind):
        ring.push(i)
    got = list(iter(rec.read, None))
    assert got[0].skipped == behind and all(r.skipped == 0 for r in got[1:])
    assert [r.item for r in got] == list(range(n + behind, n + capacity + behind))
    assert rec.overwritten == ring.overwritten == behind
    # A recorder joining late can start from the oldest frame still held.
    old = ring.next_reader(from_oldest=True)
    assert old.read().item == n + behind
    with pytest.raises(ValueError):
        FrameRing(0)


def test_waiting_reads_time_out_wake_on_push_and_on_close():
    ring = FrameRing(4)
    rec, live = ring.next_reader(), ring.latest_reader()
    start = time.monotonic()
    assert rec.read(0.1) is None
    assert 0.09 < time.monotonic() - start < 1.0
    pusher = threading.Timer(0.05, ring.push, args=("x",))
    pusher.start()
    start = time.monotonic()
    assert live.read(5.0).item == "x"
    assert time.monotonic() - start < 2.0
    pusher.join()
    closer = threading.Timer(0.05, ring.close)
    closer.start()
    assert live.read(5.0) is None  # woken by the close, not by the timeout
    closer.join()
    assert time.monotonic() - start < 2.0
    # What was pushed before the close is still the recorder's to drain.
    assert rec.read(5.0).item == "x" and rec.read(5.0) is None
    with pytest.raises(ValueError, match="closed"):
        ring.push("y")


def test_a_producer_and_both_readers_on_threads(rng):
    capacity, total = int(rng.integers(8, 64)), 20000
    ring = FrameRing(capacity)
    rec, live = ring.next_reader(), ring.latest_reader()
    recorded, lost, seen = [], [0], []

    def record():
        while (r := rec.read(None)) is not None:
            recorded.append(r.item)
            lost[0] += r.skipped

    def watch():
        while (r := live.read(None)) is not None:
            seen.append((r.seq, r.skipped))

    readers = [threading.Thread(target=record), threading.Thread(target=watch)]
    for t in readers:
        t.start()
    for i in range(total):
        ring.push(i)
    ring.close()
    for t in readers:
        t.join(10)
    assert not any(t.is_alive() for t in readers)
    # Every frame is either recorded, in order, or counted as overwritten.
    assert np.all(np.diff(recorded) > 0) and recorded[-1] == total - 1
    assert len(recorded) + lost[0] == total == len(recorded) + ring.overwritten
    seqs = np.array([s for s, _ in seen])
    assert np.all(np.diff(seqs) > 0)
    assert len(seen) + sum(k for _, k in seen) == seqs[-1] + 1


# -- CaptureThread on recorded footage ------------------------------------------

def test_footage_is_captured_losslessly_then_ends(tmp_path, groups, rng):
    counts = [int(c) for c in rng.integers(15, 30, 3)]
    footage = VideoFiles(write_footage(tmp_path / "f", counts, fps=30.0), realtime=False)
    group = groups(footage.cameras, capacity=64)
    recorders = [t.ring.next_reader() for t in group]
    group.start()
    for k, (t, rec) in enumerate(zip(group, recorders)):
        assert t.wait_for(ENDED, 10.0)
        got = list(iter(lambda: rec.read(1.0), None))  # the ring closes at the end of the footage
        assert [r.seq for r in got] == list(range(counts[k])) and not any(r.skipped for r in got)
        assert [r.item.t_s for r in got] == pytest.approx(np.arange(counts[k]) / 30.0)
        assert [frame_identity(r.item.image) for r in got] == list(range(counts[k]))
        assert {camera_identity(r.item.image) for r in got} == {k} == {r.item.camera for r in got}
        s = t.status()
        assert (s.state, s.frames, s.overwritten, s.reconnects) == (ENDED, counts[k], 0, 0)
        assert "end of footage" in s.last_error
        assert not t.alive
    table = group.table()
    assert all(f"video:cam{k}" in table for k in range(3)) and table.count(ENDED) == 3


def test_a_recorder_that_falls_behind_is_told_how_many_were_lost(tmp_path, groups):
    n, capacity = 40, 8
    footage = VideoFiles(write_footage(tmp_path / "f", [n]), realtime=False)
    group = groups(footage.cameras, capacity=capacity)
    rec = group[0].ring.next_reader()
    group.start()
    assert group[0].wait_for(ENDED, 10.0)
    got = list(iter(rec.read, None))
    assert got[0].skipped == n - capacity  # the recorder never read: all but the last `capacity` are gone
    assert [frame_identity(r.item.image) for r in got] == list(range(n - capacity, n))
    assert group.status()[0].overwritten == n - capacity


# -- CaptureThread on live streams that go away ------------------------------------

def test_a_lost_camera_reconnects_while_the_other_keeps_running(servers, groups):
    a, b = servers(cam=0), servers(cam=1)
    cams = [OpenCVCamera(s.url, index=k, stall_timeout_s=0.5) for k, s in enumerate((a, b))]
    group = groups(cams, reconnect_s=0.2)
    rec_a, rec_b = (t.ring.next_reader() for t in group)
    group.start()
    first_a, first_b = take(rec_a, 30), take(rec_b, 30)
    for k, got in enumerate((first_a, first_b)):
        t = np.array([r.item.t_s for r in got])
        assert np.all(np.diff(t) > 0)
        assert {camera_identity(r.item.image) for r in got} == {k}
        ids = [frame_identity(r.item.image) for r in got]
        assert ids == [i % 256 for i in range(ids[0], ids[0] + 30)]  # consecutive: none lost
        assert 0.6 * 40 < (len(t) - 1) / (t[-1] - t[0]) < 1.3 * 40
    status = group.status()
    assert [s.state for s in status] == [RUNNING, RUNNING]
    assert all(0.6 * 40 < s.fps < 1.3 * 40 for s in status)

    a.stop()
    assert group[0].wait_for(LOST, 5.0)
    t_lost = time.monotonic()
    take(rec_a, rec_a.backlog)  # what arrived before the stream went away
    # The other camera is independent: it keeps delivering meanwhile.
    during = take(rec_b, 20)
    assert group[0].state == LOST and group[1].state == RUNNING
    assert during[-1].item.t_s > t_lost and rec_a.read(0.0) is None
    assert group.status()[0].last_error

    a2 = servers(port=a.port, cam=0)
    assert group[0].wait_for(RUNNING, 5.0)
    again = take(rec_a, 10)
    assert all(r.item.t_s > t_lost and camera_identity(r.item.image) == 0 for r in again)
    assert np.all(np.diff([r.item.t_s for r in again]) > 0)
    s = group.status()[0]
    assert (s.state, s.reconnects, s.overwritten) == (RUNNING, 1, 0)
    assert a2.sent > 0

    assert group.stop(5.0)
    assert [t.state for t in group] == [STOPPED, STOPPED] and not any(t.alive for t in group)
    assert rec_b.ring.closed


def test_a_camera_absent_at_start_is_picked_up_when_it_appears(servers, groups):
    gone = servers()
    port = gone.port
    gone.stop()
    group = groups([OpenCVCamera(gone.url, open_timeout_s=1.0)], reconnect_s=0.1)
    group.start()
    assert group[0].wait_for(LOST, 5.0)
    assert "could not open stream" in group.status()[0].last_error
    servers(port=port)
    assert group[0].wait_for(RUNNING, 5.0)
    assert take(group[0].ring.next_reader(), 5)
    assert group.status()[0].reconnects == 0  # it had never run before
    start = time.monotonic()
    assert group.stop(5.0)
    assert time.monotonic() - start < 2.0 and group[0].state == STOPPED


def test_stopping_a_thread_that_never_started():
    t = CaptureThread(OpenCVCamera("unused.avi"))
    assert t.stop(1.0) and t.state == STOPPED and t.ring.closed
