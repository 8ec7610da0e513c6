"""The paper's ablations change exactly the ingredient they name, and `alexnet ablate` compares them."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from alexnet.ablations import ABLATIONS, apply_ablations
from alexnet.cli.main import main
from alexnet.errors import AlexNetError
from alexnet.model import AlexNet
from alexnet.model.lrn import LocalResponseNorm
from alexnet.presets import get_preset


def _model(preset):
    with torch.device("meta"):  # structure only: no memory, no initialisation cost
        return AlexNet(preset.model, num_classes=1000)


def convs(model):
    return [m for m in model.features if isinstance(m, nn.Conv2d)]


def test_each_ablation_removes_its_ingredient():
    paper = get_preset("paper")

    one = _model(apply_ablations(paper, ["one-column"]))
    # Footnote 2: half the kernels in conv1-conv4, conv5 and the fc layers at full size, no groups.
    assert [c.out_channels for c in convs(one)] == [48, 128, 192, 192, 256]
    assert all(c.groups == 1 for c in convs(one)) and one.classifier.fc6.out_features == 4096
    assert all(m.groups == 1 for m in one.features if isinstance(m, LocalResponseNorm))

    assert not any(isinstance(m, LocalResponseNorm) for m in _model(apply_ablations(paper, ["no-lrn"])).features)
    pools = [m for m in _model(apply_ablations(paper, ["no-overlap"])).features if isinstance(m, nn.MaxPool2d)]
    assert all(p.kernel_size == 2 and p.stride == 2 for p in pools)
    assert apply_ablations(paper, ["no-pca"]).recipe.pca_std == 0 and paper.recipe.pca_std == 0.1
    assert not any(isinstance(m, nn.Dropout) for m in _model(apply_ablations(paper, ["no-dropout"])).classifier)
    fewer = _model(apply_ablations(paper, ["no-middle-conv"]))
    assert [c.out_channels for c in convs(fewer)] == [96, 256, 384, 256]
    assert fewer(torch.zeros(1, 3, 224, 224, device="meta")).shape == (1, 1000)
    with pytest.raises(AlexNetError, match="unknown ablation"):
        apply_ablations(paper, ["no-relu"])


def test_every_ablation_builds_for_small_and_paper():
    for name in ABLATIONS:
        for preset in ("small", "paper"):
            p = apply_ablations(get_preset(preset), [name])
            with torch.device("meta"):
                AlexNet(replace(p.model), 10)


def test_ablate_writes_a_table_beside_the_paper(shapes_data, tmp_path, capsys):
    out = tmp_path / "abl"
    assert main(["ablate", "--data", str(shapes_data), "--out", str(out), "--preset", "small",
                 "--variants", "no-lrn", "--epochs", "1", "--device", "cpu", "--quiet"]) == 0
    table = (out / "ablation.md").read_text()
    assert "| full | nothing |" in table and "| no-lrn | no local response normalisation |" in table
    assert "LRN reduces top-1 / top-5 error by 1.4% / 1.2%" in table
    import json
    assert json.loads((out / "no-lrn" / "config.json").read_text())["ablations"] == ["no-lrn"]
    assert main(["train", "--data", str(shapes_data), "--out", str(out / "no-lrn"), "--preset", "small",
                 "--resume", "--epochs", "2", "--quiet"]) == 1  # resuming without the same --ablate
    assert "resume with the same --ablate flags" in capsys.readouterr().err
