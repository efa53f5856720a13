"""Stimulus files: 224 px JPEGs in the default storage, named by the sha256 of their bytes.

A content-hashed name says nothing about a trial; what could still betray a
catch trial is a query that is a reference again, by name or by its pixels,
which disguised_copy prevents (see stimuli.disguise).
"""

from __future__ import annotations

import hashlib
import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from stimuli.disguise import apply_disguise, draw_disguise
from stimuli.models import StimulusImage
from stimuli.pools import ImageSource
from stimuli.resampling import Box
from stimuli.sampling import seeded_rng

JPEG_QUALITY = 90


def resized_size(image: Image.Image, resize_to: int, size: int) -> tuple[int, int]:
    """The image's size once its shorter side is resize_to (never below size)."""
    return _resized(*image.size, resize_to, size)


def _resized(width: int, height: int, resize_to: int, size: int) -> tuple[int, int]:
    scale = max(resize_to, size) / min(width, height)
    return max(size, round(width * scale)), max(size, round(height * scale))


def _crop_offsets(width: int, height: int, size: int) -> tuple[int, int]:
    return (width - size) // 2, (height - size) // 2


def resized_and_cropped(image: Image.Image, resize_to: int, size: int) -> Image.Image:
    """Shorter side resized to resize_to (never below size), then the centre size x size square."""
    image = image.resize(resized_size(image, resize_to, size), Image.Resampling.BICUBIC)
    left, top = _crop_offsets(image.width, image.height, size)
    return image.crop((left, top, left + size, top + size))


def stored_box(width: int, height: int, resize_to: int, size: int) -> Box:
    """The rectangle of a width x height original that its stored stimulus shows (resized_and_cropped)."""
    resized_width, resized_height = _resized(width, height, resize_to, size)
    left, top = _crop_offsets(resized_width, resized_height, size)
    x_scale, y_scale = resized_width / width, resized_height / height
    return left / x_scale, top / y_scale, (left + size) / x_scale, (top + size) / y_scale


def jpeg_bytes(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def disguised_copy(image: Image.Image, resize_to: int, size: int, seed: int) -> bytes:
    """JPEG bytes of a disguised view (stimuli.disguise) of the stimulus resized_and_cropped makes.

    Seeded, so that a rerun makes the same copy. A view of a uniform image is the
    original again; it is encoded at another quality then, so that at least its
    name differs.
    """
    view = apply_disguise(image, resized_size(image, resize_to, size), size, draw_disguise(seeded_rng(seed)))
    content = jpeg_bytes(view)
    if content == jpeg_bytes(resized_and_cropped(image, resize_to, size)):
        return jpeg_bytes(view, JPEG_QUALITY - 1)
    return content


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

    def stimulus(self, row: int, disguised: bool = False) -> StimulusImage:
        """The stored image of pool row `row`, or its disguised copy (seeded by the image's key)."""
        if (row, disguised) not in self.stored:
            key = self.keys[row]
            image = self.source.load(key)
            if disguised:
                seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")
                content = disguised_copy(image, self.resize_to, self.size, seed)
            else:
                content = jpeg_bytes(resized_and_cropped(image, self.resize_to, self.size))
            self.stored[(row, disguised)] = store_stimulus(content, key)
        return self.stored[(row, disguised)]
