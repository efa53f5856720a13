"""Seeded unit sampling as IMI does it (Zimmermann et al. 2023, §3 "Selecting Units")."""

from __future__ import annotations

import numpy as np


def seeded_rng(*parts: int) -> np.random.Generator:
    """A generator determined by integers such as (study seed, purpose, unit order).

    SeedSequence wants non-negative entries; the modulo keeps negative study
    seeds usable without two 32-bit seeds colliding.
    """
    return np.random.default_rng([part % 2**32 for part in parts])


def sample_layer_channels(
    channels: dict[str, int], n: int, rng: np.random.Generator
) -> list[tuple[str, int]]:
    """n distinct (layer, channel) pairs: a uniformly random layer, then a random channel of it.

    Drawing the layer first keeps wide late layers from dominating the sample.
    """
    available = sum(channels.values())
    if n > available:
        raise ValueError(f"Cannot sample {n} distinct units from {available} channels.")
    layers = list(channels)
    chosen: list[tuple[str, int]] = []
    seen: set[tuple[str, int]] = set()
    while len(chosen) < n:
        layer = layers[rng.integers(len(layers))]
        unit = (layer, int(rng.integers(channels[layer])))
        if unit not in seen:
            seen.add(unit)
            chosen.append(unit)
    return chosen
