"""Serving the participant API for real, for the load benchmark and the fault tests.

Private PostgreSQL and Redis servers in a temporary folder (never the machine's shared ones, which
these can restart and stop), the site under gunicorn with the repository's gunicorn.conf.py, and
simulated participants that take part over HTTP as the page does: the same calls in the same order,
and the page's retries (network errors, 5xx and 429 are tried again, an answer with its client_id).

    python benchmarks/harness.py build-study '{"slug": "x", ...}'   # used by build_study()
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SECRET_KEY = "harness-only-" + "k" * 50


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl), newest version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if found:
        return Path(found[0]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def redis_server() -> str | None:
    return shutil.which("redis-server")


def missing_servers() -> str | None:
    """Why private servers cannot be started here, or None."""
    if postgres_bin() is None:
        return "PostgreSQL's server programs (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or PATH"
    if redis_server() is None:
        return "redis-server not found on PATH"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root, and runuser is missing to start PostgreSQL as another user"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


class PrivatePostgres:
    """A PostgreSQL cluster of its own in a temporary folder, on its own port; initdb refuses root, so as
    root it runs as the `postgres` user."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="psyplatform-pg-"))
        self.data = self.folder / "data"
        found = postgres_bin()
        if found is None:
            raise RuntimeError(missing_servers())
        self.bin: Path = found
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.folder, "postgres")

    def _run(self, program: str, *args: str) -> None:
        command = [*self.as_user, str(self.bin / program), *args]
        subprocess.run(command, check=True, capture_output=True, cwd=self.folder)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=300"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def pids(self) -> list[int]:
        """The postmaster (its backends are its children), or none while stopped."""
        try:
            return [int((self.data / "postmaster.pid").read_text().split()[0])]
        except (FileNotFoundError, IndexError, ValueError):
            return []

    def restart(self) -> None:
        """A fast restart: every connection is cut, in-flight transactions are rolled back."""
        self.stop()
        self.start()

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(self.url())
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        connection.close()
        return self.url(name)

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """redis-server on its own port, in memory only."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = redis_server() or "redis-server"
        args = [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def app_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The site's environment as production runs it: persistent, health-checked connections, Redis."""
    var = tempfile.mkdtemp(prefix="psyplatform-var-")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DB_CONN_MAX_AGE": "60",
        "DEBUG": "false",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "VAR_DIR": var,
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "benchmarks.bench_settings",
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)


def build_study(env: dict[str, str], participants: int = 0, **fields: Any) -> dict[str, Any]:
    """An open 2-AFC study (tests.builders) built in the site's database; returns its slug, id, target
    and a signed participant id -> signature map for `participants` participants."""
    spec = json.dumps({"participants": participants, **fields})
    out = subprocess.run([PYTHON, __file__, "build-study", spec], env=env, cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"building the study failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _build_study_here(spec: dict[str, Any]) -> dict[str, Any]:
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from experiments.links import signature

    # The test suite's own study builder (factory_boy), imported by name: mypy leaves the tests unchecked.
    builders = importlib.import_module("tests.builders")
    # Its factories count from 0 in every process: they go on from the rows an earlier build made.
    for factory in vars(importlib.import_module("tests.factories")).values():
        meta = getattr(factory, "_meta", None)
        if meta is not None and getattr(meta, "counter_reference", None) is meta and meta.model:
            factory.reset_sequence(meta.model.objects.count())
    participants = spec.pop("participants")
    study = builders.build_2afc_study(**spec)
    names = [f"{study.slug}-p{number}" for number in range(participants)]
    return {
        "slug": study.slug,
        "id": study.pk,
        "target": study.target_per_unit,
        "signatures": {name: signature(study, name) for name in names},
    }


@contextmanager
def gunicorn(env: dict[str, str], port: int | None = None) -> Iterator[int]:
    """The site under gunicorn with the repository's gunicorn.conf.py; yields its port."""
    port = port or free_port()
    command = [PYTHON, "-m", "gunicorn", "psyplatform.wsgi", "--bind", f"127.0.0.1:{port}"]
    log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 60)
        yield port
    finally:
        process.terminate()
        process.wait(30)
        log.close()
        os.unlink(log.name)


class Keys:
    """The right choice of each session trial, read from the database: a simulated participant must pass
    the practice round, which needs every answer right. One connection shared by all, reopened after an
    outage."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.lock = threading.Lock()
        self.connection: Any = None

    def of_session(self, session_id: int) -> dict[int, int]:
        import psycopg2

        sql = "SELECT index, (key->>'choice')::int FROM experiments_sessiontrial WHERE session_id = %s"
        deadline = time.monotonic() + 120
        with self.lock:
            while True:
                try:
                    if self.connection is None:
                        self.connection = psycopg2.connect(self.url)
                        self.connection.autocommit = True
                    with self.connection.cursor() as cursor:
                        cursor.execute(sql, [session_id])
                        return dict(cursor.fetchall())
                except psycopg2.Error:
                    self.connection = None
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


class Refused(Exception):
    """A non-retryable answer (4xx other than 429)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status, self.body = status, body


@dataclass
class Stats:
    """What every participant of a run saw: latencies per call, failures, and acknowledged answers."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    answered_at: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # perf_counter, per call
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # "call status" -> count
    # Calls the server asked to send again later (503 with Retry-After: an arrival waiting its turn), by call,
    # and each call's milliseconds from its first sending to its answer, turns waited included.
    deferred: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    waited: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    retried: int = 0
    acknowledged: list[tuple[int, str]] = field(default_factory=list)  # (session id, client_id)

    def calls_served(self) -> int:
        return sum(len(values) for values in list(self.latencies.values()))

    def served_between(self, calls: tuple[str, ...], since: float, until: float) -> int:
        """How many of these calls were answered in that span (perf_counter times)."""
        return sum(since <= at <= until for call in calls for at in self.answered_at.get(call, []))

    def percentiles(self, call: str, of: dict[str, list[float]] | None = None) -> dict[str, float]:
        """The call's latencies (of another list of milliseconds by call: waited)."""
        values = sorted((self.latencies if of is None else of).get(call, []))
        if not values:
            return {}

        def at(q: float) -> float:
            return round(values[min(len(values) - 1, int(q * len(values)))], 2)

        return {"n": len(values), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


class Http:
    """One participant's keep-alive connection to the site, reopened when the server closed it."""

    def __init__(self, port: int, stats: Stats, patience_s: float) -> None:
        self.port, self.stats, self.patience_s = port, stats, patience_s
        self.connection: HTTPConnection | None = None
        self.last_used = 0.0
        self.token = ""

    def _send(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes, float]:
        """The status, the body and the seconds of the reply's Retry-After (0 without one)."""
        # gunicorn closes a connection idle for longer than its keepalive; a browser would open another.
        if self.connection is None or time.monotonic() - self.last_used > 1.0:
            if self.connection is not None:
                self.connection.close()
            self.connection = HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, HTTPException):
            self.connection.close()
            self.connection = None
            raise
        self.last_used = time.monotonic()
        retry_after = response.getheader("Retry-After") or "0"
        return response.status, data, float(retry_after) if retry_after.isdigit() else 0.0

    def call(self, name: str, method: str, path: str, payload: Any = None) -> Any:
        """The call's JSON reply; network errors, 5xx and 429 are retried (as the page does, and then its
        participant pressing Retry) with the same body, until patience_s runs out. A 503 with Retry-After is
        the server asking to come back later: waited out as the page does, and counted as deferred."""
        body = None if payload is None else json.dumps(payload).encode()
        deadline = time.monotonic() + self.patience_s
        pause = 0.1
        first_sent = time.perf_counter()
        while True:
            started = time.perf_counter()
            try:
                status, data, retry_after = self._send(method, path, body)
            except (OSError, HTTPException):
                status, data, retry_after = 0, b"", 0.0
            elapsed_ms = (time.perf_counter() - started) * 1000
            if 200 <= status < 300:
                self.stats.latencies[name].append(elapsed_ms)
                self.stats.answered_at[name].append(time.perf_counter())
                self.stats.waited[name].append((time.perf_counter() - first_sent) * 1000)
                return json.loads(data)
            if status == 503 and retry_after and time.monotonic() < deadline:
                self.stats.deferred[name] += 1
                time.sleep(retry_after * random.uniform(1.0, 1.5))  # spread, as the page spreads them
                continue
            self.stats.errors[f"{name} {status}"] += 1
            if status and status < 500 and status != 429:
                raise Refused(status, json.loads(data) if data else None)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: no answer but {status} for {self.patience_s:g} s")
            self.stats.retried += 1
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


@dataclass
class Pace:
    """Seconds a participant spends on a trial between fetching it and answering (the lock, looking,
    thinking) and after the reply (the feedback); zero at full speed."""

    answer_s: tuple[float, float] = (0.0, 0.0)
    after_s: tuple[float, float] = (0.0, 0.0)

    def wait(self, bounds: tuple[float, float], rng: random.Random) -> None:
        if bounds[1] > 0:
            time.sleep(rng.uniform(*bounds))


FULL_SPEED = Pace()
# About 3-5 s per trial as real participants take: the 1.5 s lock and a look, then the feedback.
PROTOCOL_PACE = Pace(answer_s=(1.7, 3.2), after_s=(1.3, 1.8))


class Participant:
    """One simulated participant taking part over HTTP, in the page's order of calls."""

    def __init__(
        self,
        port: int,
        study: dict[str, Any],
        name: str,
        keys: Keys,
        stats: Stats,
        pace: Pace = FULL_SPEED,
        signed: bool = True,
        patience_s: float = 120.0,
    ) -> None:
        self.http = Http(port, stats, patience_s)
        self.study, self.name, self.keys, self.stats, self.pace = study, name, keys, stats, pace
        self.signed = signed
        self.rng = random.Random(name)
        self.session_id = 0
        self.choices: dict[int, int] = {}
        self.cycles = 0
        self.trials_done_at = 0.0  # perf_counter when the last trial was answered
        self.completed = False
        self.full = False  # the study had no places left for this participant (the scenario's own 409)

    def start(self) -> bool:
        """Start, consent, read the instructions; False when the study had no places left."""
        body = {"study": self.study["slug"], "source": "local", "participant": self.name}
        if self.signed:
            body["sig"] = self.study["signatures"][self.name]
        started = self.http.call("start", "POST", "/api/v1/sessions", body)
        self.session_id, self.http.token = started["id"], started["token"]
        try:
            self.event("consent", call="consent")
        except Refused as refused:
            if refused.status == 409:
                self.full = True
                return False
            raise
        self.event("instructions_start")
        self.event("instructions_end")
        return True

    def event(self, type_: str, call: str = "event") -> None:
        self.http.call(call, "POST", f"/api/v1/sessions/{self.session_id}/events", {"type": type_, "payload": {}})

    def answer_trials(self) -> None:
        """Fetch and answer trials until none is left (practice answered right, main answered right too)."""
        base = f"/api/v1/sessions/{self.session_id}"
        while True:
            trial = self.http.call("trial", "GET", f"{base}/trial")
            if trial["done"]:
                self.trials_done_at = time.perf_counter()
                return
            index = trial["index"]
            if index not in self.choices:
                self.choices = self.keys.of_session(self.session_id)
            self.pace.wait(self.pace.answer_s, self.rng)
            client_id = str(uuid.uuid4())
            answer = {
                "index": index,
                "choice": self.choices[index],
                "confidence": 3,
                "rt_ms": 1600 + self.rng.randrange(1500),
                "client_id": client_id,
            }
            self.http.call("answer", "POST", f"{base}/responses", answer)
            self.stats.acknowledged.append((self.session_id, client_id))
            self.cycles += 1
            self.pace.wait(self.pace.after_s, self.rng)

    def complete(self) -> None:
        self.http.call("complete", "POST", f"/api/v1/sessions/{self.session_id}/complete", {"feedback": ""})
        self.completed = True

    def take_part(self) -> None:
        if self.start():
            self.answer_trials()
            self.complete()


def integrity(database_url: str, study_id: int, target: int, acknowledged: list[tuple[int, str]]) -> dict[str, int]:
    """The database's account of a run: acknowledged answers lost or stored twice, units held beyond their
    target, units given twice to one session."""
    import psycopg2

    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT r.session_id, r.client_id::text, r.session_trial_id FROM experiments_response r "
                "JOIN experiments_session s ON s.id = r.session_id WHERE s.study_id = %s",
                [study_id],
            )
            rows = cursor.fetchall()
            cursor.execute(
                "SELECT count(*) FROM (SELECT su.study_unit_id FROM experiments_sessionunit su "
                "JOIN experiments_session s ON s.id = su.session_id WHERE s.study_id = %s "
                "AND su.released_at IS NULL GROUP BY su.study_unit_id HAVING count(*) > %s) over",
                [study_id, target],
            )
            over_target = cursor.fetchone()[0]
            cursor.execute(
                "SELECT (SELECT count(*) FROM (SELECT 1 FROM experiments_sessionunit su "
                "JOIN experiments_session s ON s.id = su.session_id WHERE s.study_id = %s "
                "GROUP BY su.session_id, su.study_unit_id HAVING count(*) > 1) slots) + "
                "(SELECT count(*) FROM (SELECT 1 FROM experiments_sessiontrial st "
                "JOIN experiments_trial t ON t.id = st.trial_id JOIN experiments_session s ON s.id = st.session_id "
                "WHERE s.study_id = %s AND t.kind = 'main' GROUP BY st.session_id, t.unit_id "
                "HAVING count(*) > 1) shown)",
                [study_id, study_id],
            )
            twice = cursor.fetchone()[0]
    finally:
        connection.close()
    stored = {(session, client) for session, client, _ in rows}
    return {
        "acknowledged": len(acknowledged),
        "stored": len(rows),
        "lost": sum(1 for answer in set(acknowledged) if answer not in stored),
        "duplicated": (len(rows) - len(stored)) + (len(rows) - len({trial for _, _, trial in rows})),
        "units_over_target": int(over_target),
        "units_twice_in_a_session": int(twice),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["build-study"]:
        print(json.dumps(_build_study_here(json.loads(sys.argv[2]))))
    else:
        sys.exit(__doc__)
