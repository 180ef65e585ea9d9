"""Plots for training and evaluation (PNG, matplotlib's Agg backend, no window).

matplotlib is imported lazily: a machine without it (a bare GPU box) still
trains and evaluates; the plots can be drawn later from the CSV files."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(csv_path: str | Path, png_path: str | Path) -> Path:
    from core.deepfuse.train import read_curves

    plt = _pyplot()
    c = read_curves(csv_path)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(c["frames"], c["loss"])
    a.set_yscale("log")
    a.set_xlabel("training frames")
    a.set_ylabel("loss (voxels$^2$)")
    a.set_title("loss")
    b.plot(c["frames"], c["mpjpe1_mm"], label="stage 1 (vision)")
    b.plot(c["frames"], c["mpjpe2_mm"], label="stage 2 (fused)")
    b.set_yscale("log")
    b.set_xlabel("training frames")
    b.set_ylabel("MPJPE on training frames (mm)")
    b.legend()
    b.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return Path(png_path)


def plot_per_joint(names: list[str], errors: dict[str, np.ndarray], png_path: str | Path, title: str) -> Path:
    """Bars of mean per-joint error (mm), one series per entry of `errors`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(12, 4))
    n = len(errors)
    x = np.arange(len(names))
    for i, (label, e) in enumerate(errors.items()):
        ax.bar(x + (i - (n - 1) / 2) * 0.8 / n, e, 0.8 / n, label=label)
    ax.set_xticks(x, names, rotation=60, ha="right")
    ax.set_ylabel("mean error (mm)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return Path(png_path)


def plot_sequence(t_s: np.ndarray, errors: dict[str, np.ndarray], png_path: str | Path, title: str) -> Path:
    """Per-frame MPJPE (mm) along a test sequence, one line per entry."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for label, e in errors.items():
        ax.plot(t_s, e, label=label, lw=1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MPJPE (mm)")
    ax.set_title(title)
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return Path(png_path)
