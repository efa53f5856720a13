"""Disguised copies (stimuli.disguise): a seeded small crop, shift and mirror of the stimulus, encoded once."""

import io

import numpy as np
import pytest
from PIL import Image

from stimuli.disguise import MAX_SHIFT, ZOOM, Disguise, apply_disguise, draw_disguise
from stimuli.pools import SkimageCrops
from stimuli.sampling import seeded_rng
from stimuli.storage import disguised_copy, jpeg_bytes, resized_and_cropped, resized_size

RESIZE_TO, SIZE = 256, 224
UNCHANGED = Disguise(zoom=1.0, shift=(0.0, 0.0), flip=False)


@pytest.fixture
def photo() -> Image.Image:
    """A wide crop of a scikit-image photograph, larger than the stimulus."""
    return SkimageCrops(1).load("skimage/000000/astronaut/20,40,400,300")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def view(photo: Image.Image, disguise: Disguise) -> np.ndarray:
    return pixels(apply_disguise(photo, resized_size(photo, RESIZE_TO, SIZE), SIZE, disguise))


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a - b) ** 2).mean())


def test_an_unchanged_view_is_the_stimulus_itself(photo):
    # Up to resampling once rather than resizing then cropping.
    original = pixels(resized_and_cropped(photo, RESIZE_TO, SIZE))
    assert mse(view(photo, UNCHANGED), original) < 2


def test_a_mirrored_view_is_the_mirror_image_of_the_unmirrored_one(photo):
    mirrored = view(photo, Disguise(zoom=1.1, shift=(0.05, -0.02), flip=True))
    assert np.array_equal(mirrored, view(photo, Disguise(zoom=1.1, shift=(0.05, -0.02), flip=False))[:, ::-1])


def test_a_zoomed_view_shows_the_centre_of_the_stimulus_larger(photo):
    original = resized_and_cropped(photo, RESIZE_TO, SIZE)
    side = SIZE / 1.12
    margin = (SIZE - side) / 2
    centre = pixels(original.resize((SIZE, SIZE), Image.Resampling.BICUBIC, box=(margin, margin, SIZE - margin, SIZE - margin)))
    zoomed = view(photo, Disguise(zoom=1.12, shift=(0.0, 0.0), flip=False))
    # The expected centre is resampled twice, the view once: close, but not equal.
    assert mse(zoomed, centre) < mse(zoomed, pixels(original)) / 100


def test_a_view_shifted_past_the_edge_stays_inside_the_image(photo):
    # Shifted as far as the image allows: its left edge is the image's left edge.
    leftmost = view(photo, Disguise(zoom=1.1, shift=(-5.0, 0.0), flip=False))
    width, height = resized_size(photo, RESIZE_TO, SIZE)
    side = SIZE / 1.1
    top = (height - side) / 2
    resized = photo.resize((width, height), Image.Resampling.BICUBIC)
    expected = pixels(resized.resize((SIZE, SIZE), Image.Resampling.BICUBIC, box=(0, top, side, top + side)))
    original = pixels(resized_and_cropped(photo, RESIZE_TO, SIZE))
    assert mse(leftmost, expected) < mse(leftmost, original) / 100


def test_drawn_disguises_stay_within_their_ranges_and_mirror_about_half_of_the_time():
    rng = seeded_rng(0)
    drawn = [draw_disguise(rng) for _ in range(1000)]
    assert all(ZOOM[0] <= d.zoom <= ZOOM[1] for d in drawn)
    assert all(abs(dx) <= MAX_SHIFT and abs(dy) <= MAX_SHIFT for d in drawn for dx, dy in [d.shift])
    assert 400 < sum(d.flip for d in drawn) < 600


def test_the_same_seed_makes_the_same_copy_and_another_seed_another(photo):
    copy = disguised_copy(photo, RESIZE_TO, SIZE, seed=5)
    assert disguised_copy(photo, RESIZE_TO, SIZE, seed=5) == copy
    assert disguised_copy(photo, RESIZE_TO, SIZE, seed=6) != copy


def test_a_copy_is_a_stimulus_sized_jpeg_other_than_the_original(photo):
    copy = disguised_copy(photo, RESIZE_TO, SIZE, seed=5)
    assert copy != jpeg_bytes(resized_and_cropped(photo, RESIZE_TO, SIZE))
    decoded = Image.open(io.BytesIO(copy))
    assert (decoded.format, decoded.size) == ("JPEG", (SIZE, SIZE))


def test_a_copy_of_a_uniform_image_still_has_a_name_of_its_own():
    grey = Image.new("RGB", (300, 260), (128, 128, 128))
    assert disguised_copy(grey, RESIZE_TO, SIZE, seed=5) != jpeg_bytes(resized_and_cropped(grey, RESIZE_TO, SIZE))
