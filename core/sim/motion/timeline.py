"""The endless, seeded sequence of actions behind a procedural motion.

Segment k plays one action from its start to its end (grid steps of
``steering.DT_S``); the next segment starts ``fade_out`` steps before that end,
and the two crossfade over that overlap. Segment k's choice depends only on
the seed, k and the root state at its start, and that state only on the
segments before it, so the sequence is the same however its times are asked
for. Segments are made lazily as later times are requested; the floor path
of each segment's own stretch (its start to the next segment's start) is
integrated once and kept in a bounded cache, recomputed identically if it is
ever needed again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.sim.motion.actions import LIBRARY, ActionSpec, DrawContext
from core.sim.motion.curves import smootherstep
from core.sim.motion.steering import DT_S, RootState, integrate

_SALT = 0x6D07
_CACHE_CHUNKS = 512


@dataclass(frozen=True)
class Segment:
    """One action on the timeline; times in grid steps, state0 at `start`."""

    index: int
    spec: ActionSpec
    start: int
    length: int
    fade_in: int
    fade_out: int
    state0: RootState

    @property
    def next_start(self) -> int:
        return self.start + self.length - self.fade_out

    def weight(self, steps: np.ndarray) -> np.ndarray:
        """Crossfade weight of this segment at absolute steps within its own stretch."""
        if self.fade_in == 0:
            return np.ones_like(steps, dtype=float)
        return smootherstep((steps - self.start) / self.fade_in)


def _margins(lo: float, hi: float, frac: float, cap: float) -> tuple[float, float]:
    m = min(cap, frac * (hi - lo))
    return lo + m, hi - m


class Timeline:
    """Lazily generated segments for one seed. area: (x_min, x_max, y_min,
    y_max) of the capture floor, mm; names: the actions to draw from; first:
    the action of segment 0 (if among names)."""

    def __init__(self, seed: int, area: tuple[float, float, float, float],
                 names: Sequence[str], first: str | None = "idle") -> None:
        unknown = [n for n in names if n not in LIBRARY]
        if unknown or not names:
            raise ValueError(f"unknown actions {unknown}; choose from {sorted(LIBRARY)}")
        self.seed = int(seed)
        self.names = tuple(names)
        self.first = first if first in self.names else None
        x0, x1, y0, y1 = area
        # The Hips' path keeps 0.55 m inside the walls (room for a squat's
        # hips to move back and for arms); waypoints and circles keep 1 m inside.
        self.bounds = (*_margins(x0, x1, 0.15, 550.0), *_margins(y0, y1, 0.15, 550.0))
        self.free = (*_margins(x0, x1, 0.25, 1000.0), *_margins(y0, y1, 0.25, 1000.0))
        self._segments: list[Segment] = []
        self._next_list: list[int] = []
        self._next_starts = np.zeros(0, np.int64)       # array view of _next_list, refreshed by ensure()
        self._chunks: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.RLock()

    # -- generation -------------------------------------------------------------
    def ensure(self, step: float) -> None:
        """Make segments until one's stretch reaches past grid step `step`."""
        with self._lock:
            grew = False
            while not self._segments or self._segments[-1].next_start <= step:
                self._append()
                grew = True
            if grew:
                self._next_starts = np.array(self._next_list, np.int64)

    def _append(self) -> None:
        k = len(self._segments)
        if k == 0:
            rng = np.random.default_rng([self.seed, _SALT, 0])
            x0, x1, y0, y1 = self.free
            cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
            state = RootState(cx + rng.uniform(-0.5, 0.5) * hx, cy + rng.uniform(-0.5, 0.5) * hy,
                              rng.uniform(-np.pi, np.pi), 0.0)
            start, fade_in, prev_name = 0, 0, None
        else:
            prev = self._segments[-1]
            chunk, state = self._integrate(prev)
            self._store(prev.index, chunk)
            start, fade_in, prev_name = prev.next_start, prev.fade_out, prev.spec.name
        rng = np.random.default_rng([self.seed, _SALT, k + 1])
        name = self.first if (k == 0 and self.first) else self._choose(rng, prev_name)
        fade_out = int(round(rng.uniform(0.5, 0.9) / DT_S))
        ctx = DrawContext(np.array([state.x, state.y]), state.heading, self.free, self.bounds,
                          fade_in * DT_S, fade_out * DT_S)
        spec = LIBRARY[name].draw(rng, ctx)
        length = max(int(round(spec.duration_s / DT_S)), fade_in + fade_out + 25)
        self._segments.append(Segment(k, spec, start, length, fade_in, fade_out, state))
        self._next_list.append(start + length - fade_out)

    def _choose(self, rng: np.random.Generator, prev_name: str | None) -> str:
        names = [n for n in self.names if n != prev_name] or list(self.names)
        w = np.array([LIBRARY[n].weight for n in names])
        return names[int(rng.choice(len(names), p=w / w.sum()))]

    def _integrate(self, seg: Segment) -> tuple[np.ndarray, RootState]:
        n = seg.next_start - seg.start
        steps = seg.start + np.arange(n + 1)
        w = seg.weight(steps)
        vel = w[:, None] * LIBRARY[seg.spec.name].velocity((steps - seg.start) * DT_S, seg.spec)
        prev = self._segments[seg.index - 1] if seg.index > 0 else None
        if prev is not None and seg.fade_in > 0:
            fading = steps < seg.start + seg.fade_in
            t_prev = (steps[fading] - prev.start) * DT_S
            vel[fading] += (1 - w[fading, None]) * LIBRARY[prev.spec.name].velocity(t_prev, prev.spec)
        return integrate(seg.state0, n, w, vel, prev.spec.steer if prev else None,
                         seg.spec.steer, self.bounds)

    # -- queries ----------------------------------------------------------------
    def segment(self, k: int) -> Segment:
        return self._segments[k]

    def locate(self, steps: np.ndarray) -> np.ndarray:
        """Index of the segment whose own stretch holds each step (call ensure first)."""
        return np.searchsorted(self._next_starts, steps, side="right")

    def nodes(self, k: int) -> np.ndarray:
        """(n+1, 6) floor-path nodes of segment k's own stretch (see steering)."""
        with self._lock:
            chunk = self._chunks.get(k)
            if chunk is None:
                chunk, _ = self._integrate(self._segments[k])
                self._store(k, chunk)
            else:
                self._chunks.move_to_end(k)
            return chunk

    def _store(self, k: int, chunk: np.ndarray) -> None:
        chunk.setflags(write=False)
        self._chunks[k] = chunk
        while len(self._chunks) > _CACHE_CHUNKS:
            self._chunks.popitem(last=False)

    def segments(self) -> tuple[Segment, ...]:
        with self._lock:
            return tuple(self._segments)
