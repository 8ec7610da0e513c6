"""`alexnet evaluate`: top-1 / top-5 error with centre-patch or ten-patch testing (Section 4.1, end),
of one network or of several whose softmax outputs are averaged (Section 6's "5 CNNs")."""

from __future__ import annotations

from typing import Any

from ..config import recipe_from_dict
from ..data.augment import TTA_MODES
from ..data.loader import default_workers
from ..data.prepared import PreparedDataset
from ..device import resolve_device
from ..errors import AlexNetError, UsageError
from ..runs.checkpoint import load_checkpoint
from ..runs.inference import predict_probabilities, topk_errors
from ..runs.trained import check_classes, checkpoint_test_views, model_from_checkpoint


def evaluate_checkpoints(runs: list[str], data: str | None = None, tta: str = "10crop", device: str | None = None,
                         batch_size: int | None = None, workers: int | None = None, progress: bool = False,
                         split: str = "val") -> dict[str, Any]:
    """Top-1/top-5 error of the networks' averaged softmax outputs on a prepared dataset's `split`.

    `data` defaults to the dataset the first run trained on; `workers` (loading processes) to train's.
    """
    if tta not in TTA_MODES:
        raise AlexNetError(f"--tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    if not runs:
        raise AlexNetError("no run or checkpoint to evaluate")
    checkpoints = [load_checkpoint(r) for r in runs]
    dev = resolve_device(device)
    workers = default_workers(dev) if workers is None else workers
    dataset = PreparedDataset(data or checkpoints[0].get("data", ""))
    if split not in dataset.labels:
        raise AlexNetError(f"{dataset.root}: no {split!r} split (it has {', '.join(dataset.labels)})")
    total, labels = None, None
    for ckpt in checkpoints:
        check_classes(ckpt, dataset)
        test_views = checkpoint_test_views(ckpt, dataset, dev)
        model = model_from_checkpoint(ckpt).to(dev)
        eval_batch = batch_size or recipe_from_dict(ckpt.get("recipe", {})).eval_batch_size
        probs, labels = predict_probabilities(model, dataset, test_views, split, tta, eval_batch, workers, progress)
        total = probs if total is None else total + probs
    result = topk_errors(total / len(checkpoints), labels)
    # another preparation's val images may be among this one's training images: the caller says so
    elsewhere = {c["path"]: c.get("data", "?") for c in checkpoints
                 if c.get("data_fingerprint") not in (None, dataset.fingerprint)}
    return {**result, "tta": tta, "split": split, "networks": len(checkpoints), "classes": dataset.num_classes,
            "checkpoint": ", ".join(c["path"] for c in checkpoints), "data": str(dataset.root),
            "trained_elsewhere": elsewhere, "repeated": repeated_networks(checkpoints)}


def repeated_networks(checkpoints: list[dict[str, Any]]) -> dict[str, str]:
    """{path: the path it was first given as} for each checkpoint whose contents (by their digest) were
    given before, under the same name or a copy's: it counts twice in the average."""
    first: dict[str, str] = {}
    repeated = {}
    for ckpt in checkpoints:
        if ckpt["digest"] in first:
            repeated[ckpt["path"]] = first[ckpt["digest"]]
        else:
            first[ckpt["digest"]] = ckpt["path"]
    return repeated


def evaluate_checkpoint(run_or_checkpoint: str, data: str | None = None, tta: str = "10crop",
                        device: str | None = None, batch_size: int | None = None, workers: int | None = None,
                        progress: bool = False, split: str = "val") -> dict[str, Any]:
    """Top-1/top-5 error of a run's (or checkpoint's) network on a prepared dataset's split."""
    return evaluate_checkpoints([run_or_checkpoint], data, tta, device, batch_size, workers, progress, split)
