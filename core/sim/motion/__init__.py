"""The simulated performer's motion: procedural actions or BVH clips.

- :class:`ProceduralMotion` (seeded, endless, human-looking actions),
- :func:`load_bvh` / :class:`BvhMotion` (any BVH clip, retargeted by name),
- :class:`Performer` (a subject playing a motion: poses at any times),
- :class:`MotionFrames` / :class:`Motion` (what a motion delivers).
"""

from core.sim.motion.bvh import BvhClip, load_bvh, parse_bvh
from core.sim.motion.frames import Motion, MotionFrames
from core.sim.motion.performer import Performer
from core.sim.motion.procedural import ProceduralMotion, ProceduralSample
from core.sim.motion.retarget import BvhMotion, load_name_map

__all__ = [
    "BvhClip", "BvhMotion", "Motion", "MotionFrames", "Performer", "ProceduralMotion",
    "ProceduralSample", "load_bvh", "load_name_map", "parse_bvh",
]
