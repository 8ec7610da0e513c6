"""Presets as files: `alexnet config show`, an edited copy trained with `--config`, bad files refused."""

import json

import pytest

from alexnet.cli.main import main
from alexnet.errors import AlexNetError
from alexnet.presets import PRESETS, preset_from_file, preset_to_dict


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips_through_a_file(name, tmp_path):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(preset_to_dict(PRESETS[name])))
    assert preset_from_file(path) == PRESETS[name]


def test_show_edit_and_train_from_the_file(shapes_data, tmp_path, capsys):
    assert main(["config", "show", "small"]) == 0
    config = json.loads(capsys.readouterr().out)
    config["name"], config["model"]["fc_widths"], config["recipe"]["batch_size"] = "narrow", [64, 32], 50
    path = tmp_path / "narrow.json"
    path.write_text(json.dumps(config))
    run = tmp_path / "run"
    assert main(["train", "--data", str(shapes_data), "--config", str(path), "--out", str(run), "--epochs", "1",
                 "--device", "cpu", "--quiet"]) == 0
    saved = json.loads((run / "config.json").read_text())  # the run's resolved configuration
    assert saved["preset"] == "narrow" and saved["model_config"]["fc_widths"] == [64, 32]
    assert saved["recipe"]["batch_size"] == 50 and saved["recipe"]["epochs"] == 1
    # the saved file itself starts a run with the same network
    assert preset_from_file(run / "config.json").model.fc_widths == (64, 32)


def test_bad_configuration_files(tmp_path, capsys):
    good = preset_to_dict(PRESETS["small"])
    cases = [("{not json", "not a JSON configuration"),
             (json.dumps({**good, "recipe": {**good["recipe"], "learning_rate": 0.1}}), "unknown setting(s) learning_rate"),
             (json.dumps({**good, "recipe": {**good["recipe"], "lr": -1}}), "recipe.lr is out of range"),
             (json.dumps({**good, "model": {**good["model"], "layout": "keras"}}), "model.layout is out of range"),
             (json.dumps({**good, "model": {**good["model"], "input_std": [1, 0, 1]}}), "model.input_std is out of range"),
             (json.dumps({"name": "x"}), "needs a 'model'")]
    for text, message in cases:
        path = tmp_path / "c.json"
        path.write_text(text)
        with pytest.raises(AlexNetError, match=message.replace("(", r"\(").replace(")", r"\)")):
            preset_from_file(path)
    assert main(["train", "--data", "D", "--out", "O", "--config", "c.json", "--preset", "small"]) == 1
    assert "give --preset or --config, not both" in capsys.readouterr().err
