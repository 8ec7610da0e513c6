"""JPEG decoding on the GPU for the "nvjpeg" input pipeline: torchvision's batched nvJPEG decoder.

The loader's workers send a batch's JPEG files back to back in one uint8 tensor with their lengths (one
shared-memory block, not one per image); here they are split into views and decoded together on the
device. torchvision is optional (its PyPI build does not load with every torch); without it the
pipeline is refused with the reason, and "device" or "host" decode on the CPU instead.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import AlexNetError


def split_encoded(encoded: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    """The batch's JPEG files as 1-D uint8 views of `encoded`."""
    return list(torch.split(encoded, lengths.tolist()))


def nvjpeg_decoder() -> Callable[[torch.Tensor, torch.Tensor, torch.device], torch.Tensor]:
    """decode(encoded, lengths, device) -> (B, S, S, 3) uint8 on `device` (an HWC view of the decoder's
    CHW output), with torchvision.io.decode_jpeg; AlexNetError when torchvision cannot be used."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg
    except Exception as exc:  # not installed, or a build that does not load with this torch
        raise AlexNetError(f"--pipeline nvjpeg needs torchvision's GPU JPEG decoder, which cannot be imported "
                           f"here ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                           "use --pipeline device or host") from None

    def decode(encoded: torch.Tensor, lengths: torch.Tensor, device: torch.device) -> torch.Tensor:
        if torch.device(device).type == "cuda":
            # The decoder's output is allocated on the caller's stream but written from a stream of its own
            # that does not wait for the caller's, so it may be handed memory freed on the caller's stream
            # that queued kernels still read, and overwrite it first (pytorch/vision PR 9606). Once the
            # caller's stream is idle no such kernel is left. On the input pipeline's side stream this
            # waits for the previous batch's augmentation, queued a step earlier, not for a training step.
            torch.cuda.current_stream(device).synchronize()
        images = decode_jpeg(split_encoded(encoded, lengths), mode=ImageReadMode.RGB, device=device)
        return torch.stack(images).permute(0, 2, 3, 1)

    return decode
