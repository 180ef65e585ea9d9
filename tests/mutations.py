"""Hypothesis strategies that damage real files: byte edits (flips,
overwrites, insertions, deletions, truncation), token swaps in text files,
and value swaps inside a parsed JSON/TOML document. Shared by the
tests/test_fuzz_*.py files."""

from __future__ import annotations

import copy
import math
import re

from hypothesis import strategies as st


class Seed(bytes):
    """A real file's bytes, shown by name (not in full) when Hypothesis reports a failing example."""

    def __new__(cls, data: bytes, name: str):
        self = super().__new__(cls, data)
        self.name = name
        return self

    def __repr__(self) -> str:
        return f"<{self.name}: {len(self)} bytes>"


# Values that tend to break readers: wrong types, empty and huge containers,
# non-finite and enormous numbers, odd strings.
_SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["", "1", "nan", "inf", "-1e400", "\x00", "ü", "😀"]),
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
# TOML has no null and no mixed-type restrictions worth modelling here.
TOML_VALUES = st.recursive(
    st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(min_size=1, max_size=6), inner,
                                                                            max_size=4)),
    max_leaves=12,
)

_TOML_NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, 0.0, -0.0, 1e308, 5e-324, 2**31, 2**63 - 1]),
    st.floats(), st.integers(-(2**63), 2**63 - 1),
)

# Bytes worth splicing into binary and text files alike.
_INTERESTING = st.sampled_from([
    b"\x00", b"\xff", b"\xff\xff\xff\xff\xff\xff\xff\x7f", b"\x80", b"\xc3", b"\xed\xa0\x80", b"\r", b"\n",
    b"\r\n", b"{", b"}", b"[", b"]", b",", b'"', b"=", b"#", b"nan", b"inf", b"-", b"1e999", b"9" * 40,
])


def _edits(size: int):
    pos = st.integers(0, max(size, 0))
    payload = st.one_of(st.binary(min_size=1, max_size=16), _INTERESTING)
    return st.one_of(
        st.tuples(st.just("flip"), pos, st.integers(0, 7)),
        st.tuples(st.just("set"), pos, payload),
        st.tuples(st.just("insert"), pos, payload),
        st.tuples(st.just("delete"), pos, st.integers(1, 64)),
        st.tuples(st.just("truncate"), pos, st.just(0)),
        st.tuples(st.just("repeat"), pos, st.integers(1, 64)),
    )


def _apply(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for kind, at, arg in edits:
        at = min(at, len(out))
        if kind == "flip":
            if at < len(out):
                out[at] ^= 1 << arg
        elif kind == "set":
            out[at:at + len(arg)] = arg
        elif kind == "insert":
            out[at:at] = arg
        elif kind == "delete":
            del out[at:at + arg]
        elif kind == "truncate":
            del out[at:]
        elif kind == "repeat":
            out[at:at] = out[at:at + arg]
    return bytes(out)


def mutated_bytes(data: bytes, max_edits: int = 4):
    """`data` with 1..max_edits byte edits."""
    return st.lists(_edits(len(data)), min_size=1, max_size=max_edits).map(lambda e: _apply(data, e))


_TOKEN = re.compile(r"\s+|[^\s]+")


def mutated_tokens(text: str, pool, max_edits: int = 4):
    """`text` (str) with 1..max_edits of its whitespace-separated tokens
    replaced by, or joined with, a token drawn from `pool` (a strategy of str)."""
    tokens = _TOKEN.findall(text)
    words = [i for i, t in enumerate(tokens) if not t.isspace()]

    def apply(edits):
        out = list(tokens)
        for which, how, new in edits:
            i = words[which % len(words)]
            if how == "replace":
                out[i] = new
            elif how == "before":
                out[i] = new + " " + out[i]
            elif how == "drop":
                out[i] = ""
            else:
                out[i] = out[i] + new  # glued on, no space
        return "".join(out)

    edit = st.tuples(st.integers(0, max(len(words) - 1, 0)), st.sampled_from(["replace", "before", "drop", "glue"]),
                     pool)
    return st.lists(edit, min_size=1, max_size=max_edits).map(apply)


def _paths(doc, prefix=()):
    """Every path (tuple of keys/indices) into a nested dict/list document."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _replace(doc, path, value, delete: bool):
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


_NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, 0.0, -0.0, 1e308, 5e-324, 2**31, 2**63, 10**30, 10**400]),
    st.floats(), st.integers(),
)


def mutated_document(doc, values=JSON_VALUES, max_edits: int = 3):
    """A deep copy of `doc` (a parsed JSON/TOML document) with 1..max_edits
    edits at any depth: a value replaced by any value
    or by an odd number, deleted, or a list made shorter or longer."""

    @st.composite
    def build(draw):
        out = copy.deepcopy(doc)
        for _ in range(draw(st.integers(1, max_edits))):
            paths = list(_paths(out))[1:] or [()]  # the root only when there is nothing else
            path = draw(st.sampled_from(paths))
            target = out
            for key in path:
                target = target[key]
            how = draw(st.sampled_from(["value", "number", "delete", "resize"]))
            if how == "delete" and path:
                out = _replace(out, path, None, True)
            elif how == "resize" and isinstance(target, list) and target:
                if draw(st.booleans()):
                    del target[draw(st.integers(0, len(target) - 1))]
                else:
                    target.append(copy.deepcopy(target[-1]))
            elif how == "number" or (how == "resize" and isinstance(target, (int, float))):
                out = _replace(out, path, draw(_NUMBERS if values is JSON_VALUES else _TOML_NUMBERS), False)
            else:
                out = _replace(out, path, draw(values), False)
        return out

    return build()
