"""Loading an exported network back: `alexnet.load_exported("model.safetensors")` -> a ready nn.Module.

The safetensors file carries the network's configuration in its metadata (and FILE.preprocessing.json
beside it says how to prepare images), so no run folder or checkpoint is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from ..config import model_config_from_dict
from ..errors import AlexNetError, ConfigError
from ..model import build_network


def load_exported(path: str | Path) -> nn.Module:
    """The network of an `alexnet export --format safetensors` file, in inference mode."""
    path = Path(path)
    try:
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file
    except ImportError:
        raise AlexNetError('reading safetensors needs the safetensors package: pip install "alexnet[export]"') from None
    if not path.is_file():
        raise AlexNetError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        cfg = model_config_from_dict(json.loads(metadata["model_config"]))
        model = build_network(cfg, int(metadata["classes"]))
        model.load_state_dict(load_file(str(path)))
    except KeyError as exc:
        raise AlexNetError(f"{path}: no {exc} in its metadata (exported by an older alexnet, or not by alexnet)") from None
    except (ConfigError, ValueError, RuntimeError, OSError, SafetensorError) as exc:  # the last: a file of another kind
        raise AlexNetError(f"{path}: not a loadable alexnet export ({' '.join(str(exc).split())[:200]})") from None
    return model.eval()
