"""Image pools: where exemplars and queries come from, behind one small interface.

A source lists its images as keys in a stable order (the row order of the
activation array, so it must not change between a crashed run and its retry)
and loads one key as an RGB PIL image. Keys double as StimulusImage.source_key.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import numpy as np
from PIL import Image, UnidentifiedImageError

from stimuli.models import ImagePool

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

# scikit-image's bundled colour photographs (no download needed).
SKIMAGE_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "motorcycle_left",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
)
MIN_CROP_SIDE = 64


class PoolError(Exception):
    """A pool that cannot be used: missing, empty, or with an unreadable image."""


class ImageSource(Protocol):
    def keys(self) -> list[str]: ...

    def load(self, key: str) -> Image.Image: ...


def open_pool(pool: ImagePool) -> ImageSource:
    """The image source an ImagePool row describes."""
    if pool.source == ImagePool.Source.SKIMAGE_CROPS:
        return SkimageCrops(size=pool.size, seed=pool.seed)
    if pool.source == ImagePool.Source.FOLDER:
        return FolderSource(pool.location, limit=pool.size)
    if pool.source == ImagePool.Source.S3:
        return S3Source(pool.location, limit=pool.size)
    raise PoolError(f"Unknown image pool source {pool.source!r}.")


def _decode(data: bytes | Path, key: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PoolError(f"Cannot read image {key!r}: {exc}") from exc


def _non_empty(keys: list[str], where: str) -> list[str]:
    if not keys:
        raise PoolError(f"The image pool at {where} has no images ({', '.join(IMAGE_EXTENSIONS)}).")
    return keys


@functools.cache
def _skimage_photo(name: str) -> np.ndarray:
    from skimage import data

    if name == "motorcycle_left":
        # Only reachable as the left view of the stereo pair.
        return np.asarray(data.stereo_motorcycle()[0])  # type: ignore[no-untyped-call]  # unannotated upstream
    return np.asarray(getattr(data, name)())


@functools.cache
def _skimage_image(name: str) -> Image.Image:
    # Cropping a PIL image copies only the box's rows, a third of the cost of a numpy slice
    # turned into an image; this runs once per pool image when activations are recorded.
    return Image.fromarray(np.ascontiguousarray(_skimage_photo(name)[..., :3]))


class SkimageCrops:
    """Random crops of scikit-image's photographs: random photo, size, aspect and position.

    Every crop box is drawn up front from the seed, so keys (which encode the
    box) and images are the same in every process and every run.
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        if size <= 0:
            raise PoolError("A scikit-image crop pool needs a size (number of crops) above 0.")
        self.size = size
        self.seed = seed

    @functools.cached_property
    def _keys(self) -> list[str]:
        rng = np.random.default_rng(self.seed % 2**32)
        keys = []
        for index in range(self.size):
            name = SKIMAGE_PHOTOS[rng.integers(len(SKIMAGE_PHOTOS))]
            height, width = _skimage_photo(name).shape[:2]
            side = rng.uniform(0.2, 1.0) * min(height, width)
            aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            w = int(np.clip(side * np.sqrt(aspect), MIN_CROP_SIDE, width))
            h = int(np.clip(side / np.sqrt(aspect), MIN_CROP_SIDE, height))
            x = int(rng.integers(width - w + 1))
            y = int(rng.integers(height - h + 1))
            # The index keeps keys unique even if two draws give the same box.
            keys.append(f"skimage/{index:06d}/{name}/{x},{y},{w},{h}")
        return keys

    def keys(self) -> list[str]:
        return self._keys

    def load(self, key: str) -> Image.Image:
        try:
            _, _, name, box = key.split("/")
            x, y, w, h = (int(v) for v in box.split(","))
            photo = _skimage_image(name)
        except (ValueError, AttributeError) as exc:
            raise PoolError(f"Not a scikit-image crop key: {key!r}") from exc
        return photo.crop((x, y, x + w, y + h))


class FolderSource:
    """Every image file under a folder (recursively), sorted by relative path."""

    def __init__(self, location: str, limit: int = 0) -> None:
        self.root = Path(location).expanduser()
        self.limit = limit

    @functools.cached_property
    def _keys(self) -> list[str]:
        if not self.root.is_dir():
            raise PoolError(f"Image folder {str(self.root)!r} does not exist or is not a folder.")
        keys = sorted(
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*")
            if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
        )
        return _non_empty(keys[: self.limit or None], repr(str(self.root)))

    def keys(self) -> list[str]:
        return self._keys

    def load(self, key: str) -> Image.Image:
        return _decode(self.root / key, key)


class S3Source:
    """Every image object under an s3://bucket/prefix, in key order.

    Credentials and endpoint come from the usual AWS_* environment variables.
    The client is made lazily and dropped when pickled, so that each
    DataLoader worker process opens its own.
    """

    def __init__(self, location: str, limit: int = 0) -> None:
        parsed = urlparse(location)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise PoolError(f"An S3 pool location must look like s3://bucket/prefix, not {location!r}.")
        self.location = location
        self.bucket = parsed.netloc
        self.prefix = parsed.path.lstrip("/")
        self.limit = limit
        self._client = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    @functools.cached_property
    def _keys(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        keys = sorted(
            item["Key"]
            for page in pages
            for item in page.get("Contents", [])
            if item["Key"].lower().endswith(IMAGE_EXTENSIONS)
        )
        return _non_empty(keys[: self.limit or None], self.location)

    def keys(self) -> list[str]:
        return self._keys

    def load(self, key: str) -> Image.Image:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return _decode(body, key)
