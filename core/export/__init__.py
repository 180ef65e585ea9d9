"""Exporters of fitted takes: BVH (:mod:`core.export.bvh`), glTF with the
character (:mod:`core.export.gltf`) and CSV (:mod:`core.export.csv`), in one
shared set of axes; joint names (and the BVH's units) follow the tool the
files are for (:mod:`core.export.targets`).
docs/EXPORT.md describes the files column by column."""

from core.export.bvh import UNITS, rotations_to_file_axes, to_file_axes, write_bvh
from core.export.csv import write_joints_csv, write_raw_csv, write_rotations_csv
from core.export.gltf import write_glb
from core.export.targets import DEFAULT_TARGET, TARGETS, joint_names

__all__ = ["DEFAULT_TARGET", "TARGETS", "UNITS", "joint_names", "rotations_to_file_axes", "to_file_axes",
           "write_bvh", "write_glb", "write_joints_csv", "write_raw_csv", "write_rotations_csv"]
