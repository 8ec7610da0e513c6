"""Tampered checkpoints and statistics: refused with one line naming the file and the field, never
used to print an error rate with exit 0 (issue: faults and corrupt inputs)."""

import math

import pytest
import torch

from alexnet.cli.main import main
from alexnet.errors import AlexNetError
from alexnet.runs.checkpoint import load_checkpoint, save_checkpoint
from alexnet.config import TrainConfig
from alexnet.training.loop import train


@pytest.fixture(scope="module")
def good(shapes_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("good") / "run"
    train(TrainConfig(data=shapes_data, out=run, preset="small", epochs=1, device="cpu", workers=0,
                        progress=False, log=lambda line: None))
    return load_checkpoint(run)


def _nan_weight(c):
    c["model"]["features.conv1.weight"][0, 0, 0, 0] = math.nan


def _inf_mean(c):
    c["mean_image"][0, 0, 0] = math.inf


TAMPERED = [
    ("a NaN weight", _nan_weight, "features.conv1.weight hold NaN or infinite values"),
    ("an infinite mean", _inf_mean, "'mean_image' holds NaN or infinite values"),
    ("mean image a list", lambda c: c.update(mean_image=[1, 2, 3]), "'mean_image' is not an S x S x 3 tensor"),
    ("mean image of another size", lambda c: c.update(mean_image=torch.zeros(8, 8, 3)), "'mean_image' is 8 px"),
    ("classes an int", lambda c: c.update(classes=4), "'classes' is not a list of class names"),
    ("class names too short", lambda c: c.update(class_names=["a"]), "'class_names' does not name every class"),
    ("data size a string", lambda c: c.update(data_size="32"), "'data_size' is not a positive whole number"),
    ("model config a string", lambda c: c.update(model_config="small"), "model config is not a mapping"),
    ("an unknown recipe key", lambda c: c["recipe"].update(learning_rate=0.1),
     "recipe has unknown setting(s) learning_rate"),
    ("batch size 0", lambda c: c["recipe"].update(batch_size=0), "recipe.batch_size is out of range"),
    ("NaN colour noise", lambda c: c["recipe"].update(pca_std=math.nan), "recipe.pca_std is out of range"),
    ("model a string", lambda c: c.update(model="weights"), "'model' is not a state_dict of tensors"),
]


@pytest.mark.parametrize("what,tamper,message", TAMPERED, ids=[t[0] for t in TAMPERED])
def test_tampered_checkpoints_are_refused_by_field(what, tamper, message, good, tmp_path, capsys):
    ckpt = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in good.items() if k != "path"}
    ckpt["model"] = {k: v.clone() for k, v in good["model"].items()}
    ckpt["recipe"] = dict(good["recipe"])
    tamper(ckpt)
    path = tmp_path / "bad.pt"
    save_checkpoint(path, ckpt)
    with pytest.raises(AlexNetError, match="bad.pt: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_checkpoint(path)
    assert main(["evaluate", str(path), "--data", good["data"], "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.pt" in err[0] and "refused" in err[0]


def test_the_untampered_checkpoint_loads(good):
    assert load_checkpoint(good["path"])["epoch"] == 1


def _copy_dataset(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("field,value,message", [
    ("rgb_eigenvalues", [1e30, 0.01, 0.001], "rgb_eigenvalues .* are not a colour covariance's"),
    ("rgb_eigenvalues", [math.nan, 0.01, 0.001], "statistics.rgb_eigenvalues must be 3 finite numbers"),
    ("rgb_eigenvectors", [[1, 0, 0], [0, 1, 0], [0, 0, 5]], "rgb_eigenvectors are not orthonormal"),
])
def test_statistics_out_of_range_are_refused_on_load(shapes_data, tmp_path, field, value, message):
    import json

    from alexnet.data.prepared import PreparedDataset
    data = _copy_dataset(shapes_data, tmp_path / "d")
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["statistics"][field] = value
    (data / "manifest.json").write_text(json.dumps(manifest))  # NaN is written as NaN, as Python reads it
    with pytest.raises(AlexNetError, match=message):
        PreparedDataset(data)


@pytest.mark.parametrize("change,message", [
    (lambda m: m.__setitem__((0, 0, 0), math.nan), "the mean image is not made of pixel values"),
    (lambda m: m.__setitem__((0, 0, 0), 300.0), "the mean image is not made of pixel values"),
])
def test_a_bad_mean_image_is_refused(shapes_data, tmp_path, change, message):
    import json

    import numpy as np

    from alexnet.data.prepared import PreparedDataset, file_sha256
    data = _copy_dataset(shapes_data, tmp_path / "d")
    mean = np.load(data / "mean_image.npy")
    change(mean)
    np.save(data / "mean_image.npy", mean)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["statistics"]["mean_image_sha256"] = file_sha256(data / "mean_image.npy")  # a consistent forgery
    (data / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AlexNetError, match=message):
        PreparedDataset(data)


def test_labels_of_the_wrong_type_are_refused(shapes_data, tmp_path):
    import numpy as np

    from alexnet.data.prepared import PreparedDataset
    data = _copy_dataset(shapes_data, tmp_path / "d")
    labels = np.load(data / "val_labels.npy")
    np.save(data / "val_labels.npy", labels.astype(bool))
    with pytest.raises(AlexNetError, match="val_labels.npy: labels are bool, not whole numbers"):
        PreparedDataset(data)


def test_torchs_writer_failing_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    """PyTorch's zip writer reports a full disk as a RuntimeError; the old checkpoint stays."""
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {}, "model_config": {}, "preset": "p", "classes": ["a"]})
    before = path.read_bytes()

    def full(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 1024 vs 982")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(AlexNetError, match=r"could not write checkpoint .*last.pt \(\[enforce fail.*\); the previous"):
        save_checkpoint(path, {"model": {}})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.parametrize("content,message", [
    (b"hello\n", "not a PyTorch file"),
    (bytes(range(1, 256)), "not a PyTorch file"),
])
def test_files_that_are_not_checkpoints_say_so(tmp_path, content, message):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(AlexNetError, match=message):
        load_checkpoint(path)


@pytest.mark.parametrize("edit,message", [
    (lambda text: text.replace('"count": 600', '"count": 1e400', 1), "'count' must be a whole number"),
    (lambda text: "[" * 100000 + "]" * 100000, "nested too deeply"),
])
def test_manifests_that_break_the_reader_are_one_line(shapes_data, tmp_path, edit, message):
    from alexnet.data.prepared import PreparedDataset
    data = _copy_dataset(shapes_data, tmp_path / "d")
    text = (data / "manifest.json").read_text()
    (data / "manifest.json").write_text(edit(text))
    with pytest.raises(AlexNetError, match=message):
        PreparedDataset(data)


def test_an_empty_array_file_is_one_line(shapes_data, tmp_path):
    from alexnet.data.prepared import PreparedDataset
    data = _copy_dataset(shapes_data, tmp_path / "d")
    (data / "val_labels.npy").write_bytes(b"")
    with pytest.raises(AlexNetError, match="val_labels.npy: unreadable array"):
        PreparedDataset(data)


def test_file_names_that_are_not_utf8_are_prepared(tmp_path):
    import os

    import numpy as np

    from alexnet.data.prepare import prepare_dataset
    from conftest import write_image
    for split in ("train", "val"):
        for c in ("a", "b"):
            write_image(tmp_path / "src" / split / c / "ok.png", np.full((8, 8, 3), 100, np.uint8))
    odd = os.fsencode(str(tmp_path / "src" / "train" / "a")) + b"/caf\xe9.png"  # Latin-1 bytes, not UTF-8
    with open(odd, "wb") as f:
        f.write((tmp_path / "src" / "train" / "a" / "ok.png").read_bytes())
    manifest = prepare_dataset(tmp_path / "src", tmp_path / "out", size=8, workers=0, progress=False)
    assert manifest["splits"]["train"]["count"] == 3


def test_an_os_error_at_the_command_line_is_one_line(tmp_path, capsys, monkeypatch):
    """A read-only or full disk anywhere: the file and the reason, one line, exit 1."""
    import alexnet.cli.data_commands as commands

    def read_only(args):
        raise OSError(30, "Read-only file system", str(tmp_path / "out" / "x"))

    monkeypatch.setattr(commands, "run_prepare", read_only)
    from alexnet.cli.main import build_parser
    parser = build_parser()
    args = parser.parse_args(["prepare", str(tmp_path), str(tmp_path / "out")])
    args.func = read_only
    monkeypatch.setattr("alexnet.cli.main.build_parser", lambda: _Fixed(parser, args))
    assert main(["prepare", str(tmp_path), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"alexnet: error: {tmp_path / 'out' / 'x'}: Read-only file system"]


class _Fixed:
    def __init__(self, parser, args):
        self.parser, self.args = parser, args

    def parse_args(self, argv):
        return self.args

    def print_help(self):
        self.parser.print_help()


def test_a_dead_decoding_worker_stops_prepare_with_a_message(tmp_path, monkeypatch):
    """A worker killed mid-run (the OOM killer, say) used to hang `prepare` for ever; now it stops with a
    message, and the same command then finishes the dataset."""
    import os
    import signal

    import numpy as np

    import alexnet.data.prepare as prepare_module
    from alexnet.data.prepare import prepare_dataset
    from conftest import write_image
    for split, n in (("train", 40), ("val", 4)):
        for c in ("a", "b"):
            for i in range(n):
                write_image(tmp_path / "src" / split / c / f"{i}.png", np.full((8, 8, 3), i, np.uint8))
    real = prepare_module._work

    def killed_on_the_fifth(task):
        if task[0] == 5:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(task)

    monkeypatch.setattr(prepare_module, "_work", killed_on_the_fifth)  # the forked workers inherit it
    with pytest.raises(AlexNetError, match="a decoding worker process died"):
        prepare_dataset(tmp_path / "src", tmp_path / "out", size=8, workers=2, progress=False)
    monkeypatch.setattr(prepare_module, "_work", real)
    manifest = prepare_dataset(tmp_path / "src", tmp_path / "out", size=8, workers=2, progress=False)
    assert manifest["splits"]["train"]["count"] == 80


def _one_group_per_tensor(ckpt):
    """The optimizer state in the form runs held before the groups were merged (no release wrote it)."""
    return {"state": {}, "param_groups": [dict(g, params=[p]) for g in ckpt["optimizer"]["param_groups"]
                                          for p in g["params"]]}


@pytest.mark.parametrize("field,value", [("history", "ten epochs"), ("epoch", "one"), ("schedule", "plateau"),
                                         ("optimizer", {}), ("optimizer", _one_group_per_tensor),
                                         ("partial", {"epoch": 2, "step": 1, "rng": "x"})])
def test_resume_only_fields_that_do_not_fit_are_one_line(field, value, good, tmp_path, capsys):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(good["path"].rsplit("/", 1)[0], run)
    ckpt = load_checkpoint(run)
    del ckpt["path"]
    ckpt[field] = value(ckpt) if callable(value) else value
    save_checkpoint(run / "last.pt", ckpt)
    code = main(["train", "--data", good["data"], "--preset", "small", "--out", str(run), "--resume",
                 "--epochs", "2", "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "cannot resume from it" in err[0], err


def test_figures_with_a_corrupt_metrics_file_fail_before_drawing(good, tmp_path):
    import shutil

    from alexnet.figures.make import make_figures
    run = tmp_path / "run"
    shutil.copytree(good["path"].rsplit("/", 1)[0], run)
    (run / "metrics.csv").write_text("epoch,lr\nnot,numbers\n")
    with pytest.raises(AlexNetError, match="not a metrics file"):
        make_figures(str(run), tmp_path / "figs", device="cpu", progress=False, log=lambda line: None)
    assert not (tmp_path / "figs").exists() or not list((tmp_path / "figs").iterdir())


def test_a_cifar_archive_member_too_large_is_refused_before_reading(tmp_path):
    """The tar header declares the member's size: a 'batch' of 100 MB (here, zeros compressing to
    almost nothing) is refused before a byte of it is read into memory."""
    import io
    import tarfile

    from alexnet.data.cifar import load_cifar10
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        info.size = 100 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    assert archive.stat().st_size < 1 << 20
    with pytest.raises(AlexNetError, match="batches.meta would be 104,857,600 bytes, more than"):
        load_cifar10(archive)
