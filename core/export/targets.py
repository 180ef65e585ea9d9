"""What each animation tool wants from an exported take: units, axes, joint names.

A target is chosen by the tool the file is for (``main.py export --target``;
the default is Blender). It fixes the file's length unit, so that the tool
imports the performer at true size, and the joint names, so that the tool's
humanoid mapping recognises the skeleton without a hand-made name table.
Every target writes the same skeleton, motion and axes; only names and
units differ. docs/EXPORT.md ("Targets") gives the table and the reasons.

Names are given in :data:`core.skeleton.JOINTS` order. FuseCap's own names
(Hips, Spine, Chest, ..., HeadTop) stay the CSV column names whatever the
target.

Axes: every target writes the Y-up axes of :mod:`core.axes` (up +Y, the
performer facing +Z, their left +X). BVH readers expect Y up; Blender's
importer turns it to Blender's Z up with its default settings (forward -Z,
up Y), and glTF defines the same axes.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import skeleton as sk

Y_UP = "y_up"  # file (x, y, z) = world (x, z, -y): up +Y, facing +Z, left +X (core.axes)

# Mixamo's rig names without the "mixamorig:" prefix. They are HumanIK's
# names (Mixamo's rig follows HumanIK), so Maya's and MotionBuilder's
# HumanIK definitions read them too. FuseCap's spine has two segments: the
# Chest, where the clavicles and the neck attach, is Spine1, so the spine
# chain runs on without a gap (Spine, Spine1) as HumanIK's numbering and
# Unity's automatic mapping expect. HeadTop_End is Mixamo's name for the
# head's end joint.
MIXAMO_NAMES: tuple[str, ...] = (
    "Hips", "Spine", "Spine1", "Neck", "Head", "HeadTop_End",
    "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand",
    "RightShoulder", "RightArm", "RightForeArm", "RightHand",
    "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase",
    "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase",
)
HUMANIK_NAMES = MIXAMO_NAMES

# The Unreal Engine 5 Mannequin's (Manny's) bones. Its clavicles and neck
# hang from spine_05, the top of its five spine bones, so FuseCap's Chest
# is spine_05 and its Spine spine_01. The Mannequin has no head-top bone:
# head_end is the end joint's name, outside what the retargeter maps.
UE5_MANNEQUIN_NAMES: tuple[str, ...] = (
    "pelvis", "spine_01", "spine_05", "neck_01", "head", "head_end",
    "clavicle_l", "upperarm_l", "lowerarm_l", "hand_l",
    "clavicle_r", "upperarm_r", "lowerarm_r", "hand_r",
    "thigh_l", "calf_l", "foot_l", "ball_l",
    "thigh_r", "calf_r", "foot_r", "ball_r",
)


@dataclass(frozen=True)
class ExportTarget:
    """One tool's conventions. units: the file's length unit ("m", "cm");
    names: joint names in core.skeleton.JOINTS order; naming: whose names
    they are; axes: the file axes (:data:`Y_UP`); why: the reason, one line."""

    name: str
    tool: str
    units: str
    names: tuple[str, ...]
    naming: str
    why: str
    axes: str = Y_UP

    def __post_init__(self) -> None:
        if len(self.names) != sk.NUM_JOINTS or len(set(self.names)) != sk.NUM_JOINTS:
            raise ValueError(f"target {self.name}: needs {sk.NUM_JOINTS} distinct joint names")


TARGETS: dict[str, ExportTarget] = {t.name: t for t in (
    ExportTarget("blender", "Blender", "m", MIXAMO_NAMES, "Mixamo",
                 "Blender's BVH importer reads a file unit as a Blender unit (a metre), and Blender's "
                 "retargeting tools map Mixamo names to a humanoid rig"),
    ExportTarget("maya", "Maya", "cm", HUMANIK_NAMES, "HumanIK",
                 "Maya works in centimetres by default, and its HumanIK character definition maps "
                 "HumanIK names"),
    ExportTarget("motionbuilder", "MotionBuilder", "cm", HUMANIK_NAMES, "HumanIK",
                 "MotionBuilder's system unit is the centimetre, and its HumanIK character definition "
                 "maps HumanIK names"),
    ExportTarget("unity", "Unity", "m", MIXAMO_NAMES, "Mixamo",
                 "Unity's unit is the metre, and its Humanoid avatar maps Mixamo names automatically"),
    ExportTarget("unreal", "Unreal Engine", "cm", UE5_MANNEQUIN_NAMES, "UE5 Mannequin",
                 "Unreal's unit is the centimetre, and the UE5 Mannequin's bone names let its "
                 "retargeting match the Mannequin bone for bone"),
)}
DEFAULT_TARGET = "blender"


def get_target(target: str) -> ExportTarget:
    """The target called `target`; ValueError naming the choices otherwise."""
    try:
        return TARGETS[target]
    except (KeyError, TypeError):
        raise ValueError(f"unknown export target {target!r}; use one of {', '.join(TARGETS)}") from None


def joint_names(target: str = DEFAULT_TARGET) -> tuple[str, ...]:
    """The target's joint names, in core.skeleton.JOINTS order."""
    return get_target(target).names
