"""`alexnet predict`: the most probable classes for image files, preprocessed exactly as at test time.

Each file is read like `alexnet prepare` reads it (EXIF orientation, RGB, shorter side to the
network's stored size, central square), the checkpoint's training mean image is subtracted, and the
softmax outputs of the centre patch or of the paper's ten patches are averaged.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.augment import views_for
from ..data.images import load_prepared, read_error
from ..device import resolve_device
from ..errors import AlexNetError
from ..runs.checkpoint import load_checkpoint
from ..runs.inference import view_outputs
from ..runs.trained import file_preprocessor, model_from_checkpoint


def predict_files(run_or_checkpoint: str, images: list[str], tta: str = "10crop", device: str | None = None,
                  k: int = 5) -> list[tuple[str, list[tuple[str, float]]]]:
    """[(path, [(class name, probability), ...k]), ...] in the order given."""
    ckpt = load_checkpoint(run_or_checkpoint)
    dev = resolve_device(device)
    pre = file_preprocessor(ckpt, dev)
    model = model_from_checkpoint(ckpt).to(dev).eval()
    stored = int(ckpt["data_size"])
    names = list(ckpt.get("class_names") or ckpt["classes"])
    views = views_for(tta, stored, pre.crop)
    results = []
    for path in images:
        if not Path(path).is_file():
            raise AlexNetError(f"{path}: no such image file")
        try:
            pixels = load_prepared(path, stored)
        except Exception as exc:  # any decoding failure is reported by name
            raise AlexNetError(read_error(path, exc)) from None
        probs = view_outputs(model, pre, torch.from_numpy(pixels[None]), views)[0]
        top = probs.topk(min(k, len(names)))
        results.append((path, [(names[i], float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist())]))
    return results
