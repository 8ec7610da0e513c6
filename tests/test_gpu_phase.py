"""scripts/gpu_phase.py's dry mode: each GPU phase at toy sizes on the CPU, so the script that the next
GPU session runs cannot rot: it ends, writes its summary, and returns at most 8 flat files."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    "learn": ["| `small` |", "proxy images, 32 px, JPEG storage"],
    "step": ["images/s** against the reference's", "the step alexnet train runs", "+ TF32 LRN window sums",
             "- fused optimizer"],
    "pipeline": ["| host |", "| device |", "reference"],
    "checks": ["passed", "banded   bf16:"],
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
