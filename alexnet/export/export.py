"""`alexnet export RUN --format safetensors|onnx|torchscript --out FILE`.

Next to FILE goes FILE.preprocessing.json: what a deployer must do to an image before the network
sees it (shorter side to the stored size, central crop, subtract the training mean image, channel
order, value scale), with the mean image itself as FILE.mean.npy, and the class names.
- safetensors: the state_dict (tensors only; metadata: preset, classes count), via the `safetensors`
  package (`pip install "alexnet[export]"`).
- onnx: the network in inference mode with a dynamic batch dimension (input "images", N x 3 x S x S
  float32, output "logits"), via torch.onnx's exporter (needs `onnx` and `onnxscript`: the `[onnx]`
  extra). Checked against onnxruntime in the tests where it is installed.
- torchscript: `torch.jit.trace` of the network in inference mode.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import AlexNetError
from ..files import atomic_file, atomic_path, write_json
from ..runs.checkpoint import load_checkpoint
from ..runs.trained import model_from_checkpoint

FORMATS = ("safetensors", "onnx", "torchscript")


def preprocessing(ckpt: dict[str, Any]) -> dict[str, Any]:
    stored, crop = int(ckpt.get("data_size", 0)), int(ckpt["model_config"]["input_size"])
    return {
        "input": "float32, N x 3 x crop x crop (channels R, G, B), pixel values on the 0-255 scale",
        "steps": ["decode to RGB (apply EXIF orientation; 16-bit greyscale scaled by 255/65535); a JPEG is decoded "
                  "at the smallest of its 1/1, 1/2, 1/4, 1/8 DCT scales whose shorter side is still at least "
                  f"{stored} pixels (Pillow: Image.draft('RGB', size) before loading), as prepare and predict do",
                  f"resize so the shorter side is {stored} pixels (bilinear, Pillow's antialiasing when shrinking)",
                  f"take the central {stored} x {stored} square",
                  "subtract the mean image (mean_image file: stored x stored x 3, 0-255 scale)",
                  f"take the central {crop} x {crop} patch (or the paper's ten patches: four corners, "
                  "centre, and their horizontal reflections; average the softmax outputs)",
                  "transpose to channels first"],
        "stored_size": stored, "crop": crop, "mean": _mean_description(ckpt["model_config"]),
        "output": "unnormalised class scores (apply softmax for probabilities)",
        "classes": list(ckpt["classes"]), "class_names": list(ckpt.get("class_names") or ckpt["classes"]),
        "preset": ckpt["preset"], "num_classes": len(ckpt["classes"]),
        # enough to rebuild the network: alexnet.load_exported(FILE), or build_network(model_config_from_dict(...))
        "model_config": ckpt["model_config"],
    }


def _mean_description(model_config: dict[str, Any]) -> str:
    if model_config.get("input_mean"):
        mean = ", ".join(f"{v:.3f}" for v in model_config["input_mean"])
        std = ", ".join(f"{v:.3f}" for v in model_config.get("input_std") or ())
        return (f"a fixed per-channel mean (R, G, B) = ({mean}), the same at every pixel of the mean image file"
                + (f"; the network divides by the per-channel std ({std}) itself" if std else ""))
    return "the training set's mean image, per pixel (Section 2)"


@contextlib.contextmanager
def _quiet():
    """Warnings and lines the exporters print on success; an error still raises with its message."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def export_run(run: str, fmt: str, out: str | Path, log=print, force: bool = False) -> list[Path]:
    """Write the network, its preprocessing and mean image; files already there are replaced only with
    `force`, and never anything that is not a regular file."""
    if fmt not in FORMATS:
        raise AlexNetError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    if out.is_dir():
        raise AlexNetError(f"--out {out}: a folder; give the name of the file to write")
    for target in (out, out.with_name(out.name + ".mean.npy"), out.with_name(out.name + ".preprocessing.json")):
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise AlexNetError(f"--out {out}: {target} exists and is not a regular file; refused")
        if target.exists() and not force:
            raise AlexNetError(f"--out {out}: {target} exists; pass --force to replace it, or choose another name")
    ckpt = load_checkpoint(run)
    if "mean_image" not in ckpt:
        raise AlexNetError(f"{ckpt['path']}: no training mean image in this checkpoint; cannot state the preprocessing")
    model = model_from_checkpoint(ckpt).eval()
    crop = int(ckpt["model_config"]["input_size"])
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 3, crop, crop)

    if fmt == "safetensors":
        try:
            from safetensors.torch import save_file
        except ImportError:
            raise AlexNetError('--format safetensors needs the safetensors package: pip install "alexnet[export]"') from None
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        metadata = {"preset": ckpt["preset"], "classes": str(len(ckpt["classes"])),
                    "model_config": json.dumps(ckpt["model_config"])}  # what load_exported rebuilds from
        with atomic_path(out, what="export") as tmp:
            try:
                save_file(state, str(tmp), metadata=metadata)
            except Exception as exc:  # noqa: BLE001 - safetensors reports a full disk as its own error type
                raise OSError(errno.EIO, " ".join(str(exc).split())[:200] or type(exc).__name__) from None
    elif fmt == "onnx":
        missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
        if missing:  # torch.onnx's exporter needs both; say so plainly
            raise AlexNetError(f"--format onnx needs {' and '.join(missing)}: pip install \"alexnet[onnx]\"")
        batch = torch.export.Dim("batch", min=1)

        with _quiet():  # the exporter's progress lines and notes on optional packages are not the user's concern
            program = torch.onnx.export(model, (example,), input_names=["images"], output_names=["logits"],
                                        dynamic_shapes={"x": {0: batch}}, dynamo=True)
        with atomic_path(out, what="export") as tmp:
            program.save(str(tmp))
    else:
        with torch.no_grad(), _quiet():  # a TracerWarning from the LRN's shape loop: fixed shapes, traced right
            traced = torch.jit.trace(model, example)
        with atomic_file(out, "wb", what="export") as f:
            torch.jit.save(traced, f)

    mean_path = out.with_name(out.name + ".mean.npy")
    with atomic_file(mean_path, "wb", what="mean image") as f:
        np.save(f, ckpt["mean_image"].numpy().astype(np.float32))
    info = {**preprocessing(ckpt), "mean_image": mean_path.name, "format": fmt, "file": out.name}
    info_path = out.with_name(out.name + ".preprocessing.json")
    write_json(info_path, info, what="preprocessing file", indent=2)
    log(f"exported {ckpt['path']} as {fmt}: {out} ({out.stat().st_size / 1e6:.1f} MB), "
        f"preprocessing in {info_path.name}, mean image in {mean_path.name}")
    return [out, info_path, mean_path]
