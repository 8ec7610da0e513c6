"""Issue 25: nothing corrupted used in silence. The manifest held to one strict schema, labels checked by
digest on every open, each JPEG checked against its CRC-32 at read and the index's runs of bytes at open;
each hostile input built here, refused in one line that names the culprit."""

import json
import os
import shutil
import stat
import zlib
from pathlib import Path

import numpy as np
import pytest

from alexnet.cli.main import main
from alexnet.data.prepare import prepare_dataset
from alexnet.data.prepared import PreparedDataset, file_sha256, verify_dataset
from alexnet.errors import AlexNetError


@pytest.fixture(scope="module")
def jpeg_data(shapes_src, tmp_path_factory):
    out = tmp_path_factory.mktemp("integrity") / "jpeg"
    prepare_dataset(shapes_src, out, size=32, workers=0, progress=False, storage="jpeg")
    return out


def _copy(data, tmp_path):
    return shutil.copytree(data, tmp_path / "d")


def _edit_manifest(data, change):
    manifest = json.loads((data / "manifest.json").read_text())
    change(manifest)
    (data / "manifest.json").write_text(json.dumps(manifest))


MANIFEST_CASES = [
    (lambda m: m.__setitem__("classes", "abcd"), "'classes' must be a list of distinct"),
    (lambda m: m["classes"].__setitem__(1, m["classes"][0]), "'classes' must be a list of distinct"),
    (lambda m: m["classes"].__setitem__(1, 7), "'classes' must be a list of distinct"),
    (lambda m: m["classes"].__setitem__(1, ["nested"]), "'classes' must be a list of distinct"),
    (lambda m: m.__setitem__("class_names", m["classes"][:2]), "'class_names' must name each of the 4 classes"),
    (lambda m: m.__setitem__("num_classes", 8), "'num_classes' is 8, but 'classes' names 4"),
    (lambda m: m.__setitem__("size", 64), "expected uint8 array of shape"),
    (lambda m: m.__setitem__("size", "32"), "'size' must be a whole number of pixels"),
    (lambda m: m["splits"]["train"].__setitem__("count", "600"), "splits.train: 'count' must be a whole number"),
    (lambda m: m["splits"]["val"].__setitem__("count", True), "splits.val: 'count' must be a whole number"),
    (lambda m: m["statistics"].__setitem__("mean_rgb", [float("nan"), 1, 2]), "statistics.mean_rgb must be 3 finite"),
    (lambda m: m["splits"]["train"].__setitem__("skipped", 5), "splits.train: 'skipped' must be a list"),
    (lambda m: m["splits"]["train"]["per_class"].__setitem__(0, 1), "'per_class' must be 4 whole numbers adding up"),
    (lambda m: m["splits"].__setitem__("extra", {}), "'splits' must hold 'train' and 'val'"),
]


@pytest.mark.parametrize("change,message", MANIFEST_CASES, ids=[str(i) for i in range(len(MANIFEST_CASES))])
def test_manifest_fields_of_the_wrong_kind_are_refused_on_open_and_by_verify(shapes_data, tmp_path, capsys, change,
                                                                            message):
    data = _copy(shapes_data, tmp_path)
    _edit_manifest(data, change)
    with pytest.raises(AlexNetError, match=message):
        PreparedDataset(data)
    assert main(["prepare", str(data), "--verify"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alexnet: error: ") and message in err[0]


def test_labels_permuted_in_their_type_and_range_are_refused_on_open(shapes_data, tmp_path):
    data = _copy(shapes_data, tmp_path)
    labels = np.load(data / "train_labels.npy")
    np.save(data / "train_labels.npy", np.random.default_rng(0).permutation(labels))  # same type, range, counts
    with pytest.raises(AlexNetError, match=r"train_labels.npy: checksum does not match the manifest .* --verify"):
        PreparedDataset(data)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--preset", "small", "--quiet"]) == 1
    assert not (tmp_path / "run").exists()


def _flip_a_byte_of_image(data, split, i):
    index = np.load(data / f"{split}_index.npy")
    shard, offset, length, _ = index[i]
    path = data / f"{split}_images.{shard:03d}.jpgs"
    raw = bytearray(path.read_bytes())
    raw[offset + length // 2] ^= 0x5A  # in the entropy-coded middle: often still decodes, to other pixels
    path.write_bytes(bytes(raw))
    _edit_manifest(data, lambda m: m["splits"][split].__setitem__("shards_sha256", [file_sha256(path)]))


def test_a_changed_jpeg_is_named_at_read_not_decoded(jpeg_data, tmp_path, capsys):
    data = _copy(jpeg_data, tmp_path)
    _flip_a_byte_of_image(data, "train", 5)
    dataset = PreparedDataset(data)  # opening reads no image
    np.testing.assert_array_equal(dataset.read("train", [4]), PreparedDataset(jpeg_data).read("train", [4]))
    with pytest.raises(AlexNetError, match=r"train_images.000.jpgs: train image 5 is corrupt \(its bytes do not "
                                           r"match their checksum\); `alexnet prepare --verify .*d` checks"):
        dataset.read("train", [5])
    with pytest.raises(AlexNetError, match="train image 5 is corrupt"):
        verify_dataset(data)
    # through training, the loader in a worker process: still one line
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--preset", "small", "--epochs", "1",
                 "--workers", "1", "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "train image 5 is corrupt" in err[0], err


@pytest.mark.parametrize("corrupt,message", [
    (lambda index: index[3].__setitem__(2, 0), "image 3 has no bytes in the index"),
    (lambda index: index[3].__setitem__(1, index[2][1] + 10), "share bytes in their shard"),
    (lambda index: index[4].__setitem__(slice(0, 3), index[2][:3]), "share bytes in their shard"),
])
def test_index_rows_that_overlap_or_are_empty_are_refused_on_open(jpeg_data, tmp_path, corrupt, message):
    data = _copy(jpeg_data, tmp_path)
    index = np.load(data / "train_index.npy")
    corrupt(index)
    np.save(data / "train_index.npy", index)
    _edit_manifest(data, lambda m: m["splits"]["train"].__setitem__("images_sha256", file_sha256(data / "train_index.npy")))
    with pytest.raises(AlexNetError, match=rf"train_index.npy: .*{message}.*--verify"):
        PreparedDataset(data)


def test_the_crc_is_of_the_stored_bytes(jpeg_data):
    dataset = PreparedDataset(jpeg_data)
    index = dataset.images["val"].index
    assert index.shape[1] == 4
    assert all(zlib.crc32(dataset.images["val"].encoded(i)) == index[i, 3] for i in range(len(index)))


# --- checkpoints -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(shapes_data, tmp_path_factory):
    from alexnet.config import TrainConfig
    from alexnet.training.loop import train
    out = tmp_path_factory.mktemp("integrity_run") / "run"
    train(TrainConfig(data=shapes_data, out=out, preset="small", epochs=1, batch_size=64, device="cpu", workers=0,
                      progress=False, log=lambda line: None))
    return out


def _raw(path):
    import torch
    return torch.load(path, weights_only=True)


def _readers(run_path, data, out):
    """Every command that reads a checkpoint, on `run_path`."""
    return [["evaluate", str(run_path), "--data", str(data), "--tta", "center"],
            ["predict", str(run_path), str(out / "img.png")],
            ["export", str(run_path), "--format", "safetensors", "--out", str(out / "model.safetensors")],
            ["train", "--data", str(data), "--out", str(out / "ft"), "--preset", "small", "--epochs", "1",
             "--init-from", str(run_path), "--quiet"]]


def _refused_by_every_reader(run_path, data, tmp_path, capsys, message):
    from PIL import Image
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "img.png")
    for argv in _readers(run_path, data, tmp_path):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)
    assert not (tmp_path / "model.safetensors").exists() and not (tmp_path / "ft" / "last.pt").exists()


def test_a_changed_weight_is_refused_by_every_reader(run, shapes_data, tmp_path, capsys):
    """One weight nudged, the rest of the file as written (the digest kept): evaluate, predict, export and
    --init-from all refuse it, where before they used the changed weight with exit 0."""
    import torch
    ckpt = _raw(run / "last.pt")
    ckpt["model"]["features.conv1.weight"][0, 0, 0, 0] += 1e-3
    torch.save(ckpt, tmp_path / "changed.pt")
    _refused_by_every_reader(tmp_path / "changed.pt", shapes_data, tmp_path, capsys,
                             "do not match the digest written with them")


def test_a_flipped_byte_in_the_file_is_refused(run, tmp_path):
    raw = bytearray((run / "last.pt").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (tmp_path / "flipped.pt").write_bytes(bytes(raw))
    from alexnet.runs.checkpoint import load_checkpoint
    with pytest.raises(AlexNetError, match="refused|not a readable alexnet checkpoint"):
        load_checkpoint(tmp_path / "flipped.pt")


def test_class_names_permuted_inside_are_refused(run, shapes_data, tmp_path, capsys):
    import torch
    ckpt = _raw(run / "last.pt")
    ckpt["class_names"] = list(reversed(ckpt["class_names"]))
    ckpt["classes"] = list(reversed(ckpt["classes"]))
    torch.save(ckpt, tmp_path / "names.pt")
    _refused_by_every_reader(tmp_path / "names.pt", shapes_data, tmp_path, capsys, "digest written with them")


@pytest.mark.parametrize("change,message", [
    (lambda m: m.__setitem__("features.conv1.weight", m["features.conv1.weight"].long()),
     "weights features.conv1.weight are torch.int64, not float32"),
    (lambda m: m.__setitem__("features.conv1.weight", m["features.conv1.weight"].double()),
     "weights features.conv1.weight are torch.float64, not float32"),
    (lambda m: m["classifier.fc7.weight"].__setitem__((0, 0), 3e8),
     "weights classifier.fc7.weight hold values of absurd magnitude (up to 3e+08)"),
])
def test_weights_of_the_wrong_dtype_or_absurd_size_are_refused_by_name(run, tmp_path, change, message):
    """Rewritten through save_checkpoint (a consistent digest): the fields themselves are refused."""
    from alexnet.runs.checkpoint import load_checkpoint, save_checkpoint
    ckpt = load_checkpoint(run)
    change(ckpt["model"])
    save_checkpoint(tmp_path / "w.pt", ckpt)
    with pytest.raises(AlexNetError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        load_checkpoint(tmp_path / "w.pt")


def test_a_class_list_that_disagrees_with_the_output_layer_is_refused(run, tmp_path):
    from alexnet.runs.checkpoint import load_checkpoint, save_checkpoint
    ckpt = load_checkpoint(run)
    ckpt["classes"], ckpt["class_names"] = ckpt["classes"][:3], ckpt["class_names"][:3]
    save_checkpoint(tmp_path / "c.pt", ckpt)
    with pytest.raises(AlexNetError, match="output layer classifier.fc8.weight has 4 outputs, but 'classes' names 3"):
        load_checkpoint(tmp_path / "c.pt")


# --- nothing overwritten that is not ours ---------------------------------------------------------------
def test_prepare_refuses_a_folder_holding_files_that_are_not_its_own(shapes_src, tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "train_labels.npy").write_text("a user's file that happens to share a name with ours")
    assert main(["prepare", str(shapes_src), str(out), "--size", "32", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty, and not an unfinished `alexnet prepare`" in err[0]
    assert (out / "train_labels.npy").read_text().startswith("a user's file") and sorted(os.listdir(out)) == [
        "train_labels.npy"]


def test_a_second_prepare_into_the_same_folder_is_refused(shapes_src, tmp_path, capsys):
    from alexnet.files import FolderLock
    out = tmp_path / "data"
    out.mkdir()
    held = FolderLock(out, "this dataset folder").acquire()  # as a first prepare, still running, holds it
    try:
        assert main(["prepare", str(shapes_src), str(out), "--size", "32", "--quiet"]) == 1
    finally:
        held.release()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "this dataset folder is already in use by process" in err[0]
    assert not (out / "manifest.json").exists()
    # and once it is free, the same command works, and leaves no marker behind
    assert main(["prepare", str(shapes_src), str(out), "--size", "32", "--quiet", "--workers", "0"]) == 0
    assert (out / "manifest.json").exists() and not (out / ".alexnet-prepare").exists()


def test_export_replaces_an_existing_file_only_with_force_and_never_a_device(run, tmp_path, capsys):
    target = tmp_path / "model.safetensors"
    target.write_text("someone else's file")
    assert main(["export", str(run), "--format", "safetensors", "--out", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists; pass --force to replace it" in err[0]
    assert target.read_text() == "someone else's file" and sorted(os.listdir(tmp_path)) == ["model.safetensors"]
    assert main(["export", str(run), "--format", "safetensors", "--out", str(target), "--force"]) == 0
    assert target.stat().st_size > 1000
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)  # stands for a device node: not a regular file
    assert main(["export", str(run), "--format", "safetensors", "--out", str(pipe), "--force"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a regular file; refused" in err[-1]
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)


def test_report_replaces_its_own_page_but_another_file_only_with_force(run, tmp_path, capsys):
    target = tmp_path / "index.html"
    target.write_text("<html>someone's home page</html>")
    assert main(["report", str(run), "--out", str(target), "--device", "cpu", "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "exists and is not a report of ours; pass --force" in err
    assert out == "" and target.read_text() == "<html>someone's home page</html>"   # refused before any work
    assert main(["report", str(run), "--out", str(target), "--device", "cpu", "--quiet", "--force"]) == 0
    first = target.read_text()
    assert '<meta name="generator" content="alexnet report">' in first
    target.write_text(first.replace("<h1>", "<h1>edited "))
    assert main(["report", str(run), "--out", str(target), "--device", "cpu", "--quiet"]) == 0   # ours: replaced
    assert "<h1>edited " not in target.read_text() and sorted(os.listdir(tmp_path)) == ["index.html"]


def test_figures_replace_their_own_pictures_but_a_users_file_only_with_force(run, tmp_path, capsys):
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "curves.svg").write_text("<svg>a user's own drawing</svg>")
    argv = ["figures", str(run), "--out", str(folder), "--device", "cpu", "--quiet", "--pool", "20"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "curves.svg: exists and is not a picture of ours; pass --force" in err
    assert out == "" and sorted(os.listdir(folder)) == ["curves.svg"]   # refused before any drawing
    assert main([*argv, "--force"]) == 0
    assert "a user's own drawing" not in (folder / "curves.svg").read_text()
    assert main(argv) == 0   # its own pictures: replaced without asking
    assert sorted(os.listdir(folder)) == ["curves.png", "curves.svg", "kernels.png", "neighbors.png", "predictions.png"]


def test_the_atomic_writer_never_renames_over_something_that_is_not_a_file(tmp_path):
    from alexnet.files import write_text
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(AlexNetError, match="exists and is not a regular file"):
        write_text(link, "x")
    assert link.is_symlink() and not (tmp_path / "elsewhere").exists()


def test_safetensors_onto_a_full_disk_is_one_line(run, tmp_path, capsys, monkeypatch):
    import safetensors.torch

    def full(*args, **kwargs):
        raise safetensors.SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "m.safetensors")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not write export" in err[0] and "StorageFull" in err[0]
    assert os.listdir(tmp_path) == []


# --- hostile sources ---------------------------------------------------------------------------------------
def test_a_link_leaving_its_class_folder_is_skipped_and_reported(tmp_path, capsys):
    from alexnet.data.sources import open_source
    rng = np.random.default_rng(0)
    from PIL import Image
    for split in ("train", "val"):
        for cls in ("a", "b"):
            folder = tmp_path / "src" / split / cls
            folder.mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (tmp_path / "src" / "train" / "a" / "up").symlink_to(tmp_path / "src" / "train")   # an ancestor
    (tmp_path / "src" / "train" / "a" / "other.png").symlink_to(tmp_path / "src" / "train" / "b" / "0.png")
    (tmp_path / "src" / "train" / "a" / "sub").symlink_to(tmp_path / "src" / "train" / "a")  # stays inside: read
    source = open_source(tmp_path / "src")
    labels = [label for _, label in source.images["train"]]
    assert labels.count(0) == 2 and labels.count(1) == 2  # class a kept its own two images, no more
    assert sorted(p.name for p in source.left_out.links) == ["other.png", "up"]
    assert main(["prepare", str(tmp_path / "src"), str(tmp_path / "data"), "--size", "8", "--workers", "0",
                 "--quiet"]) == 0
    assert "2 symbolic link(s) lead out of their class folder and are not followed" in capsys.readouterr().out


def test_a_garbage_cifar_archive_is_one_line(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b garbage, not gzip data" * 100)
    assert main(["prepare", str(tmp_path / "src"), str(tmp_path / "data"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cifar-10-python.tar.gz: cannot read archive" in err[0], err


def test_a_cifar_label_too_large_for_int64_is_one_line():
    import pickle
    from alexnet.data.cifar import parse_batch
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2**70]}
    with pytest.raises(AlexNetError, match="not a CIFAR-10 batch .*not whole numbers|not a CIFAR-10 batch"):
        parse_batch(pickle.dumps(batch), "x")


def test_report_include_of_a_binary_file_is_one_line(run, tmp_path, capsys):
    (tmp_path / "table.md").write_bytes(bytes(range(256)) * 4)
    assert main(["report", str(run), "--out", str(tmp_path / "r.html"), "--include", str(tmp_path / "table.md"),
                 "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a text file" in err[0] and not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("name, argv", [
    ("ablation.md", ["ablate", "--data", "{data}", "--out", "{out}", "--preset", "small", "--variants", "no-lrn",
                     "--epochs", "1", "--device", "cpu", "--quiet"]),
    ("ablation.svg", ["ablate", "--data", "{data}", "--out", "{out}", "--preset", "small", "--variants", "no-lrn",
                      "--epochs", "1", "--device", "cpu", "--quiet"]),
    ("relu_tanh.csv", ["relu-tanh", "--data", "{data}", "--out", "{out}", "--epochs", "1", "--device", "cpu",
                       "--quiet"]),
    ("relu_tanh.md", ["relu-tanh", "--data", "{data}", "--out", "{out}", "--epochs", "1", "--device", "cpu",
                      "--quiet"]),
    ("retrieval.md", ["retrieval", "{run}", "--out", "{out}", "--bits", "8", "--pool", "50", "--queries", "5",
                      "--epochs", "1", "--device", "cpu", "--quiet"]),
])
def test_experiments_refuse_a_users_file_of_their_outputs_name_before_any_work(name, argv, shapes_data, run,
                                                                              tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / name).write_text("a user's notes\n")
    argv = [a.format(data=shapes_data, out=out, run=run) for a in argv]
    assert main(argv) == 1
    printed, err = capsys.readouterr()
    assert err.count("\n") == 1 and f"{name}: exists and is not a " in err and "of ours; pass --force" in err
    assert sorted(os.listdir(out)) == [name] and (out / name).read_text() == "a user's notes\n"  # nothing trained


def test_experiments_replace_their_own_outputs_and_with_force_a_users(shapes_data, run, tmp_path):
    """retrieval (the quickest) end to end; each experiment's marks against what its writer writes."""
    from alexnet.experiments import ablate, relu_tanh, retrieval
    from alexnet.files import refuse_to_replace_foreign_outputs
    out = tmp_path / "results"
    argv = ["retrieval", str(run), "--out", str(out), "--bits", "8", "--pool", "50", "--queries", "5", "--epochs", "1",
            "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    assert main(argv) == 0  # its own table: replaced without asking
    (out / "retrieval.md").write_text("a user's notes\n")
    assert main([*argv, "--force"]) == 0 and (out / "retrieval.md").read_text().startswith(retrieval.TITLE)
    refuse_to_replace_foreign_outputs(out, retrieval.OUTPUTS)
    lines = ablate.ablation_table("small", Path("D"), {"full": [{"top1_error": 0.5, "top5_error": 0.1, "images": 9}]},
                                  1, [0])
    assert lines[0].startswith(ablate.TITLE)
    result = relu_tanh.run_relu_tanh(shapes_data, tmp_path / "f1", epochs=1, batch_size=64, device="cpu",
                                     progress=False, log=lambda line: None)
    assert sorted(p.name for p in result["files"]) == sorted(relu_tanh.OUTPUTS)
    refuse_to_replace_foreign_outputs(tmp_path / "f1", relu_tanh.OUTPUTS)  # every file it wrote is known as its own


@pytest.mark.parametrize("name", ["config.json", "metrics.csv", "steps.csv"])
def test_train_refuses_a_users_file_of_a_run_files_name_before_any_work(name, shapes_data, tmp_path, capsys):
    """A folder given as --out that holds a user's file named as one a run writes: refused, not replaced
    (config.json, metrics.csv) or appended to (steps.csv)."""
    out = tmp_path / "notes"
    out.mkdir()
    (out / name).write_text("a user's notes\n")
    argv = ["train", "--data", str(shapes_data), "--out", str(out), "--preset", "small", "--epochs", "1",
            "--log-steps", "1", "--device", "cpu", "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{name}: exists and is not a " in err and "of ours; choose another --out" in err
    assert (out / name).read_text() == "a user's notes\n" and not (out / "last.pt").exists()


def test_a_runs_own_files_are_known_as_its_own_and_a_run_killed_before_its_checkpoint_starts_again(shapes_data,
                                                                                                   tmp_path):
    from alexnet.files import refuse_to_replace_foreign_outputs
    from alexnet.runs.writer import RUN_FILES
    out = tmp_path / "run"
    argv = ["train", "--data", str(shapes_data), "--out", str(out), "--preset", "small", "--epochs", "1",
            "--log-steps", "1", "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    assert sorted(RUN_FILES) == sorted(p.name for p in out.iterdir() if p.name in RUN_FILES)  # all three written
    refuse_to_replace_foreign_outputs(out, RUN_FILES)  # each is known as a run's own
    (out / "last.pt").unlink()  # as if killed before its first checkpoint: its other files are ours
    assert main(argv) == 0 and (out / "last.pt").exists()
