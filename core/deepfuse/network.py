"""The DeepFuse network (Huang et al.), in pure torch.

Stage 1 (vision): the camera encoder turns the K x G^3 occupancy volume into
camera-count-independent features at S^3 (S = G / stride), a 3D hourglass
refines them, a 1^3 conv gives one heatmap per joint and the output layer
(3D soft-argmax by default) gives stage-1 joints. The IMU-bone layer casts a
cylinder per IMU bone from those joints; stage 2 takes the vision features,
the stage-1 heatmaps and the IMU-bone volumes through a second hourglass to
the final joints. Joints come out in world millimetres.

Sizes are plain ints (see FULL and LITE); the variants for the paper's
ablations are switches: fuse_imu=False (vision only, stage 2 still runs),
head="soft" | "hard" | "fc".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from core import skeleton as sk
from core.deepfuse.imu_bone import BONE_STARTS, cylinder_volumes
from core.deepfuse.layers import CameraEncoder, Hourglass3D, Res3D, hard_argmax3d, soft_argmax3d

HEADS = ("soft", "hard", "fc")


@dataclass(frozen=True)
class NetConfig:
    """Everything that defines a network's shape; saved beside its weights.

    grid_size, voxel_mm: the input volume (G^3 voxels of voxel_mm).
    stride: the camera encoder's fold; heatmaps are (G/stride)^3.
    width, depth: the hourglasses.
    theta: the soft-argmax sharpness. radius_mm: IMU-bone cylinder radius.
    """

    grid_size: int = 64
    voxel_mm: float = 35.0
    stride: int = 2
    width: int = 128
    depth: int = 4
    theta: float = 3.0
    radius_mm: float = 70.0
    fuse_imu: bool = True
    head: str = "soft"

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, not {self.head!r}")
        side = self.grid_size // self.stride
        if self.grid_size % self.stride or side % (2 ** self.depth):
            raise ValueError(f"grid {self.grid_size} / stride {self.stride} must divide by 2**depth")

    @property
    def heatmap_side(self) -> int:
        return self.grid_size // self.stride

    @property
    def heatmap_voxel_mm(self) -> float:
        return self.voxel_mm * self.stride

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


FULL = NetConfig()
LITE = NetConfig(width=32, depth=3)
PRESETS = {"full": FULL, "lite": LITE}


@dataclass(frozen=True, eq=False)
class NetOutput:
    """joints*_mm (B, J, 3) world mm; spread*_mm (B, J) RMS spread of the
    soft-argmax distribution in mm (zeros for the hard and fc heads);
    heatmaps* (B, J, S, S, S) raw, for the hard head's loss."""

    joints1_mm: torch.Tensor
    joints2_mm: torch.Tensor
    spread1_mm: torch.Tensor
    spread2_mm: torch.Tensor
    heatmaps1: torch.Tensor
    heatmaps2: torch.Tensor
    joints1_vox: torch.Tensor
    joints2_vox: torch.Tensor


class _Stage(nn.Module):
    """1^3 conv to width, hourglass, heatmap conv, output layer."""

    def __init__(self, c_in: int, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Sequential(nn.Conv3d(c_in, cfg.width, 1), Res3D(cfg.width, cfg.width))
        self.hourglass = Hourglass3D(cfg.width, cfg.depth)
        self.post = nn.Sequential(nn.BatchNorm3d(cfg.width), nn.ReLU(inplace=True))
        self.heat = nn.Conv3d(cfg.width, sk.NUM_JOINTS, 1)
        if cfg.head == "fc":
            self.pool = nn.AdaptiveAvgPool3d(4)
            self.fc = nn.Sequential(nn.Flatten(), nn.Linear(cfg.width * 64, 512), nn.ReLU(inplace=True),
                                    nn.Linear(512, sk.NUM_JOINTS * 3))

    def forward(self, x: torch.Tensor):
        f = self.post(self.hourglass(self.inp(x)))
        h = self.heat(f)
        B, S = x.shape[0], self.cfg.heatmap_side
        if self.cfg.head == "soft":
            coords, spread = soft_argmax3d(h, self.cfg.theta)
        elif self.cfg.head == "hard":
            coords, spread = hard_argmax3d(h), h.new_zeros(B, sk.NUM_JOINTS)
        else:
            coords = self.fc(self.pool(f)).reshape(B, sk.NUM_JOINTS, 3).float() + (S - 1) / 2
            spread = h.new_zeros(B, sk.NUM_JOINTS)
        return h, coords, spread


class DeepFuseNet(nn.Module):
    def __init__(self, cfg: NetConfig = FULL) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = CameraEncoder(cfg.stride)
        c_vis = self.encoder.out_channels
        self.stage1 = _Stage(c_vis, cfg)
        c2 = c_vis + sk.NUM_JOINTS + (sk.NUM_IMUS if cfg.fuse_imu else 0)
        self.stage2 = _Stage(c2, cfg)
        self.channels_last = False

    def use_channels_last(self) -> DeepFuseNet:
        """Keep the weights and the volumes channels-last (N, D, H, W, C in
        memory): the same numbers, and on a CPU (oneDNN) with two threads a
        training step of the network 1.4x as fast (scripts/bench_training_step.py,
        docs/BENCHMARKS.md)."""
        self.to(memory_format=torch.channels_last_3d)
        self.channels_last = True
        return self

    def voxels_to_mm(self, coords: torch.Tensor, origin_mm: torch.Tensor) -> torch.Tensor:
        """Heatmap voxel coords (B, J, 3) -> world mm, origin_mm (B, 3) = the grid's corner."""
        s = self.cfg.heatmap_voxel_mm
        return origin_mm[:, None, :].to(coords.dtype) + (coords + 0.5) * s

    def forward(self, volume: torch.Tensor, present: torch.Tensor, origin_mm: torch.Tensor,
                bone_dirs: torch.Tensor, bone_valid: torch.Tensor) -> NetOutput:
        """volume (B, K, G, G, G) 0/1 (any dtype); present (B, K) bool; origin_mm
        (B, 3) the grid's corner in world mm; bone_dirs (B, 13, 3) world unit
        directions of the IMU bones; bone_valid (B, 13) bool."""
        cfg = self.cfg
        vis = self.encoder(volume, present, self.stage1.heat.weight.dtype)
        if self.channels_last:
            vis = vis.contiguous(memory_format=torch.channels_last_3d)
        h1, c1, s1 = self.stage1(vis)
        parts = [vis, h1.to(vis.dtype)]
        if cfg.fuse_imu:
            starts = c1[:, list(BONE_STARTS)]
            imu = cylinder_volumes(starts.float(), bone_dirs.float(), bone_valid, cfg.heatmap_side,
                                   cfg.radius_mm / cfg.heatmap_voxel_mm)
            parts.append(imu.to(vis.dtype))
        x2 = torch.cat(parts, dim=1)
        if self.channels_last:
            x2 = x2.contiguous(memory_format=torch.channels_last_3d)
        h2, c2, s2 = self.stage2(x2)
        vmm = cfg.heatmap_voxel_mm
        origin = origin_mm.float()
        return NetOutput(self.voxels_to_mm(c1.float(), origin), self.voxels_to_mm(c2.float(), origin),
                         s1.float() * vmm, s2.float() * vmm, h1, h2, c1, c2)


def native_bf16(dev: torch.device) -> bool:
    """Whether bf16 autocast runs on the device's own bf16 units: a CUDA GPU
    that has them, or a CPU with AVX-512 BF16 or AMX. Elsewhere bf16 is
    emulated and slower, so training stays fp32."""
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(torch.cpu, c)()) for c in checks if hasattr(torch.cpu, c))
    return False


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_macs(cfg: NetConfig, cameras: int = 8) -> int:
    """Multiply-accumulates of the convolutions of one frame (what a FLOP
    count of 2 x this measures), counted with forward hooks on a meta device."""
    model = DeepFuseNet(cfg).to("meta")
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        k = mod.weight[0].numel()  # c_in * kernel volume
        total += out.numel() * k

    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            m.register_forward_hook(hook)
    G = cfg.grid_size
    with torch.no_grad():
        model(torch.zeros(1, cameras, G, G, G, device="meta"), torch.ones(1, cameras, dtype=torch.bool, device="meta"),
              torch.zeros(1, 3, device="meta"), torch.zeros(1, sk.NUM_IMUS, 3, device="meta"),
              torch.ones(1, sk.NUM_IMUS, dtype=torch.bool, device="meta"))
    return total
