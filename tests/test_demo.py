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


def test_the_demo_runs_on_its_own_thread_count(tmp_path, monkeypatch):
    """Its figure depends on how torch splits sums over threads (1 thread: 21.67%, 2: 15.33%), so the demo
    fixes the count whatever the machine has, and gives the caller's back."""
    import torch

    import alexnet.experiments.demo as demo
    seen = []
    monkeypatch.setattr(demo, "_run_demo", lambda *args: seen.append(torch.get_num_threads()) or {})
    with demo.torch_threads(1):
        run_demo(tmp_path / "demo")
        assert seen == [demo.DEMO_THREADS] and torch.get_num_threads() == 1


@pytest.mark.slow
def test_full_demo_gives_its_stated_figure(tmp_path):
    """A fixed amount of work: seed 0 gives the figure the README states (on this CPU build of torch)."""
    result = run_demo(tmp_path / "demo", progress=False)
    assert result["ten_crop"]["images"] == 300 and result["last_epoch"]["epoch"] == 8
    assert result["ten_crop"]["top1_error"] == pytest.approx(0.1533, abs=0.02)  # chance is 0.9


def test_the_time_guard_only_guards_and_says_so_loudly(tmp_path, monkeypatch, capsys):
    """On a machine too slow for the demo the guard stops training, and the result says it is not the
    demo's figure; the guard is far above what the demo's work takes (so it never decides the figure)."""
    import alexnet.experiments.demo as demo
    assert demo.DEMO_GUARD_S >= 600
    monkeypatch.setattr(demo, "DEMO_GUARD_S", 0.01)
    monkeypatch.setattr(demo, "DEMO_TRAIN_PER_CLASS", 20)
    monkeypatch.setattr(demo, "DEMO_VAL_PER_CLASS", 5)
    result = run_demo(tmp_path / "demo", epochs=3, progress=False)
    out = capsys.readouterr().out
    assert result["last_epoch"]["epoch"] < 3
    assert "WARNING: this machine was too slow: training stopped after 1 of 3 epochs" in out
    assert "this is not the demo's figure" in out
