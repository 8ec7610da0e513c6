"""What a run will do, settled once, before anything is built or written: `resolve(config) -> Plan`.

The device and its speed switches, the dataset, the preset with its ablations, the recipe (the preset's,
with the flags and the large-batch rule applied here and nowhere else; a resumed run keeps its own), the
network's shape at this dataset's crop, the seed, and the checkpoint a resume starts from. Everything
the flags can get wrong is refused here, in one line, before the run folder exists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..ablations import apply_ablations
from ..config import ModelConfig, Recipe, TrainConfig, recipe_from_dict
from ..data.augment import crop_size_for
from ..data.feed import pipeline_problem
from ..data.loader import default_workers
from ..data.prepared import PreparedDataset
from ..device import resolve_device
from ..errors import AlexNetError
from ..model import flat_features, mean_image_for
from ..presets import DEFAULT_PRESET, Preset, get_preset, preset_from_file
from ..runs.checkpoint import LAST, load_checkpoint
from ..runs.trained import check_classes
from ..runs.writer import refuse_to_overwrite
from .distributed import DistributedContext, device_for, per_rank_batch
from .schedule import large_batch
from .step import SpeedSettings, require_right_compiler, resolve_speed


@dataclass(frozen=True)
class Plan:
    config: TrainConfig
    ctx: DistributedContext
    log: Callable[[str], None]           # prints on rank 0 only
    device: torch.device                 # the input's, the loss's (the first column's under --model-parallel)
    speed: SpeedSettings
    dataset: PreparedDataset
    preset: Preset                       # the base preset or --config file, with the ablations applied
    recipe: Recipe
    model_cfg: ModelConfig               # the preset's network at this dataset's crop size
    mean_image: np.ndarray               # what the inputs are taken from (the dataset's, or the preset's fixed one)
    seed: int
    workers: int
    batch_per_rank: int
    checkpoint: dict[str, Any] | None    # the run's own last.pt, when resuming

    @property
    def out(self) -> Path:
        return Path(self.config.out)


def resolve(config: TrainConfig, ctx: DistributedContext) -> Plan:
    log = (config.log or print) if ctx.is_main else (lambda line: None)
    device = _device(config, ctx)
    speed = resolve_speed(device, config.precision, config.channels_last, config.compile,
                          default_compile=not config.model_parallel)
    dataset = PreparedDataset(config.data)
    problem = pipeline_problem(config.pipeline, dataset.manifest.get("storage", "raw"), dataset.root, device)
    if problem:
        raise AlexNetError(problem)
    base = _base_preset(config)
    preset = apply_ablations(base, config.ablations)
    checkpoint = checkpoint_to_resume(config, preset, dataset)
    recipe, seed = _recipe(config, preset, checkpoint, log), _seed(config, checkpoint, log)
    model_cfg = _network_for(config, preset, recipe, dataset)
    require_right_compiler(device, speed)  # last: the flags' own errors come first, this takes seconds
    return Plan(config, ctx, log, device, speed, dataset, preset, recipe, model_cfg,
                mean_image=mean_image_for(model_cfg, dataset.mean_image),
                seed=seed,
                workers=config.workers if config.workers is not None else default_workers(device, ctx.local_world_size),
                batch_per_rank=per_rank_batch(recipe.batch_size, ctx), checkpoint=checkpoint)


MAX_PARAMETERS = 2 * 10**9   # 8 GB of fp32 weights, 24 GB with the velocities and gradients


def _network_for(config: TrainConfig, preset: Preset, recipe: Recipe, dataset: PreparedDataset) -> ModelConfig:
    """The preset's network at the dataset's crop size, checked: it fits the crop, it can be allocated, its
    schedule's layer names are its own. A --config file's input_size must be the crop the data gives (a
    named preset takes any image size: `small` on 64 px images crops 56)."""
    crop = crop_size_for(dataset.size, recipe.crop_fraction)
    if config.config and preset.model.input_size != crop:
        raise AlexNetError(f"{config.config}: model.input_size is {preset.model.input_size}, but {dataset.root} stores "
                           f"{dataset.size} px images, which give {crop} px crops (recipe.crop_fraction "
                           f"{recipe.crop_fraction:g}); set model.input_size to {crop} in it to train on these")
    model_cfg = replace(preset.model, input_size=crop)
    try:
        flat = flat_features(model_cfg)
    except ValueError as exc:
        raise AlexNetError(f"preset {preset.name!r} cannot take {crop} px crops of {dataset.size} px "
                           f"images ({exc}); prepare with a larger --size (256, the paper's), or train "
                           f"--preset small, made for small images") from None
    count = parameter_count(model_cfg, flat, dataset.num_classes)
    if count > MAX_PARAMETERS:
        raise AlexNetError(f"preset {preset.name!r} would hold {count:,} parameters (at most {MAX_PARAMETERS:,}); "
                           "narrower layers, please")
    layers = {f"conv{i}" for i in range(1, len(model_cfg.convs) + 1)}
    layers |= {f"fc{len(model_cfg.convs) + i}" for i in range(1, len(model_cfg.fc_widths) + 2)}
    unknown = sorted(set(recipe.frozen_bias_layers) - layers)
    if unknown:
        raise AlexNetError(f"recipe.frozen_bias_layers names {', '.join(unknown)}, which this network lacks "
                           f"(its layers: {', '.join(sorted(layers))})")
    return model_cfg


def parameter_count(cfg: ModelConfig, flat: int, classes: int) -> int:
    """Weights and biases of the network `cfg` describes, counted from its shapes (nothing allocated)."""
    count, channels = 0, 3
    for conv in cfg.convs:
        count += conv.out_channels * (channels // conv.groups * conv.kernel ** 2 + 1)
        channels = conv.out_channels
    for width in (*cfg.fc_widths, classes):
        count += width * (flat + 1)
        flat = width
    return count


def _device(config: TrainConfig, ctx: DistributedContext) -> torch.device:
    """--device, or under --model-parallel the first column's device."""
    if not config.model_parallel:
        return device_for(ctx, resolve_device(config.device))
    if config.device is not None and config.device != config.model_parallel[0]:
        raise AlexNetError(f"--device {config.device} and --model-parallel {','.join(config.model_parallel)}: the run's "
                           "device is the first column's; leave --device out")
    if ctx.enabled:
        raise AlexNetError("--model-parallel splits one network over two devices in one process; it does not "
                           "combine with torchrun's data parallelism")
    first, _ = (resolve_device(d) for d in config.model_parallel)
    return first


def _base_preset(config: TrainConfig) -> Preset:
    return preset_from_file(config.config) if config.config else get_preset(config.preset or DEFAULT_PRESET)


def _seed(config: TrainConfig, checkpoint: dict[str, Any] | None, log) -> int:
    """--seed (default 0); a resumed run keeps its own, saying so when another was asked for."""
    if not checkpoint:
        return config.seed or 0
    if config.seed is not None and config.seed != int(checkpoint["seed"]):
        log(f"note: resuming keeps the run's seed {int(checkpoint['seed'])}; ignoring --seed {config.seed}")
    return int(checkpoint["seed"])


def _recipe(config: TrainConfig, preset: Preset, checkpoint: dict[str, Any] | None, log) -> Recipe:
    """The preset's recipe with the flags' overrides and the large-batch rule; a resumed run keeps its own
    (only --epochs changes)."""
    overrides = {k: v for k, v in (("epochs", config.epochs), ("batch_size", config.batch_size), ("lr", config.lr))
                 if v is not None}
    if checkpoint:
        recipe = recipe_from_dict(checkpoint["recipe"])
        asked = {**overrides, **({"warmup_epochs": config.warmup_epochs} if config.warmup_epochs is not None else {})}
        ignored = sorted(k for k in asked if k != "epochs" and asked[k] != getattr(recipe, k))
        if ignored:
            log(f"note: resuming keeps the run's {', '.join(ignored)}; ignoring the new value(s)")
        return replace(recipe, **{k: v for k, v in overrides.items() if k == "epochs"})
    recipe = replace(preset.recipe, **overrides)
    return large_batch(recipe, preset.recipe.batch_size, config.lr_scaling, config.warmup_epochs)


def checkpoint_to_resume(config: TrainConfig, preset: Preset, dataset: PreparedDataset) -> dict[str, Any] | None:
    """The checkpoint a `--resume` continues, checked against this run's preset, data and ablations;
    None for a new run (which must not overwrite one)."""
    last = Path(config.out) / LAST
    if not (last.exists() if config.auto_resume else config.resume):
        refuse_to_overwrite(last)
        return None
    if not last.exists():
        raise AlexNetError(f"--resume: no checkpoint {last} to resume from")
    ckpt = load_checkpoint(last)
    where = ckpt["path"]
    if ckpt["preset"] != preset.name:
        raise AlexNetError(f"{where}: checkpoint is from preset {ckpt['preset']!r}, not {preset.name!r}")
    check_classes(ckpt, dataset)
    if ckpt.get("data_size") != dataset.size:
        raise AlexNetError(f"{where}: checkpoint was trained on {ckpt.get('data_size')} px images, "
                           f"dataset {dataset.root} holds {dataset.size} px")
    if ckpt.get("data_fingerprint") not in (None, dataset.fingerprint):
        raise AlexNetError(f"{where}: the dataset changed since this run started (manifest fingerprint "
                           f"{ckpt['data_fingerprint']}, now {dataset.fingerprint}: other images or counts); "
                           "resume on the dataset it started with, or start a new run with --init-from")
    if tuple(ckpt.get("ablations", ())) != preset.ablations:
        raise AlexNetError(f"{where}: the run was trained with ablations {list(ckpt.get('ablations', ()))}, "
                           f"not {list(preset.ablations)}; resume with the same --ablate flags")
    return ckpt
