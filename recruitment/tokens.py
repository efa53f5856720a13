"""Deterministic request tokens: the same operation always carries the same token."""

from __future__ import annotations

import hashlib

MAX_LENGTH = 64  # MTurk's UniqueRequestToken limit


def make_token(*parts: object) -> str:
    """Join the parts; past 64 characters keep a readable head and a hash of the whole."""
    token = ":".join(str(part) for part in parts)
    if len(token) <= MAX_LENGTH:
        return token
    digest = hashlib.sha256(token.encode()).hexdigest()[:32]
    return f"{token[: MAX_LENGTH - len(digest) - 1]}~{digest}"
