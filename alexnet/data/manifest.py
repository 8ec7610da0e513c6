"""The prepared dataset's manifest.json, held to one strict schema: every field its exact type, its range,
its allowed values, and the fields that must agree with each other agreeing. Checked whenever a dataset
is opened (so also by `prepare --verify`); nothing is coerced, so `"classes": "abcdefgh"` is refused
rather than read as eight one-letter classes.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .imagefolder import MAX_VAL_FRACTION

STORAGES = ("raw", "jpeg")
MAX_SIZE = 4096   # stored side; beyond it one image alone takes 48 MiB and more (prepare, manifest, --size)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _whole(value: Any, low: int, high: int | float = math.inf) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _numbers(value: Any, shape: tuple[int, ...]) -> bool:
    """A nested list of finite numbers of this shape."""
    if not shape:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, list) and len(value) == shape[0] and all(_numbers(v, shape[1:]) for v in value)


def _names(value: Any, unique: bool) -> bool:
    ok = isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value)
    return bool(ok) and (not unique or len(set(value)) == len(value))


def _hex(value: Any) -> bool:
    return isinstance(value, str) and bool(_HEX64.match(value))


def manifest_problem(m: Any) -> str | None:
    """What is wrong with a manifest (the first field found, by name), or None."""
    if not isinstance(m, dict):
        return "not a JSON object"
    if not _whole(m.get("size"), 1, MAX_SIZE):
        return f"'size' must be a whole number of pixels from 1 to {MAX_SIZE}, got {m.get('size')!r}"
    if not _names(m.get("classes"), unique=True):
        return "'classes' must be a list of distinct, non-empty class names"
    classes = len(m["classes"])
    if "num_classes" in m and m["num_classes"] != classes:
        return f"'num_classes' is {m['num_classes']!r}, but 'classes' names {classes}"
    if "class_names" in m and not (_names(m["class_names"], unique=False) and len(m["class_names"]) == classes):
        return f"'class_names' must name each of the {classes} classes"
    if "val_held_out" in m and not (_numbers(m["val_held_out"], ()) and 0 < m["val_held_out"] <= MAX_VAL_FRACTION):
        return (f"'val_held_out' must be the fraction --val-fraction held out (above 0, at most {MAX_VAL_FRACTION}), "
                f"got {m['val_held_out']!r}")
    if m.get("storage", "raw") not in STORAGES:
        return f"'storage' must be one of {', '.join(STORAGES)}, got {m.get('storage')!r}"
    splits = m.get("splits")
    if not isinstance(splits, dict) or not {"train", "val"} <= set(splits) or not set(splits) <= {"train", "val", "test"}:
        return "'splits' must hold 'train' and 'val' (and at most 'test')"
    for name, info in splits.items():
        problem = _split_problem(info, classes)
        if problem:
            return f"splits.{name}: {problem}"
    return _statistics_problem(m.get("statistics"))


def _split_problem(info: Any, classes: int) -> str | None:
    if not isinstance(info, dict):
        return "not an object"
    if not _whole(info.get("count"), 1):
        return f"'count' must be a whole number >= 1, got {info.get('count')!r}"
    for key in ("images", "labels"):
        if not isinstance(info.get(key), str):
            return f"'{key}' must be a file name"
        if f"{key}_sha256" in info and not _hex(info[f"{key}_sha256"]):
            return f"'{key}_sha256' must be a SHA-256 in hex"
    storage = info.get("storage", "raw")
    if storage not in STORAGES:
        return f"'storage' must be one of {', '.join(STORAGES)}, got {storage!r}"
    if storage == "jpeg":
        shards = info.get("shards")
        if not (isinstance(shards, list) and shards and all(isinstance(s, str) for s in shards)):
            return "'shards' must be a list of file names"
        sums = info.get("shards_sha256", [])
        if not (isinstance(sums, list) and all(_hex(s) for s in sums) and len(sums) in (0, len(shards))):
            return "'shards_sha256' must give a SHA-256 in hex for each shard"
        if "quality" in info and not _whole(info["quality"], 1, 100):
            return f"'quality' must be a whole number from 1 to 100, got {info['quality']!r}"
    per_class = info.get("per_class")
    if per_class is not None and not (isinstance(per_class, list) and len(per_class) == classes
                                      and all(_whole(c, 0) for c in per_class) and sum(per_class) == info["count"]):
        return f"'per_class' must be {classes} whole numbers adding up to 'count'"
    skipped = info.get("skipped", [])
    if not (isinstance(skipped, list) and all(isinstance(s, str) for s in skipped)):
        return "'skipped' must be a list of file names"
    return None


def _statistics_problem(stats: Any) -> str | None:
    if not isinstance(stats, dict):
        return "'statistics' must be an object"
    for key, shape in (("mean_rgb", (3,)), ("rgb_covariance", (3, 3)), ("rgb_eigenvalues", (3,)),
                       ("rgb_eigenvectors", (3, 3))):
        if key in stats or key in ("rgb_eigenvalues", "rgb_eigenvectors"):
            if not _numbers(stats.get(key), shape):
                return f"statistics.{key} must be {' x '.join(map(str, shape))} finite numbers"
    if "images" in stats and not _whole(stats["images"], 1):
        return f"statistics.images must be a whole number >= 1, got {stats['images']!r}"
    if not isinstance(stats.get("mean_image", "mean_image.npy"), str):
        return "statistics.mean_image must be a file name"
    if "mean_image_sha256" in stats and not _hex(stats["mean_image_sha256"]):
        return "statistics.mean_image_sha256 must be a SHA-256 in hex"
    return None
