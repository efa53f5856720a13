"""Heat-map overlays: a unit's map on an image's pixels as an RGBA image the page lays over the plain one."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps


def heat_overlay(activation_map: np.ndarray, colour_map: str, opacity: float) -> np.ndarray:
    """(height, width, 4) uint8: the clipped map scaled by its maximum, coloured by colour_map, opaque
    in proportion (up to `opacity` where the unit fires most), so the image shows where it does not fire.
    A map without mass is fully transparent."""
    values = np.clip(np.asarray(activation_map, dtype=np.float64), 0, None)
    peak = float(values.max()) if values.size else 0.0
    scaled = values / peak if peak > 0 else np.zeros_like(values)
    rgba = colormaps[colour_map](scaled)
    rgba[..., 3] = opacity * scaled
    return np.round(rgba * 255).astype(np.uint8)
