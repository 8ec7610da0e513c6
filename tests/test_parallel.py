"""The two columns on two devices (here both the CPU) against the grouped single-device model."""

import pytest
import torch

from alexnet import build_model
from alexnet.model.parallel import TwoColumnAlexNet


@pytest.mark.parametrize("preset,size", [("small", 28), pytest.param("paper", 224, marks=pytest.mark.slow)])
def test_two_devices_match_the_grouped_model(preset, size):
    torch.manual_seed(0)
    grouped = build_model(preset, num_classes=10).eval()  # eval: dropout off, so both are deterministic
    split = TwoColumnAlexNet(grouped, devices=("cpu", "cpu")).eval()
    x = torch.randn(3, 3, size, size) * 50
    weights = torch.randn(3, 10)
    out_grouped = grouped(x)
    out_split = split(x)
    torch.testing.assert_close(out_split, out_grouped, rtol=1e-4, atol=1e-5)
    (out_grouped * weights).sum().backward()
    (out_split * weights).sum().backward()
    grads = split.grouped_state_dict(gradients=True)
    named = dict(grouped.named_parameters())
    assert set(grads) == set(named)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, named[name].grad, rtol=1e-3, atol=1e-5, msg=name)


def test_weights_round_trip_exactly():
    grouped = build_model("small", num_classes=7)
    split = TwoColumnAlexNet(grouped, devices=("cpu", "cpu"))
    state = split.grouped_state_dict()
    reference = grouped.state_dict()
    assert set(state) == set(reference)
    for name in state:
        assert torch.equal(state[name], reference[name]), name
    other = build_model("small", num_classes=7)
    other.load_state_dict(state)  # interchangeable: the split weights load into a grouped model
    # Each device holds half of every layer: conv2's column is its own 32 kernels over 16 maps.
    assert tuple(split.columns["conv2"][0].weight.shape) == (32, 16, 5, 5)
    assert tuple(split.columns["conv3"][1].weight.shape) == (48, 64, 3, 3)  # conv3 sees both columns
