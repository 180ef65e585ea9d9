"""Fuzzing the reader of recorded footage's timestamps.csv: any bytes either
read as every camera's increasing frame times or raise FootageError naming
the file; the file is never changed."""

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugins.cameras.video_files import FootageError, ViewInfo, read_timestamps
from tests.mutations import Seed, mutated_bytes, mutated_tokens

FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
VIEWS = [ViewInfo("cam0", Path("cam0.avi"), 4, 25.0, 64, 48), ViewInfo("cam1", Path("cam1.avi"), 3, 25.0, 64, 48)]


def _valid() -> Seed:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["camera", "frame", "t_s"])
    out.write("# cam1 started late\n")
    for view, start in zip(VIEWS, (10.0, 10.013)):
        for i in range(view.frames):
            w.writerow([view.name, i, repr(start + i / 25.0)])
    return Seed(out.getvalue().encode(), "timestamps.csv")


VALID = _valid()


def test_the_seed_file_reads():
    times = read_timestamps_of(VALID)
    assert [len(t) for t in times] == [4, 3]
    np.testing.assert_allclose(times[1], 10.013 + np.arange(3) / 25.0)
    # As a spreadsheet saves it: a byte order mark and CRLF line ends.
    again = read_timestamps_of(b"\xef\xbb\xbf" + VALID.replace(b"\n", b"\r\n"))
    assert all(np.array_equal(a, b) for a, b in zip(times, again))


def read_timestamps_of(data: bytes, folder: Path | None = None):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(folder or tmp) / "timestamps.csv"
        path.write_bytes(data)
        try:
            return read_timestamps(path, VIEWS)
        except FootageError as exc:
            assert str(exc).startswith(str(path)), str(exc)
            raise
        finally:
            assert path.read_bytes() == data


def _check(data: bytes) -> None:
    try:
        times = read_timestamps_of(data)
    except FootageError:
        return
    assert [len(t) for t in times] == [v.frames for v in VIEWS]
    for t in times:
        assert np.isfinite(t).all() and (np.diff(t) > 0).all()


_POOL = st.sampled_from(["cam0", "cam1", "cam2", "camera", "frame", "t_s", ",", '"', '""', "#", "0", "3", "4", "-1",
                         "nan", "inf", "1e999", "9" * 5000, "\x00", "\r", "\ufeff", "0x10", "1_0", "٣"]) \
    | st.text(max_size=4)


@FUZZ
@given(data=st.data())
def test_mutated_timestamps_read_or_name_the_file(data):
    if data.draw(st.booleans()):
        blob = data.draw(mutated_bytes(VALID))
    else:
        blob = data.draw(mutated_tokens(VALID.decode(), _POOL)).encode("utf-8", "surrogatepass")
    _check(blob)


@FUZZ
@given(blob=st.binary(max_size=200) | st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_random_bytes_read_or_name_the_file(blob):
    _check(blob)


def test_a_field_larger_than_the_csv_limit_names_the_file():
    data = VALID.replace(b"cam1,0,", b"cam1," + b"0" * 200_000 + b",", 1)
    with pytest.raises(FootageError, match=r"timestamps\.csv, line 7: "):
        read_timestamps_of(data)
