"""Data parallelism with two gloo processes on the CPU: the same step as one process, the same run."""

import datetime
import os
import re
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from alexnet import build_model
from alexnet.training.distributed import (SHARED_STORE_FIX, DistributedContext, attempt_store, global_batch_count,
                                          init_distributed)
from alexnet.training.optim import PaperSGD
from alexnet.training.step import SpeedSettings, grad_scaler, train_step


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))


def _steps(model, x, y, ctx, steps=2):
    """Two SGD steps on the global batch (x, y), of which this rank takes every world-th image."""
    cpu = torch.device("cpu")
    opt = PaperSGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    mine = slice(ctx.rank, None, ctx.world_size)
    weight = ctx.world_size / global_batch_count(0, (len(y) + ctx.world_size - 1) // ctx.world_size, ctx, len(y))
    for _ in range(steps):
        train_step(model, opt, grad_scaler(cpu, SpeedSettings()), x[mine], y[mine], cpu, SpeedSettings(), weight)


def _ddp_worker(rank, world, port, state, batches, out):
    torch.set_num_threads(1)
    _env(rank, world, port)
    ctx = init_distributed("cpu")
    for i, (x, y) in enumerate(batches):
        model = build_model("small", 10).eval()  # eval: dropout off
        model.load_state_dict(state)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        _steps(ddp, x, y, ctx)
        if rank == 0:
            torch.save(model.state_dict(), f"{out}.{i}")
    _leave()


def _leave() -> None:
    """End a spawned rank without the interpreter's teardown: with torch 2.13 on this CPU, one spawned gloo
    rank in five or so aborted there ("terminate called without an active exception", after its work was
    done and saved) when a DistributedDataParallel had run, destroyed process group or not; `alexnet
    train` under torchrun did not (20 runs)."""
    torch.distributed.destroy_process_group()
    os._exit(0)


def test_two_ranks_take_the_same_step_as_one_process(tmp_path):
    torch.manual_seed(0)
    state = {k: v.clone() for k, v in build_model("small", 10).state_dict().items()}
    # 8 images: 4 per rank; 7 images: the ranks hold 4 and 3, which the loss weighting must handle.
    batches = [(torch.randn(n, 3, 28, 28) * 40, torch.arange(n) % 10) for n in (8, 7)]
    out = tmp_path / "ddp.pt"
    mp.spawn(_ddp_worker, args=(2, _free_port(), state, batches, str(out)), nprocs=2, join=True)
    for i, (x, y) in enumerate(batches):
        model = build_model("small", 10).eval()
        model.load_state_dict(state)
        _steps(model, x, y, DistributedContext())  # one process, the whole batch
        ddp_state = torch.load(f"{out}.{i}", weights_only=True)
        for name, value in model.state_dict().items():
            torch.testing.assert_close(ddp_state[name], value, rtol=1e-5, atol=1e-6, msg=f"{len(y)} images: {name}")
        assert not torch.equal(ddp_state["features.conv1.weight"], state["features.conv1.weight"])  # it moved


def _train_worker(rank, world, port, data, run):
    torch.set_num_threads(1)
    _env(rank, world, port)
    from alexnet.config import TrainConfig
    from alexnet.training.loop import train
    lines = []
    train(TrainConfig(data=data, out=run, preset="small", epochs=1, batch_size=16, lr=0.01, device="cpu",
                        workers=0, progress=False, log=lines.append))
    Path(f"{run}.log{rank}").write_text("\n".join(lines))
    _leave()


def test_train_under_two_processes_writes_one_run(shapes_data, tmp_path):
    import csv

    from alexnet.evaluation.evaluate import evaluate_checkpoint
    run = tmp_path / "run"
    mp.spawn(_train_worker, args=(2, _free_port(), shapes_data, run), nprocs=2, join=True)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 1
    # The val error logged from the two shards equals a single-process evaluation of the saved weights.
    single = evaluate_checkpoint(str(run), tta="center", device="cpu")
    assert abs(float(rows[0]["val_top1_error"]) - single["top1_error"]) < 1e-9
    config = __import__("json").loads((run / "config.json").read_text())
    assert config["world_size"] == 2
    # rank 0 alone logs; its projection (from the one short epoch) is the epoch's rate over both ranks,
    # which metrics.csv gives, not twice it
    assert Path(f"{run}.log1").read_text() == ""
    speed = re.search(r"speed: ([\d,]+) training images/s \(epoch 1's steps\)", Path(f"{run}.log0").read_text())
    assert abs(int(speed.group(1).replace(",", "")) - float(rows[0]["images_per_second"])) <= 1


def _torchrun_env(monkeypatch, port: int, attempt: int, local_world: int) -> None:
    """What torchrun's agent (torch >= 2.5, c10d rendezvous) puts in a worker's environment."""
    for name, value in dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), TORCHELASTIC_USE_AGENT_STORE="True",
                            TORCHELASTIC_RESTART_COUNT=str(attempt), TORCHELASTIC_MAX_RESTARTS="3",
                            LOCAL_WORLD_SIZE=str(local_world)).items():
        monkeypatch.setenv(name, value)


def test_a_restarted_rank_does_not_read_the_address_its_dead_peer_left(monkeypatch):
    """torchrun's agent store outlives a restart (pytorch/pytorch#135712): what a rank of attempt 0 published
    must not be what attempt 1 reads, or the restarted rank connects to a dead address."""
    timeout = datetime.timedelta(seconds=20)
    agent = torch.distributed.TCPStore("127.0.0.1", 0, is_master=True, timeout=timeout, wait_for_workers=False)
    _torchrun_env(monkeypatch, agent.port, attempt=0, local_world=2)
    attempt_store(1, 2, timeout).set("rank1-address", "dead peer")
    _torchrun_env(monkeypatch, agent.port, attempt=1, local_world=2)
    restarted = attempt_store(0, 2, timeout)
    assert not restarted.check(["rank1-address"])
    restarted.set("rank1-address", "live peer")
    assert restarted.get("rank1-address") == b"live peer"
    assert agent.get("alexnet/attempt-0/rank1-address") == b"dead peer"  # the attempts' keys live side by side


def test_ranks_on_several_machines_are_told_how_to_restart_safely(monkeypatch, capsys):
    """Across machines the agents' attempt counts can differ, so the keys cannot be split by them: rank 0
    says which launcher setting gives each attempt a fresh store, and torchrun's own store is used."""
    timeout = datetime.timedelta(seconds=5)
    _torchrun_env(monkeypatch, 1, attempt=0, local_world=8)
    assert attempt_store(0, 16, timeout) is None
    assert SHARED_STORE_FIX in capsys.readouterr().err
    assert attempt_store(1, 16, timeout) is None and capsys.readouterr().err == ""  # once, from rank 0
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "0")
    assert attempt_store(0, 16, timeout) is None and capsys.readouterr().err == ""  # nothing restarts
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE")  # torchrun with SHARED_STORE_FIX, or no torchrun
    _torchrun_env(monkeypatch, 1, attempt=0, local_world=2)
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "False")
    assert attempt_store(0, 2, timeout) is None


def test_ranks_on_one_machine_share_its_cores_for_loader_workers(data256, tmp_path, monkeypatch):
    """The plan asks for the default worker count for this rank's share of the machine (torchrun's
    LOCAL_WORLD_SIZE ranks on it), not for the whole machine per rank."""
    import alexnet.training.plan as plan_module
    from alexnet.config import TrainConfig

    asked = []
    monkeypatch.setattr(plan_module, "default_workers", lambda device, ranks: asked.append(ranks) or 0)
    context = DistributedContext(rank=0, world_size=1, local_rank=0, local_world_size=3)
    plan_module.resolve(TrainConfig(data=data256, out=tmp_path / "run", preset="small", device="cpu"), context)
    assert asked == [3]
