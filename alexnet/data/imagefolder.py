"""The image-folder layout users bring: `SRC/train/<class>/*` and `SRC/val/<class>/*`.

Classes are the train split's folder names in sorted order; a class's label is its position. Images in
sub-folders of a class folder belong to that class (as with torchvision's ImageFolder).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import AlexNetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def image_files(folder: Path, recursive: bool = False, left_out: list[Path] | None = None) -> list[Path]:
    """The image files in `folder`, sorted by path. With `recursive`, those in its sub-folders too, as
    torchvision's ImageFolder reads a class folder: hidden folders are skipped, and a folder reached twice
    through symbolic links is read once. A symbolic link that leads out of `folder` (to an ancestor, say,
    which would pull other classes' images into this one) is not followed but added to `left_out`."""
    if not recursive:
        return sorted(p for p in folder.iterdir() if _is_image(p))
    found, seen, home = [], set(), os.path.realpath(folder)

    def stays(path: Path) -> bool:
        inside = not path.is_symlink() or os.path.commonpath([home, os.path.realpath(path)]) == home
        if not inside and left_out is not None:
            left_out.append(path)
        return inside

    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        dirs[:] = [] if real in seen else [d for d in dirs if not d.startswith(".") and stays(Path(root) / d)]
        if real not in seen:
            seen.add(real)
            found += [p for p in (Path(root) / f for f in files) if _is_image(p) and stays(p)]
    return sorted(found)


def list_classes(split_dir: Path) -> list[str]:
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_split(src: Path, split: str, classes: list[str] | None = None,
               left_out: list[Path] | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    """The classes and the (image path, label) pairs of one split, in class then file-name order; links
    leading out of their class folder go to `left_out`, not into the class.

    With `classes` given (the val split), every class folder found must be one of them.
    """
    split_dir = src / split
    if not split_dir.is_dir():
        raise AlexNetError(f"{split_dir}: no such folder (expected {src}/{split}/<class>/<images>)")
    found = list_classes(split_dir)
    if not found:
        raise AlexNetError(f"{split_dir}: no class folders in it (expected {split}/<class>/<images>)")
    if classes is None:
        classes = found
    else:
        unknown = [c for c in found if c not in classes]
        if unknown:
            raise AlexNetError(f"{split_dir}: class folder(s) not in the train split: {', '.join(unknown[:5])}")
    label_of = {c: i for i, c in enumerate(classes)}
    items: list[tuple[Path, int]] = []
    for name in found:
        files = image_files(split_dir / name, recursive=True, left_out=left_out)
        if not files:
            raise AlexNetError(f"{split_dir / name}: class folder has no images "
                               f"({', '.join(IMAGE_EXTENSIONS)})")
        items.extend((p, label_of[name]) for p in files)
    return classes, items
