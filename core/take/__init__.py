"""Takes: recording to disk, reading back, offline solves (see core.take.take)."""

from core.take.take import SCHEMA, Joints, Take, TakeError, TakeLayout

__all__ = ["SCHEMA", "Joints", "Take", "TakeError", "TakeLayout"]
