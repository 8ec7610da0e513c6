"""The network's shape, counts, wiring and initialisation against the paper (Sections 3.2-3.5, 5)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from alexnet import build_model
from alexnet.model.summary import summarize
from alexnet.presets import PRESETS, get_preset
from alexnet.errors import AlexNetError


def count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def models():
    """One real, seeded instance per full-size preset (each costs seconds to initialise)."""
    built = {}
    for name in ("paper", "cuda-convnet-2012"):
        torch.manual_seed(0)
        built[name] = build_model(name)
    return built


def structure(preset):
    """A model on the meta device: shapes and wiring only, no memory, no init cost."""
    with torch.device("meta"):
        return build_model(preset)


def test_paper_parameter_count_and_output():
    model = structure("paper")
    assert count(model) == 60_965_224
    rows = summarize(model, 224)
    assert sum(r.parameters for r in rows) == 60_965_224
    assert rows[-1].output_shape == (1000,)


def test_paper_neuron_counts_match_figure_2():
    """186,624-64,896-64,896-43,264-4096-4096-1000; conv1 is 290,400, not the caption's 253,440."""
    rows = {r.name: r for r in summarize(structure("paper"), 224)}
    assert rows["conv1"].output_shape == (96, 55, 55) and rows["conv1"].neurons == 290_400
    assert [rows[n].neurons for n in ("conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")] == \
        [186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000]
    assert rows["pool5"].output_shape == (256, 6, 6)


def test_conv1_ceil_padding_is_three_zero_pixels_right_and_bottom(models):
    model = models["paper"].eval()
    conv1 = model.features.conv1
    x = torch.randn(2, 3, 224, 224, dtype=torch.float64)
    padded = torch.zeros(2, 3, 227, 227, dtype=torch.float64)
    padded[:, :, :224, :224] = x
    want = F.conv2d(padded, conv1.weight.double(), conv1.bias.double(), stride=4)
    pad1, conv1_64 = model.features.pad1, nn.Conv2d(3, 96, 11, 4).double()
    conv1_64.load_state_dict(conv1.state_dict())
    got = conv1_64(pad1(x))
    assert got.shape == (2, 96, 55, 55)
    torch.testing.assert_close(got, want)


def test_columns_see_only_their_own_maps(models):
    """conv2's first 128 kernels read only conv1's first 48 maps (and so on); conv3 reads all."""
    model = models["paper"]
    f = model.features
    assert (f.conv2.groups, f.conv3.groups, f.conv4.groups, f.conv5.groups) == (2, 1, 2, 2)
    assert tuple(f.conv2.weight.shape) == (256, 48, 5, 5)
    assert tuple(f.conv3.weight.shape) == (384, 256, 3, 3)
    assert tuple(f.conv4.weight.shape) == (384, 192, 3, 3)
    assert tuple(f.conv5.weight.shape) == (256, 192, 3, 3)
    # Behaviour, not just shape: perturbing column 2's inputs leaves column 1's outputs unchanged.
    x = torch.randn(1, 96, 27, 27)
    y = x.clone()
    y[:, 48:] += torch.randn(1, 48, 27, 27)
    a, b = f.conv2(x), f.conv2(y)
    torch.testing.assert_close(a[:, :128], b[:, :128])
    assert (a[:, 128:] - b[:, 128:]).abs().max() > 1e-3


def test_layer_order_paper():
    model = structure("paper")
    assert [n for n, _ in model.named_children()] == ["features", "classifier"]
    f = [n for n, _ in model.features.named_children()]
    assert f[:5] == ["pad1", "conv1", "relu1", "norm1", "pool1"]  # LRN after ReLU (Section 3.3)
    c = [n for n, _ in model.classifier.named_children()]
    # dropout on the outputs of fc6 and fc7, not before them
    assert c == ["fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8"]


def test_layer_order_cuda_convnet():
    model = structure("cuda-convnet-2012")
    f = [n for n, _ in model.features.named_children()]
    assert f[:6] == ["pad1", "conv1", "norm1", "pool1", "relu1", "conv2"]
    assert f[6:11] == ["relu2", "norm2", "mapnorm2", "pool2", "conv3"]
    assert f[-3:] == ["conv5", "pool5", "relu5"]
    assert model.features.norm1.alpha == pytest.approx(2e-5)


@pytest.mark.parametrize("preset", ["paper", "cuda-convnet-2012"])
def test_init_statistics_layer_by_layer(preset, models):
    model = models[preset]
    stds = {"conv1": .01, "conv2": .01, "conv3": .01, "conv4": .01, "conv5": .01, "fc6": .01, "fc7": .01, "fc8": .01}
    if preset == "cuda-convnet-2012":
        stds.update(conv3=.03, conv4=.03, conv5=.03)
    ones = {"conv2", "conv4", "conv5", "fc6", "fc7"}  # Section 5: biases 1 there, 0 elsewhere
    layers = dict(model.features.named_children()) | dict(model.classifier.named_children())
    for name, std in stds.items():
        w, b = layers[name].weight.detach().double(), layers[name].bias.detach()
        n = w.numel()
        assert abs(w.mean().item()) < 4 * std / n ** 0.5, name
        assert abs(w.std().item() - std) < 4 * std / (2 * n) ** 0.5 + 1e-12, name
        assert torch.all(b == (1.0 if name in ones else 0.0)), name


def test_small_preset_shape_and_forward():
    model = build_model("small", num_classes=10)
    out = model(torch.randn(2, 3, 28, 28))
    assert out.shape == (2, 10)
    f = model.features
    assert (f.conv2.groups, f.conv3.groups, f.conv4.groups, f.conv5.groups) == (2, 1, 2, 2)
    assert {"norm1", "norm2", "pool1", "pool2", "pool5"} <= set(dict(f.named_children()))
    assert isinstance(f.pool1, nn.MaxPool2d) and (f.pool1.kernel_size, f.pool1.stride) == (3, 2)
    # 56 px crops (64 px stored) work too
    assert build_model("small", 10, input_size=56)(torch.randn(1, 3, 56, 56)).shape == (1, 10)


def test_forward_features_is_last_hidden_layer():
    model = build_model("small", 10).eval()
    x = torch.randn(3, 3, 28, 28)
    h = model.forward_features(x)
    assert h.shape == (3, 256)
    # at test time fc8 sees the paper's 0.5 x fc7's activations (Section 4.2)
    torch.testing.assert_close(model.classifier.fc8(0.5 * h), model(x))
    assert (h >= 0).all()  # activations after ReLU, before the dropout scaling


def test_unknown_preset_and_too_small_input():
    with pytest.raises(AlexNetError, match="unknown preset 'nope'"):
        get_preset("nope")
    with pytest.raises(ValueError, match="too small"):
        build_model("paper", input_size=40)
    assert set(PRESETS) == {"paper", "cuda-convnet-2012", "small", "paper-6conv", "small-6conv", "torchvision"}


def test_a_class_count_that_is_not_a_whole_number_of_at_least_one_is_refused_by_name():
    import numpy as np
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(ValueError, match=f"num_classes must be a whole number of at least 1, got {bad!r}"):
            build_model("small", bad)
    assert build_model("small", np.int64(4)).num_classes == 4 and type(build_model("small", np.int64(4)).num_classes) is int


@pytest.mark.parametrize("base", ["paper", "small"])
def test_sixth_conv_layer_over_the_last_pooling_layer(base):
    """Section 6's variant: one more 3x3 conv after pool5, everything else (and the fc input) unchanged."""
    five, six = build_model(base, 10), build_model(f"{base}-6conv", 10)
    names = [n for n, _ in six.features.named_children()]
    assert names[names.index("pool5"):] == ["pool5", "conv6", "relu6"]
    conv6 = six.features.conv6
    maps = five.features.conv5.out_channels
    assert (conv6.in_channels, conv6.out_channels, conv6.kernel_size, conv6.padding, conv6.groups) == \
        (maps, maps, (3, 3), (1, 1), 2)
    extra = maps * (maps // 2) * 3 * 3 + maps  # two columns: each kernel sees half the maps
    assert sum(p.numel() for p in six.parameters()) == sum(p.numel() for p in five.parameters()) + extra
    assert six.classifier[0].in_features == five.classifier[0].in_features
    x = torch.randn(2, 3, six.cfg.input_size, six.cfg.input_size)
    assert six(x).shape == (2, 10)
    # conv6 really sits between pool5 and the classifier: zeroing it leaves only its biases through ReLU
    with torch.no_grad():
        conv6.weight.zero_()
        conv6.bias.fill_(0.5)
    pooled = six.features[:names.index("pool5") + 1](x)
    torch.testing.assert_close(six.features(x), torch.full_like(pooled, 0.5))
