"""Stored stimuli are named by the hash of their bytes, so they are served to be cached for good."""

import boto3
import pytest
from django.core.files.storage import default_storage
from moto import mock_aws

from psyplatform.settings import storage_settings
from stimuli.storage import store_stimulus
from tests.factories import png_bytes

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture
def media_folder(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }


@pytest.fixture
def s3_media(settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="psyplatform")
        settings.STORAGES = {**settings.STORAGES, "default": storage_settings("s3://psyplatform/media")}
        yield client


def test_the_local_media_view_serves_a_stimulus_as_immutable(db, client, media_folder):
    image = store_stimulus(png_bytes(1), "test/1")
    response = client.get(f"/media/{image.file}")
    assert response.status_code == 200
    assert response["Cache-Control"] == IMMUTABLE


def test_a_missing_media_file_is_not_cached(db, client, media_folder):
    response = client.get("/media/stimuli/missing.jpg")
    assert response.status_code == 404
    assert "immutable" not in response.get("Cache-Control", "")


def test_a_stimulus_uploaded_to_s3_carries_the_immutable_cache_header(db, s3_media):
    image = store_stimulus(png_bytes(2), "test/2")
    stored = s3_media.head_object(Bucket="psyplatform", Key=f"media/{image.file}")
    assert stored["CacheControl"] == IMMUTABLE
    assert default_storage.exists(str(image.file))
