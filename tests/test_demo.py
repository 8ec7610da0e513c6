"""The demo: the whole run is slow (marked; `pytest -m slow`), its folder rules are quick."""

import pytest

from alexnet.experiments.demo import MARKER, _fresh_workdir, run_demo
from alexnet.errors import AlexNetError


def test_demo_never_clears_a_users_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(AlexNetError, match="was not made by `alexnet demo`"):
        _fresh_workdir(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_demo_reuses_its_own_folder(tmp_path):
    out = tmp_path / "demo"
    _fresh_workdir(out)
    (out / "run").mkdir()
    (out / "run" / "old").write_text("x")
    _fresh_workdir(out)
    assert (out / MARKER).exists() and not (out / "run").exists()


@pytest.mark.slow
def test_full_demo_far_below_chance(tmp_path):
    result = run_demo(tmp_path / "demo", progress=False)
    assert result["ten_crop"]["images"] == 500
    assert result["ten_crop"]["top1_error"] < 0.5  # chance is 0.9
