"""Participant links signed by the platform: an HMAC over the study and the participant id, so that only
the researcher (through the admin or `manage.py participant_link`) can make one that a study accepts."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.crypto import constant_time_compare

from experiments.models import Study

SALT = "psyplatform.participant-link"


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def signature(study: Study, participant: str) -> str:
    return _signer().signature(f"{study.slug}\n{participant}")


def is_signed(study: Study, participant: str, sig: str) -> bool:
    return constant_time_compare(signature(study, participant), sig)


def participant_url(study: Study, participant: str, base: str | None = None) -> str:
    """The study's page for this participant, with the signature; absolute from PUBLIC_BASE_URL unless
    another base is given ("" for a link relative to the site)."""
    query = urlencode({"participant": participant, "sig": signature(study, participant)})
    path = reverse("participant-page", args=[study.slug])
    site = settings.PUBLIC_BASE_URL if base is None else base
    return f"{site.rstrip('/')}{path}?{query}"
