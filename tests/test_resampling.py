"""timm's evaluation preprocessing resampled by torch: what it matches, and when Pillow keeps it."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from timm.data import create_transform

from stimuli.pools import SkimageCrops
from stimuli.resampling import ResizedCentreCrop, Transform, torch_resampled

# Crops of every shape: portrait and landscape, from 64 px (enlarged) to 1,411 px (reduced).
CROPS = SkimageCrops(size=40, seed=3)
CHELSEA = Image.fromarray(data.chelsea())
STRIPS = {"tall": CHELSEA.crop((0, 0, 100, 300)), "wide": CHELSEA.crop((0, 0, 451, 100))}


def timm_eval(**config) -> Transform:
    return create_transform(input_size=(3, 224, 224), use_prefetcher=True, **config)


def assert_within_rounding_of_pillow(pillow, resampled) -> None:
    """No pixel more than two grey levels apart, and a twentieth of a level on average."""
    assert isinstance(resampled, ResizedCentreCrop)
    images = {**{key: CROPS.load(key) for key in CROPS.keys()}, **STRIPS}
    for key, image in images.items():
        expected, got = pillow(image).int(), resampled(image).int()
        assert got.shape == expected.shape, key
        difference = (got - expected).abs()
        assert difference.max() <= 2, key
        assert difference.float().mean() < 0.05, key


def test_the_lite0_preprocessing_is_resampled_by_torch_within_rounding_of_pillows():
    pillow = timm_eval(interpolation="bicubic", crop_pct=0.875)
    assert_within_rounding_of_pillow(pillow, torch_resampled(pillow))


def test_bilinear_resizes_are_resampled_by_torch_within_rounding_of_pillows():
    pillow = timm_eval(interpolation="bilinear", crop_pct=0.9)
    assert_within_rounding_of_pillow(pillow, torch_resampled(pillow))


def test_a_resampled_image_is_a_uint8_channel_first_view_of_channel_last_pixels():
    image = torch_resampled(timm_eval(interpolation="bicubic"))(CROPS.load(CROPS.keys()[0]))
    assert image.dtype == torch.uint8 and image.shape == (3, 224, 224)
    # The batch stacks images as height x width x channel; this keeps that a plain copy.
    assert image.stride(0) == 1


@pytest.mark.parametrize(
    "config",
    [
        {"crop_mode": "squash"},  # a fixed height and width
        {"crop_mode": "border"},  # ResizeKeepRatio and padding
        {"input_size": (3, 224, 192)},  # a non-square target: ResizeKeepRatio
        {"crop_pct": 1.2},  # a crop larger than the resized image: padding
        {"interpolation": "nearest"},
    ],
    ids=["squash", "border", "non-square", "padding", "nearest"],
)
def test_other_preprocessing_keeps_timms_own_pillow_pipeline(config):
    pillow = create_transform(**{"input_size": (3, 224, 224), **config}, use_prefetcher=True)
    assert torch_resampled(pillow) is pillow


def test_images_that_are_not_rgb_go_through_timms_own_pipeline():
    pillow = timm_eval(interpolation="bicubic")
    grey = CROPS.load(CROPS.keys()[0]).convert("L")
    assert torch.equal(torch_resampled(pillow)(grey), pillow(grey))


def test_an_image_already_at_the_resized_size_is_cropped_exactly_as_pillow_crops_it():
    pillow = timm_eval(interpolation="bicubic", crop_pct=0.875)
    # Noise: a crop one pixel off, or any smoothing, would change most pixels.
    noise = np.random.default_rng(0).integers(0, 256, (300, 256, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    assert torch.equal(torch_resampled(pillow)(image), pillow(image))
