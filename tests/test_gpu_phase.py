"""scripts/gpu_phase.py's dry mode: each GPU phase at toy sizes on the CPU, so the script that the next
GPU session runs cannot rot: it ends, writes its summary, and returns at most 8 flat files."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    "learn": ["| `small` |", "proxy images, 32 px, JPEG storage"],
    "step": ["train --preset small --device", "train --preset small-6conv --device", "images/s** against the",
             "no within-map norm (conv2)", "the step alexnet train runs",
             "cuda-convnet-2012: the step alexnet train runs", "cuda-convnet-2012: + within-map norm recomputed",
             "- fused optimizer"],
    "pipeline": ["| host (0) |", "| host, fed in the training thread (0) |", "| device (0) |",
                 "--pipelines device --train-preset small --train-batches 4", "physical)",
                 "round 1: validation of 64 train images: in the training process"],
    "checks": ["passed", "banded   bf16:", "run 1: one at a time"],
    "suite": ["passed", "pytest -q -rfsx -p no:cacheprovider -o log_level=WARNING"],
}


@pytest.mark.parametrize("phase", list(EXPECTED))
def test_phase_runs_dry(phase, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "scripts/gpu_phase.py", phase, "--dry", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = (out / f"{phase}-summary.md").read_text()
    for text in EXPECTED[phase]:
        assert text in summary, f"{text!r} not in\n{summary}"
    assert "skipped" not in summary and "exit 1" not in (out / f"{phase}.log").read_text()
    files = [p for p in out.rglob("*") if p.is_file()]
    assert 2 <= len(files) <= 8 and all(p.parent == out for p in files)  # what the device returns: 8, flat
    assert done.stdout.rstrip().endswith(summary.rstrip().splitlines()[-1])  # the summary prints last
    for folder in re.findall(r"in (\S*alexnet-phase-[^\s)/]+)", summary):  # its data, in /dev/shm: not left there
        assert not Path(folder).exists()


def test_proxy_size_leaves_out_the_commands_start():
    """The H100's learn call of 2026-11-26 sized its proxy from one pilot whose two commands spent nearly all
    their time starting (16 workers importing torch): 27 images/s measured, 2 images a class made. A machine
    modelled on it (9 s to start the two commands, then 840 images/s): the two pilots recover the rate, and
    the set they size, made at that rate after one start, fits the seconds given."""
    gpu_phase = load_script("gpu_phase")
    start, rate = 9.0, 840.0
    pilots = [(n, start + n / rate) for n in (32 * 2, 32 * 25)]
    measured, per_class = gpu_phase.proxy_size(pilots, seconds=62, images=100_000, classes=1000, val_per_class=5)
    assert measured == pytest.approx(rate)
    assert per_class == 39 and start + 1000 * (per_class + 5) / rate <= 62
    assert gpu_phase.proxy_size(pilots, seconds=600, images=100_000, classes=1000, val_per_class=5)[1] == 100
    assert gpu_phase.proxy_size(pilots, seconds=5, images=100_000, classes=1000, val_per_class=5)[1] == 2


def test_a_pipeline_row_cut_at_its_limit_keeps_what_it_had_measured(tmp_path, monkeypatch):
    """On 2026-11-27 every row of the H200's pipeline phase ran past its limit and the summary said only "no
    result". A row made to run past its limit here (2,000 timed batches in 8 s): the rows beside it keep
    their figures, and its own progress lines (bench data's stderr under --json) come below the table."""
    gpu_phase = load_script("gpu_phase")
    run = gpu_phase.Phase.run

    def one_row_too_long(self, title, command, limit_s, env=None):
        if "--no-ahead" in command:
            command, limit_s = [*command[:-1], "2000"], 8.0  # its --train-batches
        return run(self, title, command, limit_s, env)

    monkeypatch.setattr(gpu_phase.Phase, "run", one_row_too_long)
    monkeypatch.setattr(sys, "argv", ["gpu_phase.py", "pipeline", "--dry", "--out", str(tmp_path)])
    monkeypatch.chdir(ROOT)
    gpu_phase.main()
    summary = (tmp_path / "pipeline-summary.md").read_text()
    assert "| host, fed in the training thread | no result |" in summary and "| device (0) |" in summary
    cut = summary.split("What the rows without a result had measured when they were cut:")[1]
    assert "host, fed in the training thread: reference (JPEG + PIL + DataLoader):" in cut
    assert "timing 2000 batches" in cut


def test_tests_are_named_as_they_end_in_the_phases(tmp_path):
    """ALEXNET_TESTS_AS_THEY_END (set by the test phases): each test that does not pass is named with why as
    it ends, so a run cut by its time limit still says which failed (2026-11-27: two, unnamed)."""
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path)
    (tmp_path / "test_two.py").write_text("import pytest\n\n\ndef test_fails():\n    assert 1 == 2, 'boom'\n\n\n"
                                          "def test_passes():\n    pass\n\n\n@pytest.mark.xfail(strict=True)\n"
                                          "def test_known_fault():\n    assert False\n")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", str(tmp_path)]
    said = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "ALEXNET_TESTS_AS_THEY_END": "1"}).stdout.splitlines()
    ended = [line for line in said if line.startswith("[")]
    assert [line.split()[0] for line in ended] == ["[failed", "[passed", "[xfailed"]
    assert ended[0].endswith("test_two.py::test_fails: AssertionError: boom")
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                           env={k: v for k, v in os.environ.items() if k != "ALEXNET_TESTS_AS_THEY_END"})
    assert not [line for line in quiet.stdout.splitlines() if line.startswith("[")]


def test_checks_run_the_tests_one_file_after_another_where_pytest_does_not_take_n(tmp_path, monkeypatch):
    """pytest-xdist travels as wheels to the GPU machine; if its plugin did not load there, `-n 4` would be a
    usage error and the phase would test nothing. It runs them again without."""
    gpu_phase = load_script("gpu_phase")
    monkeypatch.setattr(gpu_phase, "PYTEST", [*gpu_phase.PYTEST, "-p", "no:xdist"])  # xdist found, not loaded
    monkeypatch.setattr(sys, "argv", ["gpu_phase.py", "checks", "--dry", "--out", str(tmp_path)])
    monkeypatch.chdir(ROOT)
    gpu_phase.main()
    summary = (tmp_path / "checks-summary.md").read_text()
    assert "-n 4 --dist loadfile" in summary and "no count line (exit 4)" in summary
    assert re.search(r"-m not slow tests/test_lrn.py -k fp16`: 2 passed", summary)
