"""Figure 1: the four-layer CIFAR-10 net and the ReLU-against-tanh experiment."""

import csv

import numpy as np
import pytest
import torch

from alexnet.errors import AlexNetError
from alexnet.experiments.relu_tanh import epochs_to_reach, run_relu_tanh
from alexnet.model.cifar_net import FourLayerNet
from alexnet.model.lrn import WithinMapResponseNorm


@pytest.mark.parametrize("size,side", [(32, 4), (28, 3), (24, 3)])
def test_four_layer_net_shapes_follow_ceil_pooling(size, side):
    """cuda-convnet rounds pooled sizes up: 32 -> 16 -> 8 -> 4 (by hand: ceil((s - 3) / 2) + 1)."""
    net = FourLayerNet("relu", 10, size)
    assert net.classifier.in_features == 64 * side * side
    assert net(torch.randn(2, 3, size, size)).shape == (2, 10)
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == \
        [(3, 32, (5, 5), (2, 2)), (32, 32, (5, 5), (2, 2)), (32, 64, (5, 5), (2, 2))]
    assert sum(isinstance(m, WithinMapResponseNorm) for m in net.features) == 2


def test_only_the_activation_differs():
    torch.manual_seed(3)
    relu = FourLayerNet("relu")
    torch.manual_seed(3)
    tanh = FourLayerNet("tanh")
    for (name, a), (_, b) in zip(relu.state_dict().items(), tanh.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    kinds = [type(m).__name__ for m in relu.features], [type(m).__name__ for m in tanh.features]
    assert [k for k in kinds[0] if k != "ReLU"] == [k for k in kinds[1] if k != "Tanh"]
    assert kinds[0].count("ReLU") == kinds[1].count("Tanh") == 3
    x = torch.randn(1, 3, 32, 32) * 50
    h = tanh.features[0](x)
    torch.testing.assert_close(tanh.features[1](h), torch.tanh(h))
    with pytest.raises(ValueError, match="activation"):
        FourLayerNet("sigmoid")


def test_epochs_to_reach():
    assert epochs_to_reach([0.9, 0.5, 0.25, 0.1], 0.25) == 3
    assert epochs_to_reach([0.9, 0.5], 0.25) is None


def test_run_writes_curves_table_and_ratio(shapes_data, tmp_path):
    lines = []
    result = run_relu_tanh(shapes_data, tmp_path, epochs=2, batch_size=32, target=0.7, run_all=True,
                           device="cpu", progress=False, log=lines.append)
    with open(tmp_path / "relu_tanh.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for act in ("relu", "tanh"):
        got = [float(r[f"{act}_train_error"]) for r in rows]
        np.testing.assert_allclose(got, result["curves"][act], atol=1e-6)
        assert result["epochs_to_target"][act] == epochs_to_reach(result["curves"][act], 0.7)
    reached = result["epochs_to_target"]
    if reached["relu"] and reached["tanh"]:
        assert result["ratio"] == pytest.approx(reached["tanh"] / reached["relu"])
    else:
        assert result["ratio"] is None
    text = (tmp_path / "relu_tanh.md").read_text()
    assert "| ReLU | 0.003 |" in text and "| tanh | 0.03 |" in text
    assert ("the paper: about 6x" in text) == (result["ratio"] is not None)
    assert (tmp_path / "relu_tanh.png").stat().st_size > 1000


def test_bad_arguments_are_refused(shapes_data, tmp_path):
    with pytest.raises(AlexNetError, match="--target"):
        run_relu_tanh(shapes_data, tmp_path, target=25)
    with pytest.raises(AlexNetError, match="at least 1"):
        run_relu_tanh(shapes_data, tmp_path, epochs=0)
