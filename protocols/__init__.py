"""The registry of protocols: a name -> dotted path dict, each protocol imported only when asked for.

A study stores its protocol's name; everything else reaches the protocol
through get_protocol(name). Built-in protocols are listed here; a deployment
(or a test) adds its own with the EXTRA_PROTOCOLS setting, with no change
anywhere else.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from protocols.base import Protocol

BUILTIN: dict[str, str] = {
    "2afc": "protocols.two_afc.TwoAFC",
    "localizability": "protocols.localizability.Localizability",
    "nameability": "protocols.nameability.Describe",
    "nameability_verify": "protocols.nameability.Verify",
}
# What a new study runs unless the researcher picks another.
DEFAULT_PROTOCOL = "2afc"


class NotImplementedProtocol(ValueError):
    """A protocol name that no registered protocol has."""


def registered() -> dict[str, str]:
    """Every protocol's name and dotted path, built-in first."""
    extra: dict[str, str] = getattr(settings, "EXTRA_PROTOCOLS", {})
    return {**BUILTIN, **extra}


@functools.cache
def _load(path: str) -> Protocol[Any]:
    protocol: Protocol[Any] = import_string(path)()
    return protocol


def get_protocol(name: str) -> Protocol[Any]:
    paths = registered()
    if name not in paths:
        raise NotImplementedProtocol(
            f"The protocol {name!r} is not implemented (implemented: {', '.join(paths)})."
        )
    return _load(paths[name])


def all_protocols() -> list[Protocol[Any]]:
    return [get_protocol(name) for name in registered()]


def protocol_choices() -> list[tuple[str, str]]:
    """(name, title) of every registered protocol, for the Study.protocol field."""
    return [(protocol.name, protocol.title) for protocol in all_protocols()]


def condition_choices() -> list[tuple[str, str]]:
    """Every condition some registered protocol is implemented for."""
    conditions: dict[str, str] = {}
    for protocol in all_protocols():
        conditions.update(protocol.conditions)
    return list(conditions.items())


def derived_protocols(name: str) -> list[Protocol[Any]]:
    """The protocols whose studies are built from studies of the protocol `name` (a verify stage)."""
    return [protocol for protocol in all_protocols() if protocol.derived_from == name]
