"""Figures 3 and 4, learning curves, binary-code retrieval and the HTML report, checked independently."""

import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet.errors import AlexNetError
from alexnet.experiments.retrieval import (euclidean_distances, hamming_distances, k_nearest, pack_codes, recall_at,
                                           run_retrieval, train_autoencoder)
from alexnet.runs.writer import read_metrics
from alexnet.drawing.charts import save_chart
from alexnet.drawing.curves import curves_figure
from alexnet.drawing.draw import tile
from alexnet.experiments.relu_tanh import figure_1_chart
from alexnet.drawing.kernels import colour_specificity, kernel_pictures, kernels_figure
from alexnet.figures.make import make_figures
from alexnet.runs.inference import outputs
from alexnet.runs.trained import load_trained
from alexnet.drawing.neighbors import nearest
from alexnet.figures.report import markdown_to_html, write_report
from alexnet.config import TrainConfig
from alexnet.training.loop import train


@pytest.fixture(scope="module")
def run(shapes_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("figures") / "run"
    train(TrainConfig(data=shapes_data, out=out, preset="small", epochs=2, batch_size=16, lr=0.01,
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


def test_image_grid_is_the_pixels_given():
    grid = tile([np.full((2, 2, 3), 9, np.uint8)] * 5, columns=3, scale=2, gap=1)
    assert grid.size == (3 * 5 + 1, 2 * 5 + 1) and np.asarray(grid)[1, 1].tolist() == [9, 9, 9]


def test_one_epoch_curves_have_whole_epoch_ticks_and_visible_points(tmp_path):
    rows = [{"epoch": 1, "train_loss": 2.2, "train_top1_error": 0.8, "val_top1_error": 0.7, "val_top5_error": 0.3}]
    figure = curves_figure(rows, "small")
    errors, loss = figure.axes
    for ax in (errors, loss):
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks == [1.0]                              # not 0.6, 0.8, 1.2 ...
        assert all(line.get_marker() == "o" for line in ax.get_lines())  # a lone point is drawn
    assert figure._suptitle.get_text() == "small: learning curves, 1 epoch"
    assert [t.get_text() for t in errors.get_legend().get_texts()] == [
        "train top-1 (last 80.0%)", "val top-1 (last 70.0%)", "val top-5 (last 30.0%)"]
    png = save_chart(figure, tmp_path / "curves.png")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 500
    svg = (tmp_path / "curves.svg").read_text()
    assert "<svg" in svg and "learning curves, 1 epoch" in svg    # text kept as text


def test_figure_1_legend_matches_the_lines_and_labels_the_target(tmp_path):
    figure = figure_1_chart({"relu": [0.6, 0.3, 0.2], "tanh": [0.8, 0.7, 0.5, 0.4]}, 0.25)
    [ax] = figure.axes
    drawn = {line.get_label(): line for line in ax.get_lines()}
    legend = {text.get_text(): handle for text, handle in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles)}
    for label in ("ReLU (last 20)", "tanh (last 40)", "target: 25% training error"):
        assert legend[label].get_linestyle() == drawn[label].get_linestyle()
    assert drawn["ReLU (last 20)"].get_linestyle() == "-" and drawn["tanh (last 40)"].get_linestyle() == "--"
    assert list(drawn["target: 25% training error"].get_ydata()) == [25, 25]
    save_chart(figure, tmp_path / "a.png")
    save_chart(figure, tmp_path / "b.png")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()  # reproducible vector copy


def test_features_are_the_last_hidden_layer_of_the_centre_patch(run, shapes_data):
    trained = load_trained(run, device="cpu")
    ids = np.array([0, 5, 9])
    got = outputs(trained, "train", ids, features=True)
    # numpy on the same pixels: centre crop minus the run's mean image, NCHW, through the layers
    images = np.asarray(trained.dataset.images["train"][ids], np.float32)
    s, c = trained.dataset.size, trained.views.crop
    o = (s - c) // 2
    x = images[:, o:o + c, o:o + c] - trained.ckpt["mean_image"].numpy()[o:o + c, o:o + c]
    with torch.no_grad():
        h = trained.model.features(torch.from_numpy(x).permute(0, 3, 1, 2)).flatten(1)
        h = torch.relu(trained.model.classifier.fc6(h))
        cfg = trained.model.cfg  # the paper's dropout at test time: fc6's outputs times the keep probability
        h = h * (1 - cfg.dropout) if cfg.dropout_style == "paper" else h
        h = torch.relu(trained.model.classifier.fc7(h))
    torch.testing.assert_close(got, h, rtol=1e-5, atol=1e-5)
    assert got.shape == (3, 256)


def test_make_figures_writes_four_pngs(run, tmp_path):
    lines = []
    result = make_figures(run, tmp_path / "figs", device="cpu", predictions=4, queries=2, pool=50, log=lines.append)
    assert set(result["files"]) == {"kernels", "predictions", "neighbors", "curves"}
    assert (tmp_path / "figs" / "curves.svg").is_file()
    for path in result["files"].values():
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 100 and image.height > 100
    assert not list((tmp_path / "figs").glob("*.partial"))
    assert len(result["colour_specificity"]) == 2 and all(0 <= v <= 1 for v in result["colour_specificity"])
    assert 0 <= result["neighbors_same_class"] <= 1
    assert any("colour specificity per column" in line and "freshly initialised" in line for line in lines)
    assert len(result["initial_colour_specificity"]) == 2


def test_metrics_file_errors_are_clear(tmp_path):
    with pytest.raises(AlexNetError, match="no metrics.csv"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.csv").write_text("epoch,train_loss\n1,abc\n")
    with pytest.raises(AlexNetError, match="not a metrics file"):
        read_metrics(tmp_path)


# --- retrieval with binary codes (Section 6.1) ---------------------------------------------------



def test_search_primitives_against_brute_force():
    rng = np.random.default_rng(3)
    bits_q, bits_p = rng.integers(0, 2, (4, 70)), rng.integers(0, 2, (9, 70))
    packed_q, packed_p = pack_codes(torch.from_numpy(bits_q)), pack_codes(torch.from_numpy(bits_p))
    assert packed_q.shape == (4, 9) and packed_q.dtype == np.uint8
    want = (bits_q[:, None, :] != bits_p[None, :, :]).sum(-1)  # count differing bits one by one
    np.testing.assert_array_equal(hamming_distances(packed_q, packed_p), want)
    q, p = rng.normal(size=(4, 6)), rng.normal(size=(9, 6))
    np.testing.assert_allclose(euclidean_distances(q, p), ((q[:, None] - p[None]) ** 2).sum(-1), atol=1e-12)
    assert k_nearest(np.array([[3, 1, 2, 1]]), 3).tolist() == [[1, 3, 2]]  # ties by index
    assert recall_at(np.array([[1, 2, 3], [4, 5, 6]]), np.array([[3, 2, 9], [7, 8, 9]])) == pytest.approx((2 / 3 + 0) / 2)


def test_autoencoder_codes_keep_clusters_apart():
    """Four well-separated clusters of 64-d features: after training, codes of one cluster are nearer
    (in Hamming distance) to each other than to any other cluster's."""
    rng = np.random.default_rng(4)
    centres = rng.normal(0, 3, (4, 64))
    labels = np.repeat(np.arange(4), 50)
    x = torch.from_numpy(centres[labels] + rng.normal(0, 0.3, (200, 64))).float()
    model, loss = train_autoencoder((x - x.mean(0)) / x.std(0), bits=16, epochs=40, seed=0)
    assert loss < 0.5  # reconstructs most of the variance from 16 bits
    with torch.no_grad():
        codes = pack_codes(model.codes((x - x.mean(0)) / x.std(0)))
    d = hamming_distances(codes, codes)
    same = labels[:, None] == labels[None, :]
    assert d[same].mean() + 2 < d[~same].mean()
    nearest_other = k_nearest(d + 1000 * np.eye(200, dtype=np.int64), 1)[:, 0]
    assert (labels[nearest_other] == labels).mean() > 0.9


def test_run_retrieval_writes_its_table(run, tmp_path):
    result = run_retrieval(run, tmp_path, bits=16, pool=200, queries=20, epochs=5, device="cpu", progress=False,
                           log=lambda line: None)
    text = (tmp_path / "retrieval.md").read_text()
    assert "recall@k" in text and "Hamming, 16-bit codes" in text and "| 2 |" in text  # 16 bits = 2 bytes
    assert [r["k"] for r in result["rows"]] == [1, 6, 10, 50]
    assert all(0 <= r["recall"] <= 1 for r in result["rows"]) and result["speedup"] > 0


# --- the HTML report -----------------------------------------------------------------------------



def test_markdown_subset_is_escaped_and_tabulated():
    page = markdown_to_html("# Title <x>\n\n| a | b |\n| --- | --- |\n| 1 | <script> |\n\nsome **text**\n")
    assert "<h2>Title &lt;x&gt;</h2>" in page
    assert "<th>a</th><th>b</th>" in page and "<td>&lt;script&gt;</td>" in page and "<script>" not in page
    assert "<p>some <strong>text</strong></p>" in page
    inline = markdown_to_html("# Ablations of `small`\n\n| a | `b` |\n| --- | --- |\n| **1** | `<i>` |\n")
    assert "<h2>Ablations of <code>small</code></h2>" in inline and "`" not in inline
    assert "<th><code>b</code></th>" in inline and "<td><strong>1</strong></td><td><code>&lt;i&gt;</code></td>" in inline


@pytest.fixture(scope="module")
def report(run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    extra = folder / "ablation.md"
    extra.write_text("# Ablations\n\nChart: `ablation.png`.\n\n| variant | top-1 |\n| --- | --- |\n| full | 50.0% |\n")
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "ablation.png")   # the chart it names, beside it
    plain = folder / "notes.md"
    plain.write_text("no heading here\n")
    lines = []
    page = write_report(run, folder / "report.html", device="cpu", include=[str(extra), str(plain)], log=lines.append)
    assert [line.split(" ", 2)[1] for line in lines[:3]] == ["1/3", "2/3", "3/3"]   # progress while it works
    return page


def test_report_is_one_self_contained_file(report):
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count('src="data:image/png;base64,') == 5
    assert "ILSVRC-2012 val, 1 CNN" in page and "40.7%" in page and "ten patches" in page
    assert "<h2>Ablations</h2>" in page and "<h2>ablation.md</h2>" not in page and "<td>full</td>" in page
    assert '<img alt="ablation.png"' in page            # the chart the table names is shown with it
    assert "<h2>notes.md</h2>" in page                  # a file without a heading gets its name as one
    assert "<td>lr</td><td>0.01</td>" in page and "<th>out_channels</th>" in page and "<pre>" not in page
    assert "at initialisation" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    assert not list(report.parent.glob("*.partial"))


def test_report_refuses_other_names(run, tmp_path):
    with pytest.raises(AlexNetError, match="HTML file"):
        write_report(run, tmp_path / "report.txt", device="cpu")
    with pytest.raises(AlexNetError, match="no such file to include"):
        write_report(run, tmp_path / "r.html", device="cpu", include=[str(tmp_path / "missing.md")])


BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (.ci/run installs one)")
def test_report_renders_in_a_headless_browser(report, tmp_path):
    """A real browser loads the page, runs its script and decodes every embedded picture."""
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
               report.as_uri()]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    assert 'data-images-loaded="5/5"' in dom, dom[-500:]
    shot = tmp_path / "shot.png"
    subprocess.run(command[:-2] + [f"--screenshot={shot}", "--window-size=1000,2000", report.as_uri()],
                   capture_output=True, timeout=120)
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3)[::97], axis=0)) > 50  # pictures drawn, not a blank page


def test_kernels_reference_is_the_runs_own_initial_network(run, tmp_path):
    from alexnet.figures.make import _conv1, _initial_network
    from alexnet.training.distributed import DistributedContext
    from alexnet.training.plan import resolve
    from alexnet.training.state import TrainState

    trained = load_trained(run, device="cpu")
    state = torch.random.get_rng_state()
    rebuilt = _initial_network(trained)
    assert torch.equal(torch.random.get_rng_state(), state)      # the caller's random state is left alone
    config = TrainConfig(data=trained.dataset.root, out=tmp_path / "fresh", preset="small", device="cpu", seed=0)
    as_trained = TrainState.start(resolve(config, DistributedContext())).model  # what `train` started from
    torch.testing.assert_close(_conv1(rebuilt).weight, _conv1(as_trained).weight, rtol=0, atol=0)
    assert not torch.equal(_conv1(rebuilt).weight, _conv1(trained.model).weight)  # training moved them


def test_prediction_label_and_probability_stand_apart():
    from alexnet.drawing.predictions import prediction_panel
    picture = np.zeros((8, 8, 3), np.uint8)
    panel = np.asarray(prediction_panel(picture, "5", [("9", 0.09)], None, width=220, picture_side=32))
    band = panel[32 + 28:32 + 28 + 15]                          # the one bar's row
    dark_columns = np.flatnonzero((band < 100).all(axis=2).any(axis=0))
    gaps = np.diff(dark_columns)
    # text "9" near the left, "9%" at the right edge: one wide blank between them, not "9 9%"
    assert dark_columns[0] < 30 and dark_columns[-1] > 200 and gaps.max() > 100


def test_curves_mark_chance_and_give_each_quantity_in_one_format():
    """A flat line at chance must read as "not learning": chance drawn on both panels (top-1 error and
    ln(classes)); error rates with one decimal and %, the loss with three decimals."""
    import math
    rows = [{"epoch": e, "train_loss": 1.386, "train_top1_error": 0.75, "val_top1_error": 0.75, "val_top5_error": 0.0}
            for e in (1, 2, 3)]
    errors, loss = curves_figure(rows, "small", classes=4).axes
    labels = [t.get_text() for t in errors.get_legend().get_texts()]
    assert labels[-1] == "chance, top-1 (75.0%)" and labels[0] == "train top-1 (last 75.0%)"
    chance = [line for line in errors.get_lines() if line.get_label().startswith("chance")][0]
    assert list(chance.get_ydata()) == [75.0, 75.0]
    loss_labels = [t.get_text() for t in loss.get_legend().get_texts()]
    assert loss_labels == ["train loss (last 1.386)", f"chance, ln 4 ({math.log(4):.3f})"]


def test_neighbours_are_labelled_and_small(tmp_path):
    """Which column is the query, each image's class, which neighbours share the query's class; a few
    hundred KB for 256 px images (it was 4.3 MB)."""
    from alexnet.drawing.draw import save_png
    from alexnet.drawing.neighbors import OTHER, QUERY, SAME, TILE, neighbors_figure
    rng = np.random.default_rng(0)
    queries = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(5)]
    found = [[rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(6)] for _ in range(5)]
    names = [["cat", "dog", "cat", "cat", "owl", "cat"]] * 5
    image = neighbors_figure(queries, found, ["cat"] * 5, names)
    path = save_png(image, tmp_path / "neighbors.png")
    assert path.stat().st_size < 600_000
    pixels = np.asarray(image)
    top = 44  # below the two-line key
    assert tuple(pixels[top + 1, 1]) == QUERY                         # the query's frame, first column
    first = TILE + 8 + 16                                             # the first neighbour starts after a gap
    assert tuple(pixels[top + 1, first + 1]) == SAME                  # "cat", like the query
    assert tuple(pixels[top + 1, first + (TILE + 8 + 2) + 1]) == OTHER  # "dog"


def test_predictions_say_that_red_is_the_true_label_and_show_small_bars():
    from alexnet.drawing.predictions import TRUE_COLOUR, prediction_panel, predictions_figure
    picture = np.zeros((8, 8, 3), np.uint8)
    figure = np.asarray(predictions_figure([picture], ["cat"], [[("dog", 0.98), ("cat", 0.004)]], [1]))
    assert (figure[:22] == TRUE_COLOUR).all(axis=2).any()             # the key's red swatch
    panel = np.asarray(prediction_panel(picture, "cat", [("dog", 0.98), ("cat", 0.004)], 1))
    row = panel[128 + 28 + 18 + 2]                                     # the second bar, above its label
    assert (row[4:8] == TRUE_COLOUR).all(axis=1).all()                 # 0.4% still shows as a bar


def test_kernels_picture_carries_its_title():
    weights = np.random.default_rng(0).normal(size=(8, 3, 5, 5)).astype(np.float32)
    plain, _ = kernels_figure(weights, 2)
    titled, _ = kernels_figure(weights, 2, title="conv1 kernels of run (small), after epoch 3")
    assert titled.height > plain.height and titled.width >= plain.width
