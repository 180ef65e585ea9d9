"""Append-only chunk files: how a take's streams survive a crash.

A stream file starts with an 8-byte signature and then holds chunks, each
written whole and then flushed to the disk (``os.fsync``)::

    signature  b"FCSTRM\\x01\\n"                         8 bytes
    chunk      b"FCCK" | payload length (u64 LE) | CRC-32 of payload (u32 LE)
               | payload: an .npz archive of named arrays (no pickles)

A crash, ``kill -9`` or a pulled plug can leave only a partial chunk at the
end of a file; the reader recognises it (too short, or a checksum that does
not match the bytes there) and ignores it, so a take opens as what it holds.
A damaged chunk in the middle (bit rot, a file edited by hand) is skipped
with a message naming the file and byte offset; a file whose framing is
broken is read up to the break. The reader never changes a file.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIGNATURE = b"FCSTRM\x01\n"
CHUNK_MAGIC = b"FCCK"
_HEADER = struct.Struct("<4sQI")
#: A chunk larger than this is not one FuseCap wrote (a corrupt length field).
MAX_CHUNK_BYTES = 1 << 31


class ChunkError(ValueError):
    """A stream file that cannot be read at all (not one, or unreadable)."""


def encode_chunk(arrays: dict[str, np.ndarray], compress: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    payload = buf.getvalue()
    return _HEADER.pack(CHUNK_MAGIC, len(payload), zlib.crc32(payload)) + payload


class ChunkWriter:
    """Appends chunks to one stream file; each `append` is on the disk when it returns.

    An OSError (a full disk, a vanished folder) propagates to the caller;
    whatever was appended before stays readable."""

    def __init__(self, path: str | Path, compress: bool = False) -> None:
        self.path = Path(path)
        self.compress = compress
        self.chunks = 0
        self.bytes = 0
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._f = open(self.path, "ab")
        if new:
            self._write(SIGNATURE)

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._f.flush()
        os.fsync(self._f.fileno())
        self.bytes += len(data)

    def append(self, arrays: dict[str, np.ndarray]) -> int:
        """Write one chunk; its size in bytes."""
        data = encode_chunk(arrays, self.compress)
        self._write(data)
        self.chunks += 1
        return len(data)

    def close(self) -> None:
        if not self._f.closed:
            try:
                self._f.close()
            except OSError:
                pass  # nothing is buffered: every append was flushed and synced


@dataclass(frozen=True)
class ChunkRef:
    """Where one intact chunk sits in its file."""

    path: Path
    offset: int  # of the payload
    length: int

    def load(self) -> dict[str, np.ndarray]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            payload = f.read(self.length)
        return decode_payload(payload, f"{self.path} at byte {self.offset}")


def decode_payload(payload: bytes, where: str) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception as exc:
        # A payload with a good checksum that is still not an archive FuseCap
        # wrote (a broken deflate stream, an unknown compression method, an
        # object array, ...): zipfile and numpy raise many kinds of exception.
        raise ChunkError(f"{where}: the chunk's contents cannot be read ({type(exc).__name__}: {exc})") from exc


def scan_chunks(path: str | Path) -> tuple[list[ChunkRef], list[str]]:
    """The intact chunks of a stream file and a message for each problem found.

    Checks every chunk's framing and checksum; it does not decode payloads.
    Raises ChunkError for a file that is not a stream file at all."""
    path = Path(path)
    try:
        size = path.stat().st_size
        f = open(path, "rb")
    except OSError as exc:
        raise ChunkError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    refs: list[ChunkRef] = []
    problems: list[str] = []
    with f:
        head = f.read(len(SIGNATURE))
        if head != SIGNATURE:
            if len(head) < len(SIGNATURE) and SIGNATURE.startswith(head):
                problems.append(f"{path}: empty (the recording stopped before its first chunk)")
                return refs, problems
            raise ChunkError(f"{path}: not a FuseCap stream file (unknown signature)")
        pos = len(SIGNATURE)
        while pos < size:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                problems.append(f"{path}: the last {size - pos} bytes are an incomplete chunk "
                                "(what a crash leaves); ignored")
                break
            magic, length, crc = _HEADER.unpack(header)
            if magic != CHUNK_MAGIC or length > MAX_CHUNK_BYTES:
                problems.append(f"{path}: unreadable from byte {pos} on (broken chunk framing); "
                                f"{len(refs)} chunks before it were read")
                break
            start = pos + _HEADER.size
            if start + length > size:
                problems.append(f"{path}: the last chunk is truncated ({size - start} of {length} bytes, "
                                "what a crash leaves); ignored")
                break
            payload = f.read(length)
            if zlib.crc32(payload) != crc:
                tail = start + length == size
                problems.append(f"{path}: the chunk at byte {pos} is damaged (checksum mismatch)"
                                + ("; it is the last one (what a crash can leave): ignored" if tail
                                   else "; skipped"))
            else:
                refs.append(ChunkRef(path, start, length))
            pos = start + length
    return refs, problems
