"""Find the services the tests need before Django starts (loaded with `-p tests.services`).

PostgreSQL: DATABASE_URL, default postgres://postgres@127.0.0.1:5432/psyplatform.
When reachable the whole suite runs on it (the production database); when not,
on SQLite, and tests marked `postgres` skip. Redis (REDIS_URL, default
redis://127.0.0.1:6379/15) and Chromium (CHROMIUM_PATH, default
/usr/bin/chromium) likewise. Under CI=true a missing service is an error.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from urllib.parse import urlparse

import pytest

IN_CI = os.getenv("CI", "").lower() == "true"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/psyplatform"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_CHROMIUM_PATH = "/usr/bin/chromium"

missing: dict[str, str] = {}


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), 2):
            return True
    except OSError:
        return False


def _probe() -> None:
    database_url = os.getenv("DATABASE_URL", DEFAULT_DATABASE_URL)
    if database_url.startswith("postgres") and _reachable(database_url, 5432):
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
        missing["postgres"] = f"PostgreSQL not reachable at {database_url} (set DATABASE_URL)"

    redis_url = os.getenv("REDIS_URL", DEFAULT_REDIS_URL)
    if not _reachable(redis_url, 6379):
        missing["redis"] = f"Redis not reachable at {redis_url} (set REDIS_URL)"
    os.environ["TEST_REDIS_URL"] = redis_url
    # The app itself runs tasks in-process in tests; the Celery tests point it at Redis.
    os.environ.pop("REDIS_URL", None)

    chromium = os.getenv("CHROMIUM_PATH", DEFAULT_CHROMIUM_PATH)
    if not (os.path.isfile(chromium) or shutil.which(chromium)):
        missing["chromium"] = f"Chromium not found at {chromium} (set CHROMIUM_PATH)"
    os.environ["TEST_CHROMIUM_PATH"] = chromium

    os.environ.pop("STORAGE_URL", None)
    # The settings refuse to start without a key unless DEBUG is on, and the tests run as production does.
    os.environ.setdefault("SECRET_KEY", "tests-only-" + "k" * 50)
    # Each run gets its own files and test database, so runs can overlap.
    os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="psyplatform-test-")
    if "DATABASE_URL" in os.environ:
        os.environ["TEST_DATABASE_NAME"] = f"test_psyplatform_{os.getpid()}"


_probe()


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and missing:
        raise pytest.UsageError("CI=true but services are missing: " + "; ".join(missing.values()))


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ["VAR_DIR"], ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for service, reason in missing.items():
            if item.get_closest_marker(service):
                item.add_marker(pytest.mark.skip(reason=reason))
