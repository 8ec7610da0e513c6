"""Section 6's model combination, fine-tuning from another run, and `predict` on image files."""

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from alexnet.data.imagefolder import scan_split
from alexnet.data.prepared import PreparedDataset
from alexnet.errors import AlexNetError
from alexnet.evaluation.evaluate import evaluate_checkpoints
from alexnet.runs.inference import predict_probabilities, topk_errors
from alexnet.runs.trained import checkpoint_test_views
from alexnet.evaluation.predict import predict_files
from alexnet.model import AlexNet
from alexnet.presets import get_preset
from alexnet.runs.checkpoint import load_checkpoint, save_checkpoint
from alexnet.runs.trained import model_from_checkpoint
from alexnet.training.state import init_from as _init_from
from alexnet.config import TrainConfig
from alexnet.training.loop import train


@pytest.fixture(scope="module")
def two_runs(shapes_data, tmp_path_factory):
    """A one-epoch run, and a second checkpoint with perturbed weights (a different network)."""
    root = tmp_path_factory.mktemp("ensemble")
    train(TrainConfig(data=shapes_data, out=root / "a", preset="small", epochs=1, batch_size=16, lr=0.01,
                        device="cpu", workers=0, progress=False, log=lambda line: None))
    ckpt = torch.load(root / "a" / "last.pt", weights_only=True)
    torch.manual_seed(5)
    ckpt["model"] = {k: v + 0.02 * torch.randn_like(v) if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    save_checkpoint(root / "b.pt", ckpt)
    return str(root / "a"), str(root / "b.pt")


def test_ensemble_averages_softmax_outputs(two_runs, shapes_data):
    a, b = two_runs
    dataset = PreparedDataset(shapes_data)
    probs = []
    for run in (a, b):  # each network's ten-patch softmax, computed here one by one
        ckpt = load_checkpoint(run)
        p, labels = predict_probabilities(model_from_checkpoint(ckpt), dataset,
                                          checkpoint_test_views(ckpt, dataset, torch.device("cpu")), "val", "10crop")
        probs.append(p)
    want = topk_errors((probs[0] + probs[1]) / 2, labels)
    got = evaluate_checkpoints([a, b], tta="10crop", device="cpu")
    assert got["networks"] == 2 and got["top1_error"] == want["top1_error"] and got["top5_error"] == want["top5_error"]
    assert not torch.equal(probs[0], probs[1])  # two different networks
    same = evaluate_checkpoints([a, a], tta="center", device="cpu")  # a network averaged with itself
    single = evaluate_checkpoints([a], tta="center", device="cpu")
    assert same["top1_error"] == single["top1_error"] and same["top5_error"] == single["top5_error"]
    assert got["repeated"] == {} and single["repeated"] == {}
    last = str(Path(a) / "last.pt")
    assert same["repeated"] == {last: last}


def test_evaluate_notes_a_network_given_twice_under_another_name(two_runs, tmp_path, capsys):
    """The same contents under a copy's name count twice in an ensemble's average: said on stderr."""
    from alexnet.cli.main import main

    a, b = two_runs
    copy = tmp_path / "copy.pt"
    shutil.copyfile(b, copy)
    assert main(["evaluate", a, b, str(copy), "--tta", "center", "--device", "cpu", "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"note: {copy} is the same network as {b}: it counts more than once in the average"]


def test_predict_passes_images_in_batches_and_names_an_unreadable_one_after_those_before_it(two_runs, shapes_src,
                                                                                             tmp_path, monkeypatch):
    import alexnet.evaluation.predict as predict_module

    a, _ = two_runs
    _, items = scan_split(shapes_src, "val")
    monkeypatch.setattr(predict_module, "IMAGES_PER_PASS", 4)
    batches = []
    real = predict_module.view_outputs
    monkeypatch.setattr(predict_module, "view_outputs", lambda model, views, images, which: (
        batches.append(len(images)), real(model, views, images, which))[1])
    files = [str(items[i][0]) for i in range(6)]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG cut short")
    done = []
    with pytest.raises(AlexNetError, match="broken.png: cannot read image"):
        for path, _ in predict_files(a, files + [str(broken), files[0]], tta="center", device="cpu"):
            done.append(path)
    assert done == files and batches == [4, 2]   # the six before it printed, in passes of 4 and 2


def test_a_network_trained_on_another_preparation_is_noted(two_runs, shapes_data, tmp_path, capsys):
    import json
    import shutil

    from alexnet.cli.main import main

    a, _ = two_runs
    assert evaluate_checkpoints([a], tta="center", device="cpu")["trained_elsewhere"] == {}
    copy = tmp_path / "again"
    shutil.copytree(shapes_data, copy)   # the same pixels, prepared "again": another manifest
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "created": "2026-01-01T00:00:00+00:00"}))
    got = evaluate_checkpoints([a], data=str(copy), tta="center", device="cpu")
    assert got["trained_elsewhere"] == {str(load_checkpoint(a)["path"]): str(shapes_data.resolve())}
    assert main(["evaluate", a, "--data", str(copy), "--tta", "center", "--json", "--quiet", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["images"] == got["images"]   # stdout stays one JSON object
    assert err.count("\n") == 1 and "was trained on another prepared dataset" in err and str(shapes_data.name) in err


def test_predict_reads_files_like_prepare(two_runs, shapes_src, shapes_data):
    a, _ = two_runs
    dataset = PreparedDataset(shapes_data)
    _, items = scan_split(shapes_src, "val", dataset.classes)
    ckpt = load_checkpoint(a)
    probs, _ = predict_probabilities(model_from_checkpoint(ckpt), dataset,
                                     checkpoint_test_views(ckpt, dataset, torch.device("cpu")), "val", "10crop")
    for index in (0, 30, 99):
        path = str(items[index][0])
        [(got_path, top)] = predict_files(a, [path], tta="10crop", device="cpu", k=4)
        assert got_path == path and len(top) == 4
        names, values = [n for n, _ in top], np.array([p for _, p in top])
        assert sorted(names) == sorted(dataset.classes) and np.all(np.diff(values) <= 0)
        want = probs[index].numpy()  # the same image through the prepared dataset
        np.testing.assert_allclose(values, np.sort(want)[::-1], rtol=1e-5, atol=1e-6)
    with pytest.raises(AlexNetError, match="no such image file"):
        predict_files(a, ["missing.jpg"], device="cpu")


def test_init_from_copies_all_but_a_resized_output_layer(two_runs):
    a, _ = two_runs
    source = load_checkpoint(a)["model"]
    cfg = replace(get_preset("small").model, input_size=28)
    model = AlexNet(cfg, num_classes=3)  # another class count: a new output layer
    before = model.classifier.fc8.weight.clone()
    message = _init_from(model, a)
    assert "new output layer for 3 classes" in message
    for name, value in model.state_dict().items():
        if name.startswith("classifier.fc8"):
            assert value.shape[0] == 3
        else:
            assert torch.equal(value, source[name]), name
    assert torch.equal(model.classifier.fc8.weight, before)
    with pytest.raises(AlexNetError, match="fc6.weight has shape"):
        _init_from(AlexNet(replace(cfg, input_size=40), num_classes=4), a)


def test_predict_takes_a_folder_and_its_sub_folders(two_runs, shapes_src, tmp_path):
    a, _ = two_runs
    _, items = scan_split(shapes_src, "val")
    chosen = [items[0][0], items[40][0], items[80][0]]
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    copies = [folder / "x.png", folder / "more" / "y.png", folder / "z.png"]
    for source, copy in zip(chosen, copies):
        copy.write_bytes(source.read_bytes())
    (folder / "notes.txt").write_text("not an image")
    notes = []
    from_folder = list(predict_files(a, [str(folder)], tta="center", device="cpu", k=3, log=notes.append))
    assert notes == [f"note: 1 file(s) are not of a kind read as images (.txt 1) and are left "
                     f"out: {folder / 'notes.txt'}"]
    assert [p for p, _ in from_folder] == [str(folder / "more" / "y.png"), str(folder / "x.png"), str(folder / "z.png")]
    one_by_one = {str(c): top for c in copies for _, top in predict_files(a, [str(c)], tta="center", device="cpu", k=3)}
    for path, top in from_folder:   # a folder's images go through the network together: float rounding apart
        assert [name for name, _ in top] == [name for name, _ in one_by_one[path]]
        np.testing.assert_allclose([q for _, q in top], [q for _, q in one_by_one[path]], rtol=1e-5, atol=1e-7)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AlexNetError, match="empty: no image files in this folder"):
        predict_files(a, [str(tmp_path / "empty")], device="cpu")


def test_the_predict_batching_benchmark_runs():
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([sys.executable, "scripts/predict_batching.py", "--images", "2", "--repeats", "1", "--tta",
                           "center"], cwd=Path(__file__).parent.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "run 1: one at a time" in done.stdout and "16 at a time" in done.stdout
