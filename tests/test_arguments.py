"""Every command refuses nonsensical arguments at once, with one line naming the culprit."""

import importlib

import pytest

from alexnet.cli.main import main

BAD = [  # (arguments, the text the one-line error must contain); DATA is the prepared shapes fixture
    (["train", "--data", "DATA", "--out", "OUT", "--epochs", "-1"], "--epochs must be at least 1"),
    (["train", "--data", "DATA", "--out", "OUT", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["train", "--data", "DATA", "--out", "OUT", "--device", "tpu"], "--device must be cpu or cuda"),
    (["train", "--data", "DATA", "--out", "DATA/run"], "must not be inside the dataset folder"),
    (["train", "--data", "DATA", "--out", "OUT", "--lr", "nan"], "--lr must be a positive number"),
    (["train", "--data", "DATA", "--out", "OUT", "--time-limit", "0"], "--time-limit must be a positive number"),
    (["train", "--data", "DATA", "--out", "OUT", "--checkpoint-every", "0"], "--checkpoint-every must be at least 1"),
    (["train", "--data", "DATA", "--out", "OUT", "--workers", "-2"], "--workers must be at least 0"),
    (["train", "--data", "DATA", "--out", "OUT", "--seed", "-3"], "--seed must be at least 0"),
    (["train", "--data", "DATA", "--out", "OUT", "--preset", "huge"], "invalid choice: 'huge'"),
    (["train", "--data", "DATA", "--out", "OUT", "--seed", str(2**64)], "--seed must be below 2**63"),
    (["train", "--data", "DATA", "--out", "FILE"], "is a file, not a folder"),
    (["train", "--data", "DATA", "--out", "FILE/run"], "is a file, not a folder"),
    (["prepare", "SRC", "OUT/p", "--size", "100000"], "--size: must be at most 4096, got 100000"),
    (["summary", "--input-size", "100000000"], "--input-size: must be at most 4096, got 100000000"),
    (["figures", "RUN", "--out", "FILE"], "a file, not a folder for the pictures"),
    (["export", "RUN", "--format", "torchscript", "--out", "DIR"], "a folder; give the name of the file"),
    (["train", "--data", "OUT/none", "--out", "OUT"], "no such dataset folder"),
    (["evaluate", "RUN", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["evaluate", "RUN", "--tta", "5crop"], "invalid choice: '5crop'"),
    (["prepare", "SRC", "SRC/out"], "must not be inside the source tree"),
    (["prepare", "SRC", "OUT/p", "--size", "0"], "--size: must be at least 1"),
    (["demo", "--epochs", "0", "--out", "OUT"], "--epochs: must be at least 1"),
    (["predict", "RUN", "x.jpg", "--top", "0"], "--top: must be at least 1"),
    (["bench", "train", "--steps", "0"], "--steps: must be at least 1"),
    (["relu-tanh", "--data", "DATA", "--out", "OUT/f1", "--target", "2"], "argument --target: must be a number above 0"),
    (["figures", "RUN", "--out", "OUT/f", "--pool", "0"], "--pool: must be at least 1"),
    (["retrieval", "RUN", "--out", "OUT/r", "--bits", "0"], "--bits: must be at least 1"),
    (["report", "RUN", "--out", "OUT/report.txt"], "the report is an HTML file"),
    (["ablate", "--data", "DATA", "--out", "OUT/a", "--variants", "nope"], "unknown ablation(s) nope"),
]

# Where each command's real work begins: reaching one of these means the arguments were not refused first.
WORK = [("alexnet.training.loop", "RunWriter"), ("alexnet.data.prepare", "_prepare_split"),
        ("alexnet.evaluation.evaluate", "predict_probabilities"), ("alexnet.evaluation.predict", "view_outputs"),
        ("alexnet.figures.make", "outputs"), ("alexnet.figures.report", "make_figures"),
        ("alexnet.experiments.retrieval", "outputs"), ("alexnet.experiments.relu_tanh", "_train_one"),
        ("alexnet.experiments.ablate", "train"), ("alexnet.experiments.demo", "make_shapes_dataset"),
        ("alexnet.bench.train", "time_steps")]


class WorkStarted(Exception):
    pass


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a[:2]) + f" #{i}" for i, (a, _) in enumerate(BAD)])
def test_bad_arguments_fail_fast_with_one_line(argv, message, shapes_src, shapes_data, tmp_path, capsys,
                                               monkeypatch):
    out = tmp_path / "out"  # never created by the test: whatever appears there, the command made
    names = {"DATA": str(shapes_data), "SRC": str(shapes_src), "OUT": str(out), "RUN": str(tmp_path / "run"),
             "FILE": str(tmp_path / "file"), "DIR": str(tmp_path / "dir")}
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "dir").mkdir()
    argv = [next((a.replace(k, v, 1) for k, v in names.items() if a.startswith(k)), a) for a in argv]
    for module, name in WORK:
        def started(*args, _where=f"{module}.{name}", **kwargs):
            raise WorkStarted(_where)
        monkeypatch.setattr(importlib.import_module(module), name, started)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code in (1, 2)
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("alexnet")
    if not any("usage:" in line for line in err):  # ours are one line; argparse's come after its usage line
        assert len(err) == 1, err
    assert not out.exists()
    assert not (shapes_data / "run").exists() and not (shapes_src / "out").exists()
    assert not list(tmp_path.glob("**/last.pt"))


def test_a_cuda_device_that_is_malformed_or_absent_is_named(monkeypatch):
    """On a machine with one GPU (pretended here): cuda:1 and cuda:x are refused by name, before torch's
    own error (a traceback, or a failure at the first tensor moved)."""
    import torch

    from alexnet.device import resolve_device
    from alexnet.errors import AlexNetError
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0) and resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(AlexNetError, match=r"--device cuda:1: this machine has 1 CUDA device\(s\), cuda:0 to cuda:0"):
        resolve_device("cuda:1")
    for bad in ("cuda:x", "cuda:", "cuda:-1", "CPU", "cuda:0 "):
        with pytest.raises(AlexNetError, match="--device must be cpu or cuda"):
            resolve_device(bad)
