"""Shipped network weights: one file per model, loaded safely.

A weights file is a plain dict saved with torch.save: ``format``
("fusecap-deepfuse"), ``version`` (1), ``net`` (the NetConfig as a dict),
``state`` (the state dict) and ``info`` (training facts for the model
card). It is read with ``torch.load(..., weights_only=True)``, so a file
cannot run code; a missing, truncated or foreign file raises
ModelFileError with the path and what is wrong.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from core.deepfuse.network import DeepFuseNet, NetConfig
from core.resources import resource_path

FORMAT = "fusecap-deepfuse"
VERSION = 1
SHIPPED = {"full": "models/deepfuse-full.pt", "lite": "models/deepfuse-lite.pt"}


class ModelFileError(RuntimeError):
    """A weights file that is missing, unreadable or not a FuseCap model."""


def save_weights(model: DeepFuseNet, path: str | Path, info: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    blob = {"format": FORMAT, "version": VERSION, "net": model.cfg.to_dict(), "state": state,
            "info": dict(info or {})}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return path


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> tuple[DeepFuseNet, dict]:
    """The model (in eval mode, on device) and its info dict."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with code, random bytes...
        raise ModelFileError(f"{path} is not a readable model file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a FuseCap DeepFuse model file")
    if blob.get("version") != VERSION:
        raise ModelFileError(f"{path} has model format version {blob.get('version')}, this FuseCap reads {VERSION}")
    try:
        model = DeepFuseNet(NetConfig.from_dict(blob["net"]))
        model.load_state_dict(blob["state"])
    except Exception as exc:
        raise ModelFileError(f"{path}: the weights do not fit the network they describe ({exc})") from exc
    return model.eval().to(device), dict(blob.get("info", {}))


def shipped_model_path(name: str) -> Path:
    if name not in SHIPPED:
        raise ValueError(f"no shipped model {name!r}; choose from {sorted(SHIPPED)}")
    return resource_path(SHIPPED[name])
