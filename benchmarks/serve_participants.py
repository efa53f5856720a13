"""Serving participants: the participant API under gunicorn on PostgreSQL against a bare Django JSON view.

Starts a private PostgreSQL and Redis (benchmarks/harness.py; the machine's own servers are never
touched) and serves the site under gunicorn with the repository's gunicorn.conf.py (gthread, a process per
core x 8 threads) and the production settings the README recommends (DB_CONN_MAX_AGE=60 with health checks,
Redis for the cache). For each size N (50, 100, 200 by default):

- full speed: N simulated participants (signed local links) start, consent, read the instructions,
  then fetch and answer every trial (practice until all right, then the main block) in a closed loop
  with no think time (a study with lock_ms 0), then complete. The trial-fetch + answer cycle's
  requests/s is counted from the last start until the first participant has answered its last trial,
  while all N are in the loop (as all N are throughout the baseline's run);
- baseline: in the same gunicorn processes, the same N clients call a bare Django JSON view doing one
  primary-key query (benchmarks/bench_urls.py) in a closed loop for --bare-s seconds. The two run
  --repeats times one after the other (5 by default), and the pair of median ratio stands for the size:
  this machine's speed drifts by a third and more between runs a minute apart;
- at the protocol's pace: N participants, arriving over the first --arrival-s seconds (5 by default: a
  burst, all of them within a tenth of a session), take whole sessions at about 3-5 s a trial (the study's
  1,500 ms lock, a look, the feedback), as people do.

Prints one line per scenario, then one JSON object last: `requests_per_s` (the full-speed cycle at the
largest N) and `bare_requests_per_s`, `ratio` (the smallest over the sizes of the median ratio of
the cycle's requests/s to the bare view's; target >= 0.5; `ratio_runs_by_size` lists every run's),
`cpu_ms_per_request_by_size` (gunicorn's and PostgreSQL's processes' CPU milliseconds per request in the
same spans, the cycle's against the bare view's: benchmarks/server_cpu.py), `paced_p99_ms` (the
cycle's p99 at the protocol's pace with the largest paced N; target < 100 ms), `paced_arrivals` (how many
starts and consents were told to wait their turn, with a 503 and Retry-After, and how long they took,
turns waited included: experiments/admission.py), `endpoints` (p50/p95/p99 ms per call at the
largest N, of the call's answered sending), `errors` (non-2xx other than "no places left" and turns
waited), and from the database `lost`, `duplicated`,
`units_over_target`, `units_twice_in_a_session` (all must be 0).

    .venv/bin/python benchmarks/serve_participants.py [--sizes 50,100,200] [--paced-sizes 50,100,200]
        [--bare-s 10] [--arrival-s 5] [--workers CORES] [--threads 8]

The load generator runs on the same machine as the server and takes its share of the CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import runpy
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (  # noqa: E402
    FULL_SPEED,
    PROTOCOL_PACE,
    Http,
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
)
from benchmarks.server_cpu import ServerCpu, roots_with  # noqa: E402

CYCLE = ("trial", "answer")
CALLS = ("start", "consent", "event", *CYCLE, "complete")
ARRIVAL = ("start", "consent")
N_UNITS = 44
MAIN_TRIALS = 40


def study_for(env: dict[str, str], name: str, size: int, lock_ms: int) -> dict[str, Any]:
    # Just enough places for every participant, so that the last consents compete for the last units.
    target = math.ceil(size * MAIN_TRIALS / N_UNITS)
    return build_study(
        env, participants=size, slug=name, n_units=N_UNITS, target_per_unit=target, lock_ms=lock_ms
    )


def run_all(pool: ThreadPoolExecutor, calls: list[Any]) -> None:
    for future in [pool.submit(call) for call in calls]:
        future.result()


def cycle_percentiles(stats: Stats) -> dict[str, float]:
    merged = Stats()
    merged.latencies["cycle"] = [ms for call in CYCLE for ms in stats.latencies.get(call, [])]
    return merged.percentiles("cycle")


def arrival_turns(stats: Stats) -> dict[str, Any]:
    """How often starts and consents were told to wait their turn (503, Retry-After), and how long they took
    from first sent to answered, turns waited included."""
    return {
        "deferred": {call: stats.deferred.get(call, 0) for call in ARRIVAL},
        "waited_ms": {call: stats.percentiles(call, of=stats.waited) for call in ARRIVAL},
    }


def own_errors(stats: Stats, participants: list[Participant]) -> int:
    """Non-2xx answers other than the scenario's own: a consent refused because the study is full."""
    return sum(stats.errors.values()) - sum(p.full for p in participants)


def full_speed(
    port: int, env: dict[str, str], keys: Keys, size: int, run: int, cpu: ServerCpu
) -> tuple[dict[str, Any], Stats, list[Any]]:
    study = study_for(env, f"full-{size}-{run}", size, lock_ms=0)
    stats = Stats()
    people = [Participant(port, study, name, keys, stats, FULL_SPEED) for name in study["signatures"]]
    with ThreadPoolExecutor(size) as pool:
        run_all(pool, [p.start for p in people])
        taking_part = [p for p in people if not p.full]
        started = time.perf_counter()
        run_all(pool, [p.answer_trials for p in taking_part])
        run_all(pool, [p.complete for p in taking_part])
    # Until the first participant is through: after it, fewer than N are left in the loop (the closed loop's
    # tail, where those a busier worker happened to accept finish last), which the bare view's run never has.
    until = min(p.trials_done_at for p in taking_part)
    cycles = stats.served_between(CYCLE, started, until)
    elapsed = until - started
    result = {
        "cycle_requests": cycles,
        "cycle_s": round(elapsed, 2),
        "requests_per_s": round(cycles / elapsed, 1),
        "cpu_ms_per_request": cpu.ms_per_request(started, until, cycles),
    }
    return result | {"study": study}, stats, people


def bare(port: int, size: int, seconds: float, session_ids: list[int], cpu: ServerCpu) -> tuple[float, Stats, Any]:
    stats = Stats()
    stop = time.monotonic() + seconds
    count = [0] * size

    def loop(worker: int) -> None:
        http = Http(port, stats, 30)
        ids = session_ids or [1]
        while time.monotonic() < stop:
            http.call("bare", "GET", f"/bench/bare/{ids[(worker + count[worker]) % len(ids)]}")
            count[worker] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(size) as pool:
        run_all(pool, [lambda w=w: loop(w) for w in range(size)])
    ended = time.perf_counter()
    return sum(count) / (ended - started), stats, cpu.ms_per_request(started, ended, sum(count))


def paced(
    port: int, env: dict[str, str], keys: Keys, size: int, pace: Pace, arrival_s: float
) -> tuple[dict[str, Any], Stats, list[Any]]:
    study = study_for(env, f"paced-{size}", size, lock_ms=1500)
    stats = Stats()
    people = [Participant(port, study, name, keys, stats, pace) for name in study["signatures"]]
    rng = random.Random(size)

    def arrive(person: Participant, delay: float) -> None:
        time.sleep(delay)
        person.take_part()

    started = time.perf_counter()
    with ThreadPoolExecutor(size) as pool:
        delays = [rng.uniform(0, arrival_s) for _ in people]
        run_all(pool, [lambda p=p, d=d: arrive(p, d) for p, d in zip(people, delays, strict=True)])
    elapsed = time.perf_counter() - started
    cycles = sum(len(stats.latencies.get(call, [])) for call in CYCLE)
    result = {"wall_s": round(elapsed, 1), "requests_per_s": round(cycles / elapsed, 1)}
    return result | {"study": study}, stats, people


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,100,200")
    parser.add_argument("--paced-sizes", default="50,100,200")
    parser.add_argument("--bare-s", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5, help="full-speed and bare runs per size (the median)")
    parser.add_argument("--arrival-s", type=float, default=5.0, help="paced participants arrive over this long")
    conf = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    parser.add_argument("--workers", type=int, default=conf["workers"], help="gunicorn.conf.py's by default")
    parser.add_argument("--threads", type=int, default=conf["threads"], help="gunicorn.conf.py's by default")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",") if n]
    paced_sizes = [int(n) for n in args.paced_sizes.split(",") if n]

    postgres, redis = PrivatePostgres(), PrivateRedis()
    postgres.start()
    redis.start()
    try:
        database_url = postgres.create_database("psyplatform_bench")
        env = app_env(
            database_url, redis.url, GUNICORN_WORKERS=str(args.workers), GUNICORN_THREADS=str(args.threads)
        )
        migrate(env)
        keys = Keys(database_url)
        summary = measure(env, keys, database_url, postgres, sizes, paced_sizes, args)
        keys.close()
    finally:
        redis.stop()
        postgres.remove()
    print(json.dumps(summary))


def measure(
    env: dict[str, str],
    keys: Keys,
    database_url: str,
    postgres: PrivatePostgres,
    sizes: list[int],
    paced_sizes: list[int],
    args: Any,
) -> dict[str, Any]:
    checks = {"lost": 0, "duplicated": 0, "units_over_target": 0, "units_twice_in_a_session": 0}
    errors = 0
    ratios: dict[int, float] = {}
    full: dict[int, dict[str, Any]] = {}
    paced_results: dict[int, dict[str, Any]] = {}

    def account(study: dict[str, Any], stats: Stats) -> dict[str, int]:
        found = integrity(database_url, study["id"], study["target"], stats.acknowledged)
        for key in checks:
            checks[key] += found[key]
        return found

    cpu_by_size: dict[int, dict[str, Any]] = {}
    with gunicorn(env) as port, ServerCpu(
        {"gunicorn": lambda: roots_with(f"127.0.0.1:{port}"), "postgres": postgres.pids}
    ) as cpu:
        for size in sizes:
            runs = []
            for run in range(args.repeats):
                result, stats, people = full_speed(port, env, keys, size, run, cpu)
                study = result.pop("study")
                found = account(study, stats)
                errors += own_errors(stats, people)
                bare_rps, bare_stats, bare_cpu = bare(port, size, args.bare_s, [p.session_id for p in people], cpu)
                errors += sum(bare_stats.errors.values())
                endpoints = {call: stats.percentiles(call) for call in CALLS}
                runs.append(
                    {
                        **result,
                        "bare_requests_per_s": round(bare_rps, 1),
                        "bare_cpu_ms_per_request": bare_cpu,
                        "ratio": round(result["requests_per_s"] / bare_rps, 3),
                        "endpoints": {**endpoints, "bare": bare_stats.percentiles("bare")},
                        "full": sum(p.full for p in people),
                        "arrivals": arrival_turns(stats),
                        "errors": own_errors(stats, people),
                        "failed_calls": dict(stats.errors),  # "call status" -> count; status 0: no HTTP answer
                        **found,
                    }
                )
                scenario = f"full speed, {size} participants, run {run + 1}"
                print(json.dumps({"scenario": scenario, **runs[-1]}), flush=True)
            # The run of median ratio stands for the size: this machine's speed drifts from one run to the next.
            median = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]
            full[size] = {**median, "ratio_runs": [r["ratio"] for r in runs]}
            ratios[size] = median["ratio"]
            cpu_by_size[size] = {"cycle": median["cpu_ms_per_request"], "bare": median["bare_cpu_ms_per_request"]}
        for size in paced_sizes:
            result, stats, people = paced(port, env, keys, size, PROTOCOL_PACE, args.arrival_s)
            study = result.pop("study")
            found = account(study, stats)
            errors += own_errors(stats, people)
            paced_results[size] = {
                **result,
                "cycle": cycle_percentiles(stats),
                "endpoints": {call: stats.percentiles(call) for call in CALLS},
                "arrivals": arrival_turns(stats),
                "completed": sum(p.completed for p in people),
                "full": sum(p.full for p in people),
                "errors": own_errors(stats, people),
                "failed_calls": dict(stats.errors),
                **found,
            }
            print(json.dumps({"scenario": f"protocol pace, {size} participants", **paced_results[size]}), flush=True)

    largest = max(sizes) if sizes else None
    largest_paced = max(paced_sizes) if paced_sizes else None
    return {
        "benchmark": "serve_participants",
        "server": f"gunicorn gthread {args.workers} workers x {args.threads} threads, PostgreSQL, DB_CONN_MAX_AGE=60",
        "cpus": os.cpu_count(),
        "requests_per_s": full[largest]["requests_per_s"] if largest else None,
        "bare_requests_per_s": full[largest]["bare_requests_per_s"] if largest else None,
        "requests_per_s_by_size": {n: r["requests_per_s"] for n, r in full.items()},
        "bare_requests_per_s_by_size": {n: r["bare_requests_per_s"] for n, r in full.items()},
        "ratio_by_size": {n: round(r, 3) for n, r in ratios.items()},
        "ratio_runs_by_size": {n: r["ratio_runs"] for n, r in full.items()},
        "ratio": round(min(ratios.values()), 3) if ratios else None,
        "cpu_ms_per_request_by_size": cpu_by_size,
        "endpoints": full[largest]["endpoints"] if largest else None,
        "paced_p99_ms": paced_results[largest_paced]["cycle"].get("p99") if largest_paced else None,
        "paced_arrival_s": args.arrival_s,
        "paced_arrivals": paced_results[largest_paced]["arrivals"] if largest_paced else None,
        "paced_cycle_by_size": {n: r["cycle"] for n, r in paced_results.items()},
        "errors": errors,
        **checks,
    }


if __name__ == "__main__":
    main()
