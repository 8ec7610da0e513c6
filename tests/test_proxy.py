"""The ImageNet-like proxy: classes from three visible factors, deterministic, resumable, preparable."""

import colorsys
import hashlib

import numpy as np
import pytest

import alexnet.data.proxy as proxy
from alexnet.cli.main import main
from alexnet.data.prepare import prepare_dataset
from alexnet.data.prepared import PreparedDataset
from alexnet.errors import AlexNetError
from conftest import dies_on_call


def _digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.jpg"))}


def test_classes_are_the_combinations_of_three_factors():
    everything = proxy.proxy_classes()
    assert len(everything) == len(set(everything)) == 1000
    assert set(everything) == {(s, c, t) for s in proxy.SHAPES for c in proxy.SCHEMES for t in proxy.TEXTURES}
    hundred = proxy.proxy_classes(100)  # a smaller proxy still varies every factor
    for k in range(3):
        assert {combo[k] for combo in hundred} == set((proxy.SHAPES, proxy.SCHEMES, proxy.TEXTURES)[k])
    with pytest.raises(AlexNetError, match="--classes must be from 1 to 1000"):
        proxy.proxy_classes(1001)


@pytest.mark.parametrize("scheme", proxy.SCHEMES)
def test_the_shape_is_drawn_in_its_colour_scheme(scheme):
    """Pixels far from the background's pale colours are the shape's: their hue lies in the scheme's band."""
    rng = np.random.default_rng(1)
    for _ in range(3):
        image, hue = proxy.render_proxy(("disc", scheme, "plain"), 96, rng)
        band = proxy.SCHEMES.index(scheme)
        assert band / 10 <= hue < (band + 1) / 10
        pixels = np.asarray(image, np.float64).reshape(-1, 3) / 255
        hsv = np.array([colorsys.rgb_to_hsv(*p) for p in pixels[::7]])
        shape = hsv[hsv[:, 1] > 0.5]  # saturated: the background is pale (saturation <= 0.25 plus noise)
        assert len(shape) > 20
        median = np.median(shape[:, 0])
        assert abs(median - hue) < 0.03 or abs(abs(median - hue) - 1) < 0.03


def test_textures_differ():
    rng = np.random.default_rng(2)
    masks = {t: proxy._texture(t, 64, rng) for t in proxy.TEXTURES}
    assert masks["plain"].sum() == 0 and all(m.std() > 0.1 for t, m in masks.items() if t != "plain")
    assert (masks["hlines"] == masks["hlines"][:, :1]).all()   # horizontal lines: each row one value
    assert (masks["vlines"] == masks["vlines"][:1, :]).all()   # vertical lines: each column one value
    assert not (masks["diagonal"] == masks["diagonal"][:, :1]).all()


def test_deterministic_parallel_and_preparable(tmp_path):
    a = proxy.make_proxy_dataset(tmp_path / "a", classes=6, train_per_class=3, val_per_class=1, size=64,
                                 workers=0, progress=False)
    b = proxy.make_proxy_dataset(tmp_path / "b", classes=6, train_per_class=3, val_per_class=1, size=64,
                                 workers=2, progress=False)
    assert _digest(a) == _digest(b) and len(_digest(a)) == 6 * 4
    assert not list(a.glob(".done-*")) and not (tmp_path / "a.partial").exists()
    data = prepare_dataset(a, tmp_path / "data", size=64, workers=0, progress=False)
    assert data["num_classes"] == 6 and data["splits"]["train"]["count"] == 18
    assert PreparedDataset(tmp_path / "data").class_names == sorted(proxy.class_name(c) for c in proxy.proxy_classes(6))


def test_an_interrupted_run_continues_and_ends_the_same(tmp_path, monkeypatch):
    real = proxy._make_class
    monkeypatch.setattr(proxy, "_make_class", dies_on_call(real, 3, []))
    with pytest.raises(KeyboardInterrupt):
        proxy.make_proxy_dataset(tmp_path / "p", classes=4, train_per_class=2, val_per_class=1, size=48,
                                 workers=0, progress=False)
    assert not (tmp_path / "p").exists() and len(list((tmp_path / "p.partial").glob(".done-*"))) == 2
    monkeypatch.setattr(proxy, "_make_class", real)
    done = proxy.make_proxy_dataset(tmp_path / "p", classes=4, train_per_class=2, val_per_class=1, size=48,
                                    workers=0, progress=False)
    fresh = proxy.make_proxy_dataset(tmp_path / "q", classes=4, train_per_class=2, val_per_class=1, size=48,
                                     workers=0, progress=False)
    assert _digest(done) == _digest(fresh)


def test_command_line(tmp_path, capsys):
    assert main(["proxy", str(tmp_path / "p"), "--classes", "2", "--train-per-class", "1", "--val-per-class", "1",
                 "--size", "40", "--workers", "0", "--quiet"]) == 0
    assert "next: alexnet prepare" in capsys.readouterr().out
    assert main(["proxy", str(tmp_path / "p"), "--classes", "2"]) == 1
    assert "already exists" in capsys.readouterr().err
