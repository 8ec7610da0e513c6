"""The warning for a run that sits at chance (the loss plateau of the paper's initialisation)."""

import math

import pytest

from alexnet.training import chance
from alexnet.training.chance import ChanceWatch, at_chance


def test_watch_warns_once_after_a_whole_stretch_at_chance():
    watch = ChanceWatch(classes=1000, stretch=500)
    per_chunk = 50 * 128  # 50 steps of 128 images
    flat = math.log(1000) + 0.01
    results = [watch.add(flat * per_chunk, per_chunk, 50) for _ in range(12)]
    assert results[:9] == [None] * 9                 # 450 steps: not yet a whole stretch
    assert results[9] == pytest.approx(flat)          # 500 steps at chance: the warning, once
    assert results[10:] == [None, None] and watch.warned
    assert "--preset cuda-convnet-2012" in watch.message(results[9]) and "ln(1000) = 6.908" in watch.message(flat)


def test_watch_says_nothing_when_the_loss_leaves_chance():
    watch = ChanceWatch(classes=1000, stretch=500)
    # 300 steps at chance, then 300 at 5.5: no window of 500 steps averages 95% of ln 1000 (6.56)
    losses = [6.91] * 6 + [5.5] * 6
    assert [watch.add(loss * 100, 100, 50) for loss in losses] == [None] * 12 and not watch.warned


def test_at_chance_is_within_five_percent_of_ln_classes():
    assert at_chance(1.386, 4) and at_chance(0.951 * math.log(4), 4) and not at_chance(0.94 * math.log(4), 4)
    assert at_chance(1.049 * math.log(1000), 1000) and not at_chance(1.06 * math.log(1000), 1000)  # above: unstable
    assert not at_chance(5.0, 1)  # one class: nothing to be at chance with


def test_train_warns_when_its_loss_stays_at_chance(shapes_data, tmp_path, monkeypatch):
    """A run with a rate too small to move (1e-9) on 4 classes: one warning, and metrics.csv marks its
    epochs at chance; a run that learns is not marked once it has left chance. The looks at the loss are
    counted across epochs: one every 50 steps, longer than an epoch here (38 steps), still happens."""
    from alexnet.runs.writer import read_metrics
    from alexnet.training import loop
    from alexnet.config import TrainConfig
    from alexnet.training.loop import train

    monkeypatch.setattr(chance, "STRETCH_STEPS", 50)
    monkeypatch.setattr(loop, "CHECK_EVERY", 50)
    lines = []
    settings = dict(data=shapes_data, preset="small", device="cpu", workers=0, progress=False, batch_size=16,
                    log=lines.append, epochs=2)
    train(TrainConfig(out=tmp_path / "flat", lr=1e-9, **settings))
    warnings = [line for line in lines if "stayed at chance for 50 steps" in line]
    assert len(warnings) == 1 and "known plateau of the paper's initialisation" in warnings[0]
    assert [row["at_chance"] for row in read_metrics(tmp_path / "flat")] == [1.0, 1.0]
    assert any("(at chance)" in line for line in lines)
    train(TrainConfig(out=tmp_path / "learns", lr=0.005, seed=3, **{**settings, "epochs": 6}))
    rows = read_metrics(tmp_path / "learns")
    assert rows[-1]["at_chance"] == 0.0 and rows[-1]["train_loss"] < 0.95 * math.log(4)
