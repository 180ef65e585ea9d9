"""glTF export: the file is read back with an independent reader (gltflib,
not the pygltflib that writes it), its animation sampled and its node tree
walked by the glTF rules (node matrix = T R S, parent times child), and the
joints must land on the joints CSV; the skinned body must follow them."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from core import skeleton as sk
from core.character import fit_character, template
from core.export import write_joints_csv
from core.export.gltf import build_glb, write_glb
from core.export.targets import TARGETS, joint_names
from core.kinematics import forward_kinematics
from core.posefit import fit_pose
from core.sim.motion import Performer, ProceduralMotion
from core.sim.subject import Subject
from tests.gltf_reader import Glb

FPS = 25.0
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def take(rng):
    """40 noisy frames of a procedural performer turning about, frames 20-24 unsolved."""
    seed = int(rng.integers(1 << 20))
    times = np.arange(40) / FPS
    truth = Performer(Subject.from_seed(seed), ProceduralMotion(seed)).poses_at(times + 5.0)
    noise = np.random.default_rng(seed)
    raw = truth.positions_mm + noise.normal(0.0, 10.0, truth.positions_mm.shape)
    raw[20:25] = np.nan
    return fit_pose(times, raw), seed


def _csv_joints(path):
    rows = np.loadtxt(path, delimiter=",", skiprows=1)
    return rows[:, 2:].reshape(len(rows), sk.NUM_JOINTS, 3)


@pytest.mark.parametrize("target", ["blender", "unreal"])
def test_joints_land_on_the_joints_csv(tmp_path, take, target):
    fit, seed = take
    glb, csv = tmp_path / "take.glb", tmp_path / "take.csv"
    write_glb(glb, fit, FPS, target=target)
    write_joints_csv(csv, fit)
    expect = _csv_joints(csv) / 1000.0                            # export axes, metres
    g = Glb(glb)
    names = joint_names(target)
    assert [g.model.nodes[g.node_index(n)].name for n in names] == list(names)
    ids = [g.node_index(n) for n in names]
    times = g.accessor(g.model.animations[0].samplers[0].input)
    assert len(times) == fit.num_frames
    np.testing.assert_allclose(np.diff(times), 1.0 / FPS, atol=1e-6)
    worst = 0.0
    for f in (0, 7, 19, 22, 39):                                  # 22: a filled frame
        w = g.world_matrices(f)[ids, :3, 3]
        worst = max(worst, float(np.abs(w - expect[f]).max()))
    assert worst < 1e-3                                           # 1 mm
    print(f"glTF joints to the joints CSV ({target}, seed {seed}): worst {worst * 1000:.4f} mm")


def test_axes_units_and_the_skinned_body(tmp_path, take):
    """Y up, metres, facing +Z; the mesh skinned by the file's own skin lands
    where FuseCap's skinning puts it; the rest pose is a T-pose."""
    fit, _ = take
    path = tmp_path / "take.glb"
    write_glb(path, fit, FPS)
    g = Glb(path)
    names = joint_names("blender")
    ids = [g.node_index(n) for n in names]
    w0 = g.world_matrices(0)
    head, foot = w0[ids[sk.JOINT_INDEX["HeadTop"]], :3, 3], w0[ids[sk.JOINT_INDEX["LeftFoot"]], :3, 3]
    assert 1.2 < head[1] - foot[1] < 2.2                           # Y up, metres
    # Skinning with the file's data only: joints' world matrices times inverse binds.
    skin = g.model.skins[0]
    prim = g.model.meshes[0].primitives[0]
    verts = g.accessor(prim.attributes.POSITION).astype(float)
    jj = g.accessor(prim.attributes.JOINTS_0).astype(int)
    ww = g.accessor(prim.attributes.WEIGHTS_0).astype(float)
    ibm = g.accessor(skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1).astype(float)
    assert len(verts) == len(template().vertices_mm) and len(skin.joints) == sk.NUM_JOINTS
    np.testing.assert_allclose(ww.sum(1), 1.0, atol=1e-5)
    f = 7
    mats = np.einsum("jab,jbc->jac", g.world_matrices(f)[skin.joints], ibm)
    hom = np.c_[verts, np.ones(len(verts))]
    posed = np.einsum("vk,vkab,vb->va", ww, mats[jj], hom)[:, :3]
    # FuseCap's own skinning of the same body (four weights a vertex, as in the file).
    body = fit_character(fit.offsets_mm)
    jw, wv = body.top_weights(4)
    full = np.zeros_like(body.weights)
    np.put_along_axis(full, jw, wv, 1)
    from core.character import CharacterMesh
    from core.export.bvh import to_file_axes

    four = CharacterMesh(body.vertices_mm, body.faces, full, body.rest_joints_mm)
    poses = forward_kinematics(fit.offsets_mm, fit.root_mm, fit.local_rotations())
    mine = to_file_axes(four.pose(poses.positions_mm[f], poses.rotations[f])) / 1000.0
    gap = np.linalg.norm(posed - mine, axis=1).max()
    assert gap < 1e-4                                              # 0.1 mm
    # The body faces +Z: the toes are ahead of the heels in the rest pose.
    rest = verts
    feet = rest[:, 1] < rest[:, 1].min() + 0.05  # the rest pose stands at the skeleton's own root height
    assert rest[feet, 2].max() > 0.1 > -rest[feet, 2].min()
    assert g.model.animations[0].extras["fps"] == FPS


def test_bad_input_is_refused_before_writing(tmp_path, take):
    fit, _ = take
    path = tmp_path / "x.glb"
    for fps in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="fps"):
            write_glb(path, fit, fps)
    with pytest.raises(ValueError, match="target"):
        write_glb(path, fit, FPS, target="cinema4d")
    import dataclasses

    bad = dataclasses.replace(fit, root_mm=fit.root_mm.copy())
    bad.root_mm[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_glb(path, bad, FPS)
    assert not path.exists()


def test_size_and_progress(take):
    fit, _ = take
    seen = []
    data = build_glb(fit, FPS, progress=lambda d, n: seen.append((d, n)))
    assert seen[-1] == (4, 4) and data[:4] == b"glTF"
    # 1229 vertices (positions, normals, joints, weights), 2454 triangles, 40 frames of 18 rotations.
    assert 90_000 < len(data) < 120_000
    assert set(TARGETS) >= {"blender", "unreal"}


@pytest.mark.slow  # starts Blender
@pytest.mark.skipif(shutil.which("blender") is None, reason="needs a blender executable")
def test_blender_imports_the_glb_onto_the_joints_csv(tmp_path, take):
    """Blender's own glTF importer, default settings: every joint's posed
    bone head lands on the joints CSV; the skinned body stands up."""
    fit, _ = take
    write_glb(tmp_path / "take.glb", fit, FPS)
    write_joints_csv(tmp_path / "take.csv", fit)
    out = subprocess.run(["blender", "-b", "--factory-startup", "--python", str(ROOT / "scripts" /
                          "check_blender_gltf.py"), "--", str(tmp_path / "take.glb"), str(tmp_path / "take.csv")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
    assert report["bones"] == sk.NUM_JOINTS and report["root"] == "Hips" and report["take_frames"] == 40
    assert report["worst_joint_mm"] < 0.1
    assert 1.4 < report["body_height_first_frame"] < 2.2
