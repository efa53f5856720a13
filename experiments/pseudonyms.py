"""Participant ids are replaced by keyed hashes on arrival; only the hash is ever exported."""

import hashlib
import hmac

from django.conf import settings


def pseudonymize(source: str, participant_id: str) -> str:
    message = f"{source}:{participant_id}".encode()
    return hmac.new(settings.PSEUDONYM_KEY.encode(), message, hashlib.sha256).hexdigest()
