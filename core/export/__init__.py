"""Exporters of fitted takes: BVH (:mod:`core.export.bvh`) and CSV
(:mod:`core.export.csv`), in one shared set of axes and joint names.
docs/EXPORT.md describes the files column by column."""

from core.export.bvh import UNITS, rotations_to_file_axes, to_file_axes, write_bvh
from core.export.csv import write_joints_csv, write_raw_csv, write_rotations_csv

__all__ = ["UNITS", "rotations_to_file_axes", "to_file_axes", "write_bvh", "write_joints_csv",
           "write_raw_csv", "write_rotations_csv"]
