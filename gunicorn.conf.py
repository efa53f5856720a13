"""gunicorn's settings for production, read from the working directory (`gunicorn psyplatform.wsgi`).

Threads (gthread): a participant's request mostly waits on PostgreSQL, so 4 threads per process keep the
CPU busy without 16 processes' memory. With DB_CONN_MAX_AGE > 0 each thread keeps its own connection
(workers x threads connections in all). README, "Serving participants", says how this was measured.
"""

import os

bind = os.getenv("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = int(os.getenv("GUNICORN_WORKERS", "4"))
threads = int(os.getenv("GUNICORN_THREADS", "4"))
# Longer than a participant's pause between calls is not needed: the proxy in front keeps its own.
keepalive = int(os.getenv("GUNICORN_KEEPALIVE", "5"))
# A worker stuck longer than this (a request waiting on a database that is gone) is replaced.
timeout = int(os.getenv("GUNICORN_TIMEOUT", "60"))
accesslog = os.getenv("GUNICORN_ACCESSLOG") or None
