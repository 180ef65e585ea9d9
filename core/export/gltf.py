"""glTF 2.0 export (.glb) of a fitted take: the skinned character and its animation.

glTF is what Blender, Unity (glTFast), Unreal, Godot and the web open
without plug-ins. One binary file (``.glb``) holds:

- **The skeleton**: one node per joint of :data:`core.skeleton.JOINTS`, named
  as the BVH of the same target names them (:mod:`core.export.targets`; the
  default is Blender's), end joints included, under one ``Armature`` node.
  Each joint's rest translation is the fit's rest offset, its rest rotation
  the identity: the rest pose is the BVH's T-pose. Unlike the BVH, no
  importer guesses bones from the children's heads here, so the Hips node
  is FuseCap's own Hips: every joint's world position is the joints CSV's.
- **The character**: the body mesh of :mod:`core.character` fitted to the
  fit's skeleton, skinned to those joints (four weights a vertex, the four
  largest, renormalised; glTF viewers are only required to read four), with
  its inverse bind matrices, vertex normals and one plain material.
- **The animation** ``take``: one key a frame at frame / fps seconds (the
  take's frame rate; ``extras.fps`` says it too), linear: the Hips'
  translation and every joint's local rotation (end joints never turn and
  get no channel). Quaternion signs are kept continuous, so interpolating
  between keys never takes the long way round.

Axes and units follow glTF: Y up, metres, the performer facing +Z (glTF's
front), their left at +X: FuseCap's world turned as for the BVH
(:func:`core.export.bvh.to_file_axes`), then millimetres to metres.

The file is written atomically. Bad input (a fit whose arrays disagree or
hold NaN, a frame rate that is not a positive number, an unknown target)
raises ValueError before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pygltflib as gl

from core import skeleton as sk
from core.character import CharacterMesh, fit_character, vertex_normals
from core.export.bvh import check_fit, rotations_to_file_axes, to_file_axes
from core.export.targets import DEFAULT_TARGET, joint_names
from core.files import atomic_write_bytes
from core.posefit import PoseFit
from core.take.layout import APP_VERSION

Progress = Callable[[int, int], None]

M_PER_MM = 0.001
BODY_COLOUR = (0.62, 0.66, 0.72, 1.0)   # a light blue-grey, the usual mocap mannequin


def _vec(points_mm: np.ndarray) -> np.ndarray:
    """World mm (..., 3) -> glTF metres, Y up, float32."""
    return (to_file_axes(np.asarray(points_mm, np.float64)) * M_PER_MM).astype(np.float32)


def continuous_xyzw(quats: np.ndarray) -> np.ndarray:
    """(T, 4) quaternions with signs flipped so neighbours never point apart."""
    q = np.array(quats, np.float64)
    if len(q) and q[0, 3] < 0:
        q[0] = -q[0]
    for i in range(1, len(q)):
        if q[i] @ q[i - 1] < 0:
            q[i] = -q[i]
    return q


class _Blob:
    """The binary chunk: accessors appended one by one, 4-byte aligned."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[gl.BufferView] = []
        self.accessors: list[gl.Accessor] = []

    def add(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False) -> int:
        a = np.ascontiguousarray(array)
        ctype = {np.dtype(np.float32): gl.FLOAT, np.dtype(np.uint16): gl.UNSIGNED_SHORT,
                 np.dtype(np.uint32): gl.UNSIGNED_INT}[a.dtype]
        while len(self.data) % 4:
            self.data.append(0)
        self.views.append(gl.BufferView(buffer=0, byteOffset=len(self.data), byteLength=a.nbytes, target=target))
        self.data += a.tobytes()
        count = a.shape[0] if kind != gl.SCALAR or a.ndim == 1 else a.size
        acc = gl.Accessor(bufferView=len(self.views) - 1, componentType=ctype, count=count, type=kind)
        if bounds:
            flat = a.reshape(count, -1)
            acc.min = [float(x) for x in flat.min(0)]
            acc.max = [float(x) for x in flat.max(0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1


def build_glb(fit: PoseFit, fps: float, target: str = DEFAULT_TARGET,
              character: CharacterMesh | None = None, progress: Progress | None = None) -> bytes:
    """The .glb file's bytes (see the module notes). character: the body to
    skin (default: the shipped one fitted to the fit's skeleton)."""
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    names = joint_names(target)
    n = check_fit(fit)
    if character is None:
        character = fit_character(fit.offsets_mm)
    if progress is not None:
        progress(0, 4)
    blob = _Blob()
    rest = character.rest_joints_mm

    # The mesh, in the rest pose.
    verts = _vec(character.vertices_mm)
    normals = to_file_axes(vertex_normals(character.vertices_mm, character.faces)).astype(np.float32)
    joints4, weights4 = character.top_weights(4)
    position = blob.add(verts, gl.VEC3, gl.ARRAY_BUFFER, bounds=True)
    normal = blob.add(normals, gl.VEC3, gl.ARRAY_BUFFER)
    joints = blob.add(joints4.astype(np.uint16), gl.VEC4, gl.ARRAY_BUFFER)
    weights = blob.add(weights4, gl.VEC4, gl.ARRAY_BUFFER)
    index_type = np.uint16 if len(verts) < 65535 else np.uint32
    indices = blob.add(character.faces.astype(index_type).ravel(), gl.SCALAR, gl.ELEMENT_ARRAY_BUFFER)
    # Inverse bind matrices: the rest pose turns nothing, so each is a translation
    # by minus the joint's rest position; glTF stores matrices column by column.
    ibm = np.tile(np.eye(4, dtype=np.float32), (sk.NUM_JOINTS, 1, 1))
    ibm[:, :3, 3] = -_vec(rest)
    ibm_acc = blob.add(ibm.transpose(0, 2, 1).reshape(sk.NUM_JOINTS, 16), gl.MAT4)
    if progress is not None:
        progress(1, 4)

    # Nodes: 0 the armature, 1..22 the joints (JOINTS order), 23 the body.
    first = 1
    rest_offsets = _vec(character.offsets_mm)
    nodes = [gl.Node(name="Armature", children=[first + sk.ROOT, first + sk.NUM_JOINTS])]
    for j in range(sk.NUM_JOINTS):
        nodes.append(gl.Node(name=names[j], translation=[float(x) for x in rest_offsets[j]],
                             children=[first + c for c in sk.children(j)] or None))
    nodes.append(gl.Node(name="Body", mesh=0, skin=0))

    # The animation: the Hips' translation, every joint's local rotation.
    times = (np.arange(n) / fps).astype(np.float32)
    time_acc = blob.add(times, gl.SCALAR, bounds=True)
    samplers, channels = [], []
    root = blob.add(_vec(fit.root_mm), gl.VEC3)
    samplers.append(gl.AnimationSampler(input=time_acc, output=root, interpolation="LINEAR"))
    channels.append(gl.AnimationChannel(sampler=0, target=gl.AnimationChannelTarget(node=first + sk.ROOT,
                                                                                   path="translation")))
    local = rotations_to_file_axes(fit.local_rotations()).as_quat().reshape(n, sk.NUM_JOINTS, 4)
    if progress is not None:
        progress(2, 4)
    for j in range(sk.NUM_JOINTS):
        if not sk.children(j):
            continue
        out = blob.add(continuous_xyzw(local[:, j]).astype(np.float32), gl.VEC4)
        samplers.append(gl.AnimationSampler(input=time_acc, output=out, interpolation="LINEAR"))
        channels.append(gl.AnimationChannel(sampler=len(samplers) - 1,
                                            target=gl.AnimationChannelTarget(node=first + j, path="rotation")))
    if progress is not None:
        progress(3, 4)

    doc = gl.GLTF2(
        asset=gl.Asset(version="2.0", generator=f"FuseCap {APP_VERSION}"),
        scene=0,
        scenes=[gl.Scene(name="take", nodes=[0])],
        nodes=nodes,
        meshes=[gl.Mesh(name="Body", primitives=[gl.Primitive(
            attributes=gl.Attributes(POSITION=position, NORMAL=normal, JOINTS_0=joints, WEIGHTS_0=weights),
            indices=indices, material=0)])],
        materials=[gl.Material(name="Body", pbrMetallicRoughness=gl.PbrMetallicRoughness(
            baseColorFactor=list(BODY_COLOUR), metallicFactor=0.0, roughnessFactor=0.7))],
        skins=[gl.Skin(name="Armature", inverseBindMatrices=ibm_acc, skeleton=first + sk.ROOT,
                       joints=[first + j for j in range(sk.NUM_JOINTS)])],
        animations=[gl.Animation(name="take", samplers=samplers, channels=channels,
                                 extras={"fps": fps, "frames": n})],
        accessors=blob.accessors,
        bufferViews=blob.views,
        buffers=[gl.Buffer(byteLength=len(blob.data))],
        extras={"units": "metres", "up": "+Y", "performer_faces": "+Z", "target": target},
    )
    doc.set_binary_blob(bytes(blob.data))
    data = b"".join(doc.save_to_bytes())
    if progress is not None:
        progress(4, 4)
    return data


def write_glb(path: str | Path, fit: PoseFit, fps: float, target: str = DEFAULT_TARGET,
              character: CharacterMesh | None = None, progress: Progress | None = None) -> None:
    """Write the fit as a .glb file, atomically (see :func:`build_glb`)."""
    atomic_write_bytes(path, build_glb(fit, fps, target, character, progress))

