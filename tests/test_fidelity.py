"""The presets as the 2012 code ran them (FIDELITY.md), each fix against an independent reference:
dropout's training and test outputs, cuda-convnet's bias rates through its schedule, its colour step
(sqrt eigenvalues, then crops / 1.1 while the noise is on), and conv1's freeze, computed by hand."""

import numpy as np
import pytest
import torch
from torch import nn

from alexnet import build_model
from alexnet.config import model_config_from_dict, to_dict
from alexnet.data.augment import Augmentation, EvalViews, colour_scales
from alexnet.model.dropout import PaperDropout
from alexnet.presets import PRESETS, get_preset
from alexnet.training.schedule import LearningRateSchedule, build_optimizer


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


def test_a_config_that_leaves_out_dropout_style_gets_the_papers_dropout():
    """As every setting a config file leaves out: its default, here the paper's dropout."""
    partial = to_dict(get_preset("small").model)
    del partial["dropout_style"]
    assert model_config_from_dict(partial).dropout_style == "paper"
    assert model_config_from_dict(to_dict(get_preset("torchvision").model)).dropout_style == "inverted"


def _rates(optimizer) -> dict[str, float]:
    return {name: g["lr"] for g in optimizer.param_groups for name in g["names"]}


def test_cuda_convnet_rates_through_its_schedule():
    """layer-params-145.cfg: epsW 0.01 -> 0.001 (25) -> 0.0001 (51) -> 0.00001 (79); epsB 0.02 all run;
    conv1's epsW 0.00001 from 67 and 0 from 72; conv1's epsB 0.02 (layer-params-126-2012-full, -141)
    until the freeze at 72, then 0 (-145)."""
    recipe = get_preset("cuda-convnet-2012").recipe
    optimizer = build_optimizer(build_model("small", 3), recipe)
    schedule = LearningRateSchedule(recipe, classes=3)
    expected = {1: 0.01, 25: 0.001, 51: 1e-4, 67: 1e-4, 71: 1e-4, 72: 1e-4, 79: 1e-5}
    conv1_weight = {1: 0.01, 25: 0.001, 51: 1e-4, 67: 1e-5, 71: 1e-5, 72: 0.0, 79: 0.0}
    for epoch, weight_rate in expected.items():
        schedule.apply(optimizer, epoch)
        rates = _rates(optimizer)
        assert rates["features.conv2.weight"] == pytest.approx(weight_rate, rel=1e-12)
        assert rates["classifier.fc8.weight"] == pytest.approx(weight_rate, rel=1e-12)
        assert rates["features.conv1.weight"] == pytest.approx(conv1_weight[epoch], rel=1e-12, abs=0)
        for bias in ("features.conv2.bias", "features.conv5.bias", "classifier.fc6.bias", "classifier.fc8.bias"):
            assert rates[bias] == pytest.approx(0.02, rel=1e-12)
        assert rates["features.conv1.bias"] == (0.0 if epoch >= 72 else pytest.approx(0.02, rel=1e-12))
    decay = {name: g["weight_decay"] for g in optimizer.param_groups for name in g["names"]}
    assert decay["features.conv2.bias"] == 0.0 and decay["features.conv2.weight"] == 5e-4


def test_paper_biases_follow_the_weights_and_decay():
    recipe = get_preset("paper").recipe
    optimizer = build_optimizer(build_model("small", 3), recipe)
    LearningRateSchedule(recipe, classes=3).apply(optimizer, 1)
    assert set(_rates(optimizer).values()) == {0.01}
    assert {g["weight_decay"] for g in optimizer.param_groups} == {5e-4}


def test_conv1_is_frozen_exactly_from_epoch_72():
    """Two steps in epoch 71 (conv1's weights at 1e-4 x 0.1 with decay 5e-4, its biases at 0.02 without),
    then two in epoch 72, where a rate of 0 skips the update, velocity included (Weights::update):
    conv1 ends exactly where epoch 71 left it, its velocity untouched. Float64, by hand."""
    recipe = get_preset("cuda-convnet-2012").recipe
    model = build_model("small", 3).double()
    optimizer = build_optimizer(model, recipe)
    schedule = LearningRateSchedule(recipe, classes=3)
    params = dict(model.named_parameters())
    gen = torch.Generator().manual_seed(0)
    grads = [{n: torch.randn(p.shape, generator=gen, dtype=torch.float64) for n, p in params.items()} for _ in range(4)]
    want = {n: (p.detach().clone(), torch.zeros_like(p)) for n, p in params.items() if ".conv1." in n}
    for step, epoch in enumerate((71, 71, 72, 72)):
        schedule.apply(optimizer, epoch)
        for n, p in params.items():
            p.grad = grads[step][n].clone()
        optimizer.step()
        for n, (w, v) in want.items():  # the paper's rule, by hand, with cuda-convnet's rates for conv1
            rate, decay = (1e-5, 5e-4) if n.endswith("weight") else (0.02, 0.0)
            if epoch < 72:
                v = 0.9 * v - decay * rate * w - rate * grads[step][n]
                w = w + v
            want[n] = (w, v)
            torch.testing.assert_close(params[n].detach(), w, rtol=0, atol=1e-15, msg=f"{n} after step {step}")
            torch.testing.assert_close(optimizer.state[params[n]]["velocity"], v, rtol=0, atol=1e-15)
    assert torch.equal(params["features.conv1.weight"].detach(), want["features.conv1.weight"][0])
    assert not torch.equal(want["features.conv1.bias"][1], torch.zeros_like(want["features.conv1.bias"][1]))
    # conv2 kept learning through epoch 72
    assert not torch.equal(optimizer.state[params["features.conv2.weight"]]["velocity"], torch.zeros(1, dtype=torch.float64))


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
    pre = Augmentation(mean, colour_scales(recipe, vals), vecs, 12, recipe.mean_crop, "cpu")
    got = pre.train_batch(torch.from_numpy(crops), torch.zeros(2, 2, dtype=torch.int64), torch.zeros(2, dtype=torch.bool),
                          torch.from_numpy(alphas), recipe.train_input_scale).numpy()
    for i in range(2):
        shift = 255.0 * (vecs.astype(np.float64) @ (alphas[i] * np.sqrt(vals.astype(np.float64))))
        want = ((crops[i] - mean[2:14, 2:14].astype(np.float64) + shift) / 1.1).transpose(2, 0, 1)
        np.testing.assert_allclose(got[i], want, rtol=0, atol=2e-4)
    images = torch.from_numpy(rng.integers(0, 256, (1, 16, 16, 3), dtype=np.uint8))
    view = next(EvalViews(mean, 12, recipe.mean_crop, "cpu")(images, [(2, 2, False)])).numpy()[0]
    np.testing.assert_allclose(view, (images[0, 2:14, 2:14].numpy() - mean[2:14, 2:14]).transpose(2, 0, 1), atol=1e-4)


@pytest.mark.parametrize("pipeline", ["host", "device"])
def test_cuda_convnet_divides_crops_only_while_the_colour_noise_is_on(pipeline, tmp_path):
    """Epoch 66: crop - centre of the mean + 255 P (alpha sqrt(lambda)), all / 1.1. Epoch 67 (noise off):
    crop - centre of the mean, undivided (convdata.py: the division sits in the noise's `if`). NumPy,
    float64, on the same stored pixels and the same draws."""
    from alexnet.data.augment import colour_noise_std, sample_augmentations
    from alexnet.data.feed import network_input
    from alexnet.data.loader import TrainBatches

    recipe = get_preset("cuda-convnet-2012").recipe
    rng = np.random.default_rng(9)
    stored = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "train.npy", stored)
    labels = np.arange(6) % 2
    mean = rng.uniform(0, 255, (16, 16, 3)).astype(np.float32)
    vecs = np.linalg.qr(rng.normal(size=(3, 3)))[0].astype(np.float32)
    vals = np.array([0.05, 0.01, 0.002], np.float32)
    pre = Augmentation(mean, colour_scales(recipe, vals), vecs, 12, recipe.mean_crop, "cpu")
    batches = TrainBatches(tmp_path / "train.npy", labels, 6, 12, seed=4, pca_std=recipe.pca_std, flip=recipe.flip,
                           pipeline=pipeline, input_scale=recipe.train_input_scale)
    assert (colour_noise_std(recipe, 66), colour_noise_std(recipe, 67)) == (0.1, 0.0)
    for epoch, divided in ((66, True), (67, False)):
        batches.set_epoch(epoch, colour_noise_std(recipe, epoch))
        got = network_input(batches[batches.key(0)], pre).numpy()
        order = np.random.default_rng((4, epoch)).permutation(6)
        corners, flips, alphas = sample_augmentations(4, epoch, order, 16, 12, colour_noise_std(recipe, epoch))
        for i, image in enumerate(order):
            (y, x), patch = corners[i], stored[image].astype(np.float64)
            crop = patch[y:y + 12, x:x + 12][:, ::-1] if flips[i] else patch[y:y + 12, x:x + 12]
            shift = 255.0 * (vecs.astype(np.float64) @ (alphas[i] * np.sqrt(vals.astype(np.float64))))
            want = (crop - mean[2:14, 2:14] + shift) / (1.1 if divided else 1.0)
            np.testing.assert_allclose(got[i], want.transpose(2, 0, 1), rtol=0, atol=3e-4, err_msg=f"epoch {epoch}")
        assert (np.abs(alphas).sum() > 0) == divided
