"""Stimulus files: 224 px JPEGs in the default storage, named by the sha256 of their bytes.

A content-hashed name says nothing about a trial; the one thing that could
still betray a catch trial is its queries sharing a name with the references
they copy, which disguised_copy prevents.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from stimuli.models import StimulusImage
from stimuli.pools import ImageSource
from stimuli.sampling import seeded_rng

JPEG_QUALITY = 90
# Pixel values nudged in a copy at first; doubled until the JPEG bytes differ.
COPY_NUDGES = 16


def resized_and_cropped(image: Image.Image, resize_to: int, size: int) -> Image.Image:
    """Shorter side resized to resize_to (never below size), then the centre size x size square."""
    width, height = image.size
    scale = max(resize_to, size) / min(width, height)
    image = image.resize(
        (max(size, round(width * scale)), max(size, round(height * scale))),
        Image.Resampling.BICUBIC,
    )
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def disguised_copy(image: Image.Image) -> bytes:
    """JPEG bytes that look the same as jpeg_bytes(image) but have another hash.

    A few pixel values move by +-1 before encoding at the same quality;
    quantisation can absorb a small change, so the nudges grow until the bytes
    differ. Seeded by the image itself, so a rerun makes the same copy.
    """
    original = jpeg_bytes(image)
    rng = seeded_rng(int.from_bytes(hashlib.sha256(original).digest()[:4], "big"))
    pixels = np.array(image, dtype=np.int16)
    flat = pixels.reshape(-1)
    nudges = COPY_NUDGES
    while True:
        where = rng.choice(flat.size, size=min(nudges, flat.size), replace=False)
        step = rng.choice(np.array([-1, 1], dtype=np.int16), size=len(where))
        # Step the other way at 0 and 255 so that every nudge changes the value.
        moved = flat[where] + step
        flat[where] = np.where((moved < 0) | (moved > 255), flat[where] - step, moved)
        content = jpeg_bytes(Image.fromarray(pixels.astype(np.uint8)))
        if content != original:
            return content
        nudges *= 2


def store_stimulus(content: bytes, source_key: str) -> StimulusImage:
    """The StimulusImage for these bytes, writing the file only if it is not stored yet.

    The file is written before the row exists, so an existing row always has
    its file; a crash in between leaves a file that the rerun adopts.
    """
    sha256 = hashlib.sha256(content).hexdigest()
    existing = StimulusImage.objects.filter(sha256=sha256).first()
    if existing:
        return existing
    name = f"stimuli/{sha256}.jpg"
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(content))
    image, _ = StimulusImage.objects.get_or_create(
        sha256=sha256, defaults={"file": name, "source_key": source_key}
    )
    return image


class StimulusWriter:
    """Stores a pool's images as stimuli (resized, cropped, encoded), once per image and variant in a run."""

    def __init__(self, source: ImageSource, resize_to: int, size: int) -> None:
        self.source, self.resize_to, self.size = source, resize_to, size
        self.keys = source.keys()
        self.stored: dict[tuple[int, bool], StimulusImage] = {}

    def stimulus(self, row: int, copy: bool = False) -> StimulusImage:
        """The stored image of pool row `row`, or its byte-different copy (see disguised_copy)."""
        if (row, copy) not in self.stored:
            key = self.keys[row]
            image = resized_and_cropped(self.source.load(key), self.resize_to, self.size)
            content = disguised_copy(image) if copy else jpeg_bytes(image)
            self.stored[(row, copy)] = store_stimulus(content, key)
        return self.stored[(row, copy)]
