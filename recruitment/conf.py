"""Recruitment settings (see psyplatform/settings.py), checked where they are used."""

from __future__ import annotations

from urllib.parse import urlparse

from django.conf import settings

from recruitment.errors import ConfigurationError


def public_base_url(*, require_https: bool) -> str:
    """PUBLIC_BASE_URL without a trailing slash; MTurk and Prolific only open HTTPS pages."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    parsed = urlparse(base)
    if not parsed.scheme or not parsed.netloc:
        raise ConfigurationError(f"PUBLIC_BASE_URL must be an absolute URL, not {base!r}.")
    if require_https and parsed.scheme != "https":
        raise ConfigurationError(
            f"PUBLIC_BASE_URL is {base!r}: recruiters show the study page only over HTTPS. "
            "Serve the site over HTTPS (for a sandbox trial a tunnel such as "
            "`cloudflared tunnel --url http://127.0.0.1:8000` will do) and set PUBLIC_BASE_URL to it."
        )
    return base


def mturk_credentials() -> dict[str, str]:
    """MTurk's own keys when MTURK_AWS_ACCESS_KEY_ID is set; otherwise boto3's own chain."""
    if not settings.MTURK_AWS_ACCESS_KEY_ID:
        return {}
    return {
        "aws_access_key_id": settings.MTURK_AWS_ACCESS_KEY_ID,
        "aws_secret_access_key": settings.MTURK_AWS_SECRET_ACCESS_KEY,
    }


def prolific_api_token() -> str:
    if not settings.PROLIFIC_API_TOKEN:
        raise ConfigurationError("PROLIFIC_API_TOKEN is not set (Prolific > Settings > API tokens).")
    return settings.PROLIFIC_API_TOKEN


def prolific_api_url() -> str:
    return settings.PROLIFIC_API_URL.rstrip("/") + "/"
