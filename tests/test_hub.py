"""torch.hub.load on the repository root, offline."""

from pathlib import Path

import pytest
import torch

from alexnet.config import to_dict
from alexnet.errors import AlexNetError
from alexnet.runs.checkpoint import save_checkpoint

ROOT = str(Path(__file__).resolve().parents[1])


def test_hub_builds_a_preset_and_loads_a_run(tmp_path):
    model = torch.hub.load(ROOT, "alexnet", source="local", preset="small", num_classes=7)
    assert model(torch.randn(2, 3, 28, 28)).shape == (2, 7)
    save_checkpoint(tmp_path / "w.pt", {"model": model.state_dict(), "model_config": to_dict(model.cfg),
                                        "preset": "small", "classes": [str(i) for i in range(7)]})
    again = torch.hub.load(ROOT, "alexnet", source="local", weights=str(tmp_path / "w.pt"))
    x = torch.randn(2, 3, 28, 28)
    torch.testing.assert_close(again.eval()(x), model.eval()(x))


def test_a_trained_network_comes_back_ready_for_inference(tmp_path):
    """weights=RUN: eval mode (dropout off), so two calls on one input agree; a fresh preset trains."""
    model = torch.hub.load(ROOT, "alexnet", source="local", preset="small", num_classes=3)
    assert model.training
    save_checkpoint(tmp_path / "w.pt", {"model": model.state_dict(), "model_config": to_dict(model.cfg),
                                        "preset": "small", "classes": ["a", "b", "c"]})
    trained = torch.hub.load(ROOT, "alexnet", source="local", weights=str(tmp_path / "w.pt"))
    x = torch.randn(2, 3, 28, 28)
    assert not trained.training and torch.equal(trained(x), trained(x))


def test_a_preset_or_class_count_beside_weights_must_describe_them(tmp_path):
    """Not ignored in silence: asking for another network than the checkpoint holds is refused."""
    model = torch.hub.load(ROOT, "alexnet", source="local", preset="small", num_classes=3)
    save_checkpoint(tmp_path / "w.pt", {"model": model.state_dict(), "model_config": to_dict(model.cfg),
                                        "preset": "small", "classes": ["a", "b", "c"]})
    weights = str(tmp_path / "w.pt")
    assert torch.hub.load(ROOT, "alexnet", source="local", preset="small", num_classes=3, weights=weights)
    with pytest.raises(AlexNetError, match="holds preset 'small', not 'paper'"):
        torch.hub.load(ROOT, "alexnet", source="local", preset="paper", weights=weights)
    with pytest.raises(AlexNetError, match="has 3 classes, not 1000"):
        torch.hub.load(ROOT, "alexnet", source="local", num_classes=1000, weights=weights)
