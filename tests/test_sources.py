"""Real dataset layouts in miniature (ILSVRC-2012/2010 tars and devkit, CSV labels, CIFAR-10 batches),
resumable and fault-tolerant preparation, verification, and reduced-scale JPEG decoding."""

from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

import alexnet.data.prepare as prepare_module
from alexnet.cli.main import main
from alexnet.data.prepare import prepare_dataset
from alexnet.data.prepared import PreparedDataset
from alexnet.errors import AlexNetError

WNIDS = ["n01440764", "n02102040", "n03000684"]          # sorted: labels 0, 1, 2
COLOURS = [(220, 30, 30), (30, 200, 40), (40, 40, 230)]  # class k's images are mostly this colour


def jpeg_bytes(colour, size=(40, 30), mode="RGB", fmt="JPEG", seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour) + rng.normal(0, 10, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr)
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            add_bytes(tar, name, data)
    return buf.getvalue()


def meta_mat(year: str) -> bytes:
    savemat = pytest.importorskip("scipy.io").savemat
    # ILSVRC ids deliberately not in wnid order (as in the real devkit); one non-leaf synset.
    ids = {WNIDS[0]: 3, WNIDS[1]: 1, WNIDS[2]: 2}
    dtype = [(f"ILSVRC{year}_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")]
    rows = [(ids[w], w, f"name of {w}", 0) for w in WNIDS] + [(4, "n00001740", "entity", 3)]
    synsets = np.array(rows, dtype=dtype)
    buf = io.BytesIO()
    savemat(buf, {"synsets": synsets})
    return buf.getvalue()


def make_ilsvrc(root, year="2012", hostile=False, test_split=False):
    """A miniature ILSVRC distribution: train tar of per-class tars, flat val tar, devkit tar.gz."""
    root.mkdir(parents=True, exist_ok=True)
    inner = {}
    for k, wnid in enumerate(WNIDS):
        files = {f"{wnid}_{i}.JPEG": jpeg_bytes(COLOURS[k], seed=i) for i in range(4)}
        files[f"{wnid}_cmyk.JPEG"] = jpeg_bytes(COLOURS[k], mode="CMYK")
        files[f"{wnid}_png.JPEG"] = jpeg_bytes(COLOURS[k], fmt="PNG")        # a PNG named .JPEG
        files[f"{wnid}_grey.JPEG"] = jpeg_bytes(COLOURS[k], mode="L")
        inner[f"{wnid}.tar"] = tar_bytes(files)
    with tarfile.open(root / f"ILSVRC{year}_img_train.tar", "w") as tar:
        for name, data in inner.items():
            add_bytes(tar, name, data)
        if hostile:  # names that would escape an extraction, and a link
            add_bytes(tar, "../escaped.txt", b"x")
            add_bytes(tar, "/tmp/absolute-alexnet-test.txt", b"x")
            link = tarfile.TarInfo("evil_link.JPEG")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
    truth = []
    id_of = {WNIDS[0]: 3, WNIDS[1]: 1, WNIDS[2]: 2}
    for split in ("val", "test") if test_split else ("val",):
        with tarfile.open(root / f"ILSVRC{year}_img_{split}.tar", "w") as tar:
            lines = []
            for i in range(1, 7):
                k = (i * 2) % 3
                add_bytes(tar, f"ILSVRC{year}_{split}_{i:08d}.JPEG", jpeg_bytes(COLOURS[k], seed=100 + i))
                lines.append(str(id_of[WNIDS[k]]))
                if split == "val":
                    truth.append(k)
        gt = ("\n".join(lines) + "\n").encode()
        if split == "val":
            val_gt = gt
        else:
            (root / f"ILSVRC{year}_test_ground_truth.txt").write_bytes(gt)
    devkit = f"ILSVRC{year}_devkit"
    with tarfile.open(root / f"{devkit}.tar.gz", "w:gz") as tar:
        add_bytes(tar, f"{devkit}/data/meta.mat", meta_mat(year))
        add_bytes(tar, f"{devkit}/data/ILSVRC{year}_validation_ground_truth.txt", val_gt)
    return truth


def dominant_class(image: np.ndarray) -> int:
    return int(np.argmin([np.abs(image.reshape(-1, 3).mean(0) - c).sum() for c in COLOURS]))


def test_ilsvrc2012_tars_and_devkit(tmp_path):
    truth = make_ilsvrc(tmp_path / "src", hostile=True)
    before = set(os.listdir(tmp_path)), os.path.exists("/tmp/absolute-alexnet-test.txt")
    out = tmp_path / "data"
    manifest = prepare_dataset(tmp_path / "src", out, size=24, workers=0, progress=False)
    assert manifest["layout"] == "ilsvrc2012"
    assert manifest["classes"] == WNIDS and manifest["class_names"] == [f"name of {w}" for w in WNIDS]
    ds = PreparedDataset(out)
    assert len(ds.labels["train"]) == 3 * 7  # the hostile members are not images of a class
    greys = 0
    for image, label in zip(ds.images["train"], ds.labels["train"]):
        if (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all():
            greys += 1  # the greyscale JPEG: three equal channels
        else:
            assert dominant_class(image) == label  # RGB, CMYK and PNG-named-.JPEG decoded right
    assert greys == 3
    assert ds.labels["val"].tolist() == truth  # devkit ids mapped through meta.mat, not taken as labels
    assert [dominant_class(im) for im in ds.images["val"]] == truth
    # Nothing was extracted anywhere.
    assert (set(os.listdir(tmp_path)) - {"data"}, os.path.exists("/tmp/absolute-alexnet-test.txt")) == before
    assert not [p for p in out.rglob("*") if p.name in ("escaped.txt", "absolute-alexnet-test.txt", "evil_link.JPEG")]
    assert sorted(os.listdir(tmp_path / "src")) == ["ILSVRC2012_devkit.tar.gz", "ILSVRC2012_img_train.tar",
                                                   "ILSVRC2012_img_val.tar"]


def test_ilsvrc_csv_labels_and_synset_names(tmp_path):
    src = tmp_path / "src"
    truth = make_ilsvrc(src)
    (src / "ILSVRC2012_devkit.tar.gz").unlink()
    with pytest.raises(AlexNetError, match="no labels were found"):
        prepare_dataset(src, tmp_path / "d0", size=16, workers=0, progress=False)
    rows = ["ImageId,PredictionString"] + [f"ILSVRC2012_val_{i + 1:08d},{WNIDS[k]} 1 2 3 4" for i, k in enumerate(truth)]
    (src / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    (src / "LOC_synset_mapping.txt").write_text("".join(f"{w} class {w[-3:]}, more words\n" for w in WNIDS))
    manifest = prepare_dataset(src, tmp_path / "d1", size=16, workers=2, progress=False)
    assert PreparedDataset(tmp_path / "d1").labels["val"].tolist() == truth
    assert manifest["class_names"][0] == "class 764, more words"


def test_ilsvrc2010_has_a_labelled_test_split(tmp_path):
    truth = make_ilsvrc(tmp_path / "src", year="2010", test_split=True)
    manifest = prepare_dataset(tmp_path / "src", tmp_path / "data", size=16, workers=0, progress=False)
    assert manifest["layout"] == "ilsvrc2010" and set(manifest["splits"]) == {"train", "val", "test"}
    ds = PreparedDataset(tmp_path / "data")
    assert ds.labels["test"].tolist() == truth
    assert [dominant_class(im) for im in ds.images["test"]] == truth


def test_ilsvrc_extracted_folders(tmp_path):
    src = tmp_path / "src"
    for k, wnid in enumerate(WNIDS):
        (src / "train" / wnid).mkdir(parents=True)
        (src / "train" / wnid / "a.JPEG").write_bytes(jpeg_bytes(COLOURS[k]))
        (src / "val" / wnid).mkdir(parents=True)  # val already sorted into class folders
        (src / "val" / wnid / f"ILSVRC2012_val_{k + 1:08d}.JPEG").write_bytes(jpeg_bytes(COLOURS[k], seed=5))
    prepare_dataset(src, tmp_path / "data", size=16, workers=0, progress=False, layout="ilsvrc2012")
    ds = PreparedDataset(tmp_path / "data")
    assert ds.labels["val"].tolist() == [0, 1, 2] and ds.labels["train"].tolist() == [0, 1, 2]


def cifar_batch(images: np.ndarray, labels: list[int]) -> bytes:
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # R plane, G plane, B plane per row
    return pickle.dumps({b"batch_label": b"x", b"labels": labels, b"data": planes,
                         b"filenames": [b"f"] * len(labels)}, protocol=2)


def make_cifar(folder):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [n.encode() for n in names]}, protocol=2))
    everything = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, 4).tolist()
        (folder / name).write_bytes(cifar_batch(images, labels))
        everything[name] = (images, labels)
    return names, everything


def test_cifar10_batches_folder_and_archive(tmp_path):
    names, batches = make_cifar(tmp_path / "src" / "cifar-10-batches-py")
    manifest = prepare_dataset(tmp_path / "src", tmp_path / "data", size=32, workers=0, progress=False)
    assert manifest["layout"] == "cifar10" and manifest["classes"] == names
    ds = PreparedDataset(tmp_path / "data")
    train = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(ds.images["train"], train)
    np.testing.assert_array_equal(ds.images["val"], batches["test_batch"][0])
    assert ds.labels["val"].tolist() == batches["test_batch"][1]
    np.testing.assert_allclose(ds.mean_image, train.astype(np.float64).mean(0), rtol=1e-6)

    (tmp_path / "arch").mkdir()
    with tarfile.open(tmp_path / "arch" / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    prepare_dataset(tmp_path / "arch", tmp_path / "data2", size=32, workers=0, progress=False)
    np.testing.assert_array_equal(PreparedDataset(tmp_path / "data2").images["train"], train)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_cifar_pickle_with_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_cifar(tmp_path / "c")
    (tmp_path / "c" / "data_batch_3").write_bytes(pickle.dumps({b"data": _Payload()}, protocol=2))
    with pytest.raises(AlexNetError, match=r"data_batch_3: not a CIFAR-10 batch .*refusing to load posix.system"):
        prepare_dataset(tmp_path / "c", tmp_path / "data", size=32, workers=0, progress=False)
    assert not (tmp_path / "pwned-by-pickle").exists()


def test_interrupted_prepare_resumes_without_redoing_work(random_tree, tmp_path, monkeypatch):
    reference = prepare_dataset(random_tree, tmp_path / "ref", size=8, workers=0, progress=False)
    calls = []
    real_work = prepare_module._work

    def failing_work(task):
        calls.append(task[0])
        if len(calls) == 4:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C during the 4th image
        return real_work(task)

    monkeypatch.setattr(prepare_module, "_work", failing_work)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(random_tree, out, size=8, workers=0, progress=False)
    assert not (out / "manifest.json").exists() and not (out / "train_images.npy").exists()
    assert (out / "train.progress.npz").exists()

    calls.clear()
    monkeypatch.setattr(prepare_module, "_work", lambda task: (calls.append(task[0]), real_work(task))[1])
    resumed = prepare_dataset(random_tree, out, size=8, workers=0, progress=False)
    assert len(calls) == 6 + 4 - 3  # the 3 train images already written are not decoded again
    for split in ("train", "val"):
        np.testing.assert_array_equal(np.load(out / f"{split}_images.npy"), np.load(tmp_path / "ref" / f"{split}_images.npy"))
    assert resumed["statistics"]["rgb_covariance"] == reference["statistics"]["rgb_covariance"]
    np.testing.assert_array_equal(np.load(out / "mean_image.npy"), np.load(tmp_path / "ref" / "mean_image.npy"))
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "ref").iterdir())


def test_a_changed_marker_of_a_finished_split_makes_that_split_again(random_tree, tmp_path, monkeypatch):
    """train.done.json says an interrupted run finished train; a marker that no longer parses is not
    trusted (nor a traceback): train is prepared again, to the same dataset."""
    reference = prepare_dataset(random_tree, tmp_path / "ref", size=8, workers=0, progress=False)
    real_work, calls = prepare_module._work, []

    def failing_work(task):
        calls.append(task[0])
        if len(calls) == 7:  # the first val image: train (6 images) is finished
            raise KeyboardInterrupt
        return real_work(task)

    monkeypatch.setattr(prepare_module, "_work", failing_work)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(random_tree, out, size=8, workers=0, progress=False)
    (out / "train.done.json").write_text('{"digest": ')
    monkeypatch.setattr(prepare_module, "_work", real_work)
    resumed = prepare_dataset(random_tree, out, size=8, workers=0, progress=False)
    assert resumed["statistics"]["rgb_covariance"] == reference["statistics"]["rgb_covariance"]
    np.testing.assert_array_equal(np.load(out / "train_images.npy"), np.load(tmp_path / "ref" / "train_images.npy"))


def test_skip_bad_lists_and_leaves_out(random_tree, tmp_path):
    (random_tree / "train" / "a" / "1.png").write_bytes(b"\x89PNG truncated")
    out = tmp_path / "out"
    with pytest.raises(AlexNetError, match=r"1 unreadable image\(s\) in train.*--skip-bad"):
        prepare_dataset(random_tree, out, size=8, workers=0, progress=False)
    manifest = prepare_dataset(random_tree, out, size=8, workers=0, progress=False, skip_bad=True)
    train = manifest["splits"]["train"]
    assert train["count"] == 5 and train["per_class"] == [2, 3]
    assert len(train["skipped"]) == 1 and "1.png" in train["skipped"][0]
    ds = PreparedDataset(out)
    assert ds.images["train"].shape[0] == 5 and ds.labels["train"].tolist() == [0, 0, 1, 1, 1]
    from test_prepare import expected_pixels  # image a/2 is the second row now that a/1 is out
    np.testing.assert_array_equal(ds.images["train"][1], expected_pixels(random_tree / "train" / "a" / "2.png", 8))


def test_decompression_bomb_refused_with_a_clear_message(random_tree, tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # the tree's images are 400-2500 pixels
    with pytest.raises(AlexNetError, match="decompression-bomb limit"):
        prepare_dataset(random_tree, tmp_path / "out", size=8, workers=0, progress=False)


def test_verify_reports_ok_and_catches_corruption(random_tree, tmp_path, capsys):
    out = tmp_path / "out"
    prepare_dataset(random_tree, out, size=8, workers=0, progress=False)
    assert main(["prepare", "--verify", str(out), "--quiet"]) == 0
    assert "checksums of images and labels match" in capsys.readouterr().out
    with open(out / "train_images.npy", "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    assert main(["prepare", "--verify", str(out), "--quiet"]) == 1
    assert "train_images.npy: SHA-256 differs" in capsys.readouterr().err


def test_reduced_scale_jpeg_decode_is_close_to_full_decode():
    from alexnet.data.images import load_prepared
    y, x = np.mgrid[0:1200, 0:1600]
    smooth = np.stack([np.sin(x / 40) * 90 + 128, np.cos(y / 60) * 90 + 128, (x + y) / 2800 * 255], -1)
    buf = io.BytesIO()
    Image.fromarray(smooth.astype(np.uint8)).save(buf, "JPEG", quality=92)
    fast = load_prepared(io.BytesIO(buf.getvalue()), 256).astype(int)
    full = load_prepared(io.BytesIO(buf.getvalue()), 256, reduced_decode=False).astype(int)
    assert np.abs(fast - full).mean() < 1.0 and np.abs(fast - full).max() <= 6


def test_unreadable_files_of_every_split_are_named_in_one_run(random_tree, tmp_path):
    (random_tree / "train" / "a" / "1.png").write_bytes(b"\x89PNG truncated")
    (random_tree / "val" / "b" / "0.png").write_bytes(b"not an image")
    with pytest.raises(AlexNetError) as refused:
        prepare_dataset(random_tree, tmp_path / "out", size=8, workers=0, progress=False)
    message = str(refused.value)
    assert message.startswith("2 unreadable image(s) in train (1), val (1);")
    assert "a/1.png" in message and "b/0.png" in message
    manifest = prepare_dataset(random_tree, tmp_path / "out", size=8, workers=0, progress=False, skip_bad=True)
    assert [len(manifest["splits"][s]["skipped"]) for s in ("train", "val")] == [1, 1]


LOSSLESS = {".png": {}, ".bmp": {}, ".ppm": {}, ".tif": {}, ".tiff": {"compression": "tiff_lzw"},
            ".webp": {"lossless": True}}


def test_every_kind_torchvision_reads_is_read_with_its_exact_pixels_and_other_files_are_named(tmp_path, capsys):
    rng = np.random.default_rng(2)
    stored = {}
    for split in ("train", "val"):
        for ext, options in LOSSLESS.items():
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            path = tmp_path / "src" / split / "rgb" / f"x{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path, **options)
            stored[path] = pixels
        grey = rng.integers(0, 256, (16, 16), dtype=np.uint8)
        path = tmp_path / "src" / split / "grey" / "x.pgm"
        path.parent.mkdir(parents=True)
        Image.fromarray(grey).save(path)
        stored[path] = np.repeat(grey[..., None], 3, axis=2)
    for name, content in (("clip.gif", b"GIF89a"), ("IMG_0001.HEIC", b"\0\0\0\x18ftypheic"), ("notes.txt", b"x"),
                          (".DS_Store", b"hidden: not named")):
        (tmp_path / "src" / "train" / "rgb" / name).write_bytes(content)
    Image.fromarray(stored[path]).save(tmp_path / "src" / "val" / "stray.png")   # in no class folder
    assert main(["prepare", str(tmp_path / "src"), str(tmp_path / "data"), "--size", "16", "--workers", "0",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "3 file(s) are not of a kind read as images (.gif 1, .heic 1, .txt 1)" in out, out
    assert "1 file(s) lie beside the class folders, in none of them, and are left out: " in out and "stray.png" in out
    assert ".DS_Store" not in out
    ds = PreparedDataset(tmp_path / "data")
    for split in ("train", "val"):
        paths = sorted((p for p in stored if p.parts[-3] == split), key=lambda p: (p.parent.name, p.name))
        assert len(ds.labels[split]) == len(paths) == 7
        for i, path in enumerate(paths):
            np.testing.assert_array_equal(ds.images[split][i], stored[path], err_msg=str(path))
            assert ds.classes[ds.labels[split][i]] == path.parent.name
