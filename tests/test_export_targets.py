"""BVH targets: each tool's names and units, true size, a proper Hips bone.

The written file is read by the independent bvhio parser (names, forward
kinematics) and by FuseCap's own BVH reader through the shipped name map
(every target's names read back onto FuseCap's joints). The Hips bone is
judged by the rule Blender's BVH importer uses to place a bone's tail: the
mean of its children's heads (one child: that child's head; none: the End
Site)."""

import json
import shutil
import subprocess
from pathlib import Path

import bvhio
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core import axes
from core import skeleton as sk
from core.export import UNITS, to_file_axes, write_bvh
from core.export.bvh import skeleton_with_root_between_hips
from core.export.targets import DEFAULT_TARGET, TARGETS, get_target, joint_names
from core.kinematics import forward_kinematics
from core.posefit import PoseFit, fit_pose
from core.rotations import to_wxyz
from core.sim.motion import BvhMotion, Performer, ProceduralMotion, load_bvh
from core.sim.motion.retarget import load_name_map, match_joints
from core.sim.subject import Subject

ROOT = Path(__file__).resolve().parents[1]
FPS = 25.0
LEGS = [sk.JOINT_INDEX["LeftUpLeg"], sk.JOINT_INDEX["RightUpLeg"]]
HEAD_TOP = sk.JOINT_INDEX["HeadTop"]


def _standing_fit(seed: int, frames: int = 20) -> tuple[Subject, PoseFit]:
    """A subject standing in its T-pose on the floor at frame 0, then turning
    and raising the left arm: a fit with the subject's own skeleton."""
    subject = Subject.from_seed(seed)
    offsets = subject.offsets_mm.copy()
    offsets[sk.ROOT] = 0.0
    s = np.linspace(0.0, 1.0, frames)
    local = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (frames, sk.NUM_JOINTS, 1))
    local[:, sk.ROOT] = to_wxyz(Rotation.from_rotvec(s[:, None] * [0.0, 0.0, 1.5]))
    local[:, sk.JOINT_INDEX["LeftArm"]] = to_wxyz(Rotation.from_rotvec(s[:, None] * [0.0, -1.0, 0.0]))
    root = np.stack([300.0 * s, 0.0 * s, np.full(frames, subject.offsets_mm[sk.ROOT, 2])], axis=1)
    pos = forward_kinematics(offsets, root, Rotation.from_quat(local.reshape(-1, 4), scalar_first=True)).positions_mm
    fit = PoseFit(s, offsets, root, local, pos, np.ones(frames, bool), subject.bone_lengths(),
                  np.zeros((frames, sk.NUM_JOINTS)))
    return subject, fit


@pytest.fixture(scope="module")
def noisy_fit():
    """45 frames of a procedural performer with 10 mm joint noise, fitted."""
    times = np.arange(45) / FPS
    truth = Performer(Subject.from_seed(7), ProceduralMotion(7)).poses_at(times + 5.0)
    raw = truth.positions_mm + np.random.default_rng(7).normal(0.0, 10.0, truth.positions_mm.shape)
    return fit_pose(times, raw)


def _bvh_skeleton(positions_mm):
    """World joint positions with the Hips at the hip joints' midpoint, as the BVH has them."""
    out = np.array(positions_mm, float)
    out[..., sk.ROOT, :] = out[..., LEGS, :].mean(axis=-2)
    return out


def _read(path):
    """(names, rest heads (J, 3), End Site tails {joint: (3,)}, world positions (F, J, 3)), file units, by bvhio."""
    container = bvhio.readAsBvh(str(path))
    layout = [j for j, _, _ in container.Root.layout()]
    heads, ends = {}, {}

    def walk(joint, base):
        heads[joint.Name] = base + np.array(list(joint.Offset))
        for child in joint.Children:
            walk(child, heads[joint.Name])
        if not joint.Children:
            ends[joint.Name] = heads[joint.Name] + np.array(list(joint.EndSite))

    walk(container.Root, np.zeros(3))
    root = bvhio.readAsHierarchy(str(path))
    joints = [j for j, _, _ in root.layout()]
    world = np.empty((container.FrameCount, len(joints), 3))
    for f in range(container.FrameCount):
        root.loadPose(f)
        world[f] = [list(j.PositionWorld) for j in joints]
    names = [j.Name for j in layout]
    return names, np.array([heads[n] for n in names]), ends, world


def _blender_tail(names, heads, ends, j):
    """Where Blender's BVH importer puts joint j's bone tail in the rest pose."""
    kids = [k for k, p in enumerate(sk.PARENTS) if p == j]
    if not kids:
        return ends[names[j]]
    return heads[kids].mean(axis=0)


def test_targets_name_every_joint_and_pick_the_tools_units():
    assert DEFAULT_TARGET == "blender" and list(TARGETS) == ["blender", "maya", "motionbuilder", "unity", "unreal"]
    units = {name: t.units for name, t in TARGETS.items()}
    assert units == {"blender": "m", "maya": "cm", "motionbuilder": "cm", "unity": "m", "unreal": "cm"}
    for name, target in TARGETS.items():
        assert len(joint_names(name)) == sk.NUM_JOINTS == len(set(joint_names(name)))
        assert target.axes == "y_up" and target.why
    blender = dict(zip(sk.JOINTS, joint_names("blender")))
    assert [blender[j] for j in ("Hips", "Spine", "Chest", "Neck", "HeadTop", "LeftArm", "LeftUpLeg", "LeftToeBase")] \
        == ["Hips", "Spine", "Spine1", "Neck", "HeadTop_End", "LeftArm", "LeftUpLeg", "LeftToeBase"]
    assert joint_names("maya") == joint_names("motionbuilder") == joint_names("unity") == joint_names("blender")
    unreal = dict(zip(sk.JOINTS, joint_names("unreal")))
    assert [unreal[j] for j in ("Hips", "Spine", "Chest", "Neck", "Head", "LeftShoulder", "LeftArm", "LeftForeArm",
                                "LeftHand", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase")] \
        == ["pelvis", "spine_01", "spine_05", "neck_01", "head", "clavicle_l", "upperarm_l", "lowerarm_l",
            "hand_l", "thigh_r", "calf_r", "foot_r", "ball_r"]
    for bad in ("Blender", "max", "", None):
        with pytest.raises(ValueError, match="blender, maya, motionbuilder, unity, unreal"):
            get_target(bad)


@pytest.mark.parametrize("target", list(TARGETS))
def test_each_target_is_true_size_with_its_names_and_a_proper_hips_bone(tmp_path, target):
    """A 1.91 m performer standing on the floor: the head top 1.91 file
    metres (or 191 centimetres) up, the target's names, bvhio's forward
    kinematics on the fit, and a Hips bone that points up the spine."""
    subject, fit = _standing_fit(0)
    path = tmp_path / f"{target}.bvh"
    write_bvh(path, fit, FPS, target=target)
    scale = UNITS[TARGETS[target].units]                            # file units per mm
    names, heads, ends, world = _read(path)
    assert names == list(joint_names(target))
    stature = world[0, HEAD_TOP, 1] / scale                         # the floor is y = 0
    assert stature == pytest.approx(subject.height_mm, rel=0.01)    # 1906.5 mm; exact to the file's rounding
    # Blender's armature height: its bones' heads and tails, the End Site stubs included (1.96 m here).
    tails = np.array([_blender_tail(names, heads, ends, j) for j in range(sk.NUM_JOINTS)])
    span = np.ptp(np.concatenate([heads, tails])[:, 1]) / scale
    assert 1.0 < span / subject.height_mm < 1.03, span
    # Forward kinematics: every joint where the fit has it, the root between the hip joints.
    expect = to_file_axes(_bvh_skeleton(fit.positions_mm)) * scale
    assert np.abs(world - expect).max() / scale < 0.01             # mm
    # The Hips bone by Blender's rule: straight up towards the Spine, a third of the way there.
    bone = (tails[sk.ROOT] - heads[sk.ROOT]) / scale                # mm, file axes
    length = np.linalg.norm(bone)
    assert bone[1] / length > 0.99                                  # up (+Y), within 8 degrees
    spine = (heads[sk.JOINT_INDEX["Spine"]] - heads[sk.ROOT]) / scale
    np.testing.assert_allclose(bone, spine / 3.0, atol=0.01)
    assert 49.0 / 1.3 < length < 49.0 * 1.3                        # measured 49.3 mm (2.6 % of stature)


def test_the_pelvis_centre_as_root_would_give_a_stub_pointing_down_and_back():
    """Why the root moved: from FuseCap's Hips (the pelvis centre) the mean of
    the three children's heads lies below and behind, as imported before."""
    _, fit = _standing_fit(0)
    kids = list(sk.children(sk.ROOT))
    stub = to_file_axes(fit.offsets_mm[kids].mean(axis=0))         # mm, file axes
    assert stub[1] < 0 and stub[2] < 0                              # down, and behind (the performer faces +Z)
    assert 5.0 < np.linalg.norm(stub) < 15.0                        # measured 8.6 mm
    offsets, _ = skeleton_with_root_between_hips(fit)
    moved = to_file_axes(offsets[kids].mean(axis=0))
    assert moved[1] > 45.0 and abs(moved[0]) < 1e-9                 # up the spine, on the midline


@pytest.mark.parametrize("target", list(TARGETS))
def test_a_noisy_take_lands_on_the_fit_for_every_target(tmp_path, noisy_fit, target):
    path = tmp_path / "take.bvh"
    write_bvh(path, noisy_fit, FPS, target=target)
    scale = UNITS[TARGETS[target].units]
    names, heads, ends, world = _read(path)
    assert names == list(joint_names(target))
    err = np.abs(world / scale - to_file_axes(_bvh_skeleton(noisy_fit.positions_mm))).max()
    assert err < 1.0, f"{err:.3f} mm"
    bone = _blender_tail(names, heads, ends, sk.ROOT) - heads[sk.ROOT]
    assert bone[1] / np.linalg.norm(bone) > 0.99
    assert 47.0 / 1.3 < np.linalg.norm(bone) / scale < 47.0 * 1.3   # measured 47.0 mm


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_target_reads_back_through_the_name_map(tmp_path, noisy_fit, target):
    """FuseCap's own BVH reader maps each target's names onto FuseCap's joints
    (the shipped name map), guesses the file's unit, and its joints are the
    fit's within 1 mm (the Hips: the hip joints' midpoint)."""
    path = tmp_path / "take.bvh"
    write_bvh(path, noisy_fit, FPS, target=target)
    clip = load_bvh(path)
    convention, mapping = match_joints(clip, load_name_map())
    assert convention == ("ue5-mannequin" if target == "unreal" else "mixamo-humanik-cmu")
    assert mapping == {j: j for j in range(sk.NUM_JOINTS)}         # every joint, in place
    glob = clip.global_rotations()
    mm_per_unit = 1.0 / UNITS[TARGETS[target].units]
    back = np.stack([axes.y_up_to_world(clip.positions(j, glob)) for j in range(sk.NUM_JOINTS)], axis=1)
    err = np.abs(back * mm_per_unit - _bvh_skeleton(noisy_fit.positions_mm)).max()
    assert err < 1.0, f"{err:.3f} mm"
    assert BvhMotion(clip).unit_scale_mm == mm_per_unit


def test_explicit_units_override_the_targets(tmp_path):
    _, fit = _standing_fit(3)
    write_bvh(tmp_path / "m.bvh", fit, FPS, target="unreal", units="m")
    write_bvh(tmp_path / "cm.bvh", fit, FPS, target="unreal")
    names_m, heads_m, _, world_m = _read(tmp_path / "m.bvh")
    names_cm, heads_cm, _, world_cm = _read(tmp_path / "cm.bvh")
    assert names_m == names_cm == list(joint_names("unreal"))
    np.testing.assert_allclose(heads_m * 100.0, heads_cm, atol=1e-3)
    np.testing.assert_allclose(world_m * 100.0, world_cm, atol=1e-3)
    assert world_m[0, HEAD_TOP, 1] == pytest.approx(Subject.from_seed(3).height_mm / 1000.0, rel=1e-4)


@pytest.mark.slow  # starts Blender
@pytest.mark.skipif(shutil.which("blender") is None, reason="needs a blender executable")
def test_blender_imports_the_default_target_at_true_size(tmp_path):
    """Blender's own BVH importer, default settings: the 1.91 m performer
    stands 1.91 Blender units (metres) tall, facing the front view, with a
    4.9 cm Hips bone pointing up."""
    subject, fit = _standing_fit(0)
    write_bvh(tmp_path / "take.bvh", fit, FPS)
    out = subprocess.run(["blender", "-b", "--factory-startup", "--python", str(ROOT / "scripts" /
                          "check_blender_import.py"), "--", str(tmp_path / "take.bvh")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
    assert report["bones"] == sk.NUM_JOINTS and report["root"] == "Hips" and report["frames"] == [1, 20]
    assert report["top_joint"] == "HeadTop_End"
    assert report["top_joint_position"][2] == pytest.approx(subject.height_mm / 1000.0, abs=0.001)  # 1.9065
    assert report["armature_height"] == pytest.approx(1.9607, abs=0.001)     # with the End Site stubs
    assert report["root_length"] == pytest.approx(0.0493, abs=0.001)
    assert report["root_rest_direction"][2] > 0.99                           # Blender's up is +Z
    assert report["facing"] == pytest.approx([0.0, -1.0, 0.0], abs=1e-3)     # towards the front view
