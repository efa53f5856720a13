"""The per-address limits fail open: with the cache unreachable, participants keep taking part."""

import socket

import pytest
from django.test import override_settings

from tests.conftest import Participant


@pytest.fixture
def cache_unreachable(settings):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.RATE_LIMIT_STARTS = settings.RATE_LIMIT_EVENTS = "1/hour"
    unreachable = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/0"}
    # Undone before the suite's own fixtures clear the cache again.
    with override_settings(CACHES={"default": unreachable}):
        yield


def test_with_the_cache_unreachable_an_unsigned_start_and_its_events_are_served(study, cache_unreachable):
    participant = Participant(study, "during-the-outage")
    assert participant.start().status_code == 201
    assert participant.event("consent").status_code == 201
    assert participant.event("instructions_start").status_code == 201
