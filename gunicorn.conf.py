"""gunicorn's settings for production, read from the working directory (`gunicorn psyplatform.wsgi`).

Threads (gthread) in one process per core: a participant's request mostly waits on PostgreSQL, so 8
threads keep a core busy; and a Python process runs on one core at a time (the GIL), so one process per
core has no two of them taking turns on a core. On the 2-core machine of the README's measurements this
served 30-60% more trial calls per second than 4 processes x 4 threads, at the same 16 connections.
With DB_CONN_MAX_AGE > 0 each thread keeps its own connection (workers x threads connections in all).
README, "Serving participants", says how this was measured.
"""

import os

bind = os.getenv("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "gthread"
# The cores this process may run on (a container's CPU set, not the host's count).
workers = int(os.getenv("GUNICORN_WORKERS", str(len(os.sched_getaffinity(0)))))
threads = int(os.getenv("GUNICORN_THREADS", "8"))
# Longer than a participant's pause between calls is not needed: the proxy in front keeps its own.
keepalive = int(os.getenv("GUNICORN_KEEPALIVE", "5"))
# A worker stuck longer than this (a request waiting on a database that is gone) is replaced.
timeout = int(os.getenv("GUNICORN_TIMEOUT", "60"))
accesslog = os.getenv("GUNICORN_ACCESSLOG") or None
