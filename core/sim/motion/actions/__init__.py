"""The library of procedural actions, by name."""

from __future__ import annotations

from core.sim.motion.actions.base import Action, ActionOutput, ActionSpec, DrawContext, Steer
from core.sim.motion.actions.locomotion import ACTIONS as _LOCOMOTION
from core.sim.motion.actions.upper_body import ACTIONS as _UPPER
from core.sim.motion.actions.whole_body import ACTIONS as _WHOLE

LIBRARY: dict[str, Action] = {a.name: a for a in (*_LOCOMOTION, *_WHOLE, *_UPPER)}
ACTION_NAMES: tuple[str, ...] = tuple(LIBRARY)

__all__ = ["ACTION_NAMES", "LIBRARY", "Action", "ActionOutput", "ActionSpec", "DrawContext", "Steer"]
