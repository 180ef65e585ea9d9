"""Exporters of fitted takes: BVH (:mod:`core.export.bvh`) and CSV
(:mod:`core.export.csv`), in one shared set of axes; the BVH's joint names
and units follow the tool it is for (:mod:`core.export.targets`).
docs/EXPORT.md describes the files column by column."""

from core.export.bvh import UNITS, rotations_to_file_axes, to_file_axes, write_bvh
from core.export.csv import write_joints_csv, write_raw_csv, write_rotations_csv
from core.export.targets import DEFAULT_TARGET, TARGETS, joint_names

__all__ = ["DEFAULT_TARGET", "TARGETS", "UNITS", "joint_names", "rotations_to_file_axes", "to_file_axes",
           "write_bvh", "write_joints_csv", "write_raw_csv", "write_rotations_csv"]
