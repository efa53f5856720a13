"""A unit's activation maps on the stored stimuli a study shows, on the stimulus's own pixels.

The map pass (stimuli.maps) records the unit's maps on the pool images; each
is then resampled onto the pixels of the stimulus made from it: the rectangle
of the pool image the stimulus shows (stimuli.storage.StimulusWriter.shown),
for a disguised copy its own crop, mirrored where the copy is. So a map lies
exactly on what a participant sees and clicks on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stimuli.maps import MapRequest, map_framing, record_maps, resampled
from stimuli.networks import Network
from stimuli.pools import ImageSource
from stimuli.storage import StimulusWriter
from stimuli.units import UnitRef


def maps_on_stimuli(
    network: Network,
    source: ImageSource,
    writer: StimulusWriter,
    unit: UnitRef,
    stimuli: Sequence[tuple[int, bool]],
    directory: Path,
    identity: str = "",
) -> list[np.ndarray]:
    """The unit's (size, size) float32 map on each stimulus, given as (pool row, disguised), in order."""
    framing = map_framing(network)  # before the map pass, which would be wasted
    keys = tuple(dict.fromkeys(writer.keys[row] for row, _ in stimuli))
    [unit_maps] = record_maps(network, source, [MapRequest(unit, keys)], directory, identity=identity)
    result = []
    for row, disguised in stimuli:
        key = writer.keys[row]
        box, mirrored = writer.shown(row, disguised)
        seen = framing(*writer.sizes[row])
        values = resampled(unit_maps.map_of(key), seen, box, writer.size)
        result.append(np.ascontiguousarray(values[:, ::-1]) if mirrored else values)
    return result
