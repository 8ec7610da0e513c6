"""A trial of hostile inputs through the command line, each in a fresh `alexnet` process (issue 25).

For every case: the command must fail with status 1 or 2 (or succeed, where the case says so), print no
traceback and at most one line on stderr, and leave every file that is not ours as it was. Builds a small
dataset and run first (about a minute), then about 50 cases (a few seconds each).

    python scripts/hostile_trial.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def alexnet(*args: str, within: list[str] = ()) -> subprocess.CompletedProcess:
    """`alexnet ARGS` in a fresh process (`within`: a command line it runs inside, e.g. a smaller /dev/shm)."""
    return subprocess.run([*within, sys.executable, "-m", "alexnet", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)


# A private mount namespace whose /dev/shm holds 20 MB (Docker gives 64 MB), where this machine allows it.
SMALL_SHM = ["unshare", "--mount", "sh", "-c", 'mount -t tmpfs -o size=20m tmpfs /dev/shm && exec "$@"', "sh"]


def digest(path: Path) -> str:
    if path.is_fifo():
        return "fifo"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "absent"


class Trial:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.count = 0

    def case(self, name: str, args: list, expect_ok: bool = False, untouched: tuple[Path, ...] = (),
             says: str = "", within: list[str] = ()) -> None:
        before = {p: digest(p) for p in untouched}
        done = alexnet(*args, within=within)
        self.count += 1
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        problems = []
        if expect_ok != (done.returncode == 0) or done.returncode not in (0, 1, 2):
            problems.append(f"exit {done.returncode}")
        if "Traceback" in done.stderr or (len(lines) > 1 and not expect_ok):  # progress lines go to stderr too
            problems.append(f"stderr: {done.stderr.strip()[:300]!r}")
        if says and says not in done.stderr + done.stdout:
            problems.append(f"does not say {says!r}: {(done.stderr or done.stdout).strip()[:200]!r}")
        changed = [str(p) for p in untouched if digest(p) != before[p]]
        if changed:
            problems.append(f"changed {changed}")
        print(f"{'ok  ' if not problems else 'FAIL'} {name}: {lines[-1][:150] if lines else 'exit 0'}", flush=True)
        if problems:
            self.failures.append(f"{name}: {'; '.join(problems)}")


def images(root: Path, classes=("a", "b"), per_class=24, size=40) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("val", 4)):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / split / c / f"{i}.png")
    return root


def edit_json(path: Path, change) -> None:
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d))


def dataset_cases(t: Trial, w: Path, data: Path) -> None:
    for name, change in [("classes a string", lambda m: m.__setitem__("classes", "abcdefgh")),
                         ("duplicate classes", lambda m: m["classes"].__setitem__(1, m["classes"][0])),
                         ("short class_names", lambda m: m.__setitem__("class_names", m["classes"][:1])),
                         ("count a string", lambda m: m["splits"]["train"].__setitem__("count", "48")),
                         ("NaN statistics", lambda m: m["statistics"].__setitem__("mean_rgb", [float("nan")] * 3)),
                         ("skipped a number", lambda m: m["splits"]["train"].__setitem__("skipped", 3))]:
        bad = w / f"m-{name.replace(' ', '-')}"
        shutil.copytree(data, bad)
        edit_json(bad / "manifest.json", change)
        t.case(f"manifest: {name} (verify)", ["prepare", bad, "--verify"])
        t.case(f"manifest: {name} (train)", ["train", "--data", bad, "--out", w / "x", "--preset", "small"])
    permuted = w / "labels"
    shutil.copytree(data, permuted)
    labels = np.load(permuted / "train_labels.npy")
    np.save(permuted / "train_labels.npy", labels[::-1].copy())
    t.case("labels permuted in range", ["train", "--data", permuted, "--out", w / "y", "--preset", "small"],
           says="checksum")


def checkpoint_cases(t: Trial, w: Path, run: Path, data: Path) -> None:
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(w / "img.png")
    ckpt = torch.load(run / "last.pt", weights_only=True)
    variants = {"a weight nudged": lambda c: c["model"]["features.conv1.weight"].add_(1e-3),
                "class names permuted": lambda c: c.__setitem__("class_names", c["class_names"][::-1]),
                "integer conv1 weights": lambda c: c["model"].__setitem__(
                    "features.conv1.weight", c["model"]["features.conv1.weight"].long()),
                "absurd weights": lambda c: c["model"]["classifier.fc7.weight"].fill_(3e8)}
    Image.new("RGB", (200_000, 1)).save(w / "thin.png")  # 700 bytes; rescaled whole: 39 GB at 256 px
    t.case("predict on a PNG of 200,000 x 1 pixels", ["predict", run, w / "thin.png", "--tta", "center"],
           expect_ok=True)
    for name, change in variants.items():
        bad = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in ckpt.items()}
        bad["model"] = {k: v.clone() for k, v in ckpt["model"].items()}
        change(bad)
        path = w / f"{name.replace(' ', '-')}.pt"
        torch.save(bad, path)
        t.case(f"checkpoint, {name}: evaluate", ["evaluate", path, "--data", data, "--tta", "center"])
        t.case(f"checkpoint, {name}: predict", ["predict", path, w / "img.png"])
        t.case(f"checkpoint, {name}: export", ["export", path, "--format", "safetensors", "--out", w / "e.st"],
               untouched=(w / "e.st",))
        t.case(f"checkpoint, {name}: --init-from", ["train", "--data", data, "--out", w / "ft", "--preset", "small",
                                                    "--init-from", path, "--epochs", "1"])
    raw = bytearray((run / "last.pt").read_bytes())
    raw[len(raw) // 2] ^= 1
    (w / "flipped.pt").write_bytes(bytes(raw))
    t.case("checkpoint, a byte flipped in the file", ["evaluate", w / "flipped.pt", "--data", data])


def config_cases(t: Trial, w: Path, data: Path) -> None:
    good = json.loads(alexnet("config", "show", "small").stdout)
    cases = {"unknown top-level key": {**good, "epochs_total": 3},
             "flip 'no'": {**good, "recipe": {**good["recipe"], "flip": "no"}},
             "unknown frozen layer": {**good, "recipe": {**good["recipe"], "frozen_bias_layers": ["conv9"]}},
             "numeric name": {**good, "name": 7},
             "input_size the data cannot give": {**good, "model": {**good["model"], "input_size": 100}},
             "fc_widths []": {**good, "model": {**good["model"], "fc_widths": []}},
             "batch_size 1e9": {**good, "recipe": {**good["recipe"], "batch_size": 10**9}},
             "widths 1e12": {**good, "model": {**good["model"], "fc_widths": [10**12, 10**12]}},
             "lr 1e308": {**good, "recipe": {**good["recipe"], "lr": 1e308}}}
    for name, d in cases.items():
        path = w / "c.json"
        path.write_text(json.dumps(d))
        t.case(f"--config: {name}", ["train", "--data", data, "--config", path, "--out", w / "cfg"])
    (w / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    t.case("--config: JSON nested 100,000 deep", ["train", "--data", data, "--config", w / "deep.json", "--out", w / "cfg"])
    t.case("--config /dev/zero", ["train", "--data", data, "--config", "/dev/zero", "--out", w / "cfg"])


def flag_cases(t: Trial, w: Path, data: Path, run: Path) -> None:
    for args in (["train", "--data", data, "--out", w / "f", "--epochs", 10**30],
                 ["train", "--data", data, "--out", w / "f", "--batch-size", 10**12],
                 ["train", "--data", data, "--out", w / "f", "--warmup-epochs", 10**20],
                 ["train", "--data", data, "--out", w / "f", "--preset", "Paper"],
                 ["train", "--data", data, "--out", w / "f", "--device", "cpu", "--compile"],
                 ["relu-tanh", "--data", data, "--out", w / "f", "--lr-tanh", "nan"],
                 ["relu-tanh", "--data", data, "--out", w / "f", "--lr-relu", "-1"],
                 ["figures", run, "--out", w / "f", "--seed", "-5"],
                 ["retrieval", run, "--out", w / "f", "--bits", "1000000"]):
        t.case(f"flag: {' '.join(map(str, args[-2:]))}", args)


def output_cases(t: Trial, w: Path, src: Path, run: Path, data: Path) -> None:
    mine = w / "mine"
    mine.mkdir()
    (mine / "train_labels.npy").write_text("a user's file")
    t.case("prepare into a folder of the user's", ["prepare", src, mine, "--size", "32"],
           untouched=(mine / "train_labels.npy",))
    (w / "model.st").write_text("someone else's")
    t.case("export onto an existing file", ["export", run, "--format", "safetensors", "--out", w / "model.st"],
           untouched=(w / "model.st",))
    os.mkfifo(w / "pipe")
    t.case("export onto a pipe, --force", ["export", run, "--format", "safetensors", "--out", w / "pipe", "--force"],
           untouched=(w / "pipe",))
    (w / "binary.md").write_bytes(bytes(range(256)) * 8)
    t.case("report --include of a binary file", ["report", run, "--out", w / "r.html", "--include", w / "binary.md"])
    garbage = w / "cifar"
    garbage.mkdir()
    (garbage / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b not gzip" * 100)
    t.case("a garbage cifar-10-python.tar.gz", ["prepare", garbage, w / "cd"])
    huge = w / "cifar2" / "cifar-10-batches-py"
    huge.mkdir(parents=True)
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2**70]}
    for name in ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]:
        (huge / name).write_bytes(pickle.dumps(batch))
    (huge / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"c%d" % i for i in range(10)]}))
    t.case("a CIFAR label too large for int64", ["prepare", w / "cifar2", w / "cd2", "--size", "32"])
    linked = images(w / "linked", per_class=6)
    (linked / "train" / "a" / "up").symlink_to(linked / "train")
    t.case("a link from a class folder to an ancestor", ["prepare", linked, w / "ld", "--size", "32", "--workers", "0",
                                                           "--quiet"],
           expect_ok=True, says="lead out of their class folder")
    (w / "index.html").write_text("<html>a user's own page</html>")
    t.case("report onto a page that is not a report", ["report", run, "--out", w / "index.html"],
           untouched=(w / "index.html",), says="is not a report of ours")
    (w / "pictures").mkdir()
    (w / "pictures" / "kernels.png").write_bytes(b"\x89PNG a user's own picture")
    t.case("figures onto a user's picture", ["figures", run, "--out", w / "pictures"],
           untouched=(w / "pictures" / "kernels.png",), says="is not a picture of ours")
    (w / "results").mkdir()
    (w / "results" / "ablation.md").write_text("# a user's own notes\n")
    t.case("ablate onto a user's ablation.md", ["ablate", "--data", data, "--out", w / "results", "--preset", "small",
                                                 "--variants", "no-lrn", "--epochs", "1"],
           untouched=(w / "results" / "ablation.md",), says="is not a table of ours")
    (w / "results" / "relu_tanh.csv").write_text("when,what\n")
    t.case("relu-tanh onto a user's relu_tanh.csv", ["relu-tanh", "--data", data, "--out", w / "results"],
           untouched=(w / "results" / "relu_tanh.csv",), says="is not a table of ours")
    (w / "results" / "steps.csv").write_text("my own log\n")
    t.case("train onto a user's steps.csv", ["train", "--data", data, "--out", w / "results", "--preset", "small",
                                             "--epochs", "1", "--log-steps", "1"],
           untouched=(w / "results" / "steps.csv",), says="is not a step log of ours")
    tree = images(w / "photos", per_class=6) / "train"   # one class tree: <class>/* with no val split
    t.case("a class tree without --val-fraction", ["prepare", tree, w / "pd", "--size", "32"], says="--val-fraction")
    t.case("--val-fraction 1", ["prepare", tree, w / "pd", "--size", "32", "--val-fraction", "1"])
    if shutil.which("unshare") and hasattr(os, "geteuid") and os.geteuid() == 0:  # mounting needs root
        t.case("train with 64 loader workers in a 20 MB /dev/shm", ["train", "--data", data, "--out", w / "shm", "--preset",
                                                                     "small", "--workers", "64"],
               within=SMALL_SHM, says="of shared memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", default=None, help="work in this folder and keep it")
    args = parser.parse_args()
    w = Path(args.keep or tempfile.mkdtemp(prefix="alexnet-trial-"))
    w.mkdir(parents=True, exist_ok=True)
    src = images(w / "src")
    data, run = w / "data", w / "run"
    assert alexnet("prepare", src, data, "--size", "32", "--workers", "0", "--quiet").returncode == 0
    assert alexnet("train", "--data", data, "--out", run, "--preset", "small", "--epochs", "1", "--quiet").returncode == 0
    t = Trial()
    for group in (lambda: dataset_cases(t, w, data), lambda: checkpoint_cases(t, w, run, data),
                  lambda: config_cases(t, w, data), lambda: flag_cases(t, w, data, run),
                  lambda: output_cases(t, w, src, run, data)):
        group()
    print(f"\n{t.count} cases, {len(t.failures)} failed" + "".join(f"\n  {f}" for f in t.failures))
    if not args.keep:
        shutil.rmtree(w, ignore_errors=True)
    sys.exit(1 if t.failures else 0)


if __name__ == "__main__":
    main()
