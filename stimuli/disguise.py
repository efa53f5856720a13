"""Disguised copies: the same photograph, recognisably, whose pixels are not the stored original's.

A catch trial shows one of its references again as a query. A copy that
differs from its source by a few nudged pixel values is found by comparing
pixels: its mean squared difference to the source was under 0.01, against at
least 21 for every other query (issue 10). So a copy is a small seeded change
of view, as a second photograph of the scene would be: a crop of 87 to 94% of
the stimulus side, its centre moved by up to 8% of the side, mirrored half of
the time, resampled once from the pool image as the original is (so it is no
blurrier than the original) and encoded once, like every stimulus. A person
sees the same photograph at once; its pixels are about as far from its source
as those of two different pool images of one scene are.
tests/test_catch_disguise.py measures what comparing pixels, thumbnails and
hashes still finds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# The copy's crop: side / zoom, centre moved by up to MAX_SHIFT * side in each direction.
ZOOM = (1.06, 1.15)
MAX_SHIFT = 0.08
FLIP_PROBABILITY = 0.5


@dataclass(frozen=True)
class Disguise:
    zoom: float  # the copy shows side / zoom of the original's view
    shift: tuple[float, float]  # its centre's offset from the original's, as fractions of the side
    flip: bool  # mirrored left to right


def draw_disguise(rng: np.random.Generator) -> Disguise:
    dx, dy = rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=2)
    return Disguise(float(rng.uniform(*ZOOM)), (float(dx), float(dy)), bool(rng.random() < FLIP_PROBABILITY))


def disguise_box(
    original: tuple[int, int], resized: tuple[int, int], size: int, disguise: Disguise
) -> tuple[float, float, float, float]:
    """The rectangle of the original image (left, top, right, bottom in its pixels) that the copy shows.

    The original stimulus is the centre size x size square of the image resized to `resized`
    (see stimuli.storage.resized_and_cropped); the copy's square is placed in that frame and kept
    inside it.
    """
    width, height = resized
    side = size / disguise.zoom
    dx, dy = disguise.shift
    # Centred where the original's square is (which starts at a whole pixel).
    centre_x, centre_y = (width - size) // 2 + size / 2, (height - size) // 2 + size / 2
    left = float(np.clip(centre_x + dx * size - side / 2, 0, width - side))
    top = float(np.clip(centre_y + dy * size - side / 2, 0, height - side))
    sx, sy = original[0] / width, original[1] / height
    return left * sx, top * sy, (left + side) * sx, (top + side) * sy


def apply_disguise(image: Image.Image, resized: tuple[int, int], size: int, disguise: Disguise) -> Image.Image:
    """The size x size view of `image` that `disguise` makes of the original stimulus, resampled from
    `image` itself (mirrored after, where the disguise says so)."""
    box = disguise_box(image.size, resized, size, disguise)
    view = image.resize((size, size), Image.Resampling.BICUBIC, box=box)
    return view.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if disguise.flip else view
