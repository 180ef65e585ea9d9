"""Import a BVH into Blender with the importer's default settings and report its size.

Run with Blender's own Python (headless):

    blender -b --factory-startup --python scripts/check_blender_import.py -- FILE.bvh

It imports FILE.bvh as File > Import > Motion Capture (.bvh) does by
default (scale 1.0, forward -Z, up Y, Blender frame 1 = the file's first
frame) and prints, at frame 1, in Blender units (metres at the default unit
scale):

- the armature's height: max - min world Z over every bone's head and tail
  (End Site stubs included), and the joints' height: the same over the
  heads only (from the lowest joint to the head top);
- the root bone (the Hips): its length, and its direction in the rest pose
  and at frame 1 (world axes: Blender's front view looks along +Y);
- the world positions of the root, the head-top joint and the lowest joint,
  and which way the performer faces (from the hip joints' left-right line).

The last line is the same as one JSON object, for scripts. docs/EXPORT.md
("Targets") records what it printed for a take exported with the defaults.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    try:
        import bpy
    except ImportError:
        print("run this with Blender: blender -b --factory-startup --python scripts/check_blender_import.py "
              "-- FILE.bvh", file=sys.stderr)
        return 2
    args = argv[argv.index("--") + 1:] if "--" in argv else []
    if len(args) != 1:
        print("usage: blender -b --factory-startup --python scripts/check_blender_import.py -- FILE.bvh",
              file=sys.stderr)
        return 2
    _let_the_importer_open_files()
    bpy.ops.import_anim.bvh(filepath=args[0])                 # every option at its default
    arm = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
    bpy.context.scene.frame_set(1)
    world = arm.matrix_world
    heads = {b.name: world @ b.head for b in arm.pose.bones}
    tails = {b.name: world @ b.tail for b in arm.pose.bones}
    z_all = [v.z for v in (*heads.values(), *tails.values())]
    z_heads = [v.z for v in heads.values()]
    root = next(b for b in arm.data.bones if b.parent is None)
    rest_dir = (world.to_3x3() @ (root.tail_local - root.head_local)).normalized()
    posed = arm.pose.bones[root.name]
    pose_dir = (tails[root.name] - heads[root.name]).normalized()
    top = max(heads, key=lambda n: heads[n].z)
    low = min(heads, key=lambda n: heads[n].z)
    facing = _facing(root, heads)

    def vec(v) -> list[float]:
        return [round(float(c), 4) for c in v]

    report = {
        "file": args[0], "armature": arm.name, "bones": len(arm.data.bones),
        "frames": [int(a) for a in arm.animation_data.action.frame_range],
        "armature_height": round(max(z_all) - min(z_all), 4),
        "joints_height": round(max(z_heads) - min(z_heads), 4),
        "root": root.name, "root_length": round(root.length, 4),
        "root_rest_direction": vec(rest_dir), "root_direction_frame1": vec(pose_dir),
        "root_head_frame1": vec(heads[root.name]), "posed_root_length": round(posed.length, 4),
        "top_joint": top, "top_joint_position": vec(heads[top]),
        "lowest_joint": low, "lowest_joint_position": vec(heads[low]),
        "facing": vec(facing) if facing is not None else None,
    }
    print(f"{args[0]}: {report['bones']} bones, frames {report['frames'][0]}-{report['frames'][1]}")
    print(f"frame 1: armature height {report['armature_height']:.4f} (bone heads and tails), "
          f"joints height {report['joints_height']:.4f} ({low} to {top}), Blender units")
    print(f"root bone {root.name}: length {root.length:.4f}; direction at rest {vec(rest_dir)}, "
          f"at frame 1 {vec(pose_dir)}")
    for name in (root.name, top, low):
        print(f"  {name:>14} at {vec(heads[name])}")
    if facing is not None:
        print(f"the performer faces {vec(facing)} (Blender's front view looks along +Y: facing -Y is towards it)")
    print(json.dumps(report))
    return 0


def _let_the_importer_open_files() -> None:
    """Blender builds on Python 3.11 or later whose BVH importer still opens
    files in mode "rU" (Debian's Blender 3.4 does) fail before reading a
    line: Python 3.11 dropped the "U". Give that module an open() without
    it; text mode reads every newline convention the same way."""
    import builtins

    from io_anim_bvh import import_bvh

    def open_without_u(file, mode="r", *args, **kwargs):
        return builtins.open(file, mode.replace("U", ""), *args, **kwargs)

    import_bvh.open = open_without_u


def _facing(root, heads):
    """The performer's forward (left x up) from the root's two lower
    children, the hip joints, told left from right by name; None if unclear."""
    from mathutils import Vector

    legs = sorted(root.children, key=lambda b: heads[b.name].z)[:2]
    left = [b.name for b in legs if b.name.lower().startswith("left") or b.name.lower().endswith("_l")]
    if len(legs) != 2 or len(left) != 1:
        return None
    right = next(b.name for b in legs if b.name != left[0])
    return (heads[left[0]] - heads[right]).cross(Vector((0.0, 0.0, 1.0))).normalized()


if __name__ == "__main__":
    code = main(sys.argv)
    if code:
        sys.exit(code)
