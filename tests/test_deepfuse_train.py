"""Training runs on disk (checkpoints, resume, curves) and weights files."""

import csv
import io
import zipfile

import numpy as np
import pytest
import torch

from core.deepfuse.data import DataConfig
from core.deepfuse.network import DeepFuseNet, NetConfig
from core.deepfuse.train import TrainConfig, export_weights, train
from core.deepfuse.weights import ModelFileError, load_weights, save_weights

NET = NetConfig(grid_size=32, stride=2, width=24, depth=2)
DATA = DataConfig(seed=2, grid_size=32, rig_pool=1, grids_per_rig=1, clip_pool=1, poses_per_clip=4,
                  p_standard_rig=1.0)
CFG = TrainConfig(net=NET, data=DATA, steps=5, batch_size=2, checkpoint_every=2, log_every=1)


def rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_run_checkpoints_resumes_and_exports(tmp_path):
    run = tmp_path / "run"
    seen = []
    m = train(run, CFG, steps=3, device="cpu", report=lambda s, n, _: seen.append((s, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert m["step"] == 3 and m["frames"] == 6
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3
    # Resuming continues from step 3 to the configured 5 and appends to the curves.
    m = train(run, None, device="cpu")
    assert m["step"] == 5
    r = rows(run / "curves.csv")
    assert [int(x["step"]) for x in r] == [1, 2, 3, 4, 5]
    assert all(float(x["mpjpe2_mm"]) > 0 and np.isfinite(float(x["loss"])) for x in r)
    # The exported model is the checkpoint's.
    path = export_weights(run, tmp_path / "model.pt", {"note": "test"})
    model, info = load_weights(path)
    assert info["steps"] == 5 and info["frames"] == 10 and info["note"] == "test"
    ref = DeepFuseNet(NET)
    ref.load_state_dict(torch.load(run / "checkpoint.pt", weights_only=True)["model"])
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)


def test_a_run_refuses_another_configuration(tmp_path):
    train(tmp_path, CFG, steps=1, device="cpu")
    from dataclasses import replace

    with pytest.raises(ValueError, match="different configuration"):
        train(tmp_path, replace(CFG, lr=0.5), steps=1, device="cpu")
    # The same configuration given again resumes (it holds tuples, which the file holds as
    # lists): what a second rank under torchrun does when rank 0 has just written the file.
    assert train(tmp_path, CFG, steps=1, device="cpu")["step"] == 2
    with pytest.raises(ValueError, match="no run"):
        train(tmp_path / "empty", None)


def test_weights_round_trip_and_bad_files_give_clear_errors(tmp_path):
    model = DeepFuseNet(NET)
    p = save_weights(model, tmp_path / "m.pt", {"a": 1})
    loaded, info = load_weights(p)
    assert loaded.cfg == NET and info == {"a": 1} and not loaded.training
    with pytest.raises(ModelFileError, match="not found"):
        load_weights(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelFileError, match="not a readable model file"):
        load_weights(tmp_path / "junk.pt")
    data = p.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a readable model file"):
        load_weights(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not a FuseCap DeepFuse model"):
        load_weights(tmp_path / "other.pt")
    blob = torch.load(p, weights_only=True)
    blob["net"]["width"] = 32
    torch.save(blob, tmp_path / "mismatch.pt")
    with pytest.raises(ModelFileError, match="do not fit"):
        load_weights(tmp_path / "mismatch.pt")


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_a_file_that_would_run_code_is_refused(tmp_path, capsys):
    buf = io.BytesIO()
    torch.save({"format": "fusecap-deepfuse", "x": _Evil()}, buf)
    (tmp_path / "evil.pt").write_bytes(buf.getvalue())
    with pytest.raises(ModelFileError):
        load_weights(tmp_path / "evil.pt")
    assert "code ran" not in capsys.readouterr().out
    assert zipfile.is_zipfile(tmp_path / "evil.pt")  # a real torch file, not junk
