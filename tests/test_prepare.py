"""`prepare`: pixels, statistics and manifest against independent numpy/PIL computations; bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from alexnet.data.imagefolder import scan_split
from alexnet.data.prepare import prepare_dataset
from alexnet.data.prepared import PreparedDataset
from alexnet.errors import AlexNetError

from conftest import write_image


def expected_pixels(path, size):
    """Shorter side to `size` (PIL bilinear), central size x size patch: computed here independently."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if w <= h:
        new = (size, round(h * size / w))
    else:
        new = (round(w * size / h), size)
    arr = np.asarray(img.resize(new, Image.BILINEAR))
    top, left = (new[1] - size) // 2, (new[0] - size) // 2
    return arr[top:top + size, left:left + size]


@pytest.mark.parametrize("workers", [0, 2])
def test_pixels_statistics_and_manifest(random_tree, tmp_path, workers):
    out = tmp_path / f"out{workers}"
    manifest = prepare_dataset(random_tree, out, size=16, workers=workers, progress=False)
    ds = PreparedDataset(out)
    assert ds.classes == ["a", "b"] and ds.size == 16
    for split in ("train", "val"):
        _, items = scan_split(random_tree, split, ["a", "b"])
        assert manifest["splits"][split]["count"] == len(items)
        for i, (path, label) in enumerate(items):
            np.testing.assert_array_equal(ds.images[split][i], expected_pixels(path, 16))
            assert ds.labels[split][i] == label
    assert manifest["splits"]["train"]["per_class"] == [3, 3]

    train = np.stack([expected_pixels(p, 16) for p, _ in scan_split(random_tree, "train")[1]]).astype(np.float64)
    np.testing.assert_allclose(ds.mean_image, train.mean(axis=0), rtol=1e-6)
    pixels = train.reshape(-1, 3) / 255.0
    cov = np.cov(pixels, rowvar=False, bias=True)
    stats = manifest["statistics"]
    np.testing.assert_allclose(stats["rgb_covariance"], cov, rtol=1e-9, atol=1e-12)
    vals, vecs = np.linalg.eigh(cov)
    np.testing.assert_allclose(stats["rgb_eigenvalues"], vals[::-1], rtol=1e-9)
    got_vecs = np.array(stats["rgb_eigenvectors"])
    for i in range(3):  # eigenvectors up to sign
        assert abs(abs(got_vecs[:, i] @ vecs[:, 2 - i]) - 1) < 1e-9
        np.testing.assert_allclose(cov @ got_vecs[:, i], stats["rgb_eigenvalues"][i] * got_vecs[:, i], atol=1e-12)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["classes"] == ["a", "b"] and on_disk["size"] == 16
    assert not list(out.glob("*.partial")) and not list(out.glob("*.tmp"))


def test_any_mode_and_exif_orientation(tmp_path):
    src = tmp_path / "src"
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)
    write_image(src / "train" / "a" / "grey.png", rgb, "L")
    write_image(src / "train" / "a" / "palette.png", rgb, "P")
    write_image(src / "train" / "a" / "rgba.png", rgb, "RGBA")
    Image.fromarray(rgb).convert("CMYK").save(src / "train" / "a" / "cmyk.jpg")
    # EXIF orientation 6 (rotate 90 degrees clockwise to display): a 30x20 file shows as 20 wide, 30 tall... upright
    exif = Image.Exif()
    exif[0x0112] = 6
    (src / "val" / "a").mkdir(parents=True)
    Image.fromarray(rgb).save(src / "val" / "a" / "rotated.jpg", exif=exif, quality=95)
    prepare_dataset(src, tmp_path / "out", size=8, workers=0, progress=False)
    ds = PreparedDataset(tmp_path / "out")
    assert ds.images["train"].shape == (4, 8, 8, 3)
    grey = ds.images["train"][list(sorted(["cmyk.jpg", "grey.png", "palette.png", "rgba.png"])).index("grey.png")]
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()


def test_rotated_exif_is_applied(tmp_path):
    from alexnet.data.images import load_rgb
    rgb = np.zeros((30, 20, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(tmp_path / "r.jpg", exif=exif)
    assert load_rgb(tmp_path / "r.jpg").size == (30, 20)  # width and height swapped by the rotation


def test_unreadable_images_listed_and_nothing_complete(random_tree, tmp_path):
    (random_tree / "train" / "a" / "broken.jpg").write_bytes(b"not an image at all")
    (random_tree / "val" / "b" / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    with pytest.raises(AlexNetError) as err:
        prepare_dataset(random_tree, out, size=8, workers=0, progress=False)
    # every split's unreadable files, named in the one run
    assert "broken.jpg" in str(err.value) and "empty.png" in str(err.value) and "2 unreadable" in str(err.value)
    # Nothing looks complete: no manifest, no final arrays (the decoded part is kept, as
    # `*.partial` with its progress file, so a rerun with --skip-bad need not decode it again).
    assert not (out / "manifest.json").exists() and not list(out.glob("*_images.npy"))
    with pytest.raises(AlexNetError, match="no manifest.json"):
        PreparedDataset(out)


def test_bad_trees(tmp_path):
    with pytest.raises(AlexNetError, match="no such source folder"):
        prepare_dataset(tmp_path / "missing", tmp_path / "o1", progress=False)
    (tmp_path / "s1" / "train").mkdir(parents=True)
    with pytest.raises(AlexNetError, match="no class folders"):
        prepare_dataset(tmp_path / "s1", tmp_path / "o2", progress=False)
    (tmp_path / "s2" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "s2" / "train" / "cat" / "notes.txt").write_text("x")
    with pytest.raises(AlexNetError, match=r"cat: class folder has no images"):
        prepare_dataset(tmp_path / "s2", tmp_path / "o3", progress=False)
    write_image(tmp_path / "s3" / "train" / "cat" / "1.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(AlexNetError, match=r"val: no such folder"):
        prepare_dataset(tmp_path / "s3", tmp_path / "o4", progress=False)
    write_image(tmp_path / "s3" / "val" / "dog" / "1.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(AlexNetError, match="not in the train split: dog"):
        prepare_dataset(tmp_path / "s3", tmp_path / "o5", progress=False)
    with pytest.raises(AlexNetError, match="inside the source tree"):
        prepare_dataset(tmp_path / "s3", tmp_path / "s3" / "prepared", progress=False)


def test_refuses_to_overwrite_a_dataset(random_tree, tmp_path):
    prepare_dataset(random_tree, tmp_path / "out", size=8, workers=0, progress=False)
    with pytest.raises(AlexNetError, match="already holds a prepared dataset"):
        prepare_dataset(random_tree, tmp_path / "out", size=8, workers=0, progress=False)


def test_reader_rejects_tampering(random_tree, tmp_path):
    out = tmp_path / "out"
    prepare_dataset(random_tree, out, size=8, workers=0, progress=False)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(AlexNetError, match="manifest.json: not valid JSON"):
        PreparedDataset(out)
    out2 = tmp_path / "out2"
    prepare_dataset(random_tree, out2, size=8, workers=0, progress=False)
    np.save(out2 / "mean_image.npy", np.zeros((8, 8, 3), np.float32))
    with pytest.raises(AlexNetError, match="checksum does not match"):
        PreparedDataset(out2)
    out3 = tmp_path / "out3"
    prepare_dataset(random_tree, out3, size=8, workers=0, progress=False)
    (out3 / "val_images.npy").unlink()
    with pytest.raises(AlexNetError, match="val_images.npy: missing"):
        PreparedDataset(out3)


@pytest.mark.parametrize("mode", ["I;16", "I", "F", "L", "LA", "P", "RGBA", "CMYK"])
def test_every_image_mode_is_scaled_like_numpy(mode, tmp_path):
    """Each mode's pixels as 8-bit RGB, against numpy on the same values: 16-bit greyscale scaled by
    255/65535 (Pillow alone clips it to white), float 0-1 times 255, the others as Pillow defines them."""
    from alexnet.data.images import load_rgb

    ramp = np.linspace(0, 1, 64 * 48).reshape(48, 64)
    if mode in ("I;16", "I"):
        values = np.round(ramp * 65535).astype(np.uint16 if mode == "I;16" else np.int32)
        image, want = Image.fromarray(values), np.round(values * (255 / 65535))  # uint16: I;16, int32: I
        assert image.mode == mode
        path = tmp_path / "x.png" if mode == "I;16" else tmp_path / "x.tif"
    elif mode == "F":
        image, want, path = Image.fromarray(ramp.astype(np.float32), "F"), np.round(ramp.astype(np.float32) * 255.0), tmp_path / "x.tif"
    else:
        grey = np.round(ramp * 255).astype(np.uint8)
        image = Image.fromarray(np.stack([grey, 255 - grey, grey // 2], -1)).convert(mode)
        want, path = None, tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    image.save(path)
    got = np.asarray(load_rgb(path))
    assert got.shape == (48, 64, 3) and got.dtype == np.uint8
    if want is not None:  # greyscale: the same value in R, G and B
        for c in range(3):
            np.testing.assert_array_equal(got[..., c], want.astype(np.uint8))
        assert got[..., 0].max() == 255 and got[..., 0].min() == 0 and (got[..., 0] == 255).mean() < 0.01
    else:
        with Image.open(path) as reread:
            np.testing.assert_array_equal(got, np.asarray(reread.convert("RGB")))


def test_prepare_says_when_it_would_enlarge_most_images(random_tree, tmp_path):
    """random_tree's images are 20-50 px: prepared at 64 they would all be enlarged."""
    lines = []
    prepare_dataset(random_tree, tmp_path / "big", size=64, workers=0, progress=False, log=lines.append)
    assert any(line.startswith("note: most images are smaller than --size 64") for line in lines)
    lines.clear()
    prepare_dataset(random_tree, tmp_path / "fits", size=16, workers=0, progress=False, log=lines.append)
    assert not any("smaller than --size" in line for line in lines)


def test_images_in_sub_folders_of_a_class_belong_to_it(tmp_path):
    """As torchvision's ImageFolder: a class folder is walked; hidden folders are not; a symlink loop ends."""
    rng = np.random.default_rng(5)
    src = tmp_path / "src"
    paths = {"train/cat/1.png": 0, "train/cat/2023/summer/2.png": 0, "train/dog/3.png": 1,
             "train/dog/sub/4.jpg": 1, "val/cat/a/5.png": 0, "val/dog/6.png": 1}
    for name in paths:
        write_image(src / name, rng.integers(0, 255, (12, 14, 3), dtype=np.uint8))
    write_image(src / "train/cat/.thumbnails/7.png", np.zeros((12, 14, 3), np.uint8))  # hidden: skipped
    (src / "train/dog/sub/loop").symlink_to(src / "train/dog", target_is_directory=True)
    _, items = scan_split(src, "train")
    want = sorted(["train/cat/1.png", "train/cat/2023/summer/2.png"]) + ["train/dog/3.png", "train/dog/sub/4.jpg"]
    assert [str(p.relative_to(src)) for p, _ in items] == want and [label for _, label in items] == [0, 0, 1, 1]
    prepare_dataset(src, tmp_path / "out", size=8, progress=False)
    ds = PreparedDataset(tmp_path / "out")
    assert len(ds.labels["train"]) == 4 and len(ds.labels["val"]) == 2
    np.testing.assert_array_equal(ds.images["train"][1], expected_pixels(src / "train/cat/2023/summer/2.png", 8))


def test_a_stored_size_beyond_4096_is_refused_by_the_python_api_too(tmp_path):
    """The command line bounds --size in argparse; prepare_dataset, called from Python, says why."""
    with pytest.raises(AlexNetError, match=r"--size 100000: at most 4096 px .* 27.9 GiB an image"):
        prepare_dataset(tmp_path / "src", tmp_path / "out", size=100_000, workers=0, progress=False)
    assert not (tmp_path / "out").exists()


def test_an_absurd_aspect_ratio_is_rescaled_in_bounded_memory(tmp_path, monkeypatch):
    """A 700-byte PNG of 200,000 x 1 pixels: its rescaled whole (256 x 51,200,000) is never made; only the
    patch's region is rescaled, and on ordinary images that path is within one grey level of the whole."""
    import alexnet.data.images as images
    made = []
    real_resize = Image.Image.resize
    monkeypatch.setattr(Image.Image, "resize", lambda self, size, *a, **k: (made.append(size),
                                                                          real_resize(self, size, *a, **k))[1])
    Image.new("RGB", (200_000, 1), (100, 50, 25)).save(tmp_path / "thin.png")
    patch = images.load_prepared(tmp_path / "thin.png", 256)
    assert patch.shape == (256, 256, 3) and (patch == (100, 50, 25)).all()
    assert max(w * h for w, h in made) <= images.MAX_RESCALED_PIXELS
    rng = np.random.default_rng(0)
    monkeypatch.setattr(images, "MAX_RESCALED_PIXELS", 0)  # every image by the region path
    for i, (w, h) in enumerate([(500, 375), (375, 500), (61, 900), (300, 300), (1000, 7)]):
        write_image(tmp_path / f"{i}.png", (rng.random((h, w, 3)) * 255).astype(np.uint8))
        got = images.load_prepared(tmp_path / f"{i}.png", 64).astype(int)
        assert np.abs(got - expected_pixels(tmp_path / f"{i}.png", 64).astype(int)).max() <= 1, (w, h)
