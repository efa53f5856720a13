"""Arrivals take turns so that people mid-session need not.

A session start or a consent does several times the work of a trial call (a start checks the arrival and
lays out the practice round, a consent assigns units). A burst of arrivals, such as a study opened to a
crowd, would fill every thread of every server process, and participants already answering trials would
wait behind it. So one process serves at most ARRIVALS_AT_ONCE arrivals at a time; another gets a 503 with
Retry-After, which the page waits out and sends again (nothing was done, so nothing is lost). Counted per
process: what runs out is that process's threads, and the count needs no shared store. The arrivals'
services take their turn themselves (`@ARRIVALS.turn()` on experiments.arrivals.start_session and on the
consent in experiments.services), so that no view need know which calls are arrivals.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from experiments.errors import ServerBusy

RETRY_AFTER_S = 1


class ArrivalGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._serving = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Serve one arrival, or raise ServerBusy while ARRIVALS_AT_ONCE are being served (0: no limit)."""
        limit = settings.ARRIVALS_AT_ONCE
        with self._lock:
            if limit and self._serving >= limit:
                raise ServerBusy(
                    "Many people are starting this study right now: you will be let in in a moment.",
                    retry_after=RETRY_AFTER_S,
                )
            self._serving += 1
        try:
            yield
        finally:
            with self._lock:
                self._serving -= 1


ARRIVALS = ArrivalGate()
