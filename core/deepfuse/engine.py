"""The inference engine: K silhouettes + the rig + IMU bone orientations in,
world joints with a per-joint confidence out.

One frame (live, batch 1):
  centre finder -> K x G^3 volume around the centre -> DeepFuse -> joints.
Many frames (offline takes): the same, with the network run in batches.

Devices:
- CPU: the batch-1 forward is traced, frozen and optimised for inference
  (torch.jit: batch norms folded, convolutions on oneDNN's prepacked path),
  which measured 2-3x faster than eager on a 2-core CPU; the volume comes
  from the numpy builder's per-rig table. Threads are set by whoever calls
  prepare() -- call it from the worker thread that will solve.
  Precision (`cpu_precision`): on a CPU that computes bfloat16 in hardware
  (AVX-512 BF16 or AMX) the network runs in bf16 with channels-last
  weights by default ("auto"): on a 2-core AMD EPYC with AVX-512 BF16 the
  live app's network took 47 ms a frame against 57 in fp32, and the eager
  (batched) network a fifth of fp32's time (docs/BENCHMARKS.md); the
  held-out benchmarks moved by at most 0.2 mm (docs/RESULTS.md). Elsewhere
  bf16 is emulated and slower, so "auto" keeps fp32 there.
- CUDA: the volume is built on the GPU from a per-rig table; the network
  runs in fp16 (or bf16), and the batch-1 forward is captured in a CUDA
  graph and replayed per frame.

Degradation: a camera whose silhouette is None is absent (left out of the
camera pooling); a sensor whose orientation row is NaN gives an empty
IMU-bone channel. The model is trained with both.

Confidence: each joint's soft-argmax distribution has an RMS spread (mm);
confidence = 1 / (1 + (spread / CONFIDENCE_SPREAD_MM)^2), so a joint whose
distribution is 100 mm wide scores 0.5. Heads without a distribution (hard,
fc) report confidence 1.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from core import skeleton as sk
from core.camera.rig import CameraRig
from core.deepfuse.imu_bone import bone_directions
from core.deepfuse.network import DeepFuseNet, native_bf16
from core.deepfuse.weights import load_weights, shipped_model_path
from core.rotations import from_wxyz
from core.volume.grid import VoxelGrid
from core.volume.stage import VolumeStage

CONFIDENCE_SPREAD_MM = 100.0
CPU_PRECISIONS = ("auto", "fp32", "bf16")
Progress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class Solve:
    """One frame's result. joints_mm (J, 3) world mm (stage 2); stage1_mm
    (J, 3) the vision-only stage; spread_mm (J,) and confidence (J,) in
    [0, 1]; centre_mm (3,) and grid: where the volume was; timings_ms per step."""

    joints_mm: np.ndarray
    stage1_mm: np.ndarray
    spread_mm: np.ndarray
    confidence: np.ndarray
    centre_mm: np.ndarray
    grid: VoxelGrid
    timings_ms: dict[str, float] = field(default_factory=dict)


def confidence_from_spread(spread_mm: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + (np.asarray(spread_mm, np.float64) / CONFIDENCE_SPREAD_MM) ** 2)


def bone_inputs(bone_wxyz: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(13, 3) float32 world bone directions and (13,) validity from (13, 4)
    wxyz global bone orientations (NaN rows: sensor missing; None: no IMUs)."""
    dirs = np.zeros((sk.NUM_IMUS, 3), np.float32)
    valid = np.zeros(sk.NUM_IMUS, bool)
    if bone_wxyz is None:
        return dirs, valid
    q = np.asarray(bone_wxyz, np.float64).reshape(sk.NUM_IMUS, 4)
    valid = np.isfinite(q).all(axis=1) & (np.linalg.norm(np.nan_to_num(q), axis=1) > 0.5)
    if valid.any():
        rots = np.tile(np.eye(3), (sk.NUM_IMUS, 1, 1))
        rots[valid] = from_wxyz(q[valid]).as_matrix()
        dirs[valid] = bone_directions(rots)[valid]
    return dirs, valid


class _Traced(torch.nn.Module):
    """The network with a flat tuple output (what tracing and graphs need)."""

    def __init__(self, model: DeepFuseNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, volume, present, origin_mm, bone_dirs, bone_valid):
        out = self.model(volume, present, origin_mm, bone_dirs, bone_valid)
        return out.joints2_mm, out.joints1_mm, out.spread2_mm


class InferenceEngine:
    """Solves frames of one rig with one model.

    device: "cpu", "cuda" or None (CUDA when present). precision on CUDA:
    "fp16" (default), "bf16" or "fp32". cpu_precision on the CPU: "auto"
    (bf16 where the CPU computes it in hardware, else fp32), "fp32" or
    "bf16"; `precision_name` says which runs.
    threads: CPU threads for torch (None: leave torch's setting). optimise:
    trace and freeze on CPU / capture a CUDA graph on CUDA for batch 1.
    """

    def __init__(self, model: DeepFuseNet, rig: CameraRig, device: str | torch.device | None = None,
                 precision: str = "fp16", threads: int | None = None, optimise: bool = True,
                 cpu_precision: str = "auto") -> None:
        self.model = model.eval()
        self.cfg = model.cfg
        self.rig = rig
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.threads = threads
        self.optimise = optimise
        if precision not in ("fp16", "bf16", "fp32"):
            raise ValueError("precision must be fp16, bf16 or fp32")
        if cpu_precision not in CPU_PRECISIONS:
            raise ValueError(f"cpu_precision must be one of {', '.join(CPU_PRECISIONS)}")
        if self.device.type == "cuda":
            self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]
            self.model.to(self.device, self.dtype)
            self.net = self.model
        else:
            bf16 = cpu_precision == "bf16" or (cpu_precision == "auto" and native_bf16(self.device))
            self.dtype = torch.bfloat16 if bf16 else torch.float32
            # The module that runs: the model itself, or a bf16 channels-last copy (the model is
            # left as it is: evaluation and training share it).
            self.net = copy.deepcopy(self.model).to(torch.bfloat16).use_channels_last().eval() if bf16 \
                else self.model
        self._lock = threading.Lock()
        self._prepared = False
        self._fast = None  # traced module (CPU) or graph runner (CUDA)
        # The one place frames' volumes are built (the live pipeline uses it too):
        # on the GPU from a per-rig table there, on the CPU from numpy's.
        self.volumes = VolumeStage(rig, self.cfg.grid_size, self.cfg.voxel_mm, self.device)

    @property
    def precision_name(self) -> str:
        """The precision the network runs in: "fp32", "bf16" or "fp16"."""
        return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, rig: CameraRig, **kw) -> "InferenceEngine":
        model, _ = load_weights(path)
        return cls(model, rig, **kw)

    @classmethod
    def shipped(cls, name: str, rig: CameraRig, **kw) -> "InferenceEngine":
        """An engine with a shipped model, "full" or "lite"."""
        return cls.from_file(shipped_model_path(name), rig, **kw)

    def prepare(self, progress: Progress | None = None) -> None:
        """Per-rig tables and the optimised batch-1 forward. Call it from the
        thread that will solve (it sets that thread's torch threads)."""
        if self.threads and self.device.type == "cpu":
            torch.set_num_threads(self.threads)
        with self._lock:
            if self._prepared:
                return
            self.volumes.prepare(progress)
            if self.optimise:
                self._fast = self._build_fast()
            self._prepared = True

    def _example(self, batch: int = 1):
        G, K = self.cfg.grid_size, len(self.rig)
        d = self.device
        return (torch.zeros(batch, K, G, G, G, dtype=torch.uint8, device=d),
                torch.ones(batch, K, dtype=torch.bool, device=d),
                torch.zeros(batch, 3, device=d),
                torch.tensor(sk.IMU_BONE_REST_DIRECTIONS, dtype=torch.float32, device=d)
                .expand(batch, -1, -1).contiguous(),
                torch.ones(batch, sk.NUM_IMUS, dtype=torch.bool, device=d))

    def _build_fast(self):
        wrapped = _Traced(self.net).eval()
        if self.device.type == "cuda":
            return _CudaGraph(wrapped, self._example())
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-derived Python ints
            traced = torch.jit.trace(wrapped, self._example(), check_trace=False)
            fast = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
            fast(*self._example())  # the first calls specialise the graph
            fast(*self._example())
        return fast

    # -- per frame ----------------------------------------------------------------
    def _volume(self, silhouettes: Sequence[np.ndarray | None]):
        """(centre, grid, volume tensor on the device) or None when nobody is seen."""
        got = self.volumes.build(silhouettes)
        if got is None:
            return None
        vol = got.volume if isinstance(got.volume, torch.Tensor) else torch.from_numpy(got.volume)
        return got.centre_mm, got.grid, vol

    def _inputs(self, vols, grids, presents, bones):
        d = self.device
        origin = torch.tensor(np.array([np.asarray(g.origin_index, np.float64) * g.voxel_mm for g in grids]),
                              dtype=torch.float32)
        dirs = torch.from_numpy(np.stack([b[0] for b in bones]))
        valid = torch.from_numpy(np.stack([b[1] for b in bones]))
        present = torch.from_numpy(np.stack(presents))
        return (torch.stack(vols).to(d, non_blocking=True), present.to(d), origin.to(d), dirs.to(d), valid.to(d))

    def _run(self, inputs, batch_one: bool):
        with torch.inference_mode():
            if batch_one and self._fast is not None:
                j2, j1, s2 = self._fast(*inputs)
            else:
                j2, j1, s2 = _Traced(self.net)(*inputs)
            return j2.float().cpu().numpy(), j1.float().cpu().numpy(), s2.float().cpu().numpy()

    def _results(self, j2, j1, s2, frames, timings, bones):
        """bones: each frame's bone_inputs. A frame without a single IMU bone
        gets stage 1 as its answer: the network was trained with at most one
        sensor missing, and its stage 2 with all thirteen missing is far off
        (185-195 mm against stage 1's 37-40 mm, measured on the simulated
        studio with the lite model), which is what a studio whose IMUs are not
        paired or calibrated yet would otherwise show."""
        out = []
        for i, (centre, grid) in enumerate(frames):
            spread = s2[i].astype(np.float64)
            conf = confidence_from_spread(spread) if self.cfg.head == "soft" else np.ones(sk.NUM_JOINTS)
            joints = j2[i] if bones[i][1].any() else j1[i]
            out.append(Solve(joints.astype(np.float64), j1[i].astype(np.float64), spread, conf,
                             np.asarray(centre, np.float64), grid, dict(timings)))
        return out

    def solve(self, silhouettes: Sequence[np.ndarray | None], bone_wxyz: np.ndarray | None = None) -> Solve | None:
        """One frame: silhouettes (one per camera, None for a lost camera) and
        (13, 4) wxyz global bone orientations (NaN rows or None: missing).
        None when no performer is found."""
        if len(silhouettes) != len(self.rig):
            raise ValueError(f"expected {len(self.rig)} silhouettes (one per camera), got {len(silhouettes)}")
        self.prepare()
        t0 = time.perf_counter()
        got = self._volume(silhouettes)
        if got is None:
            return None
        centre, grid, vol = got
        present = np.array([m is not None for m in silhouettes])
        solve = self.solve_volume(centre, grid, vol, present, bone_wxyz)
        total = (time.perf_counter() - t0) * 1e3
        net = solve.timings_ms["network"]
        return replace(solve, timings_ms={"volume": total - net, "network": net, "total": total})

    def solve_volume(self, centre_mm: np.ndarray, grid: VoxelGrid, volume, present: np.ndarray,
                     bone_wxyz: np.ndarray | None = None) -> Solve:
        """The network alone, for a volume built elsewhere (the live pipeline
        builds it): volume (K, G, G, G) 0/1 numpy or tensor on grid; present
        (K,) bool (False: camera lost)."""
        self.prepare()
        t0 = time.perf_counter()
        vol = volume if isinstance(volume, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(volume))
        bones = [bone_inputs(bone_wxyz)]
        inputs = self._inputs([vol], [grid], [np.asarray(present, bool)], bones)
        j2, j1, s2 = self._run(inputs, batch_one=True)
        network_ms = (time.perf_counter() - t0) * 1e3
        return self._results(j2, j1, s2, [(centre_mm, grid)], {"network": network_ms}, bones)[0]

    def solve_batch(self, frames: Sequence[tuple[Sequence[np.ndarray | None], np.ndarray | None]],
                    batch_size: int = 16, progress: Progress | None = None) -> list[Solve | None]:
        """Many frames (offline): each (silhouettes, bone_wxyz) as for solve();
        the network runs on batch_size frames at a time."""
        self.prepare()
        results: list[Solve | None] = [None] * len(frames)
        for start in range(0, len(frames), batch_size):
            chunk = range(start, min(start + batch_size, len(frames)))
            vols, grids, presents, bones, where, placed = [], [], [], [], [], []
            for i in chunk:
                sil, bw = frames[i]
                got = self._volume(sil)
                if got is None:
                    continue
                centre, grid, vol = got
                vols.append(vol)
                grids.append(grid)
                placed.append((centre, grid))
                presents.append(np.array([m is not None for m in sil]))
                bones.append(bone_inputs(bw))
                where.append(i)
            if vols:
                j2, j1, s2 = self._run(self._inputs(vols, grids, presents, bones), batch_one=False)
                for i, r in zip(where, self._results(j2, j1, s2, placed, {}, bones)):
                    results[i] = r
            if progress is not None:
                progress(chunk.stop, len(frames))
        return results


class _CudaGraph:
    """The batch-1 forward captured in a CUDA graph: inputs are copied into
    static buffers and the graph is replayed (no per-kernel launch cost)."""

    def __init__(self, module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> None:
        self.module = module
        self.static_in = tuple(t.clone() for t in example)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(3):  # warm-up: cuDNN picks its algorithms outside the capture
                module(*self.static_in)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode():
            self.static_out = module(*self.static_in)

    def __call__(self, *inputs: torch.Tensor):
        for dst, src in zip(self.static_in, inputs):
            dst.copy_(src, non_blocking=True)
        self.graph.replay()
        return tuple(t.clone() for t in self.static_out)
