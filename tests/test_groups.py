"""Optimizer groups: a handful per network (so the foreach kernels see many tensors at once), the same
in `alexnet train` and `alexnet bench train`, and the same numbers as one group per tensor."""

import pytest
import torch

from alexnet import build_model
from alexnet.bench.train import training_step
from alexnet.config import TrainConfig
from alexnet.presets import get_preset
from alexnet.training.distributed import DistributedContext
from alexnet.training.optim import PaperSGD
from alexnet.training.plan import resolve
from alexnet.training.schedule import LearningRateSchedule, build_optimizer
from alexnet.training.state import TrainState
from alexnet.training.step import SpeedSettings

PAPER_TENSORS = [f"features.conv{i}.{k}" for i in range(1, 6) for k in ("weight", "bias")] + \
                [f"classifier.fc{i}.{k}" for i in range(6, 9) for k in ("weight", "bias")]


def _groups(optimizer):
    return [(g["names"], g["lr_multiplier"], g["weight_decay"], g["layer"]) for g in optimizer.param_groups]


def _one_group_per_tensor(model, recipe):
    """cuda-convnet's per-parameter settings written out tensor by tensor, as the reference."""
    groups = []
    for n, p in model.named_parameters():
        bias, conv1 = n.endswith("bias"), ".conv1." in n
        groups.append({"params": [p], "names": [n], "layer": "conv1" if conv1 else "",
                       "lr_multiplier": recipe.bias_lr_multiplier if bias else 1.0,
                       "follows_schedule": not bias, "weight_decay": 0.0 if bias else recipe.weight_decay})
    return groups


@pytest.mark.parametrize("preset,count", [("paper", 2), ("cuda-convnet-2012", 4)])
def test_train_builds_a_handful_of_groups(preset, count, data256, tmp_path):
    plan = resolve(TrainConfig(data=data256, out=tmp_path / "run", preset=preset, device="cpu"), DistributedContext())
    run = TrainState.start(plan)
    groups = _groups(run.optimizer)
    assert len(groups) == count
    assert sorted(n for names, *_ in groups for n in names) == sorted(PAPER_TENSORS)  # each tensor once
    conv1 = [names for names, _, _, layer in groups if layer == "conv1"]
    assert sorted(n for names in conv1 for n in names) == ["features.conv1.bias", "features.conv1.weight"]
    if preset == "cuda-convnet-2012":  # biases (conv1's too): twice the rate, no decay; weights: decay
        assert {(mult, decay) for _, mult, decay, _ in groups} == {(1.0, 5e-4), (2.0, 0.0)}
    # `bench train` times this very optimizer: the same groups, built the same way
    bench = training_step(build_model(preset, 2), torch.device("cpu"), SpeedSettings(), plan.recipe, 2)
    assert _groups(bench.optimizer) == groups


def test_grouped_steps_equal_one_group_per_tensor():
    """Regrouping changes no number: cuda-convnet's recipe (constant bias rate x2,
    no bias decay, conv1 slowed at epoch 67), three steps with the same gradients, against a PaperSGD with one group per tensor."""
    recipe = get_preset("cuda-convnet-2012").recipe
    torch.manual_seed(0)
    grouped_model = build_model("small", 3).double()
    single_model = build_model("small", 3).double()
    single_model.load_state_dict(grouped_model.state_dict())
    grouped = build_optimizer(grouped_model, recipe)
    singles = PaperSGD(_one_group_per_tensor(single_model, recipe), lr=recipe.lr, momentum=recipe.momentum)
    schedule = LearningRateSchedule(recipe, classes=3)
    for optimizer in (grouped, singles):
        schedule.apply(optimizer, 67)
    assert len(grouped.param_groups) == 4 < len(singles.param_groups)
    for step in range(3):
        gen = torch.Generator().manual_seed(step)
        for (_, a), (_, b) in zip(grouped_model.named_parameters(), single_model.named_parameters()):
            a.grad = torch.randn(a.shape, generator=gen, dtype=torch.float64)
            b.grad = a.grad.clone()
        grouped.step()
        singles.step()
    for (name, a), (_, b) in zip(grouped_model.named_parameters(), single_model.named_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
