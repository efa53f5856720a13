"""Heat-map overlays: coloured by the study's colour map, opaque in proportion to the clipped map."""

import numpy as np
import pytest
from matplotlib import colormaps

from protocols.localizability.overlay import heat_overlay


def test_the_strongest_pixel_takes_the_full_opacity_and_the_colour_maps_top():
    values = np.array([[0.0, 1.0], [2.0, 4.0]])
    overlay = heat_overlay(values, "viridis", 0.6)
    assert overlay.shape == (2, 2, 4) and overlay.dtype == np.uint8
    assert overlay[1, 1, 3] == round(0.6 * 255)
    assert tuple(overlay[1, 1, :3]) == tuple(np.round(np.array(colormaps["viridis"](1.0)[:3]) * 255).astype(int))


def test_opacity_grows_with_the_map_and_negative_values_are_transparent():
    values = np.array([[-3.0, 0.0, 1.0, 2.0]])
    alpha = heat_overlay(values, "inferno", 1.0)[0, :, 3]
    assert list(alpha) == [0, 0, pytest.approx(128, abs=1), 255]


def test_a_map_without_mass_is_fully_transparent():
    assert not heat_overlay(np.zeros((3, 3)), "magma", 0.8)[..., 3].any()
