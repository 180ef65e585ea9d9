"""Shipped network weights: one file per model, loaded safely.

A weights file is a plain dict saved with torch.save: ``format``
("fusecap-deepfuse"), ``version`` (1), ``net`` (the NetConfig as a dict),
``state`` (the state dict) and ``info`` (training facts for the model
card). It is read with ``torch.load(..., weights_only=True)``, so a file
cannot run code; a missing, truncated or foreign file, a field of the wrong
type, weights of other names or shapes than the network described, or
weights that are not finite raise ModelFileError with the path and what is
wrong.
"""

from __future__ import annotations

import math
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
    if not isinstance(blob, dict) or not isinstance(blob.get("format"), str) or blob["format"] != FORMAT:
        raise ModelFileError(f"{path} is not a FuseCap DeepFuse model file")
    version = blob.get("version")
    if type(version) is not int or version != VERSION:
        raise ModelFileError(f"{path} has model format version {version!r}, this FuseCap reads {VERSION}")
    net, state, info = blob.get("net"), blob.get("state"), blob.get("info", {})
    for name, value in (("net", net), ("state", state), ("info", info)):
        if not isinstance(value, dict):
            raise ModelFileError(f"{path}: malformed model file ({name!r} is a {type(value).__name__}, "
                                 "not a dictionary)")
    _check_net(path, net)
    try:
        cfg = NetConfig.from_dict(net)
        # Built on the meta device first (no memory): a file describing an
        # enormous network is refused by its shapes before anything is allocated.
        with torch.device("meta"):
            expected = {k: v.shape for k, v in DeepFuseNet(cfg).state_dict().items()}
    except Exception as exc:
        raise ModelFileError(f"{path}: the network it describes cannot be built ({type(exc).__name__}: {exc})") \
            from exc
    _check_state(path, state, expected)
    try:
        model = DeepFuseNet(cfg)
        model.load_state_dict(state)
    except Exception as exc:
        raise ModelFileError(f"{path}: the weights do not fit the network they describe ({exc})") from exc
    return model.eval().to(device), dict(info)


#: No FuseCap network has a size (grid, stride, width, depth) near this; a
#: larger one is a damaged file, and checking it could take minutes
#: (2 ** depth) or all the memory there is.
MAX_NET_SIZE = 4096


def _check_net(path: Path, net: dict) -> None:
    """ModelFileError unless each NetConfig field in `net` has its field's
    type, sizes within 0..MAX_NET_SIZE and real numbers finite."""
    for name, f in NetConfig.__dataclass_fields__.items():
        if name not in net:
            continue
        value, default = net[name], f.default
        if isinstance(default, bool) or isinstance(default, str):
            ok = type(value) is type(default)
        elif isinstance(default, int):
            ok = type(value) is int and 0 <= value <= MAX_NET_SIZE
        else:
            ok = type(value) in (int, float) and math.isfinite(value)
        if not ok:
            raise ModelFileError(f"{path}: the network it describes is not one FuseCap builds "
                                 f"({name} = {value!r})")


def _check_state(path: Path, state: dict, expected: dict) -> None:
    """ModelFileError unless `state` holds exactly the (dense) tensors of
    `expected`'s names and shapes, every floating-point value finite."""
    missing = [k for k in expected if k not in state]
    unexpected = [str(k) for k in state if k not in expected]
    if missing or unexpected:
        raise ModelFileError(f"{path}: the weights do not fit the network they describe (missing: "
                             f"{', '.join(missing[:5]) or 'none'}; unexpected: {', '.join(unexpected[:5]) or 'none'})")
    for name, shape in expected.items():
        value = state[name]
        if not isinstance(value, torch.Tensor) or value.layout != torch.strided or value.shape != shape:
            got = (type(value).__name__ if not isinstance(value, torch.Tensor)
                   else f"a {value.layout} tensor" if value.layout != torch.strided else tuple(value.shape))
            raise ModelFileError(f"{path}: the weights do not fit the network they describe "
                                 f"({name} should be a dense tensor of shape {tuple(shape)}, not {got})")
        if (value.is_floating_point() or value.is_complex()) and not torch.isfinite(value).all():
            raise ModelFileError(f"{path}: {name} holds values that are not finite (NaN or infinite)")


def shipped_model_path(name: str) -> Path:
    if name not in SHIPPED:
        raise ValueError(f"no shipped model {name!r}; choose from {sorted(SHIPPED)}")
    return resource_path(SHIPPED[name])
