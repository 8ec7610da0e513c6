"""The paper's two forms of augmentation (Section 4.1) and its ten-patch test (Section 4.1, end).

The split of work depends on the input pipeline (see `data.loader.PIPELINES`). "host": what picks pixels
(crop position, reflection) happens on uint8 data in the loader's workers, and what computes on them
(mean subtraction, colour noise, float conversion, layout) in `Augmentation` on the training device (in
the workers too, on the CPU). "device" and "nvjpeg": the workers only gather stored (or encoded) bytes
and `Augmentation.train_batch_from_stored` does all of it on the device. `EvalViews` cuts the test
patches.

Randomness is drawn per image from a generator keyed by (seed, epoch, image index), so a run's
augmentation does not depend on the number of workers, the batch composition or an interruption.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.utils.data


def crop_size_for(stored_size: int, fraction: float) -> int:
    """The crop side for a stored image side: 224 for 256 at the paper's 7/8."""
    return max(1, int(round(stored_size * fraction)))


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array: a bijective hash with good avalanche."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniforms(seed: int, epoch: int, indices: np.ndarray, streams: int) -> np.ndarray:
    """(len(indices), streams) floats in [0, 1), a pure function of (seed, epoch, index, stream).

    A counter-based generator: the numbers of one image do not depend on which other images share
    its batch, on the worker that draws them or on an interruption, and a whole batch costs a few
    vectorised operations (a seeded NumPy Generator per image costs ~100-500 us on small CPUs).
    """
    with np.errstate(over="ignore"):
        key = _mix64(np.array([seed], np.uint64) * _GOLDEN + np.uint64(1))
        key = _mix64(key ^ (np.array([epoch], np.uint64) * _GOLDEN + np.uint64(2)))
        key = _mix64(key ^ (np.asarray(indices, np.uint64) * _GOLDEN + np.uint64(3)))
        counters = key[:, None] + (np.arange(1, streams + 1, dtype=np.uint64) * _GOLDEN)[None, :]
        bits = _mix64(counters) >> np.uint64(11)  # the top 53 bits
    return bits.astype(np.float64) * (1.0 / (1 << 53))


def sample_augmentations(seed: int, epoch: int, indices: np.ndarray, stored: int, crop: int,
                         pca_std: float, flip: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop corners (B, 2), reflections (B,) and colour-noise alphas (B, 3) for a batch of image indices.

    Corners are uniform over the stored - crop + 1 positions per axis, reflections have probability
    1/2, alphas are N(0, pca_std) (Box-Muller on two uniforms each).
    """
    u = _uniforms(seed, epoch, np.atleast_1d(indices), 9)
    positions = stored - crop + 1
    corners = np.minimum((u[:, 0:2] * positions).astype(np.int64), positions - 1)
    flips = (u[:, 2] < 0.5) if flip else np.zeros(len(u), bool)
    radius = np.sqrt(-2.0 * np.log1p(-u[:, 3:6]))  # log(1 - u): u < 1, so finite
    alphas = (radius * np.cos(2 * np.pi * u[:, 6:9]) * pca_std).astype(np.float32)
    if pca_std <= 0:
        alphas = np.zeros_like(alphas)
    return corners, flips, alphas


def colour_noise_std(recipe, epoch: int) -> float:
    """The std of the colour-noise alphas in `epoch`: the recipe's, or 0 from `pca_off_epoch` on
    (cuda-convnet turned the noise off late in its run)."""
    return 0.0 if recipe.pca_off_epoch and epoch >= recipe.pca_off_epoch else recipe.pca_std


def sample_augmentation(seed: int, epoch: int, index: int, stored: int, crop: int,
                        pca_std: float, flip: bool = True) -> tuple[int, int, bool, np.ndarray]:
    """Crop corner (y, x), reflection, and the three colour-noise alphas of one presentation."""
    corners, flips, alphas = sample_augmentations(seed, epoch, np.array([index]), stored, crop, pca_std, flip)
    return int(corners[0, 0]), int(corners[0, 1]), bool(flips[0]), alphas[0]


def crop(image: np.ndarray, y: int, x: int, size: int, flipped: bool) -> np.ndarray:
    """The size x size patch of an H x W x 3 image at (y, x), reflected left-right if asked."""
    patch = image[y:y + size, x:x + size]
    return patch[:, ::-1] if flipped else patch


def ten_crop_views(stored: int, size: int) -> list[tuple[int, int, bool]]:
    """The ten test patches: four corners and the centre, then the same five reflected."""
    far, mid = stored - size, (stored - size) // 2
    corners = [(0, 0), (0, far), (far, 0), (far, far), (mid, mid)]
    return [(y, x, False) for y, x in corners] + [(y, x, True) for y, x in corners]


def center_view(stored: int, size: int) -> list[tuple[int, int, bool]]:
    mid = (stored - size) // 2
    return [(mid, mid, False)]


TTA_MODES = ("center", "10crop")   # test-time views: the centre patch, or the paper's ten


def views_for(tta: str, stored: int, crop: int) -> list[tuple[int, int, bool]]:
    if tta == "center":
        return center_view(stored, crop)
    if tta == "10crop":
        return ten_crop_views(stored, crop)
    raise ValueError(f"unknown test-time mode {tta!r}; choose from {', '.join(TTA_MODES)}")


def pca_shift(alphas: np.ndarray | torch.Tensor, eigenvalues, eigenvectors):
    """[p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T for each row of alphas: (B, 3) -> (B, 3) RGB shifts.

    `eigenvectors` holds one eigenvector per column. Units are those of the eigen-decomposition
    (the [0, 1] pixel scale, see statistics.py).
    """
    return (alphas * eigenvalues) @ eigenvectors.T


def batch_buffer(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised tensor; in a DataLoader worker, allocated straight in shared memory, which the
    loader would otherwise copy the finished batch into (about 70 ms for 128 x 3 x 224 x 224 floats here)."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    try:
        storage = torch.UntypedStorage._new_shared(torch.empty((), dtype=dtype).element_size() * math.prod(shape))
    except (AttributeError, RuntimeError):  # not in this torch version: the loader's copy it is
        return torch.empty(shape, dtype=dtype)
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape)


def colour_scales(recipe, eigenvalues: np.ndarray) -> np.ndarray:
    """What multiplies each colour-noise alpha: the eigenvalues (the paper) or their square roots
    (the original code's "colour standard deviations")."""
    return eigenvalues if recipe.pca_scale == "eigenvalues" else np.sqrt(np.maximum(eigenvalues, 0))


class _MeanImage:
    """The mean image a network's inputs are taken from, on `device`, and the crop it is cut to.

    mean_crop: "aligned" subtracts the mean image cropped (and reflected) exactly as the image was,
    which is the paper's "subtract the mean, then crop"; "center" always subtracts the centre crop
    of the mean (the original code).
    """

    def __init__(self, mean_image: np.ndarray, crop: int, mean_crop: str = "aligned",
                 device: str | torch.device = "cpu") -> None:
        if mean_crop not in ("aligned", "center"):
            raise ValueError(f"mean_crop must be 'aligned' or 'center', got {mean_crop!r}")
        self.device = torch.device(device)
        self.mean = torch.as_tensor(np.ascontiguousarray(mean_image), dtype=torch.float32, device=self.device)
        self.crop, self.mean_crop, self.stored = crop, mean_crop, int(mean_image.shape[0])
        mid = (self.stored - crop) // 2
        self.center_mean = self.mean[mid:mid + crop, mid:mid + crop]


class EvalViews(_MeanImage):
    """Test time (Section 4.1, end): whole stored uint8 images -> the network's input for each view."""

    def __call__(self, images: torch.Tensor, views: list[tuple[int, int, bool]]):
        """Full stored uint8 (B, S, S, 3) -> one (B, 3, c, c) input per view, mean-subtracted."""
        images = images.to(self.device, non_blocking=True).float()
        c = self.crop
        for y, x, flipped in views:
            patch = images[:, y:y + c, x:x + c]
            mean = self.center_mean if self.mean_crop == "center" else self.mean[y:y + c, x:x + c]
            if flipped:  # reflect the image, and the mean with it when it is aligned
                patch = patch.flip(2)
                mean = mean if self.mean_crop == "center" else mean.flip(1)
            yield (patch - mean).permute(0, 3, 1, 2).contiguous()


class Augmentation(_MeanImage):
    """Training time (Section 4.1): uint8 crops (or whole stored images) and the draws of
    `sample_augmentations` -> the network's float NCHW input, with the mean image and the colour noise
    `[p1 p2 p3][a1 s1, a2 s2, a3 s3]^T`, s the recipe's colour scales (`colour_scales`)."""

    def __init__(self, mean_image: np.ndarray, scales: np.ndarray, eigenvectors: np.ndarray, crop: int,
                 mean_crop: str = "aligned", device: str | torch.device = "cpu") -> None:
        super().__init__(mean_image, crop, mean_crop, device)
        self.scales = torch.as_tensor(scales, dtype=torch.float32, device=self.device)
        self.eigenvectors = torch.as_tensor(eigenvectors, dtype=torch.float32, device=self.device)
        self.steps = torch.arange(crop, device=self.device)
        # CPU path: the mean channels-first, and reflected, so each image's mean patch is a plain slice.
        self.mean_chw = self.mean.permute(2, 0, 1).contiguous()
        self.mean_chw_reflected = self.mean_chw.flip(2).contiguous()

    def _patch_index(self, corners: torch.Tensor, flips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, crop, 1) rows and (B, 1, crop) columns of each crop in the stored image, the columns read
        right to left where the crop is reflected: indexing a stored image (or the mean image) with them
        gives the crop, reflected, in one gather."""
        rows = corners[:, 0:1] + self.steps                    # (B, crop)
        cols = corners[:, 1:2] + self.steps                    # (B, crop)
        cols = torch.where(flips[:, None], cols.flip(1), cols)
        return rows[:, :, None], cols[:, None, :]

    def _mean_patches(self, index: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """(B, crop, crop, 3) mean patches at the crops' positions (`_patch_index`; not needed, and may be
        None, for the "center" mode's one patch)."""
        return self.center_mean.unsqueeze(0) if self.mean_crop == "center" else self.mean[index]

    def train_batch(self, crops: torch.Tensor, corners: torch.Tensor, flips: torch.Tensor,
                    alphas: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """Cropped, reflected uint8 (B, c, c, 3) -> mean-subtracted, colour-shifted (B, 3, c, c), times
        `scale` (cuda-convnet divides training crops by 1.1 while the colour noise is on)."""
        if self.device.type == "cpu":
            return self._train_batch_cpu(crops, corners, flips, alphas, scale)
        # non_blocking throughout: the loader hands over pinned memory, and a blocking copy would make
        # the host wait for the previous training step before queueing the next.
        crops = crops.to(self.device, non_blocking=True)
        corners, flips = corners.to(self.device, non_blocking=True), flips.to(self.device, non_blocking=True)
        index = self._patch_index(corners, flips) if self.mean_crop == "aligned" else None
        return self._finish(crops.float() - self._mean_patches(index), alphas, scale)

    def train_batch_from_stored(self, images: torch.Tensor, corners: torch.Tensor, flips: torch.Tensor,
                                alphas: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """Whole stored uint8 images (B, S, S, 3) -> the same input as `train_batch` gives for their crops:
        crop, reflection, mean image, colour noise, float and layout in one place on the device, where the
        host has only gathered the stored bytes. `images` may be any strided view (e.g. a decoder's CHW
        output permuted)."""
        images = images.to(self.device, non_blocking=True)
        corners, flips = corners.to(self.device, non_blocking=True), flips.to(self.device, non_blocking=True)
        rows, cols = self._patch_index(corners, flips)
        picked = images[torch.arange(len(images), device=self.device)[:, None, None], rows, cols]
        return self._finish(picked.float() - self._mean_patches((rows, cols)), alphas, scale)

    def _finish(self, x: torch.Tensor, alphas: torch.Tensor, scale: float) -> torch.Tensor:
        """(B, c, c, 3) mean-subtracted pixels -> plus colour noise, scaled, as (B, 3, c, c). The NCHW view of
        NHWC memory is already channels-last, so a channels-last network takes it without another copy."""
        alphas = alphas.to(self.device, non_blocking=True).float()
        x = x + (pca_shift(alphas, self.scales, self.eigenvectors) * 255.0)[:, None, None, :]
        if scale != 1.0:
            x = x * scale
        return x.permute(0, 3, 1, 2)

    def _train_batch_cpu(self, crops: torch.Tensor, corners: torch.Tensor, flips: torch.Tensor,
                         alphas: torch.Tensor, scale: float) -> torch.Tensor:
        """The same result in three passes over memory: uint8 NHWC -> float NCHW in one copy, then per image
        the mean patch (a slice: of the reflected mean for a reflected crop) and the colour shift."""
        c, s = self.crop, self.stored
        out = batch_buffer((len(crops), 3, c, c))
        out.copy_(crops.permute(0, 3, 1, 2))
        shifts = pca_shift(alphas.float(), self.scales, self.eigenvectors) * 255.0
        mid = (s - c) // 2
        for i, ((y, x), flipped) in enumerate(zip(corners.tolist(), flips.tolist())):
            if self.mean_crop == "center":  # the original code: always the centre of the mean, unreflected
                y, x, flipped = mid, mid, False
            if flipped:  # reflect(mean[y:y+c, x:x+c]) == reflected mean[y:y+c, s-x-c:s-x]
                patch = self.mean_chw_reflected[:, y:y + c, s - x - c:s - x]
            else:
                patch = self.mean_chw[:, y:y + c, x:x + c]
            out[i].sub_(patch).add_(shifts[i].view(3, 1, 1))
        if scale != 1.0:
            out.mul_(scale)
        return out
