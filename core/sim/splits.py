"""Seed spaces that keep training and held-out test material apart.

Subjects, motions and random rigs are all drawn by seed. Test seeds are a
small fixed set; training seeds live in a disjoint range, so a training
run can never draw a held-out subject, motion or rig.

Recorded motion is split by CMU subject: subjects 3 and 6 are held out
(:data:`CMU_HELDOUT_SUBJECTS`), 1, 2, 5 and 7 train; :func:`cmu_clips`
lists one split's files in a folder.
"""

from __future__ import annotations

import re
from pathlib import Path

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


# Recorded motion (CMU clips, files named by CMU as subject_trial: 003_01.bvh,
# also gzipped: 003_01.bvh.gz). Whole subjects are held out: their clips are
# an evaluation benchmark and never train.
CMU_HELDOUT_SUBJECTS: tuple[int, ...] = (3, 6)
CMU_TRAIN_SUBJECTS: tuple[int, ...] = (1, 2, 5, 7)
CMU_SPLITS: dict[str, tuple[int, ...]] = {"train": CMU_TRAIN_SUBJECTS, "heldout": CMU_HELDOUT_SUBJECTS}

_CMU_NAME = re.compile(r"^(\d{1,3})_(\d{1,3})\.bvh(\.gz)?$", re.IGNORECASE)


def cmu_subject(path: str | Path) -> int | None:
    """The CMU subject of a clip file named SSS_TT.bvh (or .bvh.gz); None
    for any other name."""
    m = _CMU_NAME.match(Path(path).name)
    return int(m.group(1)) if m else None


def cmu_clips(folder: str | Path, split: str = "train") -> list[Path]:
    """The clip files of one split ("train" or "heldout") in a folder, sorted
    by name. Files of subjects in neither split and files not named like CMU
    clips are left out; a folder that does not exist is a ValueError."""
    if split not in CMU_SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {sorted(CMU_SPLITS)}")
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"motion folder {folder} does not exist")
    subjects = set(CMU_SPLITS[split])
    return sorted(p for p in folder.iterdir() if p.is_file() and cmu_subject(p) in subjects)
