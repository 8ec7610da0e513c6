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


def _weights_and_velocities(run):
    from alexnet.runs.checkpoint import load_checkpoint
    ckpt = load_checkpoint(run / "last.pt")
    velocity = {i: s["velocity"] for i, s in ckpt["optimizer"]["state"].items()}
    return ckpt, velocity


def test_split_steps_equal_grouped_steps_in_float64():
    """Eight SGD steps as `train` takes them (train_step, PaperSGD over parameter_groups, dropout on), in
    float64, cuda-convnet's recipe at epoch 71 (conv1 slowed): the split network's weights and velocities
    stay those of the grouped network to rounding. (In float32 they agree to 1e-8 for about ten steps;
    past that, training's own sensitivity amplifies the rounding, as it does between any two GPUs.)"""
    from alexnet.presets import get_preset
    from alexnet.training.model_parallel import velocities
    from alexnet.training.schedule import LearningRateSchedule, build_optimizer
    from alexnet.training.step import SpeedSettings, grad_scaler, train_step

    recipe = get_preset("cuda-convnet-2012").recipe
    torch.manual_seed(0)
    grouped = build_model("cuda-convnet-2012", num_classes=6, input_size=67).double().train()
    split = TwoColumnAlexNet(grouped, devices=("cpu", "cpu")).train()
    schedule, cpu = LearningRateSchedule(recipe, classes=6), torch.device("cpu")
    optimizers = [build_optimizer(model, recipe) for model in (grouped, split)]
    for optimizer in optimizers:
        schedule.apply(optimizer, 71)
    gen = torch.Generator().manual_seed(1)
    for step in range(8):
        x, y = torch.randn(4, 3, 67, 67, generator=gen, dtype=torch.float64) * 60, torch.randint(0, 6, (4,), generator=gen)
        for model, optimizer in zip((grouped, split), optimizers):
            torch.manual_seed(100 + step)  # the same dropout masks
            train_step(model, optimizer, grad_scaler(cpu, SpeedSettings()), x, y, cpu, SpeedSettings(), 1 / 4)
    state, moved = split.grouped_state_dict(), 0
    for name, value in grouped.state_dict().items():
        torch.testing.assert_close(state[name], value, rtol=1e-10, atol=1e-13, msg=name)
    split_velocity = split.grouped_tensors(velocities(optimizers[1]))
    for name, value in velocities(optimizers[0]).items():
        torch.testing.assert_close(split_velocity[name], value, rtol=1e-9, atol=1e-14, msg=name)
        moved += bool(value.abs().max() > 0)
    assert moved == len(state)  # every tensor took steps: the comparison is not vacuous


def test_training_split_over_two_devices_equals_one_device(shapes_data, tmp_path):
    """`train --model-parallel cpu,cpu` (two CPU "devices") against the one-device network, end to end
    (augmentation, dropout, validation, checkpoint): the same weights, velocities and metrics, and a
    checkpoint in the grouped network's layout, so a split run resumes on one device and back."""
    from alexnet.config import TrainConfig
    from alexnet.training.loop import train

    def settings(out, **kw):  # batch 128: 5 steps an epoch, within float32's agreement (see above)
        return TrainConfig(data=shapes_data, out=out, preset="small", device="cpu", workers=0, progress=False,
                             log=lambda line: None, batch_size=128, lr=0.005, seed=2, **kw)

    train(settings(tmp_path / "one", epochs=2))
    train(settings(tmp_path / "split", epochs=2, model_parallel=("cpu", "cpu")))
    train(settings(tmp_path / "mixed", epochs=1, model_parallel=("cpu", "cpu")))
    train(settings(tmp_path / "mixed", epochs=2, resume=True))  # split in epoch 1, one device in epoch 2
    train(settings(tmp_path / "back", epochs=1))
    train(settings(tmp_path / "back", epochs=2, resume=True, model_parallel=("cpu", "cpu")))
    one, v_one = _weights_and_velocities(tmp_path / "one")
    for name in ("split", "mixed", "back"):
        other, v_other = _weights_and_velocities(tmp_path / name)
        assert set(other["model"]) == set(one["model"])
        for key, value in one["model"].items():
            torch.testing.assert_close(other["model"][key], value, rtol=1e-4, atol=1e-5, msg=f"{name}: {key}")
        assert set(v_other) == set(v_one) and len(v_one) == len(one["model"])
        for i, value in v_one.items():
            # float32 gradients summed in another order, conv1's the most sensitive (up to 0.5% apart seen):
            # compared as a whole; a velocity in the wrong place or column would be 100% off (float64 above
            # holds the arithmetic to rounding)
            assert (v_other[i] - value).norm() <= 2e-2 * value.norm(), f"{name}: velocity {i}"
        for a, b in zip(other["history"], one["history"]):
            assert a["val_top1_error"] == b["val_top1_error"]
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    moved = [k for k in one["model"] if not torch.equal(one["model"][k], _initial(k))]
    assert len(moved) == len(one["model"])  # every tensor trained, so the comparison is not vacuous


def _initial(name):
    torch.manual_seed(2)
    return build_model("small", num_classes=4, input_size=28).state_dict()[name]


def test_the_schedules_layer_rules_reach_the_split_network():
    """cuda-convnet's conv1 rules key on layer names: the split network's conv1 halves must land in the
    conv1 groups (slowed at 67, frozen at 72), not escape them under names like columns.conv1.0."""
    from alexnet.presets import get_preset
    from alexnet.training.schedule import LearningRateSchedule, build_optimizer

    recipe = get_preset("cuda-convnet-2012").recipe
    split = TwoColumnAlexNet(build_model("small", num_classes=5), devices=("cpu", "cpu"))
    optimizer = build_optimizer(split, recipe)
    assert len(optimizer.param_groups) == 4
    conv1 = sorted(n for g in optimizer.param_groups if g["layer"] == "conv1" for n in g["names"])
    assert conv1 == ["columns.conv1.0.bias", "columns.conv1.0.weight", "columns.conv1.1.bias", "columns.conv1.1.weight"]
    LearningRateSchedule(recipe, classes=5).apply(optimizer, 72)
    frozen = sorted(n for g in optimizer.param_groups if g["lr"] == 0 for n in g["names"])
    assert frozen == conv1


def test_model_parallel_refusals(shapes_data, tmp_path):
    from alexnet.errors import AlexNetError, UsageError
    from alexnet.config import TrainConfig
    from alexnet.training.loop import train

    with pytest.raises(UsageError, match="--model-parallel takes two devices"):
        TrainConfig(data=shapes_data, out=tmp_path / "a", model_parallel=("cpu",))
    with pytest.raises(AlexNetError, match="--model-parallel: only the paper's layout"):
        train(TrainConfig(data=shapes_data, out=tmp_path / "b", config=_torchvision_layout(tmp_path),
                            model_parallel=("cpu", "cpu"), progress=False, log=lambda line: None))
    assert not (tmp_path / "b" / "last.pt").exists()
    with pytest.raises(AlexNetError, match="--device cuda and --model-parallel cpu,cpu"):
        train(TrainConfig(data=shapes_data, out=tmp_path / "c", device="cuda", model_parallel=("cpu", "cpu"),
                            progress=False, log=lambda line: None))


def _torchvision_layout(tmp_path):
    """The small preset in torchvision's module layout (which has no columns to split), as a config file."""
    import json
    from alexnet.presets import get_preset, preset_to_dict
    d = preset_to_dict(get_preset("small"))
    d["model"]["layout"] = "torchvision"
    (tmp_path / "tv.json").write_text(json.dumps(d))
    return tmp_path / "tv.json"
