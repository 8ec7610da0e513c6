"""The command line: help everywhere, the documented outputs, and one-line errors with non-zero exits."""

import json
import re
import subprocess
import sys

import pytest

from alexnet.cli.main import build_parser, main

import argparse

SUBCOMMANDS = [["summary"], ["prepare"], ["config"], ["config", "list"], ["config", "show"], ["train"], ["evaluate"],
               ["predict"], ["ablate"], ["relu-tanh"], ["figures"], ["retrieval"], ["report"], ["export"],
               ["convert"], ["proxy"], ["demo"], ["bench"], ["bench", "data"], ["bench", "prepare"], ["bench", "train"]]


def _commands(parser: argparse.ArgumentParser, path=()):
    """Every subcommand path the parser knows, found by walking it (nested ones included)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield [*path, name]
                yield from _commands(sub, (*path, name))


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(path[0] in out for path in SUBCOMMANDS)


def test_the_parser_has_exactly_these_subcommands():
    assert sorted(_commands(build_parser())) == sorted(SUBCOMMANDS)


@pytest.mark.parametrize("path", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help(path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "usage: alexnet " + " ".join(path) in out
    parser = build_parser()
    for name in path:  # the subcommand's own parser
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    undocumented = [a.dest for a in parser._actions
                    if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert parser.description and undocumented == []


def test_python_dash_m_and_console_script():
    out = subprocess.run([sys.executable, "-m", "alexnet", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "summary" in out.stdout


def test_summary_paper_total(capsys):
    assert main(["summary", "--preset", "paper"]) == 0
    out = capsys.readouterr().out
    assert "60,965,224" in out and "96 x 55 x 55" in out and "1000" in out


def test_unknown_preset_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["summary", "--preset", "vgg"])
    assert exit_.value.code == 2 and "invalid choice: 'vgg'" in capsys.readouterr().err


@pytest.mark.parametrize("argv,flag", [
    (["train", "--data", "d", "--out", "r", "--epochs", "-1"], "--epochs"),
    (["train", "--data", "d", "--out", "r", "--batch-size", "0"], "--batch-size"),
    (["train", "--data", "d", "--out", "r", "--lr", "nan"], "--lr"),
    (["prepare", "a", "b", "--size", "0"], "--size"),
    (["evaluate", "r", "--tta", "5crop"], "--tta"),
])
def test_bad_flags_name_the_flag(argv, flag, capsys):
    try:  # argparse exits itself; a range checked by the settings (TrainConfig) returns the same status
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2 and flag in capsys.readouterr().err


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "nope"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("alexnet: error: ") and "nope" in err and err.count("\n") == 1
    (tmp_path / "data").mkdir()
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--device", "cpu"]) == 1
    assert "no manifest.json" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--device", "tpu"]) == 1
    assert "--device must be cpu or cuda" in capsys.readouterr().err
    for argv in (["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")],
                 ["bench", "train", "--preset", "small", "--steps", "1"]):  # a run that would learn nothing
        assert main([*argv, "--device", "cpu", "--compile"]) == 1
        err = capsys.readouterr().err
        assert "--compile: not on the CPU" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()
    assert main(["evaluate", str(tmp_path / "missing-run")]) == 1
    assert "no such run folder" in capsys.readouterr().err


def test_a_full_size_preset_on_small_images_points_to_the_small_preset(shapes_data, tmp_path, capsys):
    assert main(["train", "--data", str(shapes_data), "--out", str(tmp_path / "run"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot take 28 px crops of 32 px images" in err and "--preset small" in err
    assert not (tmp_path / "run").exists()


def test_prepare_train_evaluate_json(shapes_src, tmp_path, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["prepare", str(shapes_src), str(data), "--size", "32", "--workers", "2", "--quiet"]) == 0
    assert (data / "manifest.json").exists()
    assert main(["train", "--data", str(data), "--preset", "small", "--out", str(run), "--epochs", "1",
                 "--batch-size", "32", "--device", "cpu", "--quiet"]) == 0
    assert (run / "metrics.csv").exists() and (run / "last.pt").exists() and (run / "config.json").exists()
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json", "--tta", "10crop", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"top1_error", "top5_error", "images"} and result["images"] == 100
    assert 0 <= result["top5_error"] <= result["top1_error"] <= 1
    # both test modes side by side: the same figures as each mode alone
    assert main(["evaluate", str(run), "--json", "--tta", "center", "--device", "cpu"]) == 0
    center = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(run), "--json", "--tta", "both", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out) == {"center": center, "10crop": result}
    assert main(["evaluate", str(run), "--tta", "both", "--quiet", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "(val, 100 images, center)" in text and "(val, 100 images, 10crop)" in text
    assert "ten patches vs centre patch: top-1" in text
    # --resume continues from the checkpoint for one more epoch
    assert main(["train", "--data", str(data), "--preset", "small", "--out", str(run), "--epochs", "2",
                 "--device", "cpu", "--resume", "--quiet"]) == 0
    assert len((run / "metrics.csv").read_text().splitlines()) == 3


def test_parser_defaults():
    args = build_parser().parse_args(["evaluate", "RUN"])
    assert args.tta == "10crop" and args.data is None


def test_evaluate_json_is_rounded_and_few_classes_are_commented(shapes_data, tmp_path, capsys):
    from alexnet.config import TrainConfig
    from alexnet.training.loop import train
    run = tmp_path / "run"
    train(TrainConfig(data=shapes_data, out=run, preset="small", epochs=1, device="cpu", workers=0,
                        progress=False, log=lambda line: None))
    assert main(["evaluate", str(run), "--tta", "center", "--json", "--quiet", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert all(len(repr(result[k])) <= 12 for k in ("top1_error", "top5_error"))  # no 0.09999999999999998
    assert main(["evaluate", str(run), "--tta", "center", "--quiet", "--device", "cpu"]) == 0
    assert "(with 4 classes every label is in the top 5)" in capsys.readouterr().out



def test_evaluate_loads_with_trains_workers_by_default(shapes_data, tmp_path, capsys, monkeypatch):
    """`evaluate` loaded in its own process unless told otherwise; it now takes train's default (the usable
    cores less two on a GPU, faked here), and the errors do not depend on it."""
    import alexnet.evaluation.evaluate as evaluate_module
    from alexnet.config import TrainConfig
    from alexnet.training.loop import train
    run = tmp_path / "run"
    train(TrainConfig(data=shapes_data, out=run, preset="small", epochs=1, device="cpu", workers=0,
                      progress=False, log=lambda line: None))
    real, asked = evaluate_module.predict_probabilities, []
    monkeypatch.setattr(evaluate_module, "predict_probabilities",
                        lambda *args, **kwargs: asked.append(args[6]) or real(*args, **kwargs))
    monkeypatch.setattr(evaluate_module, "default_workers", lambda device: 2)
    results = []
    for extra in ([], ["--workers", "0"]):
        assert main(["evaluate", str(run), "--json", "--quiet", "--device", "cpu", *extra]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert asked == [2, 0] and results[0] == results[1]


def test_torchscript_export_is_quiet(shapes_data, tmp_path, capfd):
    from alexnet.config import TrainConfig
    from alexnet.training.loop import train
    run = tmp_path / "run"
    train(TrainConfig(data=shapes_data, out=run, preset="small", epochs=1, device="cpu", workers=0,
                        progress=False, log=lambda line: None))
    capfd.readouterr()
    assert main(["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "m.ts")]) == 0
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out.startswith("exported ") and captured.out.count("\n") == 1


def test_a_closed_pipe_ends_quietly(monkeypatch, capsys):
    """`alexnet summary --preset paper | head -3`: the reader leaves early; that is no error (exit 0, nothing
    on stderr). BrokenPipeError is an OSError, so its handler must come first."""
    import io

    class ClosedAfterThreeLines(io.StringIO):
        def write(self, text):
            if self.getvalue().count("\n") >= 3:
                raise BrokenPipeError(32, "Broken pipe")
            return super().write(text)

    monkeypatch.setattr("sys.stdout", ClosedAfterThreeLines())
    assert main(["summary", "--preset", "paper"]) == 0
    assert capsys.readouterr().err == ""


def test_ctrl_c_while_torch_is_still_loading_is_one_line(tmp_path):
    """A Ctrl-C in the first seconds, while PyTorch is imported, ends like any Ctrl-C: one line, status 130.
    Here a stand-in `torch` that is interrupted as it loads."""
    import os
    import subprocess
    import sys
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise KeyboardInterrupt\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "alexnet", "summary"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 130 and done.stderr == "alexnet: interrupted\n", done.stderr


def test_a_run_stopped_by_its_time_limit_exits_75_and_resumes_to_its_end(shapes_data, tmp_path, capsys):
    """Status 0 only for a run that reached its end; 75 for a run that can go on (as after SIGTERM), with
    the command that resumes it; the speed and the projected time of the recipe are printed once."""
    run = tmp_path / "run"
    argv = ["train", "--data", str(shapes_data), "--out", str(run), "--preset", "small", "--epochs", "6",
            "--time-limit", "0.001", "--quiet", "--device", "cpu"]
    assert main(argv) == 75
    captured = capsys.readouterr()
    assert "stopped: time limit of 0s" in captured.out and captured.out.count("speed: ") == 1
    assert re.search(r"6 epochs of 600 images at this rate: (about \d|under half a minute)", captured.out)
    assert re.search(r"epoch 1: .*; 5 epochs left at most, (about \d|under half a minute) at this pace", captured.out)
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alexnet: stopped: the run can go on; resume with: alexnet ")
    assert err[0].endswith("--resume")
    assert main(["train", "--data", str(shapes_data), "--out", str(run), "--preset", "small", "--epochs", "2",
                 "--resume", "--quiet", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "done: reached --epochs" in out and "epoch 2: " in out and "left at most" not in out  # none left


@pytest.mark.parametrize("resumable, code", [(False, 0), (True, 75)])
def test_under_torchrun_rank_0_alone_reports_how_training_ended(shapes_data, tmp_path, monkeypatch, capsys,
                                                                 resumable, code):
    import alexnet.training.loop as loop

    row = {"epoch": 1, "val_top1_error": 0.5, "val_top5_error": 0.1, "stopped_because": "reached --epochs",
           "resumable": resumable}
    argv = ["train", "--data", str(shapes_data), "--out", str(tmp_path / "run"), "--quiet"]
    for main_process, lines in ((False, 0), (True, 1)):
        monkeypatch.setattr(loop, "train", lambda config: {**row, "main_process": main_process})
        assert main(argv) == code  # every rank exits alike
        captured = capsys.readouterr()
        assert len(captured.out.splitlines()) + len(captured.err.splitlines()) == lines + resumable * lines


def test_hints_say_what_the_path_is_and_what_to_run(shapes_src, shapes_data, tmp_path, capsys):
    assert main(["train", "--data", str(shapes_src), "--out", str(tmp_path / "r"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "an image folder (train/ and val/), not a prepared dataset; prepare it first: `alexnet prepare" in err
    assert f"alexnet prepare {shapes_src} DATA`" in err
    assert main(["evaluate", str(shapes_data)]) == 1
    err = capsys.readouterr().err.strip()
    assert "a prepared dataset, not a run folder; give the run folder" in err and f"--data {shapes_data}" in err


def test_each_epoch_line_says_how_long_the_epochs_left_would_take_at_its_pace():
    from types import SimpleNamespace

    from alexnet.training.loop import time_left
    plan = SimpleNamespace(recipe=SimpleNamespace(epochs=90))
    # 89 epochs of 115 s (training and validation) = 10,235 s = 170.6 min
    assert time_left(plan, {"epoch": 1, "seconds": 115.0}) == "; 89 epochs left at most, about 2 h 51 min at this pace"
    assert time_left(plan, {"epoch": 89, "seconds": 20.0}) == "; 1 epoch left at most, under half a minute at this pace"
    assert time_left(plan, {"epoch": 90, "seconds": 115.0}) == ""


def test_the_projected_time_reads_in_hours_and_minutes():
    from alexnet.training.loop import hours_and_minutes, projected_duration
    assert projected_duration(15_000) == "about 4 h 10 min" and projected_duration(29.9) == "under half a minute"
    assert hours_and_minutes(15_000) == "4 h 10 min" and hours_and_minutes(59) == "1 min"
    assert hours_and_minutes(90 * 1_281_167 / 8_100) == "3 h 57 min"  # the README's example
