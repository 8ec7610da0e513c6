"""Progress: a bar redrawn in place on a terminal, plain timed log lines otherwise, nothing when disabled."""

import io

import alexnet.progress as progress
from alexnet.progress import Progress, format_duration


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _run(stream, monkeypatch, **kwargs) -> str:
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    bar = Progress(100, "train", stream=stream, **kwargs)
    for _ in range(100):
        clock.now += 0.5  # 50 s in all
        bar.update(1, postfix="loss 1.0")
    bar.close()
    return stream.getvalue()


def test_terminal_redraws_one_line_in_place(monkeypatch):
    out = _run(Terminal(), monkeypatch)
    assert out.count("\r") == 100 and out.count("\n") == 1  # every update is >= 0.1 s apart here
    assert "########################" in out.splitlines()[-1].split("\r")[-1]  # full bar at the end
    assert "100/100 (100%)" in out and "loss 1.0" in out


def test_log_file_gets_plain_lines_at_intervals(monkeypatch):
    out = _run(io.StringIO(), monkeypatch, log_every=10.0)
    lines = out.splitlines()
    assert "\r" not in out and "#" not in out
    assert len(lines) == 6  # at 10, 20, 30, 40, 50 s, and the closing line
    assert lines[0].startswith("train 20/100 (20%)") and lines[-1].startswith("train 100/100 (100%) 00:50<00:00 2.0/s")


def test_disabled_is_silent(monkeypatch):
    assert _run(Terminal(), monkeypatch, enabled=False) == ""


def test_durations():
    assert format_duration(59) == "00:59" and format_duration(3725) == "1:02:05" and format_duration(-3) == "00:00"


def test_the_epochs_last_bar_line_shows_its_mean_loss(shapes_data, tmp_path, capsys):
    """The bar's loss is refreshed every 20 steps; its last line must show the epoch's mean, which is what
    metrics.csv records (a 19-step epoch would otherwise show the loss of its first step)."""
    import csv

    from alexnet.config import TrainConfig
    from alexnet.training.loop import train
    run = tmp_path / "run"
    train(TrainConfig(data=shapes_data, out=run, preset="small", epochs=1, device="cpu", workers=0,
                        progress=True, log=lambda line: None))
    err = capsys.readouterr().err
    last = [line for line in err.replace("\r", "\n").splitlines() if "mean loss" in line][-1]
    shown = float(last.rsplit("mean loss", 1)[1].split()[0])
    recorded = float(next(csv.DictReader(open(run / "metrics.csv")))["train_loss"])
    assert abs(shown - recorded) < 1e-4


def test_a_terminal_line_never_wraps(monkeypatch):
    """On a terminal narrower than the line, a wrapped line left its first half behind at each redraw (the
    final 100% line seemed printed twice): each drawn line is exactly one terminal line."""
    import os
    monkeypatch.setattr(progress.shutil, "get_terminal_size", lambda fallback=None: os.terminal_size((60, 20)))
    out = _run(Terminal(), monkeypatch)
    drawn = [part for line in out.split("\n") for part in line.split("\r") if part]
    assert drawn and all(len(part) == 59 for part in drawn)


def test_a_resumed_run_says_where_it_resumes_after_its_header(shapes_data, tmp_path):
    from alexnet.config import TrainConfig
    from alexnet.training.loop import train
    lines = []
    base = dict(data=shapes_data, out=tmp_path / "run", preset="small", device="cpu", workers=0, progress=False,
                batch_size=16, log=lines.append)
    train(TrainConfig(epochs=1, checkpoint_every=10, **base))
    import torch
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert "partial" not in ckpt  # an epoch's end; make a mid-epoch one by stopping after 10 steps instead
    lines.clear()
    from alexnet.runs.checkpoint import load_checkpoint, save_checkpoint
    ckpt = load_checkpoint(tmp_path / "run")
    ckpt["epoch"], ckpt["partial"] = 0, {"epoch": 1, "step": 10, "steps": 38, "totals": [0.0, 0.0, 0.0, 0.0],
                                         "rng": torch.get_rng_state(), "cuda_rng": None, "seconds": 1.0}
    ckpt["history"] = []
    save_checkpoint(tmp_path / "run" / "last.pt", ckpt)
    train(TrainConfig(epochs=1, resume=True, **base))
    header = next(i for i, line in enumerate(lines) if line.startswith("resuming preset"))
    where = next(i for i, line in enumerate(lines) if line.startswith("resuming epoch 1 at step 10 of 38"))
    assert header < where


def test_a_compiled_run_says_its_first_step_compiles(shapes_data, tmp_path, monkeypatch):
    """On a GPU the first step builds the kernels while the bar sits at 0%: the run says so first. (The CPU
    refuses to compile, so the switch is forced here, with torch.compile as the identity.)"""
    import torch

    import alexnet.training.plan as plan_module
    from alexnet.config import TrainConfig
    from alexnet.training.loop import train
    from alexnet.training.step import SpeedSettings, compiled_gradients_are_right
    lines = []
    base = dict(data=shapes_data, preset="small", device="cpu", workers=0, progress=False, batch_size=16,
                epochs=1, log=lines.append)
    train(TrainConfig(out=tmp_path / "plain", **base))
    assert not any("compiles" in line for line in lines)
    lines.clear()
    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: module)
    monkeypatch.setattr(plan_module, "resolve_speed", lambda *args, **kwargs: SpeedSettings(compile=True))
    try:
        train(TrainConfig(out=tmp_path / "compiled", **base))
    finally:
        compiled_gradients_are_right.cache_clear()  # the probe passed an identity "compiler"
    header = next(i for i, line in enumerate(lines) if line.startswith("training preset"))
    assert lines[header + 1].startswith("the first step compiles the network and its update for this device")
