"""Reading BVH motion files (Biovision hierarchy).

A BVH file is a HIERARCHY of joints (ROOT, JOINT, End Site), each with an
OFFSET from its parent and a list of CHANNELS, then MOTION: a frame count,
a frame time and one row of channel values per frame. Channels may come in
any order and number per joint (commonly 6 on the root and 3 elsewhere, or
6 everywhere). Rotation channels are Euler angles in degrees, composed in
the order listed as intrinsic rotations (``Zrotation Xrotation Yrotation``
means v_parent = Rz Rx Ry v_child). Position channels replace the matching
OFFSET components (so a root's position channels are its absolute position,
as Blender reads them).

This module keeps the clip in the file's own frame and units (usually Y up,
centimetres); :mod:`core.sim.motion.retarget` maps it onto FuseCap's
skeleton. A malformed file raises ValueError naming the line, never an
IndexError.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CHANNEL_NAMES = {c.lower(): c for c in ("Xposition", "Yposition", "Zposition",
                                          "Xrotation", "Yrotation", "Zrotation")}


@dataclass(frozen=True)
class BvhJoint:
    """name; parent index (-1 for the root); offset (3,) file units in the
    parent's frame; channels as canonically spelt; end_site: (3,) offset of
    an End Site child, if any."""

    name: str
    parent: int
    offset: np.ndarray
    channels: tuple[str, ...]
    end_site: np.ndarray | None = None


@dataclass(frozen=True)
class BvhClip:
    """A parsed clip in the file's frame and units. motion: (F, C) channel
    values per frame, joints' channels in hierarchy order."""

    joints: tuple[BvhJoint, ...]
    frame_time_s: float
    motion: np.ndarray
    source: str = "<string>"

    @property
    def num_frames(self) -> int:
        return self.motion.shape[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    def _columns(self) -> list[int]:
        starts, c = [], 0
        for j in self.joints:
            starts.append(c)
            c += len(j.channels)
        return starts

    def rest_positions(self) -> np.ndarray:
        """(J, 3) joint positions with every channel at zero rotation, file units."""
        pos = np.zeros((len(self.joints), 3))
        for i, j in enumerate(self.joints):
            pos[i] = j.offset + (pos[j.parent] if j.parent >= 0 else 0.0)
        return pos

    def local_rotations(self) -> list[Rotation]:
        """Per joint, its F local rotations (child frame -> parent frame)."""
        out = []
        for j, start in zip(self.joints, self._columns()):
            cols = [start + k for k, c in enumerate(j.channels) if c.endswith("rotation")]
            if cols:
                seq = "".join(j.channels[c - start][0] for c in cols)
                out.append(Rotation.from_euler(seq, self.motion[:, cols], degrees=True))
            else:
                out.append(Rotation.identity(self.num_frames))
        return out

    def translations(self) -> np.ndarray:
        """(F, J, 3) each joint's offset from its parent per frame (position
        channels replace offset components)."""
        out = np.broadcast_to(np.stack([j.offset for j in self.joints]),
                              (self.num_frames, len(self.joints), 3)).copy()
        for i, (j, start) in enumerate(zip(self.joints, self._columns())):
            for k, c in enumerate(j.channels):
                if c.endswith("position"):
                    out[:, i, "XYZ".index(c[0])] = self.motion[:, start + k]
        return out

    def global_rotations(self) -> list[Rotation]:
        """Per joint, its F global rotations (joint frame -> file world)."""
        glob: list[Rotation] = []
        for j, r in zip(self.joints, self.local_rotations()):
            glob.append(r if j.parent < 0 else glob[j.parent] * r)
        return glob

    def positions(self, joint: int, glob: list[Rotation] | None = None) -> np.ndarray:
        """(F, 3) world positions of one joint, file units."""
        glob = glob or self.global_rotations()
        trans = self.translations()
        chain = [joint]
        while self.joints[chain[-1]].parent >= 0:
            chain.append(self.joints[chain[-1]].parent)
        pos = trans[:, chain[-1]].copy()
        for child in reversed(chain[:-1]):
            pos += glob[self.joints[child].parent].apply(trans[:, child])
        return pos


class _Tokens:
    """Whitespace tokens with their 1-based line numbers."""

    def __init__(self, text: str, source: str) -> None:
        # Lines end at \n, \r\n or \r, as editors count them (str.splitlines
        # would also break at form feeds and other separators).
        lines = _LINE_BREAK.split(text)
        self.items = [(tok, n) for n, line in enumerate(lines, 1) for tok in line.split()]
        self.last_line = len(lines)
        self.pos = 0
        self.source = source

    def error(self, line: int, msg: str) -> ValueError:
        return ValueError(f"{self.source}, line {line}: {msg}")

    def peek(self) -> tuple[str | None, int]:
        return self.items[self.pos] if self.pos < len(self.items) else (None, self.last_line)

    def take(self, what: str) -> tuple[str, int]:
        tok, line = self.peek()
        if tok is None:
            raise self.error(line, f"unexpected end of file, expected {what}")
        self.pos += 1
        return tok, line

    def expect(self, literal: str) -> int:
        tok, line = self.take(f"'{literal}'")
        if tok.lower() != literal.lower():
            raise self.error(line, f"expected '{literal}', got '{tok}'")
        return line

    def number(self, what: str) -> float:
        tok, line = self.take(what)
        return _as_number(self, tok, line, what)

    def rest_of_line(self, line: int) -> list[str]:
        out = []
        while self.pos < len(self.items) and self.items[self.pos][1] == line and self.items[self.pos][0] != "{":
            out.append(self.items[self.pos][0])
            self.pos += 1
        return out


class _Open:
    """A joint whose block is being read."""

    def __init__(self, name: str, line: int, index: int, parent: int) -> None:
        self.name, self.line, self.index, self.parent = name, line, index, parent
        self.offset: np.ndarray | None = None
        self.channels: tuple[str, ...] = ()
        self.end_site: np.ndarray | None = None

    def joint(self) -> BvhJoint:
        return BvhJoint(self.name, self.parent, self.offset, self.channels, self.end_site)


def _open_joint(tk: _Tokens, parent: int, joints: list, seen: dict) -> _Open:
    """Start `ROOT|JOINT name {` (the keyword already taken)."""
    _, line = tk.items[tk.pos - 1]
    name = " ".join(tk.rest_of_line(line))
    if not name:
        raise tk.error(line, "joint without a name")
    if name in seen:
        raise tk.error(line, f"joint name '{name}' used twice (first on line {seen[name]})")
    seen[name] = line
    tk.expect("{")
    joints.append(None)
    return _Open(name, line, len(joints) - 1, parent)


def _hierarchy(tk: _Tokens) -> list[BvhJoint]:
    """Parse the `ROOT name { ... }` block (the ROOT keyword already taken).
    Iterative, so joints may nest to any depth."""
    joints: list[BvhJoint | None] = []
    seen: dict[str, int] = {}
    stack = [_open_joint(tk, -1, joints, seen)]
    while stack:
        j = stack[-1]
        tok, tline = tk.take(f"OFFSET, CHANNELS, JOINT, End Site or '}}' in joint '{j.name}'")
        key = tok.upper()
        if key == "OFFSET":
            j.offset = np.array([tk.number("an OFFSET value") for _ in range(3)])
        elif key == "CHANNELS":
            count = tk.number("the channel count")
            if count != int(count) or not 0 <= count <= 6:
                raise tk.error(tline, f"channel count must be 0-6, got {count:g}")
            names = []
            for _ in range(int(count)):
                c, cline = tk.take("a channel name")
                if c.lower() not in _CHANNEL_NAMES:
                    raise tk.error(cline, f"unknown channel '{c}' (expected X/Y/Z position/rotation)")
                names.append(_CHANNEL_NAMES[c.lower()])
            if len(set(names)) != len(names):
                raise tk.error(tline, f"repeated channel in {names}")
            j.channels = tuple(names)
        elif key == "JOINT":
            if j.offset is None:
                raise tk.error(tline, f"joint '{j.name}' has no OFFSET before its children")
            joints[j.index] = j.joint()
            stack.append(_open_joint(tk, j.index, joints, seen))
        elif key == "END":
            tk.expect("Site")
            tk.expect("{")
            tk.expect("OFFSET")
            j.end_site = np.array([tk.number("an End Site OFFSET value") for _ in range(3)])
            tk.expect("}")
        elif key == "}":
            if j.offset is None:
                raise tk.error(j.line, f"joint '{j.name}' has no OFFSET")
            joints[j.index] = j.joint()
            stack.pop()
        else:
            raise tk.error(tline, f"unexpected '{tok}' in joint '{j.name}'")
    return joints


def parse_bvh(text: str, source: str = "<string>") -> BvhClip:
    """Parse BVH text; ValueError (with the line number) if it is malformed."""
    tk = _Tokens(text, source)
    tk.expect("HIERARCHY")
    tk.expect("ROOT")
    joints = _hierarchy(tk)
    tok, line = tk.take("MOTION")
    if tok.upper() == "ROOT":
        raise tk.error(line, "more than one ROOT is not supported")
    if tok.upper() != "MOTION":
        raise tk.error(line, f"expected 'MOTION', got '{tok}'")
    tok, line = tk.take("'Frames:'")
    if tok.lower() == "frames:":
        frames = tk.number("the frame count")
    elif tok.lower().startswith("frames:"):
        frames = _as_number(tk, tok[7:], line, "the frame count")
    else:
        raise tk.error(line, f"expected 'Frames:', got '{tok}'")
    if frames != int(frames) or frames < 1:
        raise tk.error(line, f"the frame count must be a whole number >= 1, got {frames:g}")
    tk.expect("Frame")
    line = tk.expect("Time:")
    dt = tk.number("the frame time")
    if dt <= 0:
        raise tk.error(line, f"the frame time must be > 0, got {dt:g}")
    n_ch = sum(len(j.channels) for j in joints)
    values = []
    for tok, vline in tk.items[tk.pos:]:
        values.append(_as_number(tk, tok, vline, "a channel value"))
    expected = int(frames) * n_ch
    if len(values) != expected:
        _, first = tk.peek()
        raise tk.error(first, f"expected {int(frames)} frames of {n_ch} channel values "
                              f"({expected} numbers), found {len(values)}")
    motion = np.array(values, np.float64).reshape(int(frames), n_ch)
    return BvhClip(tuple(joints), float(dt), motion, source)


def _as_number(tk: _Tokens, tok: str, line: int, what: str) -> float:
    try:
        value = float(tok)
    except ValueError:
        raise tk.error(line, f"expected {what}, got '{tok}'") from None
    if not np.isfinite(value):
        raise tk.error(line, f"{what} is not finite: '{tok}'")
    return value


def load_bvh(path: str | Path) -> BvhClip:
    """Read a BVH file (see :func:`parse_bvh`); a name ending in ``.gz`` is
    read as gzip-compressed BVH."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"cannot read BVH file {path}: {exc}") from exc
    return parse_bvh(data.decode("utf-8", errors="replace"), str(path))
