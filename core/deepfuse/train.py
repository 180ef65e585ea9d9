"""Training DeepFuse on the simulated studio, resumable in short runs.

A run lives in one folder: ``checkpoint.pt`` (model, optimiser, schedule,
step; written every ``checkpoint_every`` steps and at the end, atomically),
``curves.csv`` (one row per logged step) and ``config.json``. Calling
:func:`train` again on the same folder resumes where the checkpoint left
off, so training can run as a series of runs of a few minutes each on a
machine that has nothing but torch, numpy, scipy and OpenCV.

Loss (the paper's): squared stage-1 plus squared stage-2 joint error,
averaged over joints, in heatmap voxels (the hard-argmax variant, which has
no gradient through its output, learns Gaussian heatmaps instead).

Optimisers: "rmsprop" is the paper's (lr 1e-5, x0.2 every 5 epochs);
"adam" with a cosine decay is the default because it measured better here
(docs/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from core.deepfuse.batch import Batch
from core.deepfuse.data import DataConfig, batches
from core.deepfuse.distributed import any_rank, join, leave, mean_over_ranks, weights_digest
from core.deepfuse.layers import gaussian_heatmaps
from core.deepfuse.network import DeepFuseNet, NetConfig, NetOutput, native_bf16
from core.deepfuse.weights import save_weights
from core.files import atomic_write_text

StepReport = Callable[[int, int, dict], None]

CURVE_FIELDS = ("step", "frames", "seconds", "lr", "loss", "mpjpe1_mm", "mpjpe2_mm")


@dataclass(frozen=True)
class TrainConfig:
    net: NetConfig = field(default_factory=NetConfig)
    data: DataConfig = field(default_factory=DataConfig)
    steps: int = 10000
    batch_size: int = 4
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    epoch_frames: int = 20000  # what "an epoch" means for the paper's step schedule
    amp: bool = True           # bf16 autocast where the device computes bf16 natively (native_bf16)
    checkpoint_every: int = 100
    log_every: int = 10
    threads: int = 0           # CPU threads (0: torch's default)
    # A weights file the new run starts from (fine-tuning; its network must
    # match `net`), with its SHA-256 so the run says exactly what it began with.
    init_weights: str | None = None
    init_sha256: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data"]["noise"] = asdict(self.data.noise)
        return d


def paper_schedule(cfg: TrainConfig) -> TrainConfig:
    """The paper's optimiser: RMSProp, lr 1e-5, x0.2 every 5 epochs."""
    return replace(cfg, optimizer="rmsprop", lr=1e-5)


def _optimiser(model: torch.nn.Module, cfg: TrainConfig):
    if cfg.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps_per_5_epochs = max(1, 5 * cfg.epoch_frames // cfg.batch_size)
        sched = torch.optim.lr_scheduler.StepLR(opt, steps_per_5_epochs, gamma=0.2)
    elif cfg.optimizer == "adam":
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        warm = min(200, cfg.steps // 10 + 1)
        def lam(s):
            cosine = 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps))
            return min(1.0, (s + 1) / warm) * (0.02 + 0.98 * cosine)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
    else:
        raise ValueError(f"unknown optimiser {cfg.optimizer!r} (adam or rmsprop)")
    return opt, sched


def _start_from(model: DeepFuseNet, cfg: TrainConfig) -> None:
    """Load cfg.init_weights into a new run's model (ValueError: another network or another file)."""
    from core.deepfuse.weights import load_weights
    from core.take.process import file_sha256

    path = Path(cfg.init_weights)
    if cfg.init_sha256 and file_sha256(path) != cfg.init_sha256:
        raise ValueError(f"{path} changed since the run began (SHA-256 differs)")
    init, _ = load_weights(path)
    if init.cfg.to_dict() != cfg.net.to_dict():
        raise ValueError(f"{path} holds another network ({init.cfg.to_dict()}) than the run's")
    model.load_state_dict(init.state_dict())


def loss_fn(out: NetOutput, batch: Batch, net: NetConfig) -> torch.Tensor:
    vmm = net.heatmap_voxel_mm
    if net.head == "hard":
        target = (batch.joints_mm - batch.origin_mm[:, None, :]) / vmm - 0.5
        g = gaussian_heatmaps(target, net.heatmap_side)
        return ((out.heatmaps1.float() - g) ** 2).mean() * 1e3 + ((out.heatmaps2.float() - g) ** 2).mean() * 1e3
    e1 = ((out.joints1_mm - batch.joints_mm) / vmm).pow(2).sum(-1).mean()
    e2 = ((out.joints2_mm - batch.joints_mm) / vmm).pow(2).sum(-1).mean()
    return e1 + e2


def mpjpe_mm(pred: torch.Tensor, truth: torch.Tensor) -> float:
    return float((pred.detach().float() - truth).norm(dim=-1).mean())


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(run_dir: str | Path, cfg: TrainConfig | None = None, steps: int | None = None,
          device: str | None = None, report: StepReport | None = None,
          max_seconds: float | None = None, threads: int | None = None, workers: int = 0) -> dict:
    """Train (or resume) the run in run_dir until cfg.steps, or `steps` more
    steps, or max_seconds of wall time, whichever comes first.

    cfg is needed for a new run and must be None or equal to the saved one
    when resuming. report(step, total, metrics) is called after every step.
    threads overrides cfg.threads (CPU threads; a machine fact, not the run's).
    workers: processes rendering training frames (0: render in this one).
    Returns the last logged metrics ("finished": True when there was nothing left to do)."""
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    ckpt_path, cfg_path = run / "checkpoint.pt", run / "config.json"
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    # Under torchrun: one rank per process (core.deepfuse.distributed); alone, rank 0 of 1.
    ranks = join(dev.type)
    if dev.type == "cuda" and ranks.active:
        dev = torch.device("cuda", ranks.local)
        torch.cuda.set_device(dev)
    if cfg_path.exists():
        saved = json.loads(cfg_path.read_text())
        # Compared as JSON holds it (tuples come back as lists): under torchrun another rank
        # may find the file rank 0 has just written for this very configuration.
        if cfg is not None and json.loads(json.dumps(cfg.to_dict())) != saved:
            raise ValueError(f"{run} holds a run with a different configuration; use a new folder")
        cfg = config_from_dict(saved)
    elif cfg is None:
        raise ValueError(f"{run} holds no run yet: give a configuration")
    elif ranks.main:
        atomic_write_text(cfg_path, json.dumps(cfg.to_dict(), indent=2))
    n_threads = threads or cfg.threads
    if n_threads and dev.type == "cpu":
        torch.set_num_threads(n_threads)
    torch.manual_seed(cfg.data.seed)
    model = DeepFuseNet(cfg.net).to(dev)
    if dev.type == "cpu":
        model.use_channels_last()
    opt, sched = _optimiser(model, cfg)
    step, seconds, frames = 0, 0.0, 0
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=dev, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, seconds = int(state["step"]), float(state["seconds"])
        # Frames seen by all ranks together (older checkpoints: one process's).
        frames = int(state.get("frames", step * cfg.batch_size))
    elif cfg.init_weights:
        _start_from(model, cfg)
    end = cfg.steps if steps is None else min(cfg.steps, step + steps)
    curves = run / "curves.csv"
    if step >= end:  # a finished run: report where it stands
        last = {k: float(v[-1]) for k, v in read_curves(curves).items()} if curves.exists() else {}
        leave(ranks)
        return {**last, "step": step, "finished": True}
    # A resumed run continues with a fresh, reproducible data stream (seed, step), each rank its own.
    seed = (cfg.data.seed * 1_000_003 + step) * ranks.world + ranks.rank
    stream = batches(replace(cfg.data, seed=seed), cfg.batch_size, workers=workers, pin_memory=dev.type == "cuda")
    # DDP: every rank starts from rank 0's weights and steps with the gradients averaged over the ranks.
    net = model
    if ranks.active:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    use_amp = cfg.amp and native_bf16(dev)
    new_curves = not curves.exists()
    t_start = time.perf_counter()
    acc = {"loss": 0.0, "mpjpe1_mm": 0.0, "mpjpe2_mm": 0.0, "n": 0}
    metrics: dict = {}
    model.train()
    with open(curves, "a", newline="") if ranks.main else contextlib.nullcontext() as fh:
        writer = csv.DictWriter(fh, fieldnames=CURVE_FIELDS) if ranks.main else None
        if writer is not None and new_curves:
            writer.writeheader()
        while step < end:
            batch = next(stream).to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
                out = net(*batch.inputs())
            loss = loss_fn(out, batch, cfg.net)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sched.step()
            step += 1
            frames += cfg.batch_size * ranks.world
            loss_v = loss.item()
            acc["loss"] += loss_v
            acc["mpjpe1_mm"] += mpjpe_mm(out.joints1_mm, batch.joints_mm)
            acc["mpjpe2_mm"] += mpjpe_mm(out.joints2_mm, batch.joints_mm)
            acc["n"] += 1
            elapsed = seconds + time.perf_counter() - t_start
            if step % cfg.log_every == 0 or step == end:
                n = acc.pop("n")
                metrics = {"step": step, "frames": frames, "seconds": round(elapsed, 1),
                           "lr": opt.param_groups[0]["lr"],
                           **mean_over_ranks(ranks, {k: v / n for k, v in acc.items()})}
                if writer is not None:
                    writer.writerow(metrics)
                    fh.flush()
                acc = {"loss": 0.0, "mpjpe1_mm": 0.0, "mpjpe2_mm": 0.0, "n": 0}
            if report is not None and ranks.main:
                report(step, end, {"loss": loss_v, "mpjpe2_mm": metrics.get("mpjpe2_mm")})
            # Every rank stops at the same step (the first one out of time stops them all).
            out_of_time = any_rank(ranks, max_seconds is not None and time.perf_counter() - t_start >= max_seconds)
            if ranks.main and (step % cfg.checkpoint_every == 0 or step == end or out_of_time):
                _atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                              "scheduler": sched.state_dict(), "step": step, "seconds": elapsed,
                              "frames": frames}, ckpt_path)
            if out_of_time:
                break
    metrics = {**metrics, "rank": ranks.rank, "world": ranks.world, "weights_sha256": weights_digest(model)}
    leave(ranks)
    return metrics


def config_from_dict(d: dict) -> TrainConfig:
    from core.sim.silhouette_noise import SilhouetteNoise

    data = dict(d["data"])
    noise = data.pop("noise", None)
    data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    if noise is not None:
        data["noise"] = SilhouetteNoise(**{k: tuple(v) if isinstance(v, list) else v for k, v in noise.items()})
    rest = {k: v for k, v in d.items() if k not in ("net", "data")}
    return TrainConfig(net=NetConfig.from_dict(d["net"]), data=DataConfig(**data), **rest)


def export_weights(run_dir: str | Path, out_path: str | Path, card: dict | None = None) -> Path:
    """Write the run's model as a shippable weights file (see core.deepfuse.weights)."""
    run = Path(run_dir)
    cfg = config_from_dict(json.loads((run / "config.json").read_text()))
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    model = DeepFuseNet(cfg.net)
    model.load_state_dict(state["model"])
    info = {"steps": int(state["step"]), "train_seconds": float(state["seconds"]),
            "frames": int(state.get("frames", int(state["step"]) * cfg.batch_size)), **(card or {})}
    return save_weights(model, out_path, info)


def read_curves(path: str | Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in CURVE_FIELDS}
