"""`main.py train` under torchrun: two real processes on the CPU (gloo),
DistributedDataParallel, rank 0 writing the run; resumed alone afterwards."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = ("--preset", "lite", "--batch", "1", "--body", "capsule", "--threads", "1", "--device", "cpu")


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_two_gloo_processes_train_the_same_weights_and_resume_alone(tmp_path):
    run = tmp_path / "run"
    out = _run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "main.py", "train",
               str(run), "--steps", "4", "--more", "2", *TINY)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ranks = dict(re.findall(r"rank (\d) of 2: step 2, weights sha256 ([0-9a-f]{64})", out.stdout))
    # Both ranks stepped with the gradients averaged over both: the same weights, bit for bit.
    assert set(ranks) == {"0", "1"} and ranks["0"] == ranks["1"], out.stdout
    # Rank 0 alone wrote the run: the checkpoint at step 2, one row of curves counting both ranks' frames.
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["step"] == 2 and state["frames"] == 4
    rows = list(csv.DictReader((run / "curves.csv").open()))
    assert [(r["step"], r["frames"]) for r in rows] == [("2", "4")]
    assert out.stdout.count("learning curves:") == 1
    # Resumed alone, from the checkpoint the two processes wrote.
    out = _run("main.py", "train", str(run), "--more", "1", "--threads", "1", "--device", "cpu")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "rank" not in out.stdout and re.search(r"step 3  frames 5 ", out.stdout), out.stdout
    assert torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["step"] == 3
