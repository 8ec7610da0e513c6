"""The paper's ablations (Sections 3.2-3.4, 4.1, 7) as transformations of any preset.

Each variant removes one ingredient and records the error-rate difference the paper reports for
it, so `alexnet ablate` can print ours beside theirs. Apply with `alexnet train --ablate NAME`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from .errors import AlexNetError
from .presets import Preset


def _one_column(p: Preset) -> Preset:
    # Footnote 2: the one-column net has half the kernels in each conv layer but the last, and
    # fully-connected layers of the same size.
    convs = list(p.model.convs)
    last = len(convs) - 1
    convs = [replace(c, groups=1, out_channels=c.out_channels if i == last else c.out_channels // 2)
             for i, c in enumerate(convs)]
    return replace(p, model=replace(p.model, convs=tuple(convs), lrn_within_column=False))


def _no_lrn(p: Preset) -> Preset:
    convs = tuple(replace(c, ops=tuple(op for op in c.ops if op != "lrn")) for c in p.model.convs)
    return replace(p, model=replace(p.model, convs=convs))


def _no_middle_conv(p: Preset) -> Preset:
    # Remove conv4 (a middle layer); conv5 then reads conv3's maps.
    convs = list(p.model.convs)
    if len(convs) < 5:
        raise AlexNetError("removing a middle convolution needs five of them")
    del convs[3]
    return replace(p, model=replace(p.model, convs=tuple(convs)))


@dataclass(frozen=True)
class Ablation:
    description: str
    paper: str          # the difference the paper reports for this ingredient
    apply: Callable[[Preset], Preset]


ABLATIONS: dict[str, Ablation] = {
    "one-column": Ablation("one column with half the kernels (conv5 and fc full size)",
                           "two columns reduce top-1 / top-5 error by 1.7% / 1.2%", _one_column),
    "no-lrn": Ablation("no local response normalisation", "LRN reduces top-1 / top-5 error by 1.4% / 1.2%",
                       _no_lrn),
    "no-overlap": Ablation("non-overlapping pooling (z=2, s=2)",
                           "overlapping pooling reduces top-1 / top-5 error by 0.4% / 0.3%",
                           lambda p: replace(p, model=replace(p.model, pool_kernel=2, pool_stride=2))),
    "no-pca": Ablation("no PCA colour noise", "PCA colour noise reduces top-1 error by over 1%",
                       lambda p: replace(p, recipe=replace(p.recipe, pca_std=0.0))),
    "no-dropout": Ablation("no dropout", "without dropout the network overfits substantially (no figure given)",
                           lambda p: replace(p, model=replace(p.model, dropout=0.0))),
    "no-middle-conv": Ablation("conv4 removed", "removing any middle conv layer costs about 2% top-1",
                               _no_middle_conv),
}


def apply_ablations(preset: Preset, names: list[str] | tuple[str, ...]) -> Preset:
    """The preset without each named ingredient. One already removed (a run's config.json records its
    ablations) is refused: one-column twice would halve the kernels again, no-middle-conv drop conv5 too."""
    for name in names:
        if name not in ABLATIONS:
            raise AlexNetError(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}")
        if name in preset.ablations:
            raise AlexNetError(f"--ablate {name}: the network of {preset.name!r} has it already (ablations "
                               f"{', '.join(preset.ablations)}); leave the flag out")
        preset = replace(ABLATIONS[name].apply(preset), ablations=(*preset.ablations, name))
    if names:
        preset = replace(preset, description=preset.description + " Ablated: " + ", ".join(names) + ".")
    return preset

