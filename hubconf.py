"""torch.hub entry points: `torch.hub.load(path_or_repo, "alexnet", source="local", preset="paper")`.

`alexnet(preset="paper", num_classes=1000, weights=None)` returns the preset's network, freshly
initialised as the paper says (in training mode, ready to train), or with the weights of a run folder or
checkpoint file given as `weights` (read with `weights_only=True`; no file can run code), then ready
for inference: in eval mode, dropout off, as `alexnet.load_exported` returns it. Nothing is downloaded.
`preset="torchvision"` is torchvision's AlexNet key for key: `model.load_state_dict(torch.load(
"alexnet-owt-7be5be79.pth", weights_only=True))` loads torchvision's weights into it.
"""

dependencies = ["torch", "numpy", "PIL"]


def alexnet(preset: str = "paper", num_classes: int = 1000, weights: str | None = None, **kwargs):
    """The network of `preset` (see `alexnet.PRESETS`); with `weights`, that checkpoint's network."""
    from alexnet import build_model
    from alexnet.runs.checkpoint import load_checkpoint
    from alexnet.runs.trained import model_from_checkpoint

    if weights is not None:  # a trained network: for inference (call .train() to fine-tune it)
        return model_from_checkpoint(load_checkpoint(weights)).eval()
    return build_model(preset, num_classes, **kwargs)
