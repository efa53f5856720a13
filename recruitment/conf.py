"""Settings recruitment reads, each with an environment fallback.

They are read here, lazily, rather than in psyplatform/settings.py so that
recruitment works before the lead adds them there; see docs/recruitment.md.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from django.conf import settings

from recruitment.errors import ConfigurationError


def _setting(name: str, default: str = "") -> str:
    return str(getattr(settings, name, os.getenv(name, default)) or "")


def public_base_url(*, require_https: bool) -> str:
    """PUBLIC_BASE_URL without a trailing slash; MTurk and Prolific only open HTTPS pages."""
    base = _setting("PUBLIC_BASE_URL").rstrip("/")
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
    """MTURK_AWS_ACCESS_KEY_ID / MTURK_AWS_SECRET_ACCESS_KEY when set, for a site whose AWS_*
    variables hold other keys (an S3-compatible store for media); otherwise boto3's own chain."""
    key_id = _setting("MTURK_AWS_ACCESS_KEY_ID")
    if not key_id:
        return {}
    return {"aws_access_key_id": key_id, "aws_secret_access_key": _setting("MTURK_AWS_SECRET_ACCESS_KEY")}


def prolific_api_token() -> str:
    token = _setting("PROLIFIC_API_TOKEN")
    if not token:
        raise ConfigurationError("PROLIFIC_API_TOKEN is not set (Prolific > Settings > API tokens).")
    return token


def prolific_api_url() -> str:
    return _setting("PROLIFIC_API_URL", "https://api.prolific.com/api/v1/").rstrip("/") + "/"
