"""Figures 3 and 4 and the learning curves: the numbers behind each picture, checked independently."""

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet.errors import AlexNetError
from alexnet.figures.curves import read_metrics
from alexnet.figures.draw import line_chart, tile
from alexnet.figures.kernels import colour_specificity, kernel_pictures, kernels_figure
from alexnet.figures.make import load_trained, make_figures, outputs
from alexnet.figures.neighbors import nearest
from alexnet.training.trainer import TrainSettings, train


@pytest.fixture(scope="module")
def run(shapes_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("figures") / "run"
    train(TrainSettings(data=shapes_data, out=out, preset="small", epochs=2, batch_size=16, lr=0.01,
                        device="cpu", workers=0, progress=False, log=lambda line: None))
    return str(out)


def test_colour_specificity_by_hand():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(5, 5))
    grey = np.stack([plane, plane, plane])                       # R = G = B
    red_only = np.stack([plane, 0 * plane, 0 * plane])           # one channel
    opponent = np.stack([plane, -plane, 0 * plane])              # R = -G, B = 0
    got = colour_specificity(np.stack([grey, red_only, opponent]))
    # red only: grey part a/3 everywhere, so (2a/3)^2 + 2 (a/3)^2 = 2/3 of a^2
    np.testing.assert_allclose(got, [0.0, 2 / 3, 1.0], atol=1e-12)


def test_kernel_pictures_keep_zero_grey_and_sign():
    w = np.zeros((1, 3, 2, 2))
    w[0, 0, 0, 0], w[0, 1, 1, 1] = 0.5, -0.25
    [pic] = kernel_pictures(w)
    assert pic.shape == (2, 2, 3) and pic.dtype == np.uint8
    assert pic[0, 0, 0] == 255 and pic[1, 1, 1] == int(128 - 127 * 0.5) and pic[0, 1, 2] == 128


def test_kernels_figure_reports_each_column():
    rng = np.random.default_rng(1)
    plane = rng.normal(size=(4, 1, 11, 11))
    agnostic = np.repeat(plane, 3, axis=1)                        # column 1: grey kernels
    coloured = rng.normal(size=(4, 3, 11, 11))                    # column 2: independent channels
    image, means = kernels_figure(np.concatenate([agnostic, coloured]), columns=2)
    assert means[0] < 1e-12 and means[1] > 0.5
    assert isinstance(image, Image.Image) and image.width > 4 * 11 * 4


def test_nearest_matches_brute_force():
    rng = np.random.default_rng(2)
    q, pool = rng.normal(size=(3, 7)), rng.normal(size=(20, 7))
    _, idx = nearest(torch.from_numpy(q), torch.from_numpy(pool), 4)
    d = ((q[:, None, :] - pool[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(idx.numpy(), np.argsort(d, axis=1)[:, :4])


def test_drawing_helpers_make_real_pictures():
    chart = line_chart({"a": ([1, 2, 3], [3.0, 2.0, 1.0]), "b": ([1, 2, 3], [1.0, 2.0, float("nan")])},
                       "t", "x", "y", hline=2.5, dashed=["b"])
    pixels = np.asarray(chart)
    assert chart.size == (640, 420) and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10
    grid = tile([np.full((2, 2, 3), 9, np.uint8)] * 5, columns=3, scale=2, gap=1)
    assert grid.size == (3 * 5 + 1, 2 * 5 + 1) and np.asarray(grid)[1, 1].tolist() == [9, 9, 9]


def test_features_are_the_last_hidden_layer_of_the_centre_patch(run, shapes_data):
    trained = load_trained(run, device="cpu")
    ids = np.array([0, 5, 9])
    got = outputs(trained, "train", ids, features=True)
    # numpy on the same pixels: centre crop minus the run's mean image, NCHW, through the layers
    images = np.asarray(trained.dataset.images["train"][ids], np.float32)
    s, c = trained.dataset.size, trained.pre.crop
    o = (s - c) // 2
    x = images[:, o:o + c, o:o + c] - trained.ckpt["mean_image"].numpy()[o:o + c, o:o + c]
    with torch.no_grad():
        h = trained.model.features(torch.from_numpy(x).permute(0, 3, 1, 2)).flatten(1)
        h = torch.relu(trained.model.classifier.fc6(h))
        h = torch.relu(trained.model.classifier.fc7(h))
    torch.testing.assert_close(got, h, rtol=1e-5, atol=1e-5)
    assert got.shape == (3, 256)


def test_make_figures_writes_four_pngs(run, tmp_path):
    lines = []
    result = make_figures(run, tmp_path / "figs", device="cpu", predictions=4, queries=2, pool=50, log=lines.append)
    assert set(result["files"]) == {"kernels", "predictions", "neighbors", "curves"}
    for path in result["files"].values():
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 100 and image.height > 100
    assert not list((tmp_path / "figs").glob("*.partial"))
    assert len(result["colour_specificity"]) == 2 and all(0 <= v <= 1 for v in result["colour_specificity"])
    assert 0 <= result["neighbors_same_class"] <= 1
    assert any("colour specificity per column" in line for line in lines)


def test_metrics_file_errors_are_clear(tmp_path):
    with pytest.raises(AlexNetError, match="no metrics.csv"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.csv").write_text("epoch,train_loss\n1,abc\n")
    with pytest.raises(AlexNetError, match="not a metrics file"):
        read_metrics(tmp_path)
