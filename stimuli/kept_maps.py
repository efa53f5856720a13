"""Activation maps kept on the server (stimuli.models.KeptMap): stored compactly, read back as arrays."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np

from stimuli.models import KeptMap, StimulusImage, Unit


def keep_map(unit: Unit, image: StimulusImage, values: np.ndarray) -> KeptMap:
    """Keep the unit's map on this image (height x width); a map kept already is kept as it was."""
    if values.ndim != 2:
        raise ValueError(f"A kept map is (height, width), not {values.shape}.")
    packed = zlib.compress(np.ascontiguousarray(values, dtype=np.float16).tobytes(), level=6)
    kept, _ = KeptMap.objects.get_or_create(
        unit=unit, image=image, defaults={"height": values.shape[0], "width": values.shape[1], "values": packed}
    )
    return kept


def stored_values(kept: KeptMap) -> np.ndarray:
    """The map as it is kept: float16, (height, width)."""
    raw = zlib.decompress(bytes(kept.values))
    return np.frombuffer(raw, dtype=np.float16).reshape(kept.height, kept.width)


def as_array(kept: KeptMap) -> np.ndarray:
    return stored_values(kept).astype(np.float32)


def kept_maps(ids: Iterable[int]) -> dict[int, np.ndarray]:
    """The kept maps with these ids, as float32 arrays; none is read when none is asked for."""
    wanted = list(ids)
    if not wanted:
        return {}
    return {kept.pk: as_array(kept) for kept in KeptMap.objects.filter(pk__in=wanted)}
