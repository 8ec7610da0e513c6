"""The learning-rate schedules and per-parameter groups (Section 5; the original code's run)."""

from dataclasses import replace

import pytest

from alexnet import build_model
from alexnet.config import Recipe
from alexnet.presets import get_preset
from alexnet.training.optim import PaperSGD
from alexnet.training.schedule import LearningRateSchedule, parameter_groups


def test_plateau_divides_by_ten_three_times_then_stops():
    recipe = Recipe(lr=0.01, epochs=100, plateau_patience=2, plateau_min_delta=0.001, max_lr_drops=3)
    s = LearningRateSchedule(recipe, classes=1000)
    errors = [0.9, 0.8, 0.8, 0.8,      # two epochs without improvement -> drop 1
              0.7, 0.7, 0.7995,        # -> drop 2 (0.7995 is not better than 0.7 by 0.001)
              0.6, 0.6, 0.6,           # -> drop 3
              0.5, 0.5, 0.5]           # -> stop
    events, lrs = [], []
    for epoch, err in enumerate(errors, start=1):
        lrs.append(s.base_lr(epoch))
        events.append(s.end_epoch(epoch, err))
    assert events == [None, None, None, "drop", None, None, "drop", None, None, "drop", None, None, "stop"]
    assert lrs[:4] == [0.01] * 4 and lrs[4] == 0.001 and abs(lrs[7] - 1e-4) < 1e-18 and abs(lrs[10] - 1e-5) < 1e-19
    assert s.finished


def test_plateau_state_round_trip():
    s = LearningRateSchedule(Recipe(plateau_patience=1), classes=1000)
    s.end_epoch(1, 0.5)
    s.end_epoch(2, 0.6)
    t = LearningRateSchedule(Recipe(plateau_patience=1), classes=1000)
    t.load_state_dict(s.state_dict())
    assert t.state_dict() == s.state_dict() and t.base_lr(3) == s.base_lr(3)


def test_cuda_convnet_steps_and_conv1():
    recipe = get_preset("cuda-convnet-2012").recipe
    s = LearningRateSchedule(recipe, classes=1000)
    assert [s.base_lr(e) for e in (1, 24, 25, 50, 51, 78, 79, 90)] == \
        [0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001, 0.00001, 0.00001]
    assert s.layer_factor("conv1", 66) == 1.0 and s.layer_factor("conv1", 67) == 0.1
    assert s.layer_factor("conv1", 72) == 0.0 and s.layer_factor("conv2", 80) == 1.0
    assert s.layer_factor("conv1", 67, follows_schedule=False) == 1.0  # a constant-rate bias is not slowed
    assert s.layer_factor("conv1", 72, follows_schedule=False) == 0.0  # but frozen with the weights
    assert s.end_epoch(89, 0.5) is None and s.end_epoch(90, 0.5) == "stop"


def test_groups_bias_rate_and_decay_cuda_convnet():
    model = build_model("small", 3)
    recipe = replace(get_preset("cuda-convnet-2012").recipe, weight_decay=5e-4)
    groups = parameter_groups(model, recipe)
    by_name = {name: g for g in groups for name in g["names"]}
    assert by_name["features.conv2.bias"]["lr_multiplier"] == 2.0
    assert by_name["features.conv2.bias"]["weight_decay"] == 0.0
    assert by_name["features.conv2.weight"]["weight_decay"] == 5e-4
    opt = PaperSGD(groups, lr=0.01)
    s = LearningRateSchedule(recipe, classes=1000)
    s.apply(opt, 70)  # base 0.0001 (after epoch 51); conv1 slowed to a tenth from epoch 67
    rates = {name: g["lr"] for g in opt.param_groups for name in g["names"]}
    assert abs(rates["features.conv2.weight"] - 1e-4) < 1e-18
    assert abs(rates["features.conv2.bias"] - 0.02) < 1e-18  # epsB: constant, not lowered with the weights'
    assert abs(rates["features.conv1.weight"] - 1e-5) < 1e-18
    assert abs(rates["features.conv1.bias"] - 0.02) < 1e-18  # conv1's epsB: 0.02 until its freeze, not slowed
    s.apply(opt, 72)
    rates = {name: g["lr"] for g in opt.param_groups for name in g["names"]}
    assert rates["features.conv1.bias"] == 0.0 and rates["features.conv1.weight"] == 0.0


def test_paper_groups_are_uniform():
    groups = parameter_groups(build_model("small", 3), get_preset("paper").recipe)
    assert all(g["lr_multiplier"] == 1.0 and g["weight_decay"] == 5e-4 for g in groups)
    assert sum(len(g["params"]) for g in groups) == len(list(build_model("small", 3).parameters()))


def test_state_at_the_epoch_limit_matches_an_uninterrupted_run():
    """A run stopped by --epochs and resumed must hold the same plateau state as one that went on."""
    errors = [0.9, 0.9, 0.9, 0.9, 0.8]
    short = LearningRateSchedule(Recipe(epochs=3, plateau_patience=2), classes=1000)
    long = LearningRateSchedule(Recipe(epochs=10, plateau_patience=2), classes=1000)
    for epoch, err in enumerate(errors[:3], start=1):
        short.end_epoch(epoch, err)
        long.end_epoch(epoch, err)
    assert short.finished and not long.finished
    assert {k: v for k, v in short.state_dict().items() if k != "finished"} == \
        {k: v for k, v in long.state_dict().items() if k != "finished"}
    assert short.drops == 1  # the drop at epoch 3 happened even though epoch 3 was the last


def test_large_batch_linear_scaling_and_warmup_by_hand():
    """Goyal et al.'s rule (not the paper's): batch 512 = 4 x 128, so lr 0.04, reached over 5 epochs
    from 0.01 linearly in steps; without --lr-scaling nothing changes."""
    from alexnet.training.schedule import large_batch

    paper = get_preset("paper").recipe
    big = large_batch(replace(paper, batch_size=512), 128, "linear", None)
    assert (big.lr, big.warmup_epochs, big.warmup_start_factor) == (0.04, 5, 0.25)
    assert large_batch(replace(paper, batch_size=512), 128, "none", None) == replace(paper, batch_size=512)
    assert large_batch(replace(paper, batch_size=512), 128, "linear", 2).warmup_epochs == 2
    s = LearningRateSchedule(big, classes=1000)
    # rate = 0.04 x (0.25 + 0.75 x min(1, (epoch - 1 + fraction) / 5))
    for epoch, fraction, want in ((1, 0.0, 0.01), (1, 0.5, 0.013), (3, 0.5, 0.025), (5, 1.0, 0.04), (6, 0.0, 0.04)):
        assert s.base_lr(epoch, fraction) == pytest.approx(want, rel=1e-12)
    assert s.warming_up(5) and not s.warming_up(6)
    assert LearningRateSchedule(paper, classes=1000).base_lr(1, 0.5) == 0.01  # the paper: no warm-up


def test_plateau_never_counts_while_the_network_sits_at_chance():
    """10 classes: chance is 90% top-1 error. A run whose validation error stays within 2 points of
    chance keeps its initial rate for all its epochs; the literal rule would have divided it at epochs
    4, 7 and 10 and stopped the run at epoch 13."""
    recipe = Recipe(lr=0.01, epochs=30)  # the paper's patience 3, min delta 0.001, margin 0.02
    s = LearningRateSchedule(recipe, classes=10)
    wobble = [0.9, 0.905, 0.895, 0.9, 0.8805, 0.9, 0.91, 0.899, 0.9, 0.9, 0.902, 0.9, 0.9, 0.9, 0.898]
    events = [s.end_epoch(epoch, err) for epoch, err in enumerate(wobble, start=1)]
    assert events == [None] * len(wobble)
    assert s.base_lr(len(wobble) + 1) == 0.01 and s.drops == 0 and not s.learning
    assert s.best_error == 0.8805  # improvements are still recorded: 1.95 points under chance is not yet learning


def test_plateau_counts_once_learning_has_started_then_divides_as_before():
    """Chance for 10 classes (0.9), then a first epoch 2+ points under it: from there three epochs
    without a 0.1-point gain divide the rate, as in the paper's rule."""
    s = LearningRateSchedule(Recipe(lr=0.01, epochs=30), classes=10)
    errors = [0.9, 0.9, 0.9, 0.9,    # at chance: nothing counted
              0.85, 0.70, 0.60,      # learning (0.85 <= 0.88)
              0.6, 0.6, 0.6]         # three epochs without improvement -> drop
    events = [s.end_epoch(epoch, err) for epoch, err in enumerate(errors, start=1)]
    assert events == [None] * 9 + ["drop"]
    assert s.learning and s.base_lr(11) == pytest.approx(0.001, rel=1e-12)
    # the literal reading (no margin) would have dropped at epoch 4 already
    literal = LearningRateSchedule(Recipe(lr=0.01, epochs=30, plateau_start_margin=0.0), classes=10)
    assert [literal.end_epoch(e, err) for e, err in enumerate(errors[:4], start=1)] == [None, None, None, "drop"]


def test_plateau_state_is_the_same_after_a_resume_at_chance():
    """Whether the network has started to learn is derived from the best error, so it survives a resume."""
    s = LearningRateSchedule(Recipe(), classes=100)
    for epoch, err in enumerate([0.99, 0.98, 0.95], start=1):
        s.end_epoch(epoch, err)
    t = LearningRateSchedule(Recipe(), classes=100)
    t.load_state_dict(s.state_dict())
    assert t.learning and s.learning  # 0.95 <= 0.99 - 0.02
