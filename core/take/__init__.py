"""Takes: recording to disk, reading back, offline solves (see core.take.take)."""

from core.take.layout import SCHEMA, Joints, TakeError, TakeLayout
from core.take.take import Take

__all__ = ["SCHEMA", "Joints", "Take", "TakeError", "TakeLayout"]
