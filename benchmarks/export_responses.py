"""Throughput and memory of the response export against pandas on the same rows.

Builds a throwaway PostgreSQL database with --responses answers (default
130,000: the IMI dataset's size) of 2-AFC sessions, then, each in a fresh
process so that peak memory is its own:
- ours: experiments.export (the responses table: one values query, the checks
  read alongside, the protocol's columns) written as CSV and as Parquet;
- pandas: the same rows read by one query (`pandas.read_sql`), then `to_csv`
  and `to_parquet` (pyarrow).
Each is run --rounds times; the figures are medians. Prints one line per run, then
one JSON object last: `ratio_csv` and `ratio_parquet` (our rows/s over pandas';
target >= 0.5) and `peak_rss_mb` (our largest peak; target < 200 MB).

    .venv/bin/python benchmarks/export_responses.py [--responses 130000] [--rounds 3]

DATABASE_URL names the server (default postgres://postgres@127.0.0.1:5432/postgres); the
database BENCH_DATABASE (default psyplatform_bench_export) is created on it and dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
# Overridable, so that two checkouts benchmarking on one server do not drop each other's database.
BENCH_DB = os.getenv("BENCH_DATABASE", "psyplatform_bench_export")
RESPONSES_PER_SESSION = 45


def bench_url(server_url: str) -> str:
    return urlunparse(urlparse(server_url)._replace(path=f"/{BENCH_DB}"))


def django_setup(database_url: str) -> None:
    # Production settings: with DEBUG on, Django's debug cursor keeps what it reads (about 70 MB more at 130,000).
    os.environ.update(DATABASE_URL=database_url, DEBUG="false", SECRET_KEY="benchmark-only-" + "k" * 40)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "psyplatform.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def create_database(server_url: str) -> None:
    import psycopg2

    connection = psycopg2.connect(server_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {BENCH_DB}")
    connection.close()


def drop_database(server_url: str) -> None:
    import psycopg2

    connection = psycopg2.connect(server_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    connection.close()


def populate(n_responses: int) -> None:
    """2-AFC sessions of 40 main and 5 catch answers each, with their checks, written in bulk."""
    from django.core.management import call_command
    from django.utils import timezone

    from experiments.models import Response, Session, SessionCheck, SessionTrial, Study, StudyUnit, Trial
    from stimuli.models import ImagePool, Unit, VisionModel

    call_command("migrate", verbosity=0)
    model = VisionModel.objects.create(name="lite0", timm_name="tf_efficientnet_lite0")
    pool = ImagePool.objects.create(name="pool", source="skimage_crops", size=2000)
    study = Study.objects.create(slug="bench", name="bench", model=model, image_pool=pool, status="open")
    units = Unit.objects.bulk_create(Unit(model=model, layer=f"blocks.{n % 7}", channel=n) for n in range(84))
    StudyUnit.objects.bulk_create(StudyUnit(study=study, unit=unit, order=n) for n, unit in enumerate(units))
    trials = Trial.objects.bulk_create(
        Trial(study=study, unit=unit, kind=kind, batch=0, difficulty="easy")
        for unit in units
        for kind in ("main", "catch")
    )
    now = timezone.now()
    n_sessions = n_responses // RESPONSES_PER_SESSION
    for first in range(0, n_sessions, 200):
        sessions = Session.objects.bulk_create(
            Session(study=study, source="local", pseudonym=f"p{n}", participant_id=f"p{n}", seed=n,
                    status="completed", passed=n % 4 != 0, phase="main", token=uuid.uuid4().hex, completed_at=now)
            for n in range(first, min(first + 200, n_sessions))
        )
        planned = SessionTrial.objects.bulk_create(
            SessionTrial(session=session, index=index, trial=trials[(index * 7 + session.seed) % len(trials)],
                         phase="main", layout={}, key={"choice": index % 2})
            for session in sessions for index in range(RESPONSES_PER_SESSION)
        )
        Response.objects.bulk_create(
            Response(session=p.session, session_trial=p, client_id=uuid.uuid4(),
                     answer={"choice": (p.index // 3) % 2, "confidence": 1 + p.index % 3}, rt_ms=900 + p.index,
                     server_ms=1600 + p.index, correct=(p.index // 3) % 2 == p.index % 2, score=1.0, created_at=now)
            for p in planned
        )
        SessionCheck.objects.bulk_create(
            SessionCheck(session=session, name=name, value=1.0, passed=True, rule="-")
            for session in sessions
            for name in ("practice_attempts", "instruction_time", "total_time", "lock_boundary",
                         "timing_regularity", "catch_trials", "position_bias")
        )


def measure(kind: str, fmt: str, out: str) -> dict[str, float]:
    """One export in this process: rows/s and this process's peak RSS."""
    from experiments.models import Response, Study

    start = time.perf_counter()
    if kind == "ours":
        from experiments.export.formats import FORMATS
        from experiments.export.responses import responses_table

        with open(out, "wb") as stream:
            stream.writelines(FORMATS[fmt](responses_table(Study.objects.order_by("pk"))))
    else:
        import pandas
        from django.db import connection

        from experiments.export.responses import response_values

        # The same query as ours, read whole by pandas.
        query = response_values(list(Study.objects.order_by("pk"))).query
        sql, params = query.sql_with_params()
        with connection.cursor() as cursor:
            frame = pandas.read_sql(cursor.mogrify(sql, params).decode(), connection.connection)
        if fmt == "csv":
            frame.to_csv(out, index=False)
        else:
            frame.to_parquet(out, index=False)
    seconds = time.perf_counter() - start
    rows = Response.objects.count()
    return {"rows_per_s": rows / seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_in_child(database_url: str, kind: str, fmt: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as work:
        found = subprocess.run(
            [sys.executable, __file__, "--child", kind, fmt, str(Path(work) / f"out.{fmt}"), database_url],
            capture_output=True, text=True,
        )
    if found.returncode:
        raise RuntimeError(f"{kind} {fmt} failed:\n{found.stderr}")
    result: dict[str, float] = json.loads(found.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, fmt, out, database_url = sys.argv[2:6]
        django_setup(database_url)
        print(json.dumps(measure(kind, fmt, out)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=130_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = os.getenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    create_database(server)
    try:
        database_url = bench_url(server)
        django_setup(database_url)
        populate(args.responses)
        from experiments.models import Response

        result: dict[str, float | int] = {"responses": Response.objects.count(), "rounds": args.rounds}
        peaks = []
        for fmt in ("csv", "parquet"):
            runs: dict[str, list[dict[str, float]]] = {"ours": [], "pandas": []}
            for _ in range(args.rounds):
                for kind in runs:
                    figures = run_in_child(database_url, kind, fmt)
                    runs[kind].append(figures)
                    print(f"{kind} {fmt}: {figures['rows_per_s']:.0f} rows/s, peak RSS {figures['peak_rss_mb']:.0f} MB",
                          flush=True)
            ours = statistics.median(r["rows_per_s"] for r in runs["ours"])
            theirs = statistics.median(r["rows_per_s"] for r in runs["pandas"])
            result[f"ours_{fmt}_rows_per_s"] = round(ours)
            result[f"pandas_{fmt}_rows_per_s"] = round(theirs)
            result[f"ratio_{fmt}"] = round(ours / theirs, 3)
            result[f"pandas_{fmt}_peak_rss_mb"] = round(max(r["peak_rss_mb"] for r in runs["pandas"]), 1)
            peaks.append(max(r["peak_rss_mb"] for r in runs["ours"]))
        result["peak_rss_mb"] = round(max(peaks), 1)
        print(json.dumps(result))
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(server)


if __name__ == "__main__":
    main()
