"""The image-folder layout users bring: `SRC/train/<class>/*` and `SRC/val/<class>/*`, or one class tree
(`SRC/<class>/*`, or `SRC/train/<class>/*` with no `val/`) whose validation split `--val-fraction` holds out.

Classes are the train split's folder names in sorted order; a class's label is its position. Images in
sub-folders of a class folder belong to that class (as with torchvision's ImageFolder).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AlexNetError

# torchvision's ImageFolder reads the same kinds; Pillow decodes each (WebP and TIFF where it is built
# with them, as PyPI's wheels are)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
MAX_VAL_FRACTION = 0.9   # the most of a class tree --val-fraction may hold out (the flag, prepare, manifest)


@dataclass
class LeftOut:
    """What a class tree holds that does not become an image of its class, for `prepare` to say."""
    links: list[Path] = field(default_factory=list)        # symbolic links leading out of their class folder
    not_images: list[Path] = field(default_factory=list)   # files of other kinds: .heic, .gif, .txt, ...
    loose: list[Path] = field(default_factory=list)        # files beside the class folders, in none of them

    def notes(self) -> list[str]:
        notes = []
        if self.links:
            notes.append(f"{len(self.links)} symbolic link(s) lead out of their class folder and are not followed "
                         f"(they would put other folders' images into the class): {_some(self.links)}")
        if self.not_images:
            kinds = sorted(Counter(p.suffix.lower() or "no extension" for p in self.not_images).items(),
                           key=lambda kind: (-kind[1], kind[0]))   # the most frequent first
            notes.append(f"{len(self.not_images)} file(s) are not of a kind read as images "
                         f"({', '.join(f'{kind} {n}' for kind, n in kinds[:5])}) and are left out: "
                         f"{_some(self.not_images)}")
        if self.loose:
            notes.append(f"{len(self.loose)} file(s) lie beside the class folders, in none of them, and are left "
                         f"out: {_some(self.loose)}")
        return notes


def _some(paths: list[Path]) -> str:
    return ", ".join(str(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def image_files(folder: Path, recursive: bool = False, left_out: LeftOut | None = None) -> list[Path]:
    """The image files in `folder`, sorted by path. With `recursive`, those in its sub-folders too, as
    torchvision's ImageFolder reads a class folder: hidden folders are skipped, and a folder reached twice
    through symbolic links is read once. A symbolic link that leads out of `folder` (to an ancestor, say,
    which would pull other classes' images into this one) is not followed; it and every visible file of
    another kind go to `left_out`."""
    if not recursive:
        return sorted(p for p in folder.iterdir() if _is_image(p))
    found, seen, home = [], set(), os.path.realpath(folder)
    left_out = left_out if left_out is not None else LeftOut()

    def stays(path: Path) -> bool:
        inside = not path.is_symlink() or os.path.commonpath([home, os.path.realpath(path)]) == home
        if not inside:
            left_out.links.append(path)
        return inside

    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        dirs[:] = [] if real in seen else [d for d in dirs if not d.startswith(".") and stays(Path(root) / d)]
        if real not in seen:
            seen.add(real)
            for path in sorted(Path(root) / f for f in files if not f.startswith(".")):
                if stays(path):
                    (found if _is_image(path) else left_out.not_images).append(path)
    return sorted(found)


def list_classes(split_dir: Path) -> list[str]:
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_split(src: Path, split: str, classes: list[str] | None = None,
               left_out: LeftOut | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    """The classes and the (image path, label) pairs of one split, in class then file-name order; links
    leading out of their class folder and files of other kinds go to `left_out`, not into the class.

    With `classes` given (the val split), every class folder found must be one of them.
    """
    split_dir = src / split
    if not split_dir.is_dir():
        raise AlexNetError(f"{split_dir}: no such folder (expected {src}/{split}/<class>/<images>)"
                           + _split_hint(src, split))
    return scan_classes(split_dir, classes, left_out)


def scan_classes(root: Path, classes: list[str] | None = None,
                 left_out: LeftOut | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    """The classes and (image path, label) pairs of a folder of class folders (`scan_split`'s work)."""
    found = list_classes(root)
    if not found:
        raise AlexNetError(f"{root}: no class folders in it (expected {root.name}/<class>/<images>)")
    if classes is None:
        classes = found
    else:
        unknown = [c for c in found if c not in classes]
        if unknown:
            raise AlexNetError(f"{root}: class folder(s) not in the train split: {', '.join(unknown[:5])}")
    if left_out is not None:
        left_out.loose += sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    label_of = {c: i for i, c in enumerate(classes)}
    items: list[tuple[Path, int]] = []
    for name in found:
        files = image_files(root / name, recursive=True, left_out=left_out)
        if not files:
            raise AlexNetError(f"{root / name}: class folder has no images "
                               f"({', '.join(IMAGE_EXTENSIONS)})")
        items.extend((p, label_of[name]) for p in files)
    return classes, items


def _split_hint(src: Path, split: str) -> str:
    """What to do when a split folder is missing but a class tree is there to hold validation images out of."""
    if split == "val" and (src / "train").is_dir():
        return "; or hold out part of train/ with --val-fraction, e.g. 0.1"
    if split == "train" and list_classes(src):
        return f"; {src} looks like one class tree: hold out part of each class with --val-fraction, e.g. 0.1"
    return ""


def hold_out(items: list[tuple[Path, int]], fraction: float, root: Path) -> tuple[list, list]:
    """Split one class tree's (path, label) pairs into train and val, class by class: each class with two
    or more images gives round(fraction x its count) of them to val (at least one, never all).

    Which images go is decided by the SHA-256 of each path inside `root`, not by file name order (which
    often follows the time a photo was taken) nor by a random generator: the same tree gives the same
    split on every machine and wherever it is moved, so an interrupted `prepare` continues the split it
    started."""
    by_class: dict[int, list[Path]] = {}
    for path, label in items:
        by_class.setdefault(label, []).append(path)
    train, val = [], []
    for label, paths in by_class.items():
        count = len(paths)
        held = min(count - 1, max(1, round(count * fraction))) if count >= 2 else 0
        chosen = set(sorted(paths, key=lambda path: _path_digest(path, root))[:held])
        train += [(p, label) for p in paths if p not in chosen]
        val += [(p, label) for p in paths if p in chosen]
    return train, val


def _path_digest(path: Path, root: Path) -> bytes:
    # surrogateescape: a file name that is not UTF-8 (possible on Linux) still has bytes to hash
    return hashlib.sha256(path.relative_to(root).as_posix().encode("utf-8", "surrogateescape")).digest()
