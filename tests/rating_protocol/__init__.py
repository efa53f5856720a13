"""A throwaway protocol that lives in the test suite only: proof that a protocol plugs in through
protocols.base and the EXTRA_PROTOCOLS setting alone, with no change anywhere else.

One image per trial (the unit's batch-th most activating image), rated on a scale; no right
answer, so every response is scored by its rating and every practice round passes.
"""

from tests.rating_protocol.protocol import Rating

__all__ = ["Rating"]
