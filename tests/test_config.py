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


STRICT_CASES = [
    (lambda d: d.__setitem__("epochs_total", 90), "unknown key(s) epochs_total"),
    (lambda d: d["recipe"].__setitem__("flip", "no"), "recipe.flip must be true or false, got 'no'"),
    (lambda d: d["recipe"].__setitem__("batch_size", 50.0), "recipe.batch_size must be a whole number"),
    (lambda d: d["recipe"].__setitem__("batch_size", 10**9), "recipe.batch_size is out of range"),
    (lambda d: d["recipe"].__setitem__("lr", 1e308), "recipe.lr is out of range"),
    (lambda d: d["recipe"].__setitem__("frozen_bias_layers", ["layer7"]), "recipe.frozen_bias_layers is out of range"),
    (lambda d: d.__setitem__("name", 7), "'name' and 'description' must be strings"),
    (lambda d: d["model"].__setitem__("fc_widths", []), "model.fc_widths is out of range"),
    (lambda d: d["model"].__setitem__("fc_widths", [10**9, 10**12]), "model.fc_widths is out of range"),
    (lambda d: d["model"]["convs"][0].__setitem__("out_channels", 10**9), "model.convs.out_channels is out of range"),
    (lambda d: d["model"].__setitem__("dropout", "0.5"), "model.dropout must be a number"),
    (lambda d: d["model"].__setitem__("lrn_k", 0.0), "model.lrn_k is out of range: 0.0 (a number above 0"),
]


@pytest.mark.parametrize("change,message", STRICT_CASES, ids=[str(i) for i in range(len(STRICT_CASES))])
def test_every_field_of_a_configuration_file_has_its_exact_type_and_range(tmp_path, change, message):
    d = json.loads(json.dumps(preset_to_dict(PRESETS["small"])))
    change(d)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(d))
    with pytest.raises(AlexNetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        preset_from_file(path)


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "nested too deeply"),
    (lambda p: p.write_bytes(b" " * (2 << 20)), "larger than 1024 KiB"),
    (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
])
def test_configuration_files_that_would_break_the_reader_are_one_line(tmp_path, make, message):
    path = tmp_path / "c.json"
    make(path)
    with pytest.raises(AlexNetError, match=message):
        preset_from_file(path)


def test_config_layers_and_sizes_the_data_cannot_give_are_refused(shapes_data, tmp_path, capsys):
    """shapes_data stores 32 px images: crops of 28. A file asking for 100, or naming a layer the network
    lacks, is refused before the run folder exists."""
    base = preset_to_dict(PRESETS["small"])
    for change, text in ((lambda d: d["model"].__setitem__("input_size", 100),
                          "model.input_size is 100, but .* gives? 28 px crops .*; set model.input_size to 28 in it"),
                         (lambda d: d["recipe"].__setitem__("frozen_bias_layers", ["fc9"]),
                          "frozen_bias_layers names fc9, which this network lacks")):
        d = json.loads(json.dumps(base))
        change(d)
        (tmp_path / "c.json").write_text(json.dumps(d))
        assert main(["train", "--data", str(shapes_data), "--config", str(tmp_path / "c.json"), "--out",
                     str(tmp_path / "run"), "--device", "cpu", "--quiet"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and __import__("re").search(text, err[0]), err
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv,message", [
    (["train", "--data", "D", "--out", "O", "--epochs", str(10**30)], "--epochs must be at most 100000"),
    (["train", "--data", "D", "--out", "O", "--batch-size", str(10**12)], "--batch-size must be at most 1048576"),
    (["train", "--data", "D", "--out", "O", "--warmup-epochs", str(10**20)], "--warmup-epochs must be at most"),
    (["train", "--data", "D", "--out", "O", "--lr", "1e308"], "--lr must be at most 100"),
    (["relu-tanh", "--data", "D", "--out", "O", "--lr-tanh", "nan"], "argument --lr-tanh: must be a number above 0"),
    (["relu-tanh", "--data", "D", "--out", "O", "--lr-relu", "-1"], "argument --lr-relu: must be a number above 0"),
    (["figures", "R", "--out", "O", "--seed", "-5"], "argument --seed: must be at least 0"),
    (["retrieval", "R", "--out", "O", "--bits", "1000000"], "argument --bits: must be at most 4096"),
    (["train", "--data", "D", "--out", "O", "--preset", "Paper"], "argument --preset: invalid choice: 'Paper' "
                                                                  "(choose from 'paper'"),
])
def test_every_numeric_flag_is_bounded_and_every_flag_error_is_one_line(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0] and err[0].startswith("alexnet"), err
