"""Building blocks of the DeepFuse network: residual 3D blocks, a 3D hourglass,
the camera encoder and the output layers (soft-argmax, hard-argmax).

All tensors are [batch, channel, x, y, z]; voxel coordinates index the last
three axes in that order, with voxel i's centre at coordinate i.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Res3D(nn.Module):
    """A bottleneck residual block (Newell et al.'s hourglass block made 3D):
    1^3 conv to half width, 3^3 conv, 1^3 conv back, each after BN + ReLU,
    plus a 1^3 projection on the skip path when the width changes."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = max(c_out // 2, 1)
        self.body = nn.Sequential(
            nn.BatchNorm3d(c_in), nn.ReLU(inplace=True), nn.Conv3d(c_in, mid, 1),
            nn.BatchNorm3d(mid), nn.ReLU(inplace=True), nn.Conv3d(mid, mid, 3, padding=1),
            nn.BatchNorm3d(mid), nn.ReLU(inplace=True), nn.Conv3d(mid, c_out, 1),
        )
        self.skip = nn.Identity() if c_in == c_out else nn.Conv3d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class Hourglass3D(nn.Module):
    """A recursive 3D hourglass of `depth` levels at constant `width`: each
    level keeps a full-resolution branch and recurses on a max-pooled copy,
    then adds the upsampled result. Input sides must divide by 2**depth."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError("hourglass depth must be >= 1")
        self.depth = depth
        self.up = Res3D(width, width)
        self.down = Res3D(width, width)
        self.inner = Hourglass3D(width, depth - 1) if depth > 1 else Res3D(width, width)
        self.out = Res3D(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.up(x)
        low = self.out(self.inner(self.down(F.max_pool3d(x, 2))))
        return up + F.interpolate(low, scale_factor=2.0, mode="nearest")


class CameraEncoder(nn.Module):
    """Turns K per-camera occupancy volumes into features that do not depend on
    how many cameras there are or in which order they come.

    Per voxel it counts the cameras that see it, n_v, among the n cameras
    present, and gives three maps: the fraction n_v / n, the visual hull
    (n_v = n) and the hull that forgives one camera (n_v >= n - 1, for a
    camera that sees the performer only in part). Each map is then folded
    from G^3 to (G/stride)^3 with stride^3 channels (space to depth), so no
    detail is averaged away. Output channels: 3 * stride^3.

    A camera marked absent (unplugged, or padding up to the batch's camera
    count) is not counted; a camera that is present but delivered an empty or
    partial silhouette (what Random Shut simulates) is. The channels carry no
    camera identity: a trained model serves any rig (see docs/DECISIONS.md).
    """

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    @property
    def out_channels(self) -> int:
        return 3 * self.stride ** 3

    def forward(self, volume: torch.Tensor, present: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """volume (B, K, G, G, G) 0/1 of any dtype; present (B, K) bool -> (B, C, S, S, S)."""
        B, K, G = volume.shape[0], volume.shape[1], volume.shape[2]
        w = present.reshape(B, K, 1, 1, 1)
        seen = (volume.to(torch.bool) & w).sum(dim=1, dtype=torch.int16)  # (B, G, G, G)
        n = present.sum(dim=1, dtype=torch.int16).reshape(B, 1, 1, 1)
        frac = seen.to(dtype) / n.clamp(min=1).to(dtype)
        hull = ((seen >= n) & (n > 0)).to(dtype)
        near = ((seen >= n - 1) & (seen > 0)).to(dtype)
        maps = torch.stack([frac, hull, near], dim=1)  # (B, 3, G, G, G)
        s = self.stride
        if s == 1:
            return maps
        g = G // s
        return (maps.reshape(B, 3, g, s, g, s, g, s).permute(0, 1, 3, 5, 7, 2, 4, 6)
                .reshape(B, 3 * s ** 3, g, g, g))


def voxel_axes(side: int, device, dtype) -> torch.Tensor:
    return torch.arange(side, device=device, dtype=dtype)


def soft_argmax3d(heatmaps: torch.Tensor, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected voxel coordinate under softmax(theta * heatmap) per joint.

    heatmaps (B, J, S, S, S) -> coordinates (B, J, 3) in voxels and the spread
    (B, J): the RMS distance in voxels of the distribution from that mean,
    which the engine turns into a per-joint confidence."""
    B, J, S = heatmaps.shape[0], heatmaps.shape[1], heatmaps.shape[2]
    p = torch.softmax(theta * heatmaps.reshape(B, J, -1).float(), dim=-1).reshape(B, J, S, S, S)
    ax = voxel_axes(S, p.device, p.dtype)
    px, py, pz = p.sum(dim=(3, 4)), p.sum(dim=(2, 4)), p.sum(dim=(2, 3))  # marginals (B, J, S)
    mean = torch.stack([px @ ax, py @ ax, pz @ ax], dim=-1)
    sq = ax * ax
    var = torch.stack([px @ sq, py @ sq, pz @ sq], dim=-1) - mean * mean
    return mean, var.clamp(min=0).sum(dim=-1).sqrt()


def hard_argmax3d(heatmaps: torch.Tensor) -> torch.Tensor:
    """The voxel of each joint's largest heatmap value, (B, J, 3) float voxels."""
    B, J, S = heatmaps.shape[0], heatmaps.shape[1], heatmaps.shape[2]
    flat = heatmaps.reshape(B, J, -1).argmax(dim=-1)
    x = torch.div(flat, S * S, rounding_mode="floor")
    y = torch.div(flat, S, rounding_mode="floor") % S
    z = flat % S
    return torch.stack([x, y, z], dim=-1).to(torch.float32)


def gaussian_heatmaps(coords: torch.Tensor, side: int, sigma: float = 1.0) -> torch.Tensor:
    """Target heatmaps for the hard-argmax variant: a unit Gaussian of `sigma`
    voxels at each joint. coords (B, J, 3) voxels -> (B, J, S, S, S)."""
    ax = voxel_axes(side, coords.device, coords.dtype)
    d = [(ax - coords[..., i, None]) ** 2 for i in range(3)]  # (B, J, S) each
    r2 = d[0][..., :, None, None] + d[1][..., None, :, None] + d[2][..., None, None, :]
    return torch.exp(-r2 / (2 * sigma * sigma))
