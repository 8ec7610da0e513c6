"""The readers of untrusted files, fuzzed: any bytes give a result or a clean one-line error.

Images (what `prepare` and `predict` decode), manifests, checkpoints and CIFAR-10 batches, each fed
both arbitrary byte strings and valid files with bytes overwritten. "Clean" means an `AlexNetError`
(or, for images, an `Exception` that `read_error` turns into one line): never another kind of
exception, an interpreter crash, or a hang (each example has a deadline).
"""

import io
import json
import pickle
import shutil
from datetime import timedelta

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from alexnet.config import to_dict
from alexnet.data.cifar import parse_batch
from alexnet.data.images import load_prepared, read_error
from alexnet.data.prepared import PreparedDataset
from alexnet.errors import AlexNetError
from alexnet.model import AlexNet
from alexnet.presets import get_preset
from alexnet.runs.checkpoint import load_checkpoint, save_checkpoint
from alexnet.runs.trained import model_from_checkpoint

EXAMPLES = 60  # per reader and kind of input; 10 properties -> 600 cases per run
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10), derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _mutated(valid: bytes):
    """Valid bytes with up to 8 positions overwritten (or the file cut short)."""
    edits = st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)), min_size=1, max_size=8)

    def apply(args):
        changes, cut = args
        data = bytearray(valid)
        for position, value in changes:
            data[position] = value
        return bytes(data[:cut]) if cut else bytes(data)

    return st.tuples(edits, st.one_of(st.just(0), st.integers(1, len(valid)))).map(apply)


def _image_bytes(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


JPEG, PNG = _image_bytes("JPEG"), _image_bytes("PNG")


def _read_image(data: bytes) -> None:
    try:
        out = load_prepared(io.BytesIO(data), 32)
    except Exception as exc:  # any decoding failure is reported as one line by name
        line = read_error("fuzz.jpg", exc)
        assert line.startswith("fuzz.jpg: ") and "\n" not in line
        return
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


@FUZZ
@given(st.binary(max_size=4096))
def test_image_reader_on_any_bytes(data):
    _read_image(data)


@FUZZ
@given(st.one_of(_mutated(JPEG), _mutated(PNG)))
def test_image_reader_on_damaged_images(data):
    _read_image(data)


# --- checkpoints ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "small.pt"
    model = AlexNet(get_preset("small").model, num_classes=3)
    save_checkpoint(path, {"model": model.state_dict(), "model_config": to_dict(get_preset("small").model),
                           "preset": "small", "classes": ["a", "b", "c"]})
    return path.read_bytes()


def _read_checkpoint(tmp_path, data: bytes) -> None:
    path = tmp_path / "fuzz.pt"
    path.write_bytes(data)
    try:
        model_from_checkpoint(load_checkpoint(path))
    except AlexNetError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)


@FUZZ
@given(data=st.binary(max_size=4096))
def test_checkpoint_reader_on_any_bytes(tmp_path, data):
    _read_checkpoint(tmp_path, data)


@FUZZ
@given(data=st.data())
def test_checkpoint_reader_on_damaged_checkpoints(tmp_path, checkpoint_bytes, data):
    _read_checkpoint(tmp_path, data.draw(_mutated(checkpoint_bytes)))


CHECKPOINT_KEYS = ["model", "model_config", "recipe", "preset", "classes", "class_names", "data_size", "mean_image",
                   "epoch", "history"]
VALUES = st.one_of(JSON_VALUES := st.deferred(lambda: JSON), st.builds(
    lambda shape, v: torch.full(shape, v), st.lists(st.integers(0, 4), max_size=3).map(tuple),
    st.sampled_from([0.0, 1.0, float("nan"), float("inf")])))


def _valid_checkpoint() -> dict:
    model = AlexNet(get_preset("small").model, num_classes=3)
    return {"model": model.state_dict(), "model_config": to_dict(get_preset("small").model),
            "recipe": to_dict(get_preset("small").recipe), "preset": "small", "classes": ["a", "b", "c"],
            "data_size": 32, "mean_image": torch.zeros(32, 32, 3), "epoch": 1, "history": []}


def _read_checkpoint_fully(tmp_path, ckpt: dict) -> None:
    """Load, rebuild the network and its test-time preprocessing: a result, or one clean line."""
    from alexnet.runs.trained import file_test_views
    path = tmp_path / "fields.pt"
    save_checkpoint(path, ckpt)
    try:
        loaded = load_checkpoint(path)
        model_from_checkpoint(loaded)
        file_test_views(loaded, torch.device("cpu"))
    except AlexNetError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)


@FUZZ
@given(key=st.sampled_from(CHECKPOINT_KEYS), value=VALUES)
def test_checkpoint_reader_on_wrong_typed_fields(tmp_path, key, value):
    _read_checkpoint_fully(tmp_path, {**_valid_checkpoint(), key: value})


@FUZZ
@given(part=st.sampled_from(["model_config", "recipe"]), data=st.data(), value=VALUES)
def test_checkpoint_reader_on_wrong_typed_settings(tmp_path, part, data, value):
    ckpt = _valid_checkpoint()
    key = data.draw(st.sampled_from(sorted(ckpt[part])))
    ckpt[part] = {**ckpt[part], key: value}
    _read_checkpoint_fully(tmp_path, ckpt)


def test_checkpoint_with_a_code_payload_is_refused_not_run(tmp_path):
    class Payload:
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    path = tmp_path / "evil.pt"
    torch.save({"format": "alexnet-checkpoint", "version": 1, "model": Payload()}, path)
    with pytest.raises(AlexNetError, match="refused, not executed"):
        load_checkpoint(path)
    assert (tmp_path / "victim").is_dir()


# --- manifests -------------------------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@pytest.fixture(scope="module")
def manifest(shapes_data):
    return json.loads((shapes_data / "manifest.json").read_text())


def _open_with_manifest(shapes_data, folder, text: str) -> None:
    if not folder.exists():
        shutil.copytree(shapes_data, folder)
    (folder / "manifest.json").write_text(text)
    try:
        PreparedDataset(folder)
    except AlexNetError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(data=st.one_of(st.text(max_size=300), JSON.map(json.dumps)))
def test_manifest_reader_on_any_text(shapes_data, tmp_path, data):
    _open_with_manifest(shapes_data, tmp_path / "ds", data)


@FUZZ
@given(key=st.sampled_from(["format", "version", "classes", "size", "splits", "statistics", "mean_image",
                            "counts", "class_names"]), value=JSON)
def test_manifest_reader_on_damaged_fields(shapes_data, tmp_path, manifest, key, value):
    changed = {**manifest, key: value}
    _open_with_manifest(shapes_data, tmp_path / "ds", json.dumps(changed))


# --- CIFAR-10 batches ------------------------------------------------------------------------------

BATCH = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]}, protocol=2)


def _read_batch(data: bytes) -> None:
    try:
        images, labels = parse_batch(data, "fuzz_batch")
    except AlexNetError as exc:
        assert str(exc).startswith("fuzz_batch: ") and "\n" not in str(exc)
        return
    assert images.shape[1:] == (32, 32, 3) and len(labels) == len(images)


@FUZZ
@given(st.one_of(st.binary(max_size=2048), _mutated(BATCH)))
def test_cifar_reader_on_any_and_damaged_bytes(data):
    _read_batch(data)


def test_manifest_cannot_name_files_outside_the_dataset(shapes_data, tmp_path, manifest):
    folder = tmp_path / "ds"
    shutil.copytree(shapes_data, folder)
    for name in ("../train_images.npy", "/etc/hostname", "sub/x.npy"):
        changed = json.loads(json.dumps(manifest))
        changed["splits"]["train"]["images"] = name
        (folder / "manifest.json").write_text(json.dumps(changed))
        with pytest.raises(AlexNetError, match="is not a file name inside the dataset folder"):
            PreparedDataset(folder)
