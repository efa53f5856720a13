"""The admin's login form, locked after repeated failures.

Failures are counted in Django's cache, per username and per client address. LOGIN_FAILURE_LIMIT failures
within LOGIN_LOCKOUT_S lock that username (whatever the address: a guesser who changes addresses) and that
address (whatever the username: a guesser who tries many accounts) for LOGIN_LOCKOUT_S from the failure that
reached the limit. A locked login is refused before its password is checked, so guesses teach nothing while
it lasts; a successful login clears its username's failures.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

from experiments.addresses import client_address


def failure_keys(username: str, address: str) -> tuple[str, str]:
    """The cache keys of a username's failures and of an address's."""
    return _key("username", username.casefold()), _key("address", address)


def _key(kind: str, value: str) -> str:
    # Hashed, so that any username makes a valid cache key.
    return f"login-failures:{kind}:{hashlib.sha256(value.encode()).hexdigest()}"


def is_locked(keys: tuple[str, str]) -> bool:
    return any(count >= settings.LOGIN_FAILURE_LIMIT for count in cache.get_many(keys).values())


def record_failure(keys: tuple[str, str]) -> None:
    for key in keys:
        if _count(key) >= settings.LOGIN_FAILURE_LIMIT:
            # The lock lasts the whole window from the failure that reached the limit.
            cache.touch(key, settings.LOGIN_LOCKOUT_S)


def _count(key: str) -> int:
    # add and incr are atomic in the local-memory and Redis caches, so concurrent guesses are all counted.
    if cache.add(key, 1, settings.LOGIN_LOCKOUT_S):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, 1, settings.LOGIN_LOCKOUT_S)
        return 1


class LockingAdminAuthenticationForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked": "Too many failed logins for this username or from this address. Logging in is locked "
        "for %(minutes)s minutes; please try again later.",
    }

    def clean(self) -> dict[str, Any]:
        # The admin's login view always passes the request.
        assert self.request is not None
        username = self.cleaned_data.get("username") or ""
        keys = failure_keys(username, client_address(self.request))
        if is_locked(keys):
            minutes = math.ceil(settings.LOGIN_LOCKOUT_S / 60)
            raise ValidationError(self.error_messages["locked"], code="locked", params={"minutes": minutes})
        try:
            cleaned = super().clean()
        except ValidationError as error:
            # A wrong password, an unknown or inactive user, or one who is not staff: all the same to a guesser.
            if error.code == "invalid_login":
                record_failure(keys)
            raise
        cache.delete(keys[0])
        return cleaned
