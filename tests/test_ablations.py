"""The paper's ablations change exactly the ingredient they name, and `alexnet ablate` compares them."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from alexnet.ablations import ABLATIONS, apply_ablations
from alexnet.cli.main import main
from alexnet.errors import AlexNetError
from alexnet.experiments.ablate import ablation_table, run_ablation
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
    assert "One seed (0): the table cannot show its own noise" in table
    assert (out / "ablation.png").stat().st_size > 1000 and (out / "ablation.svg").is_file()
    import json
    assert json.loads((out / "no-lrn" / "seed-0" / "config.json").read_text())["ablations"] == ["no-lrn"]
    assert main(["train", "--data", str(shapes_data), "--out", str(out / "no-lrn" / "seed-0"), "--preset", "small",
                 "--resume", "--epochs", "2", "--quiet"]) == 1  # resuming without the same --ablate
    assert "resume with the same --ablate flags" in capsys.readouterr().err


def test_ablation_table_shows_the_spread_over_seeds():
    def result(top1, top5):
        return {"top1_error": top1, "top5_error": top5, "images": 40}

    results = {"full": [result(0.30, 0.10), result(0.34, 0.12), result(0.32, 0.08)],
               "no-lrn": [result(0.35, 0.11), result(0.37, 0.13), result(0.33, 0.12)]}
    lines = ablation_table("small", Path("DATA"), results, 2, [0, 1, 2])
    full = next(line for line in lines if line.startswith("| full"))
    no_lrn = next(line for line in lines if line.startswith("| no-lrn"))
    # full: mean 32.00%, sample sd of (30, 34, 32) = 2.0 points, range 30.0-34.0; top-5 (10, 12, 8) likewise
    assert "| 32.00% ± 2.0 (30.0-34.0) |" in full and "| 10.00% ± 2.0 (8.0-12.0) |" in full
    # no-lrn: top-1 mean 35.00% (+3.0 vs 32.00), top-5 mean 12.00% (+2.0 vs 10.00)
    assert "| 35.00% ± 2.0 (33.0-37.0) |" in no_lrn and "| +3.0 pts | +2.0 pts |" in no_lrn
    assert "Over 3 seeds (0, 1, 2)" in lines[2] and "varies by 2.0 points" in lines[2]


def test_ablate_refuses_repeated_seeds(tmp_path):
    with pytest.raises(AlexNetError, match="seeds must be distinct"):
        run_ablation(tmp_path, tmp_path / "out", "small", ["no-lrn"], seeds=[1, 1])


def test_an_ablation_named_twice_is_refused(tmp_path):
    """Applied twice, one-column would halve the kernels again and no-middle-conv drop conv5 as well."""
    from alexnet.config import TrainConfig
    from alexnet.errors import UsageError
    with pytest.raises(AlexNetError, match="--variants must be distinct, got no-lrn one-column no-lrn"):
        run_ablation(tmp_path, tmp_path / "out", "small", ["no-lrn", "one-column", "no-lrn"])
    with pytest.raises(UsageError, match="--ablate no-middle-conv is given twice"):
        TrainConfig(data=tmp_path, out=tmp_path / "run", ablations=("no-middle-conv", "no-lrn", "no-middle-conv"))
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


def test_a_runs_config_carries_its_ablations_and_they_are_not_applied_again(shapes_data, tmp_path, capsys):
    """train --config RUN/config.json takes RUN's network with its ablations already applied (and records
    them); --ablate of one of them again is refused, not applied twice (one-column would quarter conv1)."""
    import json

    from alexnet.runs.checkpoint import load_checkpoint
    first = ["train", "--data", str(shapes_data), "--epochs", "1", "--device", "cpu", "--quiet"]
    assert main([*first, "--out", str(tmp_path / "a"), "--preset", "small", "--ablate", "one-column"]) == 0
    config = str(tmp_path / "a" / "config.json")
    assert json.loads(Path(config).read_text())["ablations"] == ["one-column"]
    capsys.readouterr()
    assert main([*first, "--out", str(tmp_path / "b"), "--config", config, "--ablate", "one-column"]) == 1
    assert "--ablate one-column: the network of 'small' has it already" in capsys.readouterr().err
    assert not (tmp_path / "b" / "last.pt").exists()
    assert main([*first, "--out", str(tmp_path / "c"), "--config", config, "--ablate", "no-lrn"]) == 0
    a, c = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "c")
    assert c["ablations"] == ["one-column", "no-lrn"]
    assert a["model"]["features.conv1.weight"].shape == c["model"]["features.conv1.weight"].shape
    assert main([*first, "--out", str(tmp_path / "c"), "--config", config, "--ablate", "no-lrn", "--resume",
                 "--epochs", "2"]) == 0  # the same ablations on resume: those of the file and the flag
