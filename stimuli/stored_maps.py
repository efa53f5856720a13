"""A unit's activation maps on stored stimuli, on the stored image's own pixels.

The network sees the stored image itself (not the pool image through its
resize and crop), so that a map lies exactly on what a participant sees and
clicks on, a disguised copy included; the layer's map is upsampled bilinearly
to the image's pixels. Only channel units of CNN layers are mapped here.

Stopgap until the SAE branch's map pass (stimuli/maps.py, issue 11) is merged:
rendering then calls that pass instead and this module keeps only the loading
of stored images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from django.core.files.storage import default_storage
from PIL import Image

from stimuli.models import StimulusImage, Unit
from stimuli.networks import Network, NetworkError, hooked

BATCH = 32


def stored_pixels(image: StimulusImage) -> np.ndarray:
    with default_storage.open(image.file) as handle:
        return np.array(Image.open(handle).convert("RGB"))


def map_stored_images(network: Network, unit: Unit, images: Sequence[StimulusImage]) -> list[np.ndarray]:
    """float16 (height, width) maps of the unit on each image, in order."""
    maps: list[np.ndarray] = []
    captured: list[torch.Tensor] = []
    for start in range(0, len(images), BATCH):
        pixels = np.stack([stored_pixels(image) for image in images[start : start + BATCH]])
        captured.clear()
        with hooked(network.module, [unit.layer], lambda _layer, out: captured.append(out)), torch.inference_mode():
            network.module(network.inputs(torch.from_numpy(pixels).permute(0, 3, 1, 2)))
        output = captured[0]
        if output.ndim != 4:
            raise NetworkError(f"Layer {unit.layer} gives outputs of shape {tuple(output.shape)}, not maps.")
        channel = output[:, unit.channel : unit.channel + 1].float()
        upsampled = torch.nn.functional.interpolate(
            channel, size=pixels.shape[1:3], mode="bilinear", align_corners=False
        )[:, 0]
        maps += list(upsampled.cpu().numpy().astype(np.float16))
    return maps
