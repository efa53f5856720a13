"""The production settings, with the bare baseline view of benchmarks/serve_participants.py mounted beside
the site (benchmarks.bench_urls), so that both are served by the same processes."""

from psyplatform.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.bench_urls"
