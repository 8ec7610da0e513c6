"""The `torchvision` preset: torchvision's AlexNet key for key, its weights usable by every command.

References: the key/shape table below is written from torchvision.models.alexnet's definition; the
forward pass is recomputed in float64 with plain torch.nn.functional calls as torchvision's module runs
them on its own normalised input; and, where torchvision itself loads, against torchvision's module.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alexnet import build_model
from alexnet.cli.main import main
from alexnet.data.prepare import prepare_dataset
from alexnet.errors import AlexNetError
from alexnet.evaluation.evaluate import evaluate_checkpoint
from alexnet.evaluation.predict import predict_files
from alexnet.export.convert import convert_torchvision
from alexnet.runs.checkpoint import load_checkpoint
from alexnet.runs.trained import model_from_checkpoint
from alexnet.training.schedule import parameter_groups
from alexnet.presets import PRESETS, get_preset

from conftest import write_image

TORCHVISION_SHAPES = [
    ("features.0.weight", (64, 3, 11, 11)), ("features.0.bias", (64,)),
    ("features.3.weight", (192, 64, 5, 5)), ("features.3.bias", (192,)),
    ("features.6.weight", (384, 192, 3, 3)), ("features.6.bias", (384,)),
    ("features.8.weight", (256, 384, 3, 3)), ("features.8.bias", (256,)),
    ("features.10.weight", (256, 256, 3, 3)), ("features.10.bias", (256,)),
    ("classifier.1.weight", (4096, 9216)), ("classifier.1.bias", (4096,)),
    ("classifier.4.weight", (4096, 4096)), ("classifier.4.bias", (4096,)),
    ("classifier.6.weight", (1000, 4096)), ("classifier.6.bias", (1000,)),
]
MEAN01, STD01 = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's ImageNet normalisation


def _narrow():
    """The torchvision layout at an eighth of the widths: the same code paths, small enough to write
    checkpoints of quickly (the full network's are 244 MB)."""
    from dataclasses import replace
    full = FULL_TORCHVISION
    convs = tuple(replace(c, out_channels=c.out_channels // 8) for c in full.model.convs)
    return replace(full, model=replace(full.model, convs=convs, fc_widths=(64, 64)))


FULL_TORCHVISION = get_preset("torchvision")


@pytest.fixture
def full_preset(monkeypatch):
    """The full widths, for tests that need them after a narrow test has switched the module's preset
    (narrow_preset lasts to the end of the module, since `converted` is built on it)."""
    monkeypatch.setitem(PRESETS, "torchvision", FULL_TORCHVISION)


@pytest.fixture(scope="module")
def narrow_preset():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PRESETS, "torchvision", _narrow())
        yield PRESETS["torchvision"]


def _torchvision():
    try:  # the PyPI build raises RuntimeError, not ImportError, beside a CPU-only torch
        import torchvision
        return torchvision
    except Exception as exc:
        pytest.skip(f"torchvision not usable here ({type(exc).__name__})")


def test_state_dict_keys_and_shapes_are_torchvisions(full_preset):
    model = build_model("torchvision")
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == TORCHVISION_SHAPES
    assert sum(p.numel() for p in model.parameters()) == 61_100_840
    # No buffer of ours (the input std) leaks into the state_dict.
    assert "input_scale" not in model.state_dict()


def _reference_forward(state: dict[str, torch.Tensor], images01: torch.Tensor) -> torch.Tensor:
    """torchvision's AlexNet in float64 functional form, on [0, 1] images normalised its way."""
    w = {k: v.double() for k, v in state.items()}
    mean, std = torch.tensor(MEAN01).view(1, 3, 1, 1), torch.tensor(STD01).view(1, 3, 1, 1)
    x = ((images01.double() - mean.double()) / std.double())
    x = F.max_pool2d(F.relu(F.conv2d(x, w["features.0.weight"], w["features.0.bias"], stride=4, padding=2)), 3, 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, w["features.3.weight"], w["features.3.bias"], padding=2)), 3, 2)
    x = F.relu(F.conv2d(x, w["features.6.weight"], w["features.6.bias"], padding=1))
    x = F.relu(F.conv2d(x, w["features.8.weight"], w["features.8.bias"], padding=1))
    x = F.max_pool2d(F.relu(F.conv2d(x, w["features.10.weight"], w["features.10.bias"], padding=1)), 3, 2)
    x = F.adaptive_avg_pool2d(x, 6).flatten(1)  # the narrow variant has fewer maps, the same 6x6
    x = F.relu(F.linear(x, w["classifier.1.weight"], w["classifier.1.bias"]))
    x = F.relu(F.linear(x, w["classifier.4.weight"], w["classifier.4.bias"]))
    return F.linear(x, w["classifier.6.weight"], w["classifier.6.bias"])


def test_forward_matches_a_float64_functional_reference(narrow_preset):
    """At an eighth of the widths (the layout and every operation are the full network's; its shapes are
    checked above), so that float64 convolutions take a second rather than ten."""
    side = 256  # pool5 is 7x7 here, so the 6x6 average pool really averages
    torch.manual_seed(0)
    model = build_model("torchvision", num_classes=1000, input_size=side).eval()
    pixels = torch.randint(0, 256, (1, 3, side, side)).float()
    ours = model(pixels - torch.tensor(MEAN01).view(1, 3, 1, 1) * 255)  # our input: raw 0-255 minus the mean
    expected = _reference_forward(model.state_dict(), pixels / 255)
    torch.testing.assert_close(ours.double(), expected, rtol=1e-4, atol=1e-5)
    assert expected.std() > 1e-3  # not a degenerate all-equal output


def test_identical_outputs_to_torchvision_itself(tmp_path, full_preset):
    torchvision = _torchvision()
    reference = torchvision.models.alexnet(weights=None).eval()
    torch.save(reference.state_dict(), tmp_path / "tv.pth")
    convert_torchvision(str(tmp_path / "tv.pth"), str(tmp_path / "run"), log=lambda line: None)
    ours = model_from_checkpoint(load_checkpoint(tmp_path / "run")).eval()
    pixels = torch.randint(0, 256, (3, 3, 224, 224)).float()
    mean = load_checkpoint(tmp_path / "run")["mean_image"][:224, :224].permute(2, 0, 1)[None]
    normalised = (pixels / 255 - torch.tensor(MEAN01).view(1, 3, 1, 1)) / torch.tensor(STD01).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(ours(pixels - mean), reference(normalised), rtol=1e-4, atol=1e-4)


def test_layers_keep_their_paper_names_for_the_schedule_and_summary(narrow_preset):
    model = build_model("torchvision")
    groups = parameter_groups(model, get_preset("torchvision").recipe)
    conv1 = [g for g in groups if g["layer"] == "conv1"]  # the schedule's own layer, found by its paper name
    assert len(conv1) == 1 and conv1[0]["names"] == ["features.0.weight", "features.0.bias"]
    assert model.paper_name("classifier.6") == "fc8"
    assert model.paper_name("classifier.1") == "fc6" and model.paper_name("classifier.0") == "drop6"


def test_dropout_zero_keeps_the_numbering(narrow_preset):
    from dataclasses import replace

    from alexnet.model import TorchvisionAlexNet, build_network
    model = build_network(replace(narrow_preset.model, dropout=0.0), 1000)
    assert isinstance(model, TorchvisionAlexNet)
    assert [k for k, _ in TORCHVISION_SHAPES] == list(model.state_dict())


@pytest.fixture(scope="module")
def tv_data(tmp_path_factory):
    """Three classes of random pixels prepared at 72 px (torchvision's AlexNet needs about 63 px crops)."""
    rng = np.random.default_rng(3)
    src = tmp_path_factory.mktemp("tv_src")
    for split, n in (("train", 6), ("val", 2)):
        for c in ("ant", "bee", "cat"):
            for i in range(n):
                write_image(src / split / c / f"{i}.png", rng.integers(0, 256, (80, 90, 3), dtype=np.uint8))
    out = tmp_path_factory.mktemp("tv_data") / "data"
    prepare_dataset(src, out, size=72, workers=0, progress=False)
    return out, src


@pytest.fixture(scope="module")
def converted(tv_data, tmp_path_factory, narrow_preset):
    """torchvision-layout weights for 3 classes (from our own builder, narrow), converted against `tv_data`."""
    folder = tmp_path_factory.mktemp("tv_run")
    torch.manual_seed(1)
    state = build_model("torchvision", num_classes=3).state_dict()
    torch.save(state, folder / "weights.pth")
    assert main(["convert", "torchvision", str(folder / "weights.pth"), "--out", str(folder / "run"),
                 "--data", str(tv_data[0])]) == 0
    return folder / "run", state


def test_converted_run_holds_the_weights_and_imagenet_mean(converted):
    run, state = converted
    ckpt = load_checkpoint(run)
    assert ckpt["preset"] == "torchvision" and ckpt["classes"] == ["ant", "bee", "cat"] and ckpt["data_size"] == 72
    for k, v in state.items():
        assert torch.equal(ckpt["model"][k], v)
    mean = ckpt["mean_image"].numpy()
    assert mean.shape == (72, 72, 3)
    np.testing.assert_allclose(mean[17, 40], np.array(MEAN01) * 255, rtol=1e-6)


def test_converted_run_evaluates_with_ten_patches_and_predicts(converted, tv_data):
    run, _ = converted
    result = evaluate_checkpoint(str(run), tta="10crop", device="cpu")
    assert result["images"] == 6 and 0 <= result["top1_error"] <= 1
    image = next((tv_data[1] / "val" / "bee").iterdir())
    [(path, top)] = predict_files(str(run), [str(image)], device="cpu", k=3)
    assert sorted(name for name, _ in top) == ["ant", "bee", "cat"]
    assert abs(sum(p for _, p in top) - 1) < 1e-5


def test_converted_weights_fine_tune_to_a_new_class_count(converted, tv_data, tmp_path, narrow_preset):
    """torchvision weights -> `train --preset torchvision --init-from`: features copied, a new fc8."""
    run, state = converted
    from alexnet.config import TrainConfig
    from alexnet.training.loop import train
    # Two of the three classes: another class count, so the output layer starts afresh.
    src = tv_data[1]
    two = tmp_path / "two"
    for split in ("train", "val"):
        for c in ("ant", "bee"):
            (two / split / c).mkdir(parents=True)
            for f in (src / split / c).iterdir():
                (two / split / c / f.name).write_bytes(f.read_bytes())
    prepare_dataset(two, tmp_path / "data2", size=72, workers=0, progress=False)
    lines = []
    train(TrainConfig(data=tmp_path / "data2", out=tmp_path / "ft", preset="torchvision", epochs=1, batch_size=12,
                        lr=1e-4, device="cpu", workers=0, progress=False, init_from=str(run), log=lines.append))
    assert any("new output layer for 2 classes" in line for line in lines)
    tuned = load_checkpoint(tmp_path / "ft")
    assert tuned["model"]["classifier.6.weight"].shape == (2, 64)
    assert not torch.equal(tuned["model"]["features.0.weight"], state["features.0.weight"])  # it trained
    np.testing.assert_allclose(tuned["mean_image"].numpy()[0, 0], np.array(MEAN01) * 255, rtol=1e-6)


def test_bad_weight_files_are_refused_by_name(tmp_path, capsys, narrow_preset):
    paper = tmp_path / "paper.pth"
    torch.save(build_model("small", num_classes=3).state_dict(), paper)
    with pytest.raises(AlexNetError, match="no classifier.6.weight"):
        convert_torchvision(str(paper), str(tmp_path / "a"))
    state = build_model("torchvision").state_dict()
    state["features.3.weight"] = state["features.3.weight"][:, :4]
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(AlexNetError, match=r"features.3.weight has shape \(24, 4, 5, 5\)"):
        convert_torchvision(str(tmp_path / "shape.pth"), str(tmp_path / "b"))
    del state["features.3.weight"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(AlexNetError, match="missing: features.3.weight"):
        convert_torchvision(str(tmp_path / "missing.pth"), str(tmp_path / "c"))

    class Payload:  # a pickle that would run code if unpickled freely
        def __reduce__(self):
            return (print, ("ran",))
    torch.save({"model": Payload()}, tmp_path / "evil.pth")
    assert main(["convert", "torchvision", str(tmp_path / "evil.pth"), "--out", str(tmp_path / "d")]) == 1
    captured = capsys.readouterr()
    assert "refused, not executed" in captured.err and "ran" not in captured.out
    assert not (tmp_path / "d").exists()


def test_class_count_must_match_the_dataset(tv_data, tmp_path, narrow_preset):
    torch.save(build_model("torchvision", num_classes=5).state_dict(), tmp_path / "w.pth")
    with pytest.raises(AlexNetError, match="5 outputs, dataset .* has 3 classes"):
        convert_torchvision(str(tmp_path / "w.pth"), str(tmp_path / "r"), data=str(tv_data[0]))
    (tmp_path / "names.txt").write_text("a\nb\nc\nd\ne\n")
    convert_torchvision(str(tmp_path / "w.pth"), str(tmp_path / "r"), classes_file=str(tmp_path / "names.txt"),
                        log=lambda line: None)
    assert load_checkpoint(tmp_path / "r")["class_names"] == list("abcde")
    (tmp_path / "names.bin").write_bytes(bytes(range(256)))  # not text: one line, not a traceback
    assert main(["convert", "torchvision", str(tmp_path / "w.pth"), "--out", str(tmp_path / "s"),
                 "--classes", str(tmp_path / "names.bin")]) == 1
    assert not (tmp_path / "s").exists()


def test_export_describes_the_channel_mean(converted, tmp_path):
    run, _ = converted
    assert main(["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "m.ts")]) == 0
    info = json.loads((tmp_path / "m.ts.preprocessing.json").read_text())
    assert "123.675" in info["mean"] and "58.395" in info["mean"]


@pytest.mark.slow  # writes 244 MB with fsync: 20 s on this host's disk
def test_the_full_network_converts_from_a_torchvision_file(tmp_path, full_preset):
    """Once at full size: 61,100,840 parameters in, the same tensors out."""
    torch.manual_seed(2)
    state = build_model("torchvision").state_dict()
    assert sum(v.numel() for v in state.values()) == 61_100_840
    torch.save(state, tmp_path / "alexnet-owt.pth")
    convert_torchvision(str(tmp_path / "alexnet-owt.pth"), str(tmp_path / "run"), log=lambda line: None)
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["model_config"]["input_size"] == 224 and ckpt["classes"][:2] == ["0", "1"]
    assert all(torch.equal(ckpt["model"][k], v) for k, v in state.items())


def test_torch_hub_gives_a_network_that_takes_torchvision_state_dicts(narrow_preset):
    from pathlib import Path
    root = str(Path(__file__).resolve().parents[1])
    torch.manual_seed(4)
    state = build_model("torchvision", num_classes=3).state_dict()
    model = torch.hub.load(root, "alexnet", source="local", preset="torchvision", num_classes=3)
    model.load_state_dict(state)  # strict: every key and shape as torchvision writes them
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
