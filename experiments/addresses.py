"""Where a request comes from: the client's address, read through a proxy only when the proxy is trusted.

A forwarded-for header is just text a client can write, so it is believed only
from a proxy: when the connection comes from one of TRUSTED_PROXIES, the client
is the last address in the chain that is not a trusted proxy; with no list but
BEHIND_HTTPS_PROXY on, the one proxy in front appended the last entry, which is
the client's (anything before it came from the client and proves nothing).
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

from experiments.pseudonyms import pseudonymize


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(proxy, strict=False) for proxy in settings.TRUSTED_PROXIES)


def client_address(request: HttpRequest) -> str:
    peer = str(request.META.get("REMOTE_ADDR", ""))
    chain = [hop.strip() for hop in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",") if hop.strip()]
    if not settings.TRUSTED_PROXIES:
        return chain[-1] if settings.BEHIND_HTTPS_PROXY and chain else peer
    if not _trusted(peer):
        return peer
    for hop in reversed(chain):
        if not _trusted(hop):
            return hop
    return chain[0] if chain else peer


def address_key(request: HttpRequest) -> str:
    """The client address as a keyed hash: sessions are counted per address without storing one."""
    return pseudonymize("address", client_address(request))
