"""The settings as a production server reads them from its environment: what they refuse, what they turn on,
and Django's deployment check on them."""

from __future__ import annotations

import os
import runpy
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parent.parent
# Every variable these tests set or leave out; the rest of the test run's environment does not matter here.
READ = ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "BEHIND_HTTPS_PROXY", "HSTS_SECONDS", "HSTS_PRELOAD")


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    """What docker-compose.yml and README.md's .env give the web server, on SQLite and without Redis."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "study.example.org",
        "BEHIND_HTTPS_PROXY": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "VAR_DIR": str(tmp_path / "var"),
    }


def read_settings(monkeypatch, env: dict[str, str]) -> dict[str, Any]:
    """The settings module run afresh on this environment; Django's own settings stay as they are."""
    for name in READ:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "psyplatform" / "settings.py"))


def test_a_server_without_a_secret_key_refuses_to_start_and_says_what_to_set(monkeypatch, production_env):
    del production_env["SECRET_KEY"]
    with pytest.raises(ImproperlyConfigured, match="Set the SECRET_KEY environment variable"):
        read_settings(monkeypatch, production_env)


def test_debug_is_off_unless_asked_for(monkeypatch, production_env):
    assert read_settings(monkeypatch, production_env)["DEBUG"] is False


def test_a_development_server_runs_on_the_embedded_key(monkeypatch, tmp_path):
    settings = read_settings(monkeypatch, {"DEBUG": "true", "VAR_DIR": str(tmp_path)})
    assert settings["DEBUG"] is True and settings["SECRET_KEY"]


def test_behind_the_https_proxy_only_https_is_served_and_cookies_are_secure(monkeypatch, production_env):
    settings = read_settings(monkeypatch, production_env)
    assert settings["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert settings["SECURE_SSL_REDIRECT"] is True
    assert settings["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    assert settings["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True and settings["SECURE_HSTS_PRELOAD"] is True
    assert settings["SESSION_COOKIE_SECURE"] is True and settings["CSRF_COOKIE_SECURE"] is True


def test_without_the_proxy_setting_nothing_is_https_only(monkeypatch, production_env):
    del production_env["BEHIND_HTTPS_PROXY"]
    settings = read_settings(monkeypatch, production_env)
    assert not {"SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE"} & set(settings)


def test_the_deploy_check_finds_nothing_under_the_production_settings(production_env):
    # The settings are read when Django starts, so the check runs in a process of its own.
    env = {"PATH": os.environ["PATH"], **production_env}
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues (0 silenced)." in checked.stdout
