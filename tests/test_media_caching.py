"""Stored stimuli are named by the hash of their bytes, so they are served to be cached for good."""

import pytest
from django.core.files.storage import default_storage

from psyplatform.settings import storage_settings
from stimuli.storage import store_stimulus
from tests.factories import png_bytes

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture
def s3_media(settings, s3):
    s3.create_bucket(Bucket="psyplatform")
    settings.STORAGES = {**settings.STORAGES, "default": storage_settings("s3://psyplatform/media")}
    return s3


def test_the_local_media_view_serves_a_stimulus_as_immutable(db, client, isolated_files):
    image = store_stimulus(png_bytes(1), "test/1")
    response = client.get(f"/media/{image.file}")
    assert response.status_code == 200
    assert response["Cache-Control"] == IMMUTABLE


def test_a_missing_media_file_is_not_cached(db, client, isolated_files):
    response = client.get("/media/stimuli/missing.jpg")
    assert response.status_code == 404
    assert "immutable" not in response.get("Cache-Control", "")


def test_a_stimulus_uploaded_to_s3_carries_the_immutable_cache_header(db, s3_media):
    image = store_stimulus(png_bytes(2), "test/2")
    stored = s3_media.head_object(Bucket="psyplatform", Key=f"media/{image.file}")
    assert stored["CacheControl"] == IMMUTABLE
    assert default_storage.exists(str(image.file))
