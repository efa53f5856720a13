"""Request limits per client address, counted in Django's cache (Redis in production, local memory on
the embedded default) in fixed windows: a rate such as "30/hour" allows 30 hits per key each hour."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """("30/hour") -> (30, 3600); a readable error for anything else."""
    count, _, period = rate.partition("/")
    if not count.strip().isdigit() or period.strip() not in PERIODS:
        raise ValueError(f"A rate reads like 30/hour (per second, minute, hour or day), not {rate!r}.")
    return int(count), PERIODS[period.strip()]


def retry_after(scope: str, key: str, rate: str) -> int | None:
    """Count one hit; None while within the rate, else the seconds until the window ends."""
    limit, period = parse_rate(rate)
    now = int(time.time())
    window = now // period
    counter = f"limit:{scope}:{key}:{window}"
    try:
        hits = _count(counter, period + 1)
    except Exception:  # the cache's own connection errors (Redis down): of any backend, so caught broadly
        # The limits fail open: while the cache is out, participants keep taking part, unlimited.
        logger.warning("Request limits are not counted: the cache is unreachable.", exc_info=True)
        return None
    if hits <= limit:
        return None
    return (window + 1) * period - now


def _count(counter: str, timeout: int) -> int:
    # add() only creates the counter, so concurrent first hits cannot reset each other's count.
    cache.add(counter, 0, timeout=timeout)
    try:
        return cache.incr(counter)
    except ValueError:  # expired between add() and incr()
        cache.add(counter, 1, timeout=timeout)
        return 1
