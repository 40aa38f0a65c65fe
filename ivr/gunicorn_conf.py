"""gunicorn settings for the line: `gunicorn -c python:ivr.gunicorn_conf 'ivr:create_app()'`.

Flags on the command line override these. Measured with scripts/loadtest.py on 2 cores
(README, "Operating it").
"""

from __future__ import annotations

import gc
from typing import Any

bind = "0.0.0.0:8000"
workers = 4
# Threaded workers with keep-alive: hundreds of callers between key presses hold a
# connection each without holding a thread; two threads per worker overlap one request's
# wait for the SQLite write lock with another's work.
worker_class = "gthread"
threads = 2
keepalive = 75  # seconds; Twilio reuses connections within a call
backlog = 2048  # callers ringing at once wait in the queue instead of being refused
timeout = 30  # a worker stuck this long is replaced (Twilio has given up after 15 s)


def post_worker_init(worker: Any) -> None:
    """Move what the app loaded at start-up (catalogue, prompts, modules) out of the
    garbage collector's full passes: they live as long as the worker, and scanning them
    paused a worker for 50-80 ms several times a minute under load."""
    gc.freeze()
