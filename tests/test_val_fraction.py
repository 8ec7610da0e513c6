"""`prepare --val-fraction`: a class tree without a val split gets one, held out class by class by a hash
of each image's path. Checked against hashlib and PIL here, not against the code's own helpers."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alexnet.data.prepare import prepare_dataset
from alexnet.data.prepared import PreparedDataset
from alexnet.data.sources import open_source
from alexnet.errors import AlexNetError

from conftest import write_image
from test_prepare import expected_pixels

COUNTS = {"ant": 1, "bee": 2, "cat": 7, "dog": 10}   # a class of one image keeps it for training


@pytest.fixture
def class_tree(tmp_path):
    """SRC/<class>/*.png with COUNTS images each, one of them in a sub-folder of its class."""
    rng = np.random.default_rng(1)
    src = tmp_path / "photos"
    for name, count in COUNTS.items():
        for i in range(count):
            where = src / name / ("nested" if i == 3 else "") / f"img{i:02d}.png"
            write_image(where, rng.integers(0, 256, (int(rng.integers(18, 40)), 30, 3), dtype=np.uint8))
    return src


def expected_val(src, fraction):
    """Per class, the round(fraction x n) paths (at least 1, never all; none from a class of one) whose
    SHA-256 of 'class/.../file' is smallest."""
    held = set()
    for name, count in COUNTS.items():
        paths = sorted((src / name).rglob("*.png"))
        k = min(count - 1, max(1, round(count * fraction))) if count >= 2 else 0
        digest = {p: hashlib.sha256(p.relative_to(src).as_posix().encode()).hexdigest() for p in paths}
        held |= set(sorted(paths, key=digest.get)[:k])
    return held


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_each_class_gives_its_share_chosen_by_the_hash_of_its_path(class_tree, fraction):
    source = open_source(class_tree, val_fraction=fraction)
    assert source.layout == "imagefolder" and source.classes == sorted(COUNTS)
    train = {(ref.name, label) for ref, label in source.images["train"]}
    val = {(ref.name, label) for ref, label in source.images["val"]}
    assert {name for name, _ in val} == {str(p) for p in expected_val(class_tree, fraction)}
    assert not train & val
    everything = {(str(p), source.classes.index(p.relative_to(class_tree).parts[0]))
                  for p in class_tree.rglob("*.png")}
    assert train | val == everything   # labels included: each image keeps its class
    assert len(val) == sum(min(n - 1, max(1, round(n * fraction))) for n in COUNTS.values() if n >= 2)


def test_the_split_is_the_same_wherever_the_tree_lies_and_under_train(class_tree, tmp_path):
    before = {str(p.relative_to(class_tree)) for p in expected_val(class_tree, 0.3)}
    assert before == {str(Path(ref.name).relative_to(class_tree))
                      for ref, _ in open_source(class_tree, val_fraction=0.3).images["val"]}
    moved = tmp_path / "elsewhere" / "src"
    (moved / "train").mkdir(parents=True)
    for name in COUNTS:
        (class_tree / name).rename(moved / "train" / name)
    after = open_source(moved, val_fraction=0.3).images["val"]
    assert {str(Path(ref.name).relative_to(moved / "train")) for ref, _ in after} == before


def test_prepared_val_holds_the_held_out_pixels_and_the_manifest_says_so(class_tree, tmp_path):
    out = tmp_path / "data"
    manifest = prepare_dataset(class_tree, out, size=16, workers=0, progress=False, val_fraction=0.3)
    assert manifest["val_held_out"] == 0.3
    ds = PreparedDataset(out)
    held = sorted(expected_val(class_tree, 0.3))   # class then path order, as prepare stores them
    assert len(ds.labels["val"]) == len(held)
    for i, path in enumerate(held):
        np.testing.assert_array_equal(ds.images["val"][i], expected_pixels(path, 16))
        assert ds.classes[ds.labels["val"][i]] == path.relative_to(class_tree).parts[0]
    assert len(ds.labels["train"]) == sum(COUNTS.values()) - len(held)


def alexnet(*args, cwd):
    return subprocess.run([sys.executable, "-m", "alexnet", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_a_class_tree_without_the_flag_is_refused_with_the_flag_named(class_tree, tmp_path):
    done = alexnet("prepare", class_tree, tmp_path / "data", "--size", 16, cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "--val-fraction" in done.stderr and "one class tree" in done.stderr
    assert not (tmp_path / "data").exists()
    done = alexnet("prepare", class_tree, tmp_path / "data", "--size", 16, "--val-fraction", 0.25, "--workers", 0,
                   "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "val held out: 0.25 of each class" in done.stdout
    assert json.loads((tmp_path / "data" / "manifest.json").read_text())["val_held_out"] == 0.25


def test_a_train_split_without_val_is_refused_with_the_flag_named(class_tree, tmp_path):
    (class_tree / "train").mkdir()
    for name in COUNTS:
        (class_tree / name).rename(class_tree / "train" / name)
    with pytest.raises(AlexNetError, match=r"val: no such folder .*hold out part of train/ with --val-fraction"):
        open_source(class_tree)
    assert len(open_source(class_tree, val_fraction=0.3).images["val"]) == len(expected_val(class_tree / "train", 0.3))


@pytest.mark.parametrize("fraction", ["0", "1", "-0.1", "nan"])
def test_fractions_outside_the_open_range_are_refused(class_tree, tmp_path, fraction):
    done = alexnet("prepare", class_tree, tmp_path / "data", "--val-fraction", fraction, cwd=tmp_path)
    assert done.returncode == 2 and "--val-fraction" in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "data").exists()
    assert "[above 0 to 0.9]" in " ".join(alexnet("prepare", "--help", cwd=tmp_path).stdout.split())


def test_a_tree_with_its_own_val_split_or_another_layout_is_refused(random_tree, tmp_path):
    with pytest.raises(AlexNetError, match="val exists, and it is the validation split"):
        open_source(random_tree, val_fraction=0.2)
    with pytest.raises(AlexNetError, match="only for image folders"):
        open_source(random_tree, layout="cifar10", val_fraction=0.2)


def test_the_python_api_holds_the_same_bound_as_the_flag_and_the_manifest(class_tree, tmp_path):
    # 0.95 would have written a manifest that its own schema refuses to open
    with pytest.raises(AlexNetError, match="--val-fraction must be above 0 and at most 0.9, got 0.95"):
        prepare_dataset(class_tree, tmp_path / "data", size=16, workers=0, progress=False, val_fraction=0.95)
    assert not (tmp_path / "data").exists()


def test_a_tree_of_single_images_has_nothing_to_hold_out(tmp_path):
    for name in ("a", "b"):
        write_image(tmp_path / "one" / name / "only.png", np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(AlexNetError, match="no class with two or more images"):
        open_source(tmp_path / "one", val_fraction=0.5)



def test_an_interrupted_preparation_continues_the_same_split(class_tree, tmp_path, monkeypatch):
    import alexnet.data.prepare as prepare_module

    reference = tmp_path / "ref"
    prepare_dataset(class_tree, reference, size=16, workers=0, progress=False, val_fraction=0.3)
    real_work, calls = prepare_module._work, []

    def dies_at_the_fifth(task):
        calls.append(task[0])
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_work(task)

    monkeypatch.setattr(prepare_module, "_work", dies_at_the_fifth)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(class_tree, out, size=16, workers=0, progress=False, val_fraction=0.3)
    assert not (out / "manifest.json").exists() and (out / "train.progress.npz").exists()
    monkeypatch.setattr(prepare_module, "_work", real_work)
    prepare_dataset(class_tree, out, size=16, workers=0, progress=False, val_fraction=0.3)
    for name in ("train_images.npy", "train_labels.npy", "val_images.npy", "val_labels.npy", "mean_image.npy"):
        np.testing.assert_array_equal(np.load(out / name), np.load(reference / name), err_msg=name)


def test_the_dataset_says_where_its_val_split_came_from_and_its_manifest_is_checked(class_tree, tmp_path):
    out = tmp_path / "data"
    prepare_dataset(class_tree, out, size=16, workers=0, progress=False, val_fraction=0.3)
    assert "val images (val held out of one class tree: 0.3 of each class)," in PreparedDataset(out).describe()
    manifest = json.loads((out / "manifest.json").read_text())
    for bad in (0, 1.5, "0.1", True, None, [0.1]):
        (out / "manifest.json").write_text(json.dumps({**manifest, "val_held_out": bad}))
        with pytest.raises(AlexNetError, match="'val_held_out' must be the fraction --val-fraction held out"):
            PreparedDataset(out)
