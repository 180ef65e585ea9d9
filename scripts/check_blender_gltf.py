"""Import a FuseCap .glb into Blender with the importer's defaults and compare it with the joints CSV.

Run with Blender's own Python (headless):

    blender -b --factory-startup --python scripts/check_blender_gltf.py -- TAKE.glb TAKE.csv

It imports TAKE.glb as File > Import > glTF 2.0 does by default and, at
several frames of the take, compares every joint's world position in
Blender (the posed bone's head) with the joints CSV written by the same
export (file axes, mm: Blender's glTF importer turns glTF's Y up into
Blender's Z up, so a CSV point (x, y, z) is Blender's (x, -z, y) metres).
It prints the armature, its bones, the animation's frame range, the
character's height (the skinned mesh evaluated at the first frame), the
largest joint difference in mm, and the same as one JSON object on the last
line. docs/EXPORT.md ("glTF") records what it printed.
"""

from __future__ import annotations

import csv
import json
import sys


def main(argv: list[str]) -> int:
    try:
        import bpy
    except ImportError:
        print("run this with Blender: blender -b --factory-startup --python scripts/check_blender_gltf.py "
              "-- TAKE.glb TAKE.csv", file=sys.stderr)
        return 2
    args = argv[argv.index("--") + 1:] if "--" in argv else []
    if len(args) != 2:
        print("usage: blender -b --factory-startup --python scripts/check_blender_gltf.py -- TAKE.glb TAKE.csv",
              file=sys.stderr)
        return 2
    glb, table = args
    with open(table, newline="") as f:
        rows = list(csv.reader(f))
    header, data = rows[0], [[float(v) for v in r] for r in rows[1:]]
    names = [h[:-2] for h in header[2::3]]
    for o in list(bpy.context.scene.objects):
        bpy.data.objects.remove(o)
    _let_the_importer_use_numpy()
    bpy.ops.import_scene.gltf(filepath=glb)                     # every option at its default
    scene = bpy.context.scene
    arm = next(o for o in scene.objects if o.type == "ARMATURE")
    body = next(o for o in scene.objects if o.type == "MESH")
    action = arm.animation_data.action
    first, last = (float(x) for x in action.frame_range)
    times = [r[0] for r in data]
    fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 1.0
    per_key = (last - first) / max(len(times) - 1, 1)           # Blender frames per take frame
    bone_names = [b.name for b in arm.data.bones]
    # The CSV's names are FuseCap's; the file's are the target's, in the same order.
    order = _file_names(arm, names)
    worst, at = 0.0, None
    for k in sorted({0, len(times) // 3, len(times) // 2, len(times) - 1}):
        frame = first + k * per_key
        scene.frame_set(int(frame), subframe=frame - int(frame))
        for j, name in enumerate(order):
            head = arm.matrix_world @ arm.pose.bones[name].head
            x, y, z = data[k][2 + 3 * j: 5 + 3 * j]
            expect = (x / 1000.0, -z / 1000.0, y / 1000.0)
            d = 1000.0 * max(abs(a - b) for a, b in zip(head, expect))
            if d > worst:
                worst, at = d, (k, names[j])
    scene.frame_set(int(first))
    deps = bpy.context.evaluated_depsgraph_get()
    mesh = body.evaluated_get(deps).to_mesh()
    zs = [(body.matrix_world @ v.co).z for v in mesh.vertices]
    report = {"file": glb, "armature": arm.name, "bones": len(bone_names), "root": arm.data.bones[0].name,
              "frames": [first, last], "take_frames": len(times), "take_fps": round(fps, 4),
              "scene_fps": scene.render.fps, "body_vertices": len(mesh.vertices),
              "body_height_first_frame": round(max(zs) - min(zs), 4),
              "worst_joint_mm": round(worst, 3), "worst_at": at}
    print(f"{glb}: armature {arm.name}, {len(bone_names)} bones, action frames {first:g}-{last:g} "
          f"(take: {len(times)} frames at {fps:.3f} fps, scene at {scene.render.fps} fps)")
    print(f"the body: {len(mesh.vertices)} vertices, {report['body_height_first_frame']:.4f} m tall at the first frame")
    print(f"joints against {table}: worst {worst:.3f} mm (take frame {at[0]}, {at[1]})" if at else "no joints")
    print(json.dumps(report))
    return 0


def _let_the_importer_use_numpy() -> None:
    """Blender 3.4's glTF importer (Debian's) names ``np.bool``, which NumPy
    1.24 removed; it was only ever the builtin bool."""
    try:
        import numpy
    except ImportError:
        raise SystemExit("Blender's glTF importer needs NumPy in Blender's Python "
                         "(Debian: apt-get install python3-numpy)") from None

    if not hasattr(numpy, "bool"):
        numpy.bool = bool


def _file_names(arm, csv_names: list[str]) -> list[str]:
    """The armature's bone names in the CSV's joint order: FuseCap writes both
    in core.skeleton.JOINTS order, and the importer keeps the nodes' order."""
    bones = [b.name for b in arm.data.bones]
    if all(n in bones for n in csv_names):
        return csv_names
    if len(bones) != len(csv_names):
        raise SystemExit(f"the armature has {len(bones)} bones, the CSV {len(csv_names)} joints")
    return bones


if __name__ == "__main__":
    code = main(sys.argv)
    if code:
        sys.exit(code)
