"""The presets as the 2012 code ran them (FIDELITY.md), each fix against an independent reference:
dropout's training and test outputs, cuda-convnet's bias rates through its schedule, its colour step
(sqrt eigenvalues, then crops / 1.1), and conv1's path once its rate is 0, computed by hand."""

import numpy as np
import pytest
import torch
from torch import nn

from alexnet import build_model
from alexnet.config import model_config_from_dict, to_dict
from alexnet.data.augment import Preprocessor
from alexnet.model.dropout import PaperDropout
from alexnet.presets import PRESETS, get_preset
from alexnet.training.schedule import LearningRateSchedule, build_optimizer
from alexnet.training.trainer import colour_scales


def test_paper_dropout_keeps_outputs_unscaled_and_halves_them_at_test_time():
    torch.manual_seed(0)
    x = torch.rand(200, 1000) + 0.5  # all positive: a zero in the output can only be a dropped unit
    drop = PaperDropout(0.5).train()
    y = drop(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept], rtol=0, atol=0)     # passed on unchanged
    assert abs(kept.float().mean().item() - 0.5) < 0.01              # each kept with probability 1/2
    torch.testing.assert_close(drop.eval()(x), 0.5 * x, rtol=0, atol=0)
    inverted = nn.Dropout(0.5).train()(x)  # torch's: x2 while training, the reference it departs from
    torch.testing.assert_close(inverted[inverted != 0], 2 * x[inverted != 0])


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_drops_as_it_says(name):
    model = build_model(name, 10, input_size=224 if name not in ("small", "small-6conv") else 28)
    drops = [m for m in model.classifier if isinstance(m, (nn.Dropout, PaperDropout))]
    assert len(drops) == 2
    want = nn.Dropout if name == "torchvision" else PaperDropout  # torchvision keeps torchvision's
    assert all(type(m) is want and m.p == 0.5 for m in drops)


def test_a_config_written_before_dropout_styles_keeps_inverted_dropout():
    old = to_dict(get_preset("small").model)
    del old["dropout_style"]
    assert model_config_from_dict(old).dropout_style == "inverted"
    assert model_config_from_dict(to_dict(get_preset("small").model)).dropout_style == "paper"


def _rates(optimizer) -> dict[str, float]:
    return {name: g["lr"] for g in optimizer.param_groups for name in g["names"]}


def test_cuda_convnet_rates_through_its_schedule():
    """layer-params-145.cfg: epsW 0.01 -> 0.001 (25) -> 0.0001 (51) -> 0.00001 (79); epsB 0.02 all run,
    conv1's epsB 0; conv1's epsW 0.00001 from 67 and 0 from 72."""
    recipe = get_preset("cuda-convnet-2012").recipe
    optimizer = build_optimizer(build_model("small", 3), recipe)
    schedule = LearningRateSchedule(recipe)
    expected = {1: 0.01, 25: 0.001, 51: 1e-4, 67: 1e-4, 72: 1e-4, 79: 1e-5}
    conv1_weight = {1: 0.01, 25: 0.001, 51: 1e-4, 67: 1e-5, 72: 0.0, 79: 0.0}
    for epoch, weight_rate in expected.items():
        schedule.apply(optimizer, epoch)
        rates = _rates(optimizer)
        assert rates["features.conv2.weight"] == pytest.approx(weight_rate, rel=1e-12)
        assert rates["classifier.fc8.weight"] == pytest.approx(weight_rate, rel=1e-12)
        assert rates["features.conv1.weight"] == pytest.approx(conv1_weight[epoch], rel=1e-12, abs=0)
        for bias in ("features.conv2.bias", "features.conv5.bias", "classifier.fc6.bias", "classifier.fc8.bias"):
            assert rates[bias] == pytest.approx(0.02, rel=1e-12)
        assert rates["features.conv1.bias"] == 0.0
    decay = {name: g["weight_decay"] for g in optimizer.param_groups for name in g["names"]}
    assert decay["features.conv2.bias"] == 0.0 and decay["features.conv2.weight"] == 5e-4


def test_paper_biases_follow_the_weights_and_decay():
    recipe = get_preset("paper").recipe
    optimizer = build_optimizer(build_model("small", 3), recipe)
    LearningRateSchedule(recipe).apply(optimizer, 1)
    assert set(_rates(optimizer).values()) == {0.01}
    assert {g["weight_decay"] for g in optimizer.param_groups} == {5e-4}


def test_conv1_with_a_zero_rate_still_moves_by_its_decaying_velocity():
    """From epoch 72 conv1's rate is 0: v <- 0.9 v - 0 - 0, w <- w + v. Three steps by hand, float64."""
    recipe = get_preset("cuda-convnet-2012").recipe
    model = build_model("small", 3).double()
    optimizer = build_optimizer(model, recipe)
    conv1 = model.features.conv1.weight
    v0 = torch.randn(conv1.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1e-3
    optimizer.state[conv1]["velocity"] = v0.clone()
    w0 = conv1.detach().clone()
    LearningRateSchedule(recipe).apply(optimizer, 72)
    for p in model.parameters():
        p.grad = torch.ones_like(p)  # a gradient that a non-zero rate would feel
    path = []
    for _ in range(3):
        optimizer.step()
        path.append(conv1.detach().clone())
    # by hand: w_k = w0 + (0.9 + 0.81 + ... + 0.9^k) v0
    for k, w in enumerate(path, start=1):
        want = w0 + sum(0.9 ** j for j in range(1, k + 1)) * v0
        torch.testing.assert_close(w, want, rtol=0, atol=1e-15)


def test_cuda_convnet_colour_step_matches_numpy():
    """Crop minus the centre of the mean, plus 255 x P (alpha * sqrt(lambda)), all divided by 1.1;
    test views are not divided."""
    recipe = get_preset("cuda-convnet-2012").recipe
    rng = np.random.default_rng(5)
    mean = rng.uniform(0, 255, (16, 16, 3)).astype(np.float32)
    vecs = np.linalg.qr(rng.normal(size=(3, 3)))[0].astype(np.float32)
    vals = np.array([0.05, 0.01, 0.002], np.float32)
    crops = rng.integers(0, 256, (2, 12, 12, 3), dtype=np.uint8)
    alphas = rng.normal(0, 0.1, (2, 3)).astype(np.float32)
    pre = Preprocessor(mean, colour_scales(recipe, vals), vecs, 12, recipe.mean_crop, "cpu", recipe.train_input_scale)
    got = pre.train_batch(torch.from_numpy(crops), torch.zeros(2, 2, dtype=torch.int64), torch.zeros(2, dtype=torch.bool),
                          torch.from_numpy(alphas)).numpy()
    for i in range(2):
        shift = 255.0 * (vecs.astype(np.float64) @ (alphas[i] * np.sqrt(vals.astype(np.float64))))
        want = ((crops[i] - mean[2:14, 2:14].astype(np.float64) + shift) / 1.1).transpose(2, 0, 1)
        np.testing.assert_allclose(got[i], want, rtol=0, atol=2e-4)
    images = torch.from_numpy(rng.integers(0, 256, (1, 16, 16, 3), dtype=np.uint8))
    view = next(pre.test_views(images, [(2, 2, False)])).numpy()[0]
    np.testing.assert_allclose(view, (images[0, 2:14, 2:14].numpy() - mean[2:14, 2:14]).transpose(2, 0, 1), atol=1e-4)
