"""The full-size presets run through the real pipeline: prepare at 256, train a step, evaluate 10 patches."""

import numpy as np
import pytest
import torch

from alexnet.evaluation.evaluate import evaluate_checkpoint
from alexnet.runs.checkpoint import load_checkpoint
from alexnet.config import TrainConfig
from alexnet.training.loop import train


@pytest.mark.slow  # 45-65 s each on 2 cores; the presets' shapes and counts are checked in test_model.py
@pytest.mark.parametrize("preset", ["paper", "cuda-convnet-2012"])
def test_one_epoch_and_ten_patch_evaluation(preset, data256):
    run = data256.parent / f"run-{preset}"
    result = train(TrainConfig(data=data256, out=run, preset=preset, epochs=1, batch_size=4,
                                 device="cpu", workers=0, progress=False, log=lambda _: None))
    assert result["epoch"] == 1 and np.isfinite(result["train_loss"])
    ckpt = load_checkpoint(run)
    assert ckpt["model_config"]["input_size"] == 224
    assert tuple(ckpt["model"]["features.conv1.weight"].shape) == (96, 3, 11, 11)
    assert ckpt["recipe"]["mean_crop"] == ("center" if preset == "cuda-convnet-2012" else "aligned")
    assert not torch.all(ckpt["model"]["features.conv1.weight"] == 0)
    # ten patches on one preset, the centre on the other: the 224 px forward passes cost seconds here
    out = evaluate_checkpoint(str(run), tta="10crop" if preset == "paper" else "center", device="cpu")
    assert out["images"] == 2 and 0 <= out["top1_error"] <= 1
