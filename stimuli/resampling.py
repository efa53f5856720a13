"""timm's evaluation preprocessing (resize, centre crop) resampled by torch instead of Pillow.

Recording decodes every pool image once, and on a CPU that decoding competes
with the forward pass for the same cores. Pillow's bicubic resize costs about
2.5 ms of one core per scikit-image crop; torch's antialiased uint8 kernels
apply the same filter in about 0.5 ms, on torch's own threads and without
holding the GIL. They round differently: on 200 crops, and on strips 3 times
as tall as wide and 4.5 times as wide as tall, no pixel is more than 2 grey
levels off, and at most 1% of an image's pixels differ at all (3% with
bilinear resizing), far below what the JPEG copies shown to participants change.

Transforms of any other shape (squashing, timm's ResizeKeepRatio, borders,
NaFlex) and images that are not RGB keep timm's own Pillow pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from timm.data.transforms import MaybePILToTensor
from torchvision import transforms
from torchvision.transforms import InterpolationMode

Transform = Callable[[Image.Image], torch.Tensor]
# A rectangle of an original image, (left, top, right, bottom) in its pixels (fractional).
Box = tuple[float, float, float, float]
# Which rectangle of an original image of (width, height) a preprocessed image shows.
Framing = Callable[[int, int], Box]

TORCH_MODES = {InterpolationMode.BILINEAR: "bilinear", InterpolationMode.BICUBIC: "bicubic"}


@dataclass(frozen=True)
class ResizedCentreCrop:
    """torchvision's Resize(shorter_side) then CenterCrop(crop) on a uint8 tensor,
    as (3, H, W) laid out H, W, C in memory."""

    shorter_side: int
    crop: tuple[int, int]
    mode: str
    pillow: Transform

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.mode != "RGB":
            return self.pillow(image)
        # (1, H, W, C) viewed as (1, C, H, W): torch's channels-last uint8 kernels.
        pixels = torch.from_numpy(np.array(image))[None].permute(0, 3, 1, 2)
        height, width = self.resized(*pixels.shape[2:])
        resized = torch.nn.functional.interpolate(
            pixels, size=(height, width), mode=self.mode, antialias=True
        )[0]
        top, left = self._offsets(height, width)
        return resized[:, top : top + self.crop[0], left : left + self.crop[1]]

    def _offsets(self, height: int, width: int) -> tuple[int, int]:
        return int(round((height - self.crop[0]) / 2.0)), int(round((width - self.crop[1]) / 2.0))

    def box(self, width: int, height: int) -> Box:
        """The rectangle of a width x height original that the cropped image shows (a Framing)."""
        resized_height, resized_width = self.resized(height, width)
        top, left = self._offsets(resized_height, resized_width)
        x_scale, y_scale = resized_width / width, resized_height / height
        return (
            left / x_scale,
            top / y_scale,
            (left + self.crop[1]) / x_scale,
            (top + self.crop[0]) / y_scale,
        )

    def resized(self, height: int, width: int) -> tuple[int, int]:
        """The shorter side at shorter_side, the longer in proportion, rounded down as torchvision does."""
        short, long = sorted((height, width))
        side = int(self.shorter_side * long / short)
        return (self.shorter_side, side) if height <= width else (side, self.shorter_side)


def whole_image(width: int, height: int) -> Box:
    """The Framing of a transform that keeps the whole image (hand-built networks in tests)."""
    return (0.0, 0.0, float(width), float(height))


def framing_of(transform: Transform) -> Framing | None:
    """Which part of an original the network sees, for a resize and centre crop; None for other transforms."""
    if isinstance(transform, ResizedCentreCrop):
        return transform.box
    return None


def torch_resampled(pillow: Transform) -> Transform:
    """`pillow` (timm's eval transform with use_prefetcher) with its resize and crop run by torch,
    or `pillow` itself where it is not a shorter-side resize, a centre crop and a uint8 tensor."""
    steps = getattr(pillow, "transforms", None)
    if not isinstance(steps, Sequence) or len(steps) != 3:
        return pillow
    resize, crop, to_tensor = steps
    if not (
        isinstance(resize, transforms.Resize)
        and isinstance(crop, transforms.CenterCrop)
        and isinstance(to_tensor, MaybePILToTensor)
        and resize.interpolation in TORCH_MODES
        and resize.max_size is None
    ):
        return pillow
    size = [resize.size] if isinstance(resize.size, int) else list(resize.size)
    # Squashing to two sizes differs more (up to 10 grey levels where Pillow 13
    # resamples rows first and torch columns first); a crop larger than the
    # resized image needs padding.
    if len(size) != 1 or size[0] < max(crop.size):
        return pillow
    return ResizedCentreCrop(size[0], tuple(crop.size), TORCH_MODES[resize.interpolation], pillow)
