"""The agreement job's speed against the embedding model's raw encode of the same names, in one run.

The job (the describe protocol's summarize, as the summary task runs it, minus reading the rows): normalised
names are embedded through the per-text cache (starting empty, so every distinct name is encoded and the cache
written), then the per-unit agreement and the near-duplicate signal are computed. The baseline: one
SentenceTransformer.encode call on the same texts, with the same batch size. Names are all distinct by default,
so that the cache saves nothing and the ratio measures the job's own overhead; --repeat-share makes that share
of the names repeat earlier ones, as names of real participants do.

    .venv/bin/python benchmarks/embed_names.py [--names 1000] [--units 84] [--rounds 3] [--repeat-share 0]

Prints one line per round, then a JSON line with names_per_s of both and their ratio (job / raw; target >= 0.8).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "psyplatform.settings")
os.environ.setdefault("DEBUG", "true")

import django  # noqa: E402

django.setup()

from protocols.base import UnitAnswer  # noqa: E402
from protocols.nameability import Describe, embeddings  # noqa: E402

WORDS = (
    "striped spotted round square red blue green yellow dark bright furry metal glass wooden stone water sky "
    "tree leaf grass flower cat dog bird fish car wheel road window door face eye hand text letter circle line "
    "grid dots curve edge corner texture pattern shadow light fire ice sand snow cloud mountain boat rope net"
).split()


def distinct_names(n: int) -> list[str]:
    """n distinct names of one to three words."""
    combos = itertools.chain(
        ((word,) for word in WORDS),
        itertools.permutations(WORDS, 2),
        itertools.permutations(WORDS, 3),
    )
    return [" ".join(combo) for combo in itertools.islice(combos, n)]


def workload(n: int, units: int, repeat_share: float, rng: np.random.Generator) -> list[str]:
    names = distinct_names(n)
    repeats = rng.random(n) < repeat_share
    return [names[int(rng.integers(i))] if repeats[i] and i else name for i, name in enumerate(names)]


def run_job(names: list[str], units: int) -> float:
    protocol = Describe()
    answers = [
        UnitAnswer(i % units, f"p{i % 97}", {"normalised": name}, {}, None) for i, name in enumerate(names)
    ]
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        protocol.summarize(protocol.params(None), answers, Path(work))
        return time.perf_counter() - start


def run_raw(names: list[str]) -> float:
    start = time.perf_counter()
    embeddings.model().encode(
        names, batch_size=embeddings.BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True,
        show_progress_bar=False,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--units", type=int, default=84)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat-share", type=float, default=0.0)
    args = parser.parse_args()
    names = workload(args.names, args.units, args.repeat_share, np.random.default_rng(0))
    embeddings.model()  # loaded once, outside both timings
    run_raw(names[:64])  # warm-up
    job_times, raw_times = [], []
    for round_number in range(args.rounds):
        # Alternating which goes first, so that neither always gets the warmer caches.
        if round_number % 2:
            job_times.append(run_job(names, args.units))
            raw_times.append(run_raw(names))
        else:
            raw_times.append(run_raw(names))
            job_times.append(run_job(names, args.units))
        print(f"round {round_number}: job {job_times[-1]:.2f} s, raw encode {raw_times[-1]:.2f} s", flush=True)
    job_rate, raw_rate = len(names) / min(job_times), len(names) / min(raw_times)
    print(json.dumps({
        "names": len(names),
        "distinct": len(set(names)),
        "units": args.units,
        "job_names_per_s": round(job_rate, 1),
        "raw_names_per_s": round(raw_rate, 1),
        "ratio": round(job_rate / raw_rate, 3),
    }))


if __name__ == "__main__":
    main()
