"""Seed spaces that keep training and held-out test material apart.

Subjects, motions and random rigs are all drawn by seed. Test seeds are a
small fixed set; training seeds live in a disjoint range, so a training
run can never draw a held-out subject, motion or rig.
"""

from __future__ import annotations

TEST_SUBJECT_SEEDS: tuple[int, ...] = tuple(range(8))
TEST_MOTION_SEEDS: tuple[int, ...] = tuple(range(8))
TEST_RIG_SEEDS: tuple[int, ...] = tuple(range(8))

_TRAIN_BASE = 1_000_000


def train_seed(index: int) -> int:
    """The seed of training item `index` (index >= 0); never a test seed."""
    if index < 0:
        raise ValueError("training index must be >= 0")
    return _TRAIN_BASE + index


def is_test_seed(seed: int) -> bool:
    return 0 <= seed < _TRAIN_BASE
