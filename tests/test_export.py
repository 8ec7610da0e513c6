"""`alexnet export`: each format gives back the network's function; the preprocessing travels with it."""

import importlib.util
import json

import numpy as np
import pytest
import torch

from alexnet.cli.main import main
from alexnet.errors import AlexNetError
from alexnet.export.export import export_run
from alexnet.runs.checkpoint import load_checkpoint
from alexnet.runs.trained import model_from_checkpoint
from alexnet.config import TrainConfig
from alexnet.training.loop import train


def _has(*names):
    return all(importlib.util.find_spec(n) is not None for n in names)


@pytest.fixture(scope="module")
def run(shapes_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    train(TrainConfig(data=shapes_data, out=out, preset="small", epochs=1, batch_size=32, device="cpu",
                        workers=0, progress=False, log=lambda line: None))
    ckpt = load_checkpoint(out)
    return str(out), ckpt, model_from_checkpoint(ckpt).eval()


def _check_sidecars(path, ckpt):
    info = json.loads(path.with_name(path.name + ".preprocessing.json").read_text())
    assert info["stored_size"] == 32 and info["crop"] == 28 and info["classes"] == list(ckpt["classes"])
    mean = np.load(path.with_name(info["mean_image"]), allow_pickle=False)
    np.testing.assert_array_equal(mean, ckpt["mean_image"].numpy())


def test_torchscript_computes_the_same_function(run, tmp_path):
    folder, ckpt, model = run
    path = tmp_path / "m.ts"
    export_run(folder, "torchscript", path, log=lambda line: None)
    loaded = torch.jit.load(str(path))
    x = torch.randn(5, 3, 28, 28) * 50
    torch.testing.assert_close(loaded(x), model(x), rtol=1e-5, atol=1e-5)
    _check_sidecars(path, ckpt)


@pytest.mark.skipif(not _has("safetensors"), reason="safetensors not installed (the [export] extra)")
def test_safetensors_holds_every_weight(run, tmp_path):
    from safetensors.torch import load_file

    folder, ckpt, model = run
    path = tmp_path / "m.safetensors"
    assert main(["export", folder, "--format", "safetensors", "--out", str(path)]) == 0
    loaded = load_file(str(path))
    assert set(loaded) == set(model.state_dict())
    for name, value in model.state_dict().items():
        assert torch.equal(loaded[name], value), name
    _check_sidecars(path, ckpt)


@pytest.mark.skipif(not _has("safetensors"), reason="safetensors not installed (the [export] extra)")
def test_an_exported_file_loads_into_a_ready_network_by_itself(run, tmp_path):
    """What a deployer has is the file and its sidecars: one call rebuilds the network (any crop size,
    the configuration travels in the metadata), the same function as the run's; files are 0644-like."""
    import os
    import stat

    import alexnet
    folder, ckpt, model = run
    path = tmp_path / "m.safetensors"
    export_run(folder, "safetensors", path, log=lambda line: None)
    loaded = alexnet.load_exported(path)
    x = torch.randn(3, 3, 28, 28) * 50
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    info = json.loads(path.with_name(path.name + ".preprocessing.json").read_text())
    from alexnet.config import model_config_from_dict
    assert model_config_from_dict(info["model_config"]) == model_config_from_dict(ckpt["model_config"])
    assert info["num_classes"] == len(ckpt["classes"])
    assert any("DCT scales" in step for step in info["steps"])
    mask = os.umask(0)
    os.umask(mask)
    for p in (path, path.with_name(path.name + ".preprocessing.json")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask  # the safetensors file too, not 0600
    with pytest.raises(alexnet.AlexNetError, match="no such file"):
        alexnet.load_exported(tmp_path / "none.safetensors")
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(64))  # another kind of file
    with pytest.raises(alexnet.AlexNetError, match="model.onnx: not a loadable alexnet export"):
        alexnet.load_exported(tmp_path / "model.onnx")


@pytest.mark.skipif(not _has("onnx", "onnxscript", "onnxruntime"), reason="onnx, onnxscript, onnxruntime not all installed")
def test_onnx_matches_pytorch_in_onnxruntime_for_any_batch(run, tmp_path):
    import onnxruntime

    folder, ckpt, model = run
    path = tmp_path / "m.onnx"
    export_run(folder, "onnx", path, log=lambda line: None)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    for batch in (1, 3):  # the batch dimension is dynamic
        x = torch.randn(batch, 3, 28, 28) * 50
        (got,) = session.run(None, {"images": x.numpy()})
        np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-4, atol=1e-4)
    _check_sidecars(path, ckpt)


def test_bad_format_and_no_partial_files(run, tmp_path):
    folder, _, _ = run
    with pytest.raises(AlexNetError, match="--format must be one of"):
        export_run(folder, "pickle", tmp_path / "m.pkl")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not _has("tensorboard"), reason="tensorboard not installed (the [tensorboard] extra)")
def test_tensorboard_logs_scalars_lr_and_kernels(shapes_data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    train(TrainConfig(data=shapes_data, out=out, preset="small", epochs=1, batch_size=32, device="cpu",
                        workers=0, tensorboard=True, progress=False, log=lambda line: None))
    events = EventAccumulator(str(out / "tensorboard")).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"training/train_loss", "training/lr", "errors/val_top1_error"} <= scalars
    assert events.Scalars("training/lr")[0].value == pytest.approx(0.005)
    assert "conv1_kernels" in events.Tags()["images"]
    assert (out / "metrics.csv").exists()
