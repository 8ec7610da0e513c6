"""`alexnet predict`: the most probable classes for image files (or folders of them), preprocessed exactly
as at test time.

Each file is read like `alexnet prepare` reads it (EXIF orientation, RGB, shorter side to the
network's stored size, central square), the checkpoint's training mean image is subtracted, and the
softmax outputs of the centre patch or of the paper's ten patches are averaged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import torch

from ..data.augment import views_for
from ..data.imagefolder import IMAGE_EXTENSIONS, LeftOut, image_files
from ..data.images import load_prepared, read_error
from ..device import resolve_device
from ..errors import AlexNetError
from ..runs.checkpoint import load_checkpoint
from ..runs.inference import view_outputs
from ..runs.trained import file_test_views, model_from_checkpoint


def expand_folders(paths: list[str], left_out: LeftOut | None = None) -> list[str]:
    """Each path as given, a folder replaced by the image files in it and its sub-folders (sorted); what a
    folder holds besides goes to `left_out`."""
    files = []
    for path in paths:
        if Path(path).is_dir():
            found = image_files(Path(path), recursive=True, left_out=left_out)
            if not found:
                raise AlexNetError(f"{path}: no image files in this folder ({', '.join(IMAGE_EXTENSIONS)})")
            files += [str(p) for p in found]
        elif not Path(path).is_file():
            raise AlexNetError(f"{path}: no such image file or folder")
        else:
            files.append(path)
    return files


def predict_files(run_or_checkpoint: str, images: list[str], tta: str = "10crop", device: str | None = None,
                  k: int = 5, log: Callable[[str], None] | None = None) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """(path, [(class name, probability), ...k]) for each image file, folders expanded. Missing files and a
    bad checkpoint fail here, at the call; the results come one at a time as they are computed (so a long
    list shows its first lines at once), and an unreadable image fails when its turn comes. `log` hears
    what folders held besides images."""
    left_out = LeftOut()
    images = expand_folders(images, left_out)
    if log:
        for note in left_out.notes():
            log(f"note: {note}")
    ckpt = load_checkpoint(run_or_checkpoint)
    dev = resolve_device(device)
    test_views = file_test_views(ckpt, dev)
    model = model_from_checkpoint(ckpt).to(dev).eval()
    names = list(ckpt.get("class_names") or ckpt["classes"])
    return _predictions(model, test_views, int(ckpt["data_size"]), names, images, tta, k)


# Images per forward pass: 1.8-1.9x the images/s of one at a time with ten patches on 2 CPU cores
# (BENCHMARKS.md, "alexnet predict on a folder"); few enough that the first lines still show at once.
IMAGES_PER_PASS = 16


def _predictions(model, test_views, stored: int, names: list[str], images: list[str], tta: str,
                 k: int) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    views = views_for(tta, stored, test_views.crop)
    for start in range(0, len(images), IMAGES_PER_PASS):
        paths, pixels, unreadable = images[start:start + IMAGES_PER_PASS], [], None
        for path in paths:
            try:
                pixels.append(torch.from_numpy(load_prepared(path, stored)))
            except Exception as exc:  # any decoding failure is reported by name, after the images before it
                unreadable = AlexNetError(read_error(path, exc))
                break
        if pixels:
            probs = view_outputs(model, test_views, torch.stack(pixels), views)
            for path, image_probs in zip(paths, probs):
                top = image_probs.topk(min(k, len(names)))
                yield path, [(names[i], float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist())]
        if unreadable:
            raise unreadable
