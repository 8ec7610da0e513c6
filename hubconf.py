"""torch.hub entry points: `torch.hub.load(path_or_repo, "alexnet", source="local", preset="paper")`.

`alexnet(preset="paper", num_classes=1000, weights=None)` returns the preset's network, freshly
initialised as the paper says (in training mode, ready to train), or with the weights of a run folder or
checkpoint file given as `weights` (read with `weights_only=True`; no file can run code), then ready
for inference: in eval mode, dropout off, as `alexnet.load_exported` returns it. Nothing is downloaded.
`preset="torchvision"` is torchvision's AlexNet key for key: `model.load_state_dict(torch.load(
"alexnet-owt-7be5be79.pth", weights_only=True))` loads torchvision's weights into it.
"""

dependencies = ["torch", "numpy", "PIL"]


def alexnet(preset: str | None = None, num_classes: int | None = None, weights: str | None = None, **kwargs):
    """The network of `preset` (default "paper"; see `alexnet.PRESETS`) with `num_classes` outputs (default
    1000); with `weights`, that checkpoint's network, which a `preset` or `num_classes` given beside it
    must describe (they are not silently ignored)."""
    from alexnet import build_model
    from alexnet.errors import AlexNetError
    from alexnet.runs.checkpoint import load_checkpoint
    from alexnet.runs.trained import model_from_checkpoint

    if weights is None:
        return build_model(preset or "paper", 1000 if num_classes is None else num_classes, **kwargs)
    ckpt = load_checkpoint(weights)  # a trained network: for inference (call .train() to fine-tune it)
    if preset is not None and preset != ckpt["preset"]:
        raise AlexNetError(f"{weights}: holds preset {ckpt['preset']!r}, not {preset!r}; leave preset out")
    if num_classes is not None and num_classes != len(ckpt["classes"]):
        raise AlexNetError(f"{weights}: has {len(ckpt['classes'])} classes, not {num_classes}; leave num_classes "
                           "out (train --init-from RUN gives it another class count)")
    if kwargs:
        raise AlexNetError(f"{', '.join(kwargs)}: not taken with weights (the checkpoint sets the network)")
    return model_from_checkpoint(ckpt).eval()
