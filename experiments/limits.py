"""Request limits per client address, counted in Django's cache (Redis in production, local memory on
the embedded default) in fixed windows: a rate such as "30/hour" allows 30 hits per key each hour."""

from __future__ import annotations

import time

from django.core.cache import cache

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
    # add() only creates the counter, so concurrent first hits cannot reset each other's count.
    cache.add(counter, 0, timeout=period + 1)
    try:
        hits = cache.incr(counter)
    except ValueError:  # expired between add() and incr()
        cache.add(counter, 1, timeout=period + 1)
        hits = 1
    if hits <= limit:
        return None
    return (window + 1) * period - now
