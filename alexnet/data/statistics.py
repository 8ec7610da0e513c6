"""Training-set statistics the recipe needs, accumulated in one streaming pass.

- The per-pixel mean image (Section 2): the mean over training images of each of the S x S x 3
  values, in the 0-255 scale of the stored pixels.
- The 3x3 covariance of RGB pixel values over every pixel of every training image, and its
  eigenvalues and eigenvectors (Section 4.1), computed on values scaled to [0, 1]. The colour
  noise formula adds alpha * lambda along each eigenvector, so its size depends on that scale:
  our named choice is the [0, 1] scale (the common convention, giving shifts of a few grey levels
  at alpha's std 0.1), applied to 0-255 pixels after multiplying by 255.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def image_moments(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of RGB values (3,) and sum of RGB outer products (3, 3) over one uint8 H x W x 3 image.

    Float64 holds these sums exactly (each term is an integer far below 2**53).
    """
    pixels = image.reshape(-1, 3).astype(np.float64)
    return pixels.sum(axis=0), pixels.T @ pixels


@dataclass
class RunningStatistics:
    """Accumulates the mean image and the RGB moments one image at a time (bounded memory)."""

    size: int

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.pixel_count = 0
        self.image_sum = np.zeros((self.size, self.size, 3), np.float64)
        self.rgb_sum = np.zeros(3, np.float64)
        self.rgb_outer = np.zeros((3, 3), np.float64)

    def add(self, image: np.ndarray, rgb_sum: np.ndarray | None = None, rgb_outer: np.ndarray | None = None) -> None:
        """Add one image; pass its precomputed moments (from a worker) to skip recomputing them."""
        if rgb_sum is None or rgb_outer is None:
            rgb_sum, rgb_outer = image_moments(image)
        self.image_sum += image
        self.rgb_sum += rgb_sum
        self.rgb_outer += rgb_outer
        self.count += 1
        self.pixel_count += image.shape[0] * image.shape[1]

    def state(self) -> dict[str, np.ndarray]:
        """The sums so far, as arrays (saved by an interruptible `prepare`)."""
        return {"count": np.array(self.count), "pixel_count": np.array(self.pixel_count),
                "image_sum": self.image_sum, "rgb_sum": self.rgb_sum, "rgb_outer": self.rgb_outer}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        if state["image_sum"].shape != self.image_sum.shape:
            raise ValueError("saved statistics are for another image size")
        self.count, self.pixel_count = int(state["count"]), int(state["pixel_count"])
        self.image_sum = np.array(state["image_sum"], np.float64)
        self.rgb_sum = np.array(state["rgb_sum"], np.float64)
        self.rgb_outer = np.array(state["rgb_outer"], np.float64)

    def mean_image(self) -> np.ndarray:
        return (self.image_sum / max(1, self.count)).astype(np.float32)

    def rgb_covariance(self) -> np.ndarray:
        """Population covariance of RGB values in the [0, 1] scale."""
        n = max(1, self.pixel_count)
        mean = self.rgb_sum / n
        return (self.rgb_outer / n - np.outer(mean, mean)) / (255.0 ** 2)

    def summary(self) -> dict:
        cov = self.rgb_covariance()
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        order = np.argsort(eigenvalues)[::-1]  # largest first
        eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
        # Fix each eigenvector's sign (eigh's is arbitrary): largest-magnitude entry positive.
        for i in range(3):
            if eigenvectors[np.argmax(np.abs(eigenvectors[:, i])), i] < 0:
                eigenvectors[:, i] *= -1
        return {
            "images": self.count,
            "pixel_scale": "rgb_covariance and eigen-decomposition use values in [0, 1]; "
                           "the mean image uses 0-255",
            "mean_rgb": (self.rgb_sum / max(1, self.pixel_count)).tolist(),
            "rgb_covariance": cov.tolist(),
            "rgb_eigenvalues": eigenvalues.tolist(),
            # Column i is the eigenvector of eigenvalue i.
            "rgb_eigenvectors": eigenvectors.tolist(),
        }
