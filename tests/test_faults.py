"""Outages while participants are mid-session: the database restarted, the cache stopped.

The site runs under gunicorn (gunicorn.conf.py) with the production settings on a PostgreSQL and a Redis
of the test's own (benchmarks/harness.py), never the machine's shared servers. Simulated participants
take part over HTTP with the page's retries: a failed call is sent again, an answer with its client_id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg2
import pytest

from benchmarks.harness import (
    Keys,
    Pace,
    Participant,
    PrivatePostgres,
    PrivateRedis,
    Stats,
    app_env,
    build_study,
    gunicorn,
    integrity,
    migrate,
    missing_servers,
)

PARTICIPANTS = 6
# Slow enough that every session is still running when the outage comes, fast enough for a test.
PACE = Pace(answer_s=(0.05, 0.15), after_s=(0.0, 0.05))


class Site:
    def __init__(self, postgres: PrivatePostgres, redis: PrivateRedis, env: dict[str, str], database_url: str, port: int):
        self.postgres, self.redis, self.env, self.database_url, self.port = postgres, redis, env, database_url, port
        self.study: dict[str, Any] = {}

    def count(self, sql: str) -> int:
        try:
            with psycopg2.connect(self.database_url) as connection, connection.cursor() as cursor:
                cursor.execute(sql, [self.study["id"]])
                return int(cursor.fetchone()[0])
        except psycopg2.Error:  # the database is the one restarting
            return -1

    def answers_stored(self) -> int:
        return self.count(
            "SELECT count(*) FROM experiments_response r JOIN experiments_session s ON s.id = r.session_id "
            "WHERE s.study_id = %s"
        )

    def sessions_completed(self) -> int:
        return self.count("SELECT count(*) FROM experiments_session WHERE study_id = %s AND status = 'completed'")


@pytest.fixture(scope="module")
def servers() -> Iterator[Site]:
    why = missing_servers()
    if why:
        if os.getenv("CI", "").lower() == "true":
            pytest.fail(f"CI=true but private servers cannot be started: {why}")
        pytest.skip(f"private PostgreSQL and Redis cannot be started: {why}")
    postgres, redis = PrivatePostgres(), PrivateRedis()
    postgres.start()
    redis.start()
    try:
        database_url = postgres.create_database("psyplatform_faults")
        # Unsigned links, so that every start and event is counted in Redis by the per-address limits.
        env = app_env(
            database_url,
            redis.url,
            GUNICORN_WORKERS="2",
            GUNICORN_THREADS="4",
            RATE_LIMIT_STARTS="100000/hour",
            RATE_LIMIT_EVENTS="100000/minute",
            MAX_ACTIVE_SESSIONS_PER_ADDRESS="1000",
        )
        migrate(env)
        with gunicorn(env) as port:
            yield Site(postgres, redis, env, database_url, port)
    finally:
        redis.stop()
        postgres.remove()


@pytest.fixture
def site(servers: Site, request: pytest.FixtureRequest) -> Site:
    """The servers, with a study of this test's own."""
    servers.study = build_study(servers.env, participants=PARTICIPANTS, slug=request.node.name[:50], lock_ms=0)
    return servers


def take_part_during(site: Site, outage: Callable[[Stats], None]) -> tuple[list[Participant], Stats]:
    """Every participant takes part; once some answers are stored, the outage runs beside them."""
    stats = Stats()
    keys = Keys(site.database_url)
    people = [
        Participant(site.port, site.study, name, keys, stats, PACE, signed=False, patience_s=90)
        for name in site.study["signatures"]
    ]
    with ThreadPoolExecutor(PARTICIPANTS) as pool:
        futures = [pool.submit(p.take_part) for p in people]
        deadline = time.monotonic() + 60
        while site.answers_stored() < 3 * PARTICIPANTS and time.monotonic() < deadline:
            time.sleep(0.05)
        mid_session = not any(f.done() for f in futures)
        outage(stats)
        for future in futures:
            future.result()
    keys.close()
    assert mid_session, "a participant finished before the outage: slow the pace"
    return people, stats


def assert_every_answer_stored_once_and_everyone_finished(site: Site, people: list[Participant], stats: Stats):
    found = integrity(site.database_url, site.study["id"], site.study["target"], stats.acknowledged)
    # For the record (README, "Serving participants"): what the outage did and what was stored.
    print(f"\n{site.study['slug']}: {found}, retried calls {stats.retried}, failures {dict(stats.errors)}")
    assert found["lost"] == found["duplicated"] == 0, found
    assert found["units_over_target"] == found["units_twice_in_a_session"] == 0, found
    assert all(p.completed for p in people)
    assert site.sessions_completed() == PARTICIPANTS
    # Each session answered every trial once: stored answers are exactly the acknowledged ones.
    assert found["stored"] == found["acknowledged"]


def test_a_postgresql_restart_mid_session_loses_and_duplicates_no_answer(site):
    def restart(stats: Stats) -> None:
        site.postgres.stop()
        time.sleep(1.0)  # participants' calls fail meanwhile, and are retried
        site.postgres.start()

    people, stats = take_part_during(site, restart)
    assert_every_answer_stored_once_and_everyone_finished(site, people, stats)
    assert stats.retried > 0, "no call failed during the restart: the outage missed the participants"
    assert any(key.endswith(" 500") or key.endswith(" 0") for key in stats.errors)


def test_with_redis_stopped_mid_session_participants_go_on_and_finish(site):
    served_while_out: list[int] = []

    def stop_for_a_while(stats: Stats) -> None:
        site.redis.stop()
        before = stats.calls_served()
        time.sleep(1.5)
        served_while_out.append(stats.calls_served() - before)
        site.redis.start()

    people, stats = take_part_during(site, stop_for_a_while)
    assert_every_answer_stored_once_and_everyone_finished(site, people, stats)
    # The limits fail open: calls were answered while the cache was out, not only once it was back.
    assert served_while_out[0] > 0
    assert not [key for key in stats.errors if key.endswith(" 500")]
