"""`alexnet predict`: the most probable classes for image files, preprocessed exactly as at test time.

Each file is read like `alexnet prepare` reads it (EXIF orientation, RGB, shorter side to the
network's stored size, central square), the checkpoint's training mean image is subtracted, and the
softmax outputs of the centre patch or of the paper's ten patches are averaged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.augment import Preprocessor
from ..data.images import load_prepared, read_error
from ..device import resolve_device
from ..errors import AlexNetError
from ..training.checkpoint import load_checkpoint, model_from_checkpoint
from .evaluate import views_for


@torch.no_grad()
def predict_files(run_or_checkpoint: str, images: list[str], tta: str = "10crop", device: str | None = None,
                  k: int = 5) -> list[tuple[str, list[tuple[str, float]]]]:
    """[(path, [(class name, probability), ...k]), ...] in the order given."""
    ckpt = load_checkpoint(run_or_checkpoint)
    dev = resolve_device(device)
    if "mean_image" not in ckpt or "data_size" not in ckpt:
        raise AlexNetError(f"{ckpt['path']}: no training mean image in this checkpoint; cannot preprocess")
    model = model_from_checkpoint(ckpt).to(dev).eval()
    mean = ckpt["mean_image"].numpy()
    stored, crop = int(ckpt["data_size"]), int(ckpt["model_config"]["input_size"])
    names = list(ckpt.get("class_names") or ckpt["classes"])
    pre = Preprocessor(mean, np.zeros(3, np.float32), np.eye(3, dtype=np.float32), crop,
                       ckpt.get("recipe", {}).get("mean_crop", "aligned"), dev)
    views = views_for(tta, stored, crop)
    results = []
    for path in images:
        if not Path(path).is_file():
            raise AlexNetError(f"{path}: no such image file")
        try:
            pixels = load_prepared(path, stored)
        except Exception as exc:  # any decoding failure is reported by name
            raise AlexNetError(read_error(path, exc)) from None
        batch = torch.from_numpy(pixels[None])
        probs = sum(torch.softmax(model(x), dim=1) for x in pre.test_views(batch, views))[0] / len(views)
        top = probs.topk(min(k, len(names)))
        results.append((path, [(names[i], float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist())]))
    return results
