"""Long checks of training (marked slow: `./scripts/run_tests.sh -m slow`)."""

import numpy as np
import pytest

from core.deepfuse.data import DataConfig
from core.deepfuse.network import LITE
from core.deepfuse.train import TrainConfig, read_curves, train


@pytest.mark.slow
def test_lite_training_learns_on_the_simulated_studio(tmp_path):
    cfg = TrainConfig(net=LITE, data=DataConfig(seed=11), steps=300, batch_size=4, log_every=10)
    train(tmp_path, cfg, device="cpu")
    c = read_curves(tmp_path / "curves.csv")
    first, last = c["mpjpe2_mm"][:3].mean(), c["mpjpe2_mm"][-3:].mean()
    # From a collapsed guess (~500 mm) to joints roughly where the body is.
    assert first > 300 and last < 0.5 * first
    assert np.all(np.isfinite(c["loss"]))
