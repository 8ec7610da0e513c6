"""Telling the user when a run sits at chance: the loss plateau of the paper's initialisation.

With N(0, 0.01) weights and biases of 1 the network starts out giving nearly the same output for every
image, and its loss can stay at ln(classes) for thousands of steps (BENCHMARKS.md, "Learning at full
size"). A run whose mean training loss over the last `STRETCH_STEPS` steps is still within
`MARGIN` x ln(classes) of ln(classes) gets one warning saying so, and each epoch's row in metrics.csv
says whether its mean loss was at chance (`at_chance`).
"""

from __future__ import annotations

import math
from collections import deque

STRETCH_STEPS = 500   # steps at chance before the warning (64,000 images at batch 128)
MARGIN = 0.05         # "at chance": a mean loss within MARGIN x ln(classes) of ln(classes)
CHECK_EVERY = 50      # steps between looks at the running loss (each reads the device once)


def at_chance(mean_loss: float, classes: int) -> bool:
    """Whether a mean loss is that of guessing uniformly (a loss far above it is unstable, not at chance)."""
    return classes > 1 and abs(mean_loss - math.log(classes)) <= MARGIN * math.log(classes)


class ChanceWatch:
    """Fed the loss and image counts of each stretch of `CHECK_EVERY` steps; says once when the last
    `STRETCH_STEPS` steps were all, on average, at chance."""

    def __init__(self, classes: int, stretch: int | None = None) -> None:
        self.classes, self.stretch = classes, stretch or STRETCH_STEPS
        self.chunks: deque[tuple[float, float, int]] = deque()   # (loss sum, images, steps)
        self.warned = False

    def add(self, loss_sum: float, images: float, steps: int) -> float | None:
        """Record a stretch; return the window's mean loss the first time the warning is due, else None."""
        if self.warned or images <= 0:
            return None
        self.chunks.append((loss_sum, images, steps))
        while sum(c[2] for c in self.chunks) - self.chunks[0][2] >= self.stretch:
            self.chunks.popleft()
        if sum(c[2] for c in self.chunks) < self.stretch:
            return None
        mean = sum(c[0] for c in self.chunks) / sum(c[1] for c in self.chunks)
        if at_chance(mean, self.classes):
            self.warned = True
            return mean
        return None

    def message(self, mean: float) -> str:
        chance = math.log(self.classes)
        return (f"warning: the training loss has stayed at chance for {self.stretch} steps (mean {mean:.3f}; "
                f"ln({self.classes}) = {chance:.3f}): the network is not learning yet. This is the known plateau "
                "of the paper's initialisation (weights N(0, 0.01), biases of 1: at first the output barely "
                "depends on the image), which can last thousands of steps. The run goes on at its initial "
                "rate (the plateau rule waits until it learns). To leave it sooner, train the configuration "
                "that produced the paper's numbers, --preset cuda-convnet-2012; also check --lr and that the "
                "labels match the images.")
