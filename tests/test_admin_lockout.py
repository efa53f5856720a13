"""Guessing the admin's password: the login locks per username and per client address, for a window."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory

from experiments.addresses import client_address

LOCKED = "Too many failed logins"


@pytest.fixture(autouse=True)
def no_failures_yet(settings):
    # A fast hasher (admin_user's password is hashed after this) keeps the guesses quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


def log_in(username: str, password: str, address: str = "198.51.100.1"):
    client = Client(REMOTE_ADDR=address)
    response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    response.logged_in = "_auth_user_id" in client.session
    return response


def test_twenty_wrong_passwords_lock_the_admin_login(admin_user, settings):
    replies = [log_in("admin", f"guess-{n}").content.decode() for n in range(20)]
    assert [LOCKED in reply for reply in replies] == [False] * settings.LOGIN_FAILURE_LIMIT + [True] * (
        20 - settings.LOGIN_FAILURE_LIMIT
    )
    assert "locked for 15 minutes" in replies[-1]


def test_a_locked_login_refuses_the_right_password_too(admin_user, settings):
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        log_in("admin", f"guess-{n}")
    response = log_in("admin", "password")
    assert not response.logged_in and LOCKED in response.content.decode()


def test_failures_below_the_limit_do_not_lock(admin_user, settings):
    for n in range(settings.LOGIN_FAILURE_LIMIT - 1):
        log_in("admin", f"guess-{n}")
    assert log_in("admin", "password").logged_in


def test_a_successful_login_clears_its_usernames_failures(admin_user, settings):
    for n in range(settings.LOGIN_FAILURE_LIMIT - 1):
        log_in("admin", f"guess-{n}", address=f"198.51.100.{n + 10}")
    assert log_in("admin", "password", address="198.51.100.99").logged_in
    log_in("admin", "one-more-typo", address="198.51.100.50")
    assert log_in("admin", "password", address="198.51.100.98").logged_in


def test_a_username_guessed_from_many_addresses_is_locked_everywhere(admin_user, settings):
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        log_in("admin", f"guess-{n}", address=f"198.51.100.{n + 10}")
    assert not log_in("admin", "password", address="203.0.113.5").logged_in


def test_an_address_guessing_many_usernames_is_locked_for_every_username(admin_user, settings):
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        log_in(f"user-{n}", "guess", address="198.51.100.7")
    assert LOCKED in log_in("admin", "password", address="198.51.100.7").content.decode()
    assert log_in("admin", "password", address="198.51.100.8").logged_in


def test_the_lock_lasts_the_window_from_the_failure_that_reached_the_limit(admin_user, settings):
    for n in range(settings.LOGIN_FAILURE_LIMIT - 1):
        log_in("admin", f"guess-{n}")
    settings.LOGIN_LOCKOUT_S = 1
    log_in("admin", "last-guess")
    assert not log_in("admin", "password").logged_in
    time.sleep(1.2)
    assert log_in("admin", "password").logged_in


def test_behind_the_proxy_the_client_is_the_address_the_proxy_appended(settings):
    settings.BEHIND_HTTPS_PROXY = True
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.5", REMOTE_ADDR="172.18.0.2")
    assert client_address(request) == "203.0.113.5"


def test_without_the_proxy_a_forwarded_address_is_ignored(settings):
    settings.BEHIND_HTTPS_PROXY = False
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="10.9.9.9", REMOTE_ADDR="198.51.100.1")
    assert client_address(request) == "198.51.100.1"
