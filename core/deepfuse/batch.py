"""What the network eats: one frame's inputs (a Sample, numpy) and a padded
stack of them (a Batch, torch).

Frames of one batch may come from rigs with different camera counts: the
camera axis is padded to the largest count with absent cameras (zero
volumes, present=False), which the camera encoder ignores.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass(frozen=True, eq=False)
class Sample:
    """volume (K, G, G, G) uint8 0/1, axes [camera, x, y, z]; present (K,) bool;
    origin_mm (3,) the grid's corner, world mm; bone_dirs (13, 3) world unit
    vectors; bone_valid (13,) bool; joints_mm (J, 3) the truth (NaN when
    unknown); partial: some camera saw the performer only in part or not at
    all although present."""

    volume: np.ndarray
    present: np.ndarray
    origin_mm: np.ndarray
    bone_dirs: np.ndarray
    bone_valid: np.ndarray
    joints_mm: np.ndarray
    partial: bool = False


@dataclass(frozen=True, eq=False)
class Batch:
    volume: torch.Tensor      # (B, K, G, G, G) uint8
    present: torch.Tensor     # (B, K) bool
    origin_mm: torch.Tensor   # (B, 3) float32
    bone_dirs: torch.Tensor   # (B, 13, 3) float32
    bone_valid: torch.Tensor  # (B, 13) bool
    joints_mm: torch.Tensor   # (B, J, 3) float32
    partial: torch.Tensor     # (B,) bool

    def __len__(self) -> int:
        return int(self.volume.shape[0])

    def to(self, device, non_blocking: bool = False) -> "Batch":
        return Batch(**{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)})

    def pin_memory(self) -> "Batch":
        """Page-locked copies, so the copy to a GPU can overlap compute (DataLoader calls this)."""
        return Batch(**{f.name: getattr(self, f.name).pin_memory() for f in fields(self)})

    def inputs(self) -> tuple[torch.Tensor, ...]:
        """The network's forward arguments, in order."""
        return self.volume, self.present, self.origin_mm, self.bone_dirs, self.bone_valid


def collate(samples: list[Sample]) -> Batch:
    if not samples:
        raise ValueError("an empty batch")
    K = max(len(s.present) for s in samples)
    G = samples[0].volume.shape[1]
    B = len(samples)
    vol = np.zeros((B, K, G, G, G), np.uint8)
    present = np.zeros((B, K), bool)
    for i, s in enumerate(samples):
        if s.volume.shape[1:] != (G, G, G):
            raise ValueError("all samples of a batch need the same grid size")
        k = len(s.present)
        vol[i, :k] = s.volume
        present[i, :k] = s.present
    stack = lambda name, dtype: torch.from_numpy(np.stack([getattr(s, name) for s in samples]).astype(dtype))  # noqa: E731
    return Batch(torch.from_numpy(vol), torch.from_numpy(present), stack("origin_mm", np.float32),
                 stack("bone_dirs", np.float32), stack("bone_valid", bool), stack("joints_mm", np.float32),
                 torch.tensor([s.partial for s in samples], dtype=torch.bool))

