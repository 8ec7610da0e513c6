"""The training input of a run: (input, labels) batches on the training device, whichever pipeline runs.

`TrainingInput` is built from the dataset, the recipe and where the work happens, once per run, by
`alexnet train` and by both benchmarks (so they time what users run): the epoch's batches
(`loader.TrainBatches`, in `workers` processes that persist across epochs), the augmentation of the
recipe (`augment.Augmentation`: mean image, colour noise, the crop's scale) and the feed that turns a
batch into the network's input (`feed.InputFeed`). On the CPU, with workers, the host pipeline does
the float work in the workers too.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from .augment import Augmentation, colour_noise_std, colour_scales
from .feed import InputFeed
from .loader import EvalBatches, TrainBatches, make_loader
from .prepared import PreparedDataset


class TrainingInput:
    def __init__(self, dataset: PreparedDataset, recipe, mean_image: np.ndarray, crop: int, seed: int,
                 device: torch.device, pipeline: str = "host", workers: int = 0, batch_size: int | None = None,
                 rank: int = 0, world_size: int = 1, images: int | None = None,
                 float_work_in_workers: bool | None = None, ahead: bool = True, validated: bool = False) -> None:
        """`batch_size`: this rank's (default the recipe's); `images`: the first N training images only;
        `float_work_in_workers`: whether the host pipeline's workers also do the float work (default: on the
        CPU with workers; `bench data` sets False to time the workers as a GPU machine runs them); `ahead`: on
        CUDA, the next batches prepared in a thread and on a side stream while a step runs (`InputFeed`);
        `validated`: the validation split is loaded with as many workers after each epoch, while these keep
        their shared memory (`alexnet train`): the two must fit in it together."""
        self.recipe, self.device = recipe, device
        self.augmentation = Augmentation(mean_image, colour_scales(recipe, dataset.eigenvalues), dataset.eigenvectors,
                                         crop, recipe.mean_crop, device)
        if float_work_in_workers is None:
            float_work_in_workers = device.type == "cpu" and workers > 0
        in_workers = self.augmentation if float_work_in_workers else None
        labels = dataset.labels["train"] if images is None else dataset.labels["train"][:images]
        self.batches = TrainBatches(dataset.images["train"], labels, batch_size or recipe.batch_size, crop, seed,
                                    pca_std=recipe.pca_std, flip=recipe.flip, rank=rank, world_size=world_size,
                                    augmentation=in_workers, pipeline=pipeline, input_scale=recipe.train_input_scale)
        self.feed = InputFeed.for_pipeline(self.augmentation, pipeline, ahead)
        validation = EvalBatches(dataset.images["val"], dataset.labels["val"], recipe.eval_batch_size, rank,
                                 world_size) if validated else None
        self.loader = make_loader(self.batches, workers, device, beside=validation)

    def __len__(self) -> int:
        """Steps in an epoch."""
        return len(self.batches)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Epoch `epoch`'s (input, labels) from step `start` on (a run resumed mid-epoch)."""
        self.batches.set_epoch(epoch, colour_noise_std(self.recipe, epoch), start)
        for _, x, y in self.feed(self.loader):
            yield x, y
