"""Faults a long run must survive (issue 6), each against an uninterrupted run with the same seed.

A process killed at any moment leaves only what it had completely written: the simulated deaths
below raise an exception that nothing in the trainer catches (like SIGKILL, no checkpoint is written
on the way out), at a chosen training step or in the middle of writing a chosen checkpoint; the
run is then resumed, as a restarted job would be, and must end bit-identical to the reference.
Real signals are sent to a real `alexnet train` process in the subprocess tests.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

import alexnet.data.augment as augment_module
import alexnet.training.loop as loop_module
import alexnet.training.step as step_module
from alexnet.errors import AlexNetError
from alexnet.runs.checkpoint import LAST, load_checkpoint
from alexnet.interrupt import EXIT_INTERRUPTED
from alexnet.config import TrainConfig
from alexnet.training.loop import train

STEPS_PER_EPOCH = 10  # 160 training images of the `tiny` fixture, batch 16; checkpoints every 3 steps


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no handler in the trainer turns it into a save."""


def settings(data, out, **extra) -> TrainConfig:
    base = dict(data=data, out=out, preset="small", epochs=2, batch_size=16, lr=0.01, seed=3, device="cpu",
                workers=0, checkpoint_every=3, auto_resume=True, progress=False, log=lambda line: None)
    return TrainConfig(**{**base, **extra})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Four classes of 40 training and 10 validation images at 32 px: runs of seconds."""
    from alexnet.data.prepare import prepare_dataset
    from alexnet.data.synthetic import CLASSES, make_shapes_dataset

    root = tmp_path_factory.mktemp("tiny")
    make_shapes_dataset(root / "src", 40, 10, seed=1, classes=CLASSES[:4])
    prepare_dataset(root / "src", root / "data", size=32, workers=0, progress=False)
    return root / "data"


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory):
    """The uninterrupted run: its final checkpoint."""
    out = tmp_path_factory.mktemp("reference") / "run"
    train(settings(tiny, out))
    return load_checkpoint(out)


def assert_same_run(out, reference) -> None:
    got = load_checkpoint(out)
    assert "partial" not in got and got["epoch"] == reference["epoch"]
    for name, value in reference["model"].items():
        assert torch.equal(got["model"][name], value), name
    for key in ("train_loss", "train_top1_error", "val_top1_error", "val_top5_error"):
        assert [r[key] for r in got["history"]] == [r[key] for r in reference["history"]], key


# Kill points: steps (1-based count of train_step calls) at the start, on a checkpoint boundary (3),
# right after one (4), mid-epoch, the last step of epoch 1 (10), the first of epoch 2, late in epoch 2.
# The default run keeps three; `-m slow` runs them all (each costs a whole two-epoch run).
SLOW = pytest.mark.slow


@pytest.mark.parametrize("step,workers", [pytest.param(1, 0, marks=SLOW), pytest.param(3, 0, marks=SLOW),
                                          pytest.param(4, 0, marks=SLOW), (8, 0), pytest.param(10, 0, marks=SLOW),
                                          (11, 0), pytest.param(17, 0, marks=SLOW), pytest.param(8, 2, marks=SLOW)])
def test_killed_at_a_step_resumes_bit_identical(tiny, tmp_path, monkeypatch, reference, step, workers):
    real, calls = step_module.train_step, [0]

    def dying_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == step:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(step_module, "train_step", dying_step)
    with pytest.raises(Killed):
        train(settings(tiny, tmp_path / "run", workers=workers))
    monkeypatch.undo()
    train(settings(tiny, tmp_path / "run", workers=workers))  # the restarted job
    assert_same_run(tmp_path / "run", reference)


def test_validation_loads_with_the_runs_workers_and_gives_the_same_run(tiny, tmp_path, monkeypatch, reference):
    """Validation during training decoded its images in the training process whatever --workers said (on
    ILSVRC about a fifth of an epoch's time on a GPU machine); it now loads with the run's workers, and the
    run (weights, training and validation errors) is the one loaded in the training process."""
    real, asked = loop_module.predict_probabilities, []

    def watched(*args, **kwargs):
        asked.append(args[6])  # workers
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_module, "predict_probabilities", watched)
    train(settings(tiny, tmp_path / "run", workers=2))
    assert asked == [2, 2]
    assert_same_run(tmp_path / "run", reference)


# Checkpoint writes in order: mid-epoch after steps 3, 6, 9, then the end of epoch 1 (4th), then
# epoch 2's mid-epoch ones (5th ...).
@pytest.mark.parametrize("write", [pytest.param(1, marks=SLOW), 4, pytest.param(5, marks=SLOW)])
def test_killed_while_writing_a_checkpoint_keeps_the_previous_one(tiny, tmp_path, monkeypatch, reference,
                                                                  write):
    real_save, writes = torch.save, [0]

    def dying_save(obj, f, *args, **kwargs):
        writes[0] += 1
        if writes[0] == write:
            f.write(b"PK\x03\x04 half a checkpoint")  # torn: the process dies mid-write
            raise Killed
        return real_save(obj, f, *args, **kwargs)

    run = tmp_path / "run"
    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(Killed):
        train(settings(tiny, run))
    monkeypatch.undo()
    if write == 1:
        assert not (run / LAST).exists()  # nothing was complete yet
    else:  # the checkpoint on disk is the previous complete one
        previous = load_checkpoint(run)
        assert previous["partial"]["step"] == 9 if write == 4 else previous["epoch"] == 1
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    train(settings(tiny, run))
    assert_same_run(run, reference)


def test_full_disk_during_a_checkpoint_keeps_the_last_good_one(tiny, tmp_path, monkeypatch):
    run, real_save, writes = tmp_path / "run", torch.save, [0]

    def full_disk(obj, f, *args, **kwargs):
        writes[0] += 1
        if writes[0] == 3:
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(AlexNetError, match=r"could not write checkpoint .*last.pt \(No space left on device\); "
                                           r"the previous checkpoint there, if any, is intact"):
        train(settings(tiny, run))
    monkeypatch.undo()
    assert load_checkpoint(run)["partial"]["step"] == 6  # the second write, complete
    assert [p.name for p in run.iterdir() if ".tmp" in p.name] == []


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    run = tmp_path / "run"
    real = augment_module.Augmentation.train_batch
    calls = [0]

    def poisoned(self, *args):
        calls[0] += 1
        x = real(self, *args)
        return x * float("nan") if calls[0] == 6 else x

    monkeypatch.setattr(augment_module.Augmentation, "train_batch", poisoned)
    with pytest.raises(AlexNetError, match="training diverged in epoch 1 .* the last good checkpoint .* is kept"):
        train(settings(tiny, run))
    kept = load_checkpoint(run)
    assert kept["partial"]["step"] == 3 and all(torch.isfinite(v).all() for v in kept["model"].values())


def test_skip_bad_batches_counts_and_goes_on(tiny, tmp_path, monkeypatch):
    real = augment_module.Augmentation.train_batch
    calls, lines = [0], []

    def poisoned(self, *args):
        calls[0] += 1
        x = real(self, *args)
        return x * float("nan") if calls[0] in (6, 15) else x

    monkeypatch.setattr(augment_module.Augmentation, "train_batch", poisoned)
    result = train(settings(tiny, tmp_path / "run", skip_bad_batches=True, log=lines.append))
    history = load_checkpoint(tmp_path / "run")["history"]
    assert [row["skipped_batches"] for row in history] == [1, 1]
    assert result["epoch"] == 2 and all(torch.isfinite(torch.tensor(r["train_loss"])) for r in history)
    assert sum("skipped batch" in line for line in lines) == 2
    assert any("skipped 1 bad batch(es)" in line for line in lines)


def test_changed_dataset_is_refused_on_resume(tiny, tmp_path):
    from alexnet.data.prepare import prepare_dataset

    run = tmp_path / "run"
    train(settings(tiny, run, epochs=1))
    # the same classes and image size, one training image fewer: the manifest's fingerprint differs
    src = tiny.parent / "src"
    victim = sorted((src / "train").glob("*/*"))[0]
    moved = tmp_path / victim.name
    victim.rename(moved)
    try:
        changed = tmp_path / "changed"
        prepare_dataset(src, changed, size=32, workers=0, progress=False)
    finally:
        moved.rename(victim)
    with pytest.raises(AlexNetError, match="the dataset changed since this run started"):
        train(settings(changed, run, epochs=2, resume=True, auto_resume=False))


def _cli(data, out, *extra):
    return [sys.executable, "-m", "alexnet", "train", "--data", str(data), "--preset", "small", "--out", str(out),
            "--epochs", "2", "--batch-size", "16", "--lr", "0.01", "--seed", "3", "--device", "cpu",
            "--workers", "0", "--checkpoint-every", "3", "--quiet", *extra]


def _start_and_wait_for_training(command, out):
    # The same number of threads as this process's reference run: float sums depend on it.
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not (out / "config.json").exists():  # written just before the first step
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def test_sigterm_writes_a_checkpoint_and_says_how_to_resume(tiny, tmp_path, reference):
    run = tmp_path / "run"
    proc = _start_and_wait_for_training(_cli(tiny, run), run)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "SIGTERM received: stopping after this step" in stderr
    assert "checkpoint" in stderr and "Resume with: alexnet train --data" in stderr and stderr.rstrip().endswith("--resume")
    # the checkpoint holds exactly the place the message names: a step inside an epoch, or an epoch's end
    where = re.search(r"interrupted by SIGTERM at (?:epoch (\d+), step (\d+) of (\d+)|the end of epoch (\d+));",
                      stderr)
    assert where, stderr
    stopped = load_checkpoint(run)
    if where.group(1):
        epoch, step, steps = map(int, where.group(1, 2, 3))
        assert stopped["partial"]["epoch"] == epoch and stopped["epoch"] == epoch - 1
        assert stopped["partial"]["step"] == step < steps == stopped["partial"]["steps"]
    else:
        assert "partial" not in stopped and stopped["epoch"] == int(where.group(4))
    # the resumed run (in this process: the same code path as the CLI's) ends where the uninterrupted one did
    train(settings(tiny, run, resume=True, auto_resume=False))
    assert_same_run(run, reference)


def test_a_second_signal_exits_at_once(monkeypatch, capsys):
    """Two signals sent back to back reach Python's handler as one, so the handler is driven directly:
    the first asks for a stop, the second exits with 128 + the signal's number without a checkpoint."""
    import alexnet.interrupt as interrupt

    exits = []

    def fake_exit(code):
        exits.append(code)
        raise Killed

    monkeypatch.setattr(interrupt.os, "_exit", fake_exit)
    request = interrupt.StopRequest()
    request._handle(signal.SIGINT, None)
    assert request.requested and exits == []
    with pytest.raises(Killed):
        request._handle(signal.SIGINT, None)
    assert exits == [128 + signal.SIGINT]
    err = capsys.readouterr().err
    assert "SIGINT received: stopping after this step" in err and "second SIGINT: exiting now" in err


def test_handlers_are_installed_only_while_training(tiny, tmp_path, monkeypatch):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    seen = []

    def spy(*args, **kwargs):
        seen.append(signal.getsignal(signal.SIGTERM))
        raise Killed  # no need to train: only the handler in place during the epoch matters

    monkeypatch.setattr(loop_module, "train_one_epoch", spy)
    with pytest.raises(Killed):
        train(settings(tiny, tmp_path / "run", epochs=1, checkpoint_every=None))
    assert seen and getattr(seen[0], "__self__", None).__class__.__name__ == "StopRequest"
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _ranks_errors_first(stderr: str) -> str:
    """torchrun's stderr for a failure message: the ranks' own error lines first (torchrun's summary, which
    ends the output, names only exit codes)."""
    causes = [line for line in stderr.splitlines() if ("Error" in line or "error:" in line) and "elastic" not in line]
    return "\n".join(causes[-8:]) + "\n...\n" + stderr[-1500:]


def _torchrun_train(tiny, out, *launch: str) -> list[str]:
    """`torchrun LAUNCH -m alexnet train` of a two-epoch gloo run that checkpoints every 3 steps, resuming
    from its last checkpoint whenever it is started again."""
    return [sys.executable, "-m", "torch.distributed.run", "--max-restarts=1", "--rdzv-backend=c10d", *launch,
            "-m", "alexnet", "train", "--data", str(tiny), "--preset", "small", "--out", str(out), "--epochs", "2",
            "--batch-size", "16", "--lr", "0.01", "--seed", "3", "--device", "cpu", "--workers", "0",
            "--checkpoint-every", "3", "--auto-resume", "--quiet"]


def _kill_a_rank_after_the_first_checkpoint(out, agent: subprocess.Popen) -> None:
    deadline = time.monotonic() + 600
    while not (out / LAST).exists():
        assert agent.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    workers = _children(agent.pid)
    assert workers
    os.kill(workers[-1], signal.SIGKILL)


def _same_weights(run_a, run_b) -> None:
    got, want = load_checkpoint(run_a), load_checkpoint(run_b)
    for name, value in want["model"].items():
        assert torch.equal(got["model"][name], value), name


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the worker processes through /proc")
def test_torchrun_restarts_a_dead_rank_from_the_last_checkpoint(tiny, tmp_path):
    """Two gloo ranks under torchrun; one rank is SIGKILLed after the first mid-epoch checkpoint; torchrun
    restarts both, they resume from it and end where an undisturbed run ends. One restart allowed: the
    restarted ranks must meet at once, not at the dead rank's address torchrun's store still holds (before
    attempt_store, 5 of 10 such restarts hung or failed to connect on a loaded 2-core machine)."""
    def command(out):
        return _torchrun_train(tiny, out, "--nproc_per_node=2", "--rdzv-endpoint=localhost:0")

    undisturbed = subprocess.run(command(tmp_path / "a"), capture_output=True, text=True, timeout=900)
    assert undisturbed.returncode == 0, _ranks_errors_first(undisturbed.stderr)
    assert undisturbed.stdout.count("done: reached --epochs") == 1  # rank 0 alone reports
    proc = subprocess.Popen(command(tmp_path / "b"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_a_rank_after_the_first_checkpoint(tmp_path / "b", proc)
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, _ranks_errors_first(stderr)
    assert "resuming preset" in stdout  # the restarted ranks continued the run rather than starting over
    _same_weights(tmp_path / "b", tmp_path / "a")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the worker processes through /proc")
def test_two_machines_restart_a_dead_rank_as_the_readme_launches_them(tiny, tmp_path):
    """The README's cluster launch, two torchrun agents of one rank each standing in for two machines:
    with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 a run whose rank was SIGKILLed ends where an undisturbed
    two-machine run ends (without it, 3 of 3 such restarts here failed to connect or hung)."""
    env = {**os.environ, "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}

    def two_machines(out) -> list[subprocess.Popen]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            endpoint = f"127.0.0.1:{s.getsockname()[1]}"
        command = _torchrun_train(tiny, out, "--nnodes=2", "--nproc_per_node=1", f"--rdzv-endpoint={endpoint}",
                                  f"--rdzv-id={out.name}")
        return [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]

    def finish(agents) -> list[str]:
        stdouts = []
        for agent in agents:
            stdout, stderr = agent.communicate(timeout=900)
            assert agent.returncode == 0, _ranks_errors_first(stderr)
            assert "warning: torchrun restarts" not in stderr
            stdouts.append(stdout)
        return stdouts

    finish(two_machines(tmp_path / "a"))
    agents = two_machines(tmp_path / "b")
    _kill_a_rank_after_the_first_checkpoint(tmp_path / "b", agents[1])
    assert "resuming preset" in "".join(finish(agents))
    _same_weights(tmp_path / "b", tmp_path / "a")


def test_a_second_training_on_the_same_run_folder_is_refused(tiny, tmp_path, monkeypatch):
    """While one `train` holds RUN, another is refused (it would silently overwrite the first's files);
    once the first ends, its lock is gone with it."""
    from alexnet.files import FolderLock

    run = tmp_path / "run"
    holder = FolderLock(run, "this run folder").acquire()  # another process's lock, as far as train() can tell
    try:
        with pytest.raises(AlexNetError, match=r"run: this run folder is already in use by process \d+"):
            train(settings(tiny, run, epochs=1))
        assert not (run / LAST).exists()
    finally:
        holder.release()
    train(settings(tiny, run, epochs=1))  # free again
    assert (run / LAST).exists()


def test_stale_temporaries_of_killed_writers_are_removed(tiny, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = run / f".last.pt.{dead.stdout.strip()}.tmp"
    stale.write_bytes(b"half a checkpoint")
    train(settings(tiny, run, epochs=1))
    assert not stale.exists() and (run / LAST).exists()


EXIT_WITH_LIVE_LOADERS = """
import sys, torch
from alexnet.data.loader import EvalBatches, TrainBatches, make_loader
from alexnet.data.prepared import PreparedDataset
data = PreparedDataset(sys.argv[1])
train = TrainBatches(data.images["train"], data.labels["train"], 16, 28, seed=0, pca_std=0.1)
train.set_epoch(1)
loader = make_loader(train, 1, torch.device("cpu"))
whole = [batch for batch in loader]        # persistent workers, still alive after the epoch
val = EvalBatches(data.images["val"], data.labels["val"], 4)
part = iter(make_loader(val, 1, torch.device("cpu")))
first = next(part)                         # an iteration left half-way, its worker alive
print("read", len(whole), "batches")
"""


def test_a_program_ends_with_loader_workers_still_alive(tiny):
    """Loader workers ignore SIGTERM (so that a scheduler's SIGTERM to the whole job leaves the main process
    to checkpoint), but multiprocessing's exit hook stops daemonic children with SIGTERM and then waits for
    them: a program holding a live loader at exit waited for ever (found with a script that kept its loader
    in a global). Each live loader's workers are now stopped at exit as a collected loader stops them."""
    done = subprocess.run([sys.executable, "-c", EXIT_WITH_LIVE_LOADERS, str(tiny)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "read 10 batches" in done.stdout


def test_a_loader_worker_killed_mid_run_is_one_line(tiny, tmp_path, monkeypatch, capsys):
    """The OOM killer takes a loader worker: torch raised its RuntimeError from a signal handler at any point of
    a step, a 40-line traceback. Now one line: what torch said, the checkpoint kept, and the command to go on
    with fewer workers (its own --workers left out). Exit status 1."""
    from alexnet.cli.main import main
    from alexnet.data.loader import TrainBatches
    from torch.utils.data import get_worker_info

    real = TrainBatches.__getitem__

    def dies_in_epoch_2(self, key):
        if get_worker_info() is not None and key.epoch == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, key)

    monkeypatch.setattr(TrainBatches, "__getitem__", dies_in_epoch_2)  # the forked workers inherit it
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny), "--out", str(out), "--preset", "small", "--epochs", "2", "--batch-size",
            "16", "--device", "cpu", "--workers", "1", "--seed", "3", "--quiet"]
    monkeypatch.setattr(sys, "argv", ["alexnet", *args])
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err, err
    assert "a data-loading worker died (DataLoader worker (pid" in err
    assert f"checkpoint {out / LAST} is kept" in err and load_checkpoint(out)["epoch"] == 1
    assert err.endswith("--epochs 2 --batch-size 16 --device cpu --seed 3 --quiet --workers N --resume")


def test_a_loader_worker_killed_outside_training_is_one_line(tiny, tmp_path, monkeypatch, capsys):
    """The same death under `evaluate --workers 1`: one line, status 1, where torch's traceback came."""
    from alexnet.cli.main import main
    from alexnet.data.loader import EvalBatches
    from torch.utils.data import get_worker_info

    run = tmp_path / "run"
    train(settings(tiny, run, epochs=1, checkpoint_every=None))
    real = EvalBatches.__getitem__

    def dies(self, b):
        if get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, b)

    monkeypatch.setattr(EvalBatches, "__getitem__", dies)
    code = main(["evaluate", str(run), "--data", str(tiny), "--workers", "1", "--tta", "center"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err, err
    assert err.startswith("alexnet: error: a data-loading worker died (DataLoader worker (pid")
    assert err.endswith("killed for lack of memory?); run again (with fewer --workers if memory is short)")


def test_a_loader_that_delivers_nothing_ends_the_run_in_one_line(tiny, tmp_path, monkeypatch, capsys):
    """A worker stuck on a stalled disk: the run waited for ever (one so stuck, on a full /dev/shm, was found
    still waiting 35 minutes on). Now no batch within BATCH_TIMEOUT_S (600 s; 1 s here) ends it in one line,
    with the checkpoint kept and the command to go on."""
    import time
    import alexnet.data.loader as loader_module
    from alexnet.cli.main import main
    from alexnet.data.loader import TrainBatches
    from torch.utils.data import get_worker_info

    real = TrainBatches.__getitem__

    def stalls_in_epoch_2(self, key):
        if get_worker_info() is not None and key.epoch == 2:
            time.sleep(30)
        return real(self, key)

    monkeypatch.setattr(TrainBatches, "__getitem__", stalls_in_epoch_2)
    monkeypatch.setattr(loader_module, "BATCH_TIMEOUT_S", 1)
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny), "--out", str(out), "--preset", "small", "--epochs", "2", "--batch-size",
            "16", "--device", "cpu", "--workers", "1", "--seed", "3", "--quiet"]
    monkeypatch.setattr(sys, "argv", ["alexnet", *args])
    started = time.monotonic()
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err, err
    assert "no batch came from the data-loading workers in 1 s (a stalled disk, or a stuck worker?)" in err
    assert f"checkpoint {out / LAST} is kept; go on: alexnet train" in err and err.endswith("--quiet --resume")
    assert time.monotonic() - started < 25  # not the stalled worker's 30 s


EXIT_WITH_A_STUCK_WORKER = """
import sys, time, torch
import alexnet.data.loader as loader
from alexnet.data.loader import TrainBatches, make_loader
from alexnet.data.prepared import PreparedDataset
from torch.utils.data import get_worker_info

real = TrainBatches.__getitem__
def stuck(self, key):
    if get_worker_info() is not None and key.batch == 2:
        time.sleep(120)               # a read on a stalled disk
    return real(self, key)
TrainBatches.__getitem__ = stuck
loader.BATCH_TIMEOUT_S = 1
data = PreparedDataset(sys.argv[1])
train = TrainBatches(data.images["train"], data.labels["train"], 16, 28, seed=0, pca_std=0.1)
train.set_epoch(1)
try:
    for batch in make_loader(train, 1, torch.device("cpu")):
        pass
except RuntimeError as exc:
    print(loader.loader_failure(exc))
"""


def test_a_program_ends_with_a_loader_worker_stuck_in_a_read(tiny):
    """The loader gave up on a worker stuck in a read (its timeout), but the worker ignores SIGTERM and
    cannot take its stop: the program's exit waited until the read ended (a 120 s sleep here; for ever on a
    dead disk). Workers left alive after their stop are now killed at exit."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", EXIT_WITH_A_STUCK_WORKER, str(tiny)], capture_output=True, text=True,
                          timeout=100)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no batch came from the data-loading workers in 1 s" in done.stdout
    assert time.monotonic() - started < 60
