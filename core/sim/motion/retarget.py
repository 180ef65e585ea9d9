"""Playing a BVH clip on FuseCap's skeleton.

Joints are matched by name through the shipped name map
(``resources/bvh_name_map.json``: Mixamo with or without ``mixamorig:``,
HumanIK/MotionBuilder, CMU in its ASF-derived and Daz/Poser namings,
Biovision-style Hips/Chest/LeftHip/LeftKnee/LeftShoulder/LeftElbow, 3ds Max
Biped, side-suffixed Unity names, Reallusion Character Creator / iClone
``CC_Base_*``, the Unreal Engine 5 Mannequin, Unity's humanoid bone names).

Retargeting is by global bone directions. The file's Y-up frame becomes
FuseCap's Z-up world through C = a +90 degree turn about X ((x, y, z) ->
(x, -z, y); :mod:`core.axes`), so a performer facing +Z in the file faces -Y
here. For each of our joints j mapped to a clip joint s:

    global_j = C G_s C^-1 * A_j

where G_s is the clip joint's global rotation and A_j the rest-pose
alignment: the smallest rotation taking our rest bone direction onto the
clip's rest bone direction (seen in our frame), plus the left-right axis for
the Hips and the chest. Rest poses that are not T-poses (an A-pose) therefore
play correctly. Our joints with no mapped source follow their parent.

A clip often has joints between two we map (a spine of three segments, neck
twist bones); their bends are not in G_s. So each of our joints is then
turned, frame by frame, by the smallest rotation that points its bone (to
the next mapped joint along its main line) where the clip's points, and the
Hips and the chest turn about that bone to keep their left-right axis near
the clip's: every bone whose two ends the map covers follows the clip's
direction, and the neck stands on the spine as the clip's does.

The roll about a bone is not in its direction. Where the clip's rest bone
points more than :data:`ROLL_FREE_DEG` away from ours, the smallest turn
between them fixes no roll (Character Creator rigs rest with every bone
along its own +Y: legs up, 180 degrees from ours), and bones came out
twisted by a constant: the CMU knees by -155 degrees relative to the thigh,
which skins a mesh body into a candy-wrapper knee. There the joint's rest
alignment is turned about its bone so that its mean twist relative to its
parent over the clip is zero (a circular mean; hinge joints then bend about
their own axis).

The Hips' path is the clip's, recentred so the first frame stands over the
origin, and scaled by the performer to its own leg length
(:class:`MotionFrames.source_leg_mm`). Between frames rotations are slerped
and the root interpolated linearly; clips loop or hold their last frame.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from core import axes
from core import skeleton as sk
from core.resources import resource_path
from core.rotations import align_vectors
from core.sim.motion.bvh import BvhClip
from core.sim.motion.frames import MotionFrames
from core.sim.subject import Subject

NAME_MAP_PATH = resource_path("bvh_name_map.json")
ESSENTIAL = ("Hips", "LeftUpLeg", "LeftLeg", "LeftFoot", "RightUpLeg", "RightLeg", "RightFoot")
# Bone direction of joints with several children: along this child.
_MAIN_CHILD = {"Hips": "Spine", "Chest": "Neck"}
# Left-right axis (left joint, right joint) that also fixes these joints' alignment.
_ACROSS = {"Hips": ("LeftUpLeg", "RightUpLeg"), "Chest": ("LeftArm", "RightArm")}
# Reference rest skeleton for bone directions (directions do not depend on the subject).
_OURS = Subject.from_seed(0).rest_positions()
# Rest-alignment turns larger than this leave a bone's roll to be fixed from the clip's motion.
ROLL_FREE_DEG = 100.0
# Upper arms and thighs: the rest direction (world) the elbow / knee bends the next bone towards.
_HINGE_BENDS = {"LeftArm": (0.0, -1.0, 0.0), "RightArm": (0.0, -1.0, 0.0),
                "LeftUpLeg": (0.0, 1.0, 0.0), "RightUpLeg": (0.0, 1.0, 0.0)}
MIN_HINGE_BEND = 0.1  # mean sine of the bend below which a clip's hinge is too straight to tell its axis


def normalise(name: str) -> str:
    """Joint name as matched: lower case, no namespace prefix, letters and digits only."""
    n = re.split(r"[:|]", name.strip())[-1].lower()
    n = re.sub(r"^mixamorig\d*", "", n)
    return re.sub(r"[^a-z0-9]", "", n)


def load_name_map(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The conventions of a name map file (default: the shipped one)."""
    data = json.loads(Path(path or NAME_MAP_PATH).read_text())
    conventions = data.get("conventions") if isinstance(data, dict) else None
    if not isinstance(conventions, list) or not conventions:
        raise ValueError(f"name map {path or NAME_MAP_PATH} has no 'conventions' list")
    return conventions


def _ancestors(clip: BvhClip, i: int) -> set[int]:
    out = set()
    while clip.joints[i].parent >= 0:
        i = clip.joints[i].parent
        out.add(i)
    return out


def match_joints(clip: BvhClip, conventions: list[dict[str, Any]]) -> tuple[str, dict[int, int]]:
    """(convention name, {our joint index: clip joint index}) of the
    convention that maps the most joints consistently with the hierarchy."""
    lookup: dict[str, int] = {}
    for i, name in enumerate(clip.names):
        lookup.setdefault(normalise(name), i)
    best: tuple[str, dict[int, int]] = ("", {})
    for conv in conventions:
        mapping: dict[int, int] = {}
        for j, ours in enumerate(sk.JOINTS):
            for cand in conv.get("joints", {}).get(ours, []):
                src = lookup.get(normalise(cand))
                if src is None or src in mapping.values():
                    continue
                # The nearest mapped ancestor of ours must map to an ancestor of src.
                a = sk.PARENTS[j]
                while a >= 0 and a not in mapping:
                    a = sk.PARENTS[a]
                if a >= 0 and mapping[a] not in _ancestors(clip, src):
                    continue
                mapping[j] = src
                break
        if len(mapping) > len(best[1]):
            best = (str(conv.get("name", "?")), mapping)
    return best


def _main_line(j: int) -> list[int]:
    """Our joints below j along its main child, nearest first."""
    out = []
    while True:
        kids = sk.children(j)
        if not kids:
            return out
        main = _MAIN_CHILD.get(sk.JOINTS[j])
        j = sk.JOINT_INDEX[main] if main else kids[0]
        out.append(j)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-12, n, 1.0)


def _turn_onto(have: np.ndarray, want: np.ndarray) -> Rotation:
    """Per row, the smallest rotation taking direction `have` onto `want` ((F, 3) each)."""
    h, w = _unit(have), _unit(want)
    axis = np.cross(h, w)
    sin, cos = np.linalg.norm(axis, axis=-1), np.sum(h * w, axis=-1)
    # Opposite directions: any axis across `have` does.
    other = np.cross(h, np.where(np.abs(h[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]))
    axis = np.where((sin < 1e-9)[:, None], other, axis)
    return Rotation.from_rotvec(_unit(axis) * np.arctan2(sin, cos)[:, None])


def _twist_onto(have: np.ndarray, want: np.ndarray, about: np.ndarray) -> Rotation:
    """Per row, the turn about `about` that brings `have` nearest `want` ((F, 3) each)."""
    m = _unit(about)
    u = have - np.sum(have * m, axis=-1, keepdims=True) * m
    v = want - np.sum(want * m, axis=-1, keepdims=True) * m
    angle = np.arctan2(np.sum(np.cross(u, v) * m, axis=-1), np.sum(u * v, axis=-1))
    return Rotation.from_rotvec(m * angle[:, None])


def _untwist(local: Rotation, j: int) -> Rotation:
    """The turn about joint j's rest bone that makes the circular mean of
    the twist of `local` (F rotations in the parent's frame) about it zero."""
    kids = sk.children(j)
    if not kids:
        return Rotation.identity()
    axis = _unit(_OURS[kids[0]] - _OURS[j])
    q = local.as_quat()                                   # x, y, z, w
    twist = 2.0 * np.arctan2(q[:, :3] @ axis, q[:, 3])
    mean = np.arctan2(np.sin(twist).mean(), np.cos(twist).mean())
    return Rotation.from_rotvec(-mean * axis)


def _hinge_roll(rot: Rotation, j: int, at, s: dict[int, int]) -> Rotation:
    """The turn about upper arm / thigh j's rest bone that makes the elbow /
    knee below it bend towards the anatomical side (:data:`_HINGE_BENDS`):
    the clip's next bone, seen in j's frame, leans on average towards the
    wrong side of the bone when j's roll is off. Identity for clips whose
    hinge hardly bends."""
    c = sk.children(j)[0]
    g = sk.children(c)[0]
    if c not in s or g not in s:
        return Rotation.identity()
    axis = _unit(_OURS[c] - _OURS[j])
    seen = rot.inv().apply(_unit(at(s[g]) - at(s[c])))   # the next bone in j's frame
    lean = seen - (seen @ axis)[:, None] * axis
    mean = lean.mean(axis=0)
    if np.linalg.norm(mean) < MIN_HINGE_BEND:
        return Rotation.identity()
    want = np.asarray(_HINGE_BENDS[sk.JOINTS[j]])
    want = want - (want @ axis) * axis
    angle = np.arctan2(np.cross(want, mean) @ axis, want @ mean)
    return Rotation.from_rotvec(angle * axis)


class BvhMotion:
    """A BVH clip as a performer's motion.

    name_map: a path to a name map JSON, or its conventions list (default:
    the shipped map); unit_scale: millimetres per file unit (default: guessed
    from the hips height: metres, centimetres or millimetres); loop: repeat
    the clip (else hold the last frame); recentre: start over the origin.
    """

    def __init__(self, clip: BvhClip, name_map: str | Path | list | None = None,
                 unit_scale: float | None = None, loop: bool = True, recentre: bool = True) -> None:
        conventions = name_map if isinstance(name_map, list) else load_name_map(name_map)
        self.clip = clip
        self.loop = loop
        self.convention, self._src = match_joints(clip, conventions)
        missing = [n for n in ESSENTIAL if sk.JOINT_INDEX[n] not in self._src]
        if missing:
            tried = {n: sorted({c for conv in conventions for c in conv.get("joints", {}).get(n, [])})
                     for n in missing}
            raise ValueError(f"BVH clip {clip.source}: no joint found for {', '.join(missing)} "
                             f"(tried {tried}); the clip's joints are {list(clip.names)[:40]}")
        rest = clip.rest_positions()
        self.unit_scale_mm = float(unit_scale) if unit_scale else self._guess_scale(rest)
        s = self._src
        def leg(a, b):
            return np.linalg.norm(rest[s[sk.JOINT_INDEX[a]]] - rest[s[sk.JOINT_INDEX[b]]])
        self.source_leg_mm = float(leg("LeftUpLeg", "LeftLeg") + leg("LeftLeg", "LeftFoot")) * self.unit_scale_mm
        if not self.source_leg_mm > 0:
            raise ValueError(f"BVH clip {clip.source}: the left leg has zero length")
        self._local_q, self._root = self._retarget(rest, recentre)

    @property
    def mapping(self) -> dict[str, str]:
        """Our joint name -> the clip joint playing it."""
        return {sk.JOINTS[j]: self.clip.names[s] for j, s in sorted(self._src.items())}

    @property
    def duration_s(self) -> float:
        """Time of the last frame; a looping clip repeats every duration_s + frame time."""
        return max(self.clip.num_frames - 1, 0) * self.clip.frame_time_s

    def _guess_scale(self, rest: np.ndarray) -> float:
        hips = rest[self._src[sk.ROOT]]
        feet = [self._src[sk.JOINT_INDEX[n]] for n in ("LeftFoot", "RightFoot")]
        height = float(hips[1] - rest[feet, 1].min())           # Y up, ankles ~ 0.9 m below the hips
        if height <= 0:
            height = float(np.linalg.norm(hips - rest[feet[0]]))
        return 1000.0 if height < 5.0 else 10.0 if height < 400.0 else 1.0

    def _alignment(self, rest_c: np.ndarray, j: int, done: dict[int, Rotation]) -> Rotation:
        """A_j: our rest bone direction -> the clip's (in our frame)."""
        s = self._src
        line = [c for c in _main_line(j) if c in s]
        if line:
            ours, theirs = _OURS[line[0]] - _OURS[j], rest_c[s[line[0]]] - rest_c[s[j]]
        else:
            kids = [k for k, jt in enumerate(self.clip.joints) if jt.parent == s[j]]
            end = self.clip.joints[s[j]].end_site
            if kids:
                theirs = rest_c[kids[0]] - rest_c[s[j]]
            elif end is not None:
                theirs = axes.y_up_to_world(end)
            else:
                return done.get(sk.PARENTS[j], Rotation.identity())
            kids_ours = sk.children(j)
            ours = (_OURS[kids_ours[0]] if kids_ours else 2 * _OURS[j] - _OURS[sk.PARENTS[j]]) - _OURS[j]
        if np.linalg.norm(theirs) < 1e-9:
            return done.get(sk.PARENTS[j], Rotation.identity())
        across = _ACROSS.get(sk.JOINTS[j])
        if across and all(sk.JOINT_INDEX[n] in s for n in across):
            # Pelvis and chest carry IMUs: keep their rest frames upright and
            # facing like the clip's rather than chase small spine tilts.
            a, b = (sk.JOINT_INDEX[n] for n in across)
            up = np.array([0.0, 0.0, 1.0])
            rot, _ = Rotation.align_vectors(np.stack([rest_c[s[a]] - rest_c[s[b]], up]),
                                            np.stack([_OURS[a] - _OURS[b], up]), weights=[np.inf, 1.0])
            return rot
        return align_vectors(ours, theirs)

    def _retarget(self, rest: np.ndarray, recentre: bool) -> tuple[np.ndarray, np.ndarray]:
        clip, s = self.clip, self._src
        rest_c = axes.y_up_to_world(rest)
        glob = clip.global_rotations()
        F, J = clip.num_frames, sk.NUM_JOINTS
        ours: list[Rotation] = []
        align: dict[int, Rotation] = {}
        where: dict[int, np.ndarray] = {}  # clip joint -> its path (F, 3), world axes

        def at(i: int) -> np.ndarray:
            if i not in where:
                where[i] = axes.y_up_to_world(clip.positions(i, glob))
            return where[i]

        for j, p in enumerate(sk.PARENTS):
            if j in s:
                align[j] = self._alignment(rest_c, j, align)
                rot = self._follow(axes.y_up_to_world_rotation(glob[s[j]]) * align[j], j, at)
                name = sk.JOINTS[j]
                if name in _HINGE_BENDS:
                    rot = rot * _hinge_roll(rot, j, at, s)
                elif p >= 0 and (sk.JOINTS[p] in _HINGE_BENDS
                                 or np.degrees(align[j].magnitude()) > ROLL_FREE_DEG):
                    rot = rot * _untwist(ours[p].inv() * rot, j)
                ours.append(rot)
            else:
                ours.append(ours[p])
        local = np.empty((F, J, 4))
        for j, p in enumerate(sk.PARENTS):
            local[:, j] = (ours[j] if p < 0 else ours[p].inv() * ours[j]).as_quat()
        root = axes.y_up_to_world(clip.positions(s[sk.ROOT], glob)) * self.unit_scale_mm
        if recentre:
            root[:, :2] -= root[0, :2]
        return local, root

    def _follow(self, rot: Rotation, j: int, at) -> Rotation:
        """`rot` (F frames) turned so that our bone from j along its main line
        points where the clip's does in every frame: the clip may put joints
        between the two we map (a spine of several segments, neck twist
        bones), whose bends the source joint's own rotation does not carry.
        The Hips and the chest also turn about that bone to keep their
        left-right axis as near the clip's as it allows."""
        s = self._src
        line = [c for c in _main_line(j) if c in s]
        if not line:
            return rot
        c = line[0]
        want = at(s[c]) - at(s[j])
        fixed = _turn_onto(rot.apply(_OURS[c] - _OURS[j]), want) * rot
        across = _ACROSS.get(sk.JOINTS[j])
        if across and all(sk.JOINT_INDEX[n] in s for n in across):
            a, b = (sk.JOINT_INDEX[n] for n in across)
            fixed = _twist_onto(fixed.apply(_OURS[a] - _OURS[b]), at(s[a]) - at(s[b]), want) * fixed
        return fixed

    def frames(self, times_s: np.ndarray) -> MotionFrames:
        """Clip pose at these times (s), slerped between frames. Looping, the
        last frame blends back into the first over one frame time; holding,
        times past the end (or before 0) show the last (first) frame."""
        t = np.asarray(times_s, np.float64).ravel()
        F, J = self.clip.num_frames, sk.NUM_JOINTS
        f = t / self.clip.frame_time_s
        if self.loop:
            f = np.mod(f, F)
        f = np.clip(f, 0.0, F - 1 if not self.loop else np.inf)
        i0 = np.minimum(np.floor(f).astype(int), F - 1)
        i1 = (i0 + 1) % F if self.loop else np.minimum(i0 + 1, F - 1)
        a = f - i0
        r0 = Rotation.from_quat(self._local_q[i0].reshape(-1, 4))
        r1 = Rotation.from_quat(self._local_q[i1].reshape(-1, 4))
        step = Rotation.from_rotvec((r0.inv() * r1).as_rotvec() * np.repeat(a, J)[:, None])
        root = self._root[i0] * (1 - a)[:, None] + self._root[i1] * a[:, None]
        return MotionFrames(t, r0 * step, root[:, :2], root[:, 2], False, None, self.source_leg_mm)
