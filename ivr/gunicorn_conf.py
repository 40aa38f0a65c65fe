"""gunicorn settings for the line: `gunicorn -c python:ivr.gunicorn_conf 'ivr:create_app()'`.

Flags on the command line override these. Measured with scripts/loadtest.py on 2 cores
(README, "Operating it"). The line runs behind nginx (deploy/): gunicorn's threads must never
talk to callers' connections directly, because a few slow clients hold every thread (README,
"Operating it"). Under systemd it listens on the socket deploy/systemd/owso-ivr.socket hands
it; started by hand it listens on localhost only.
"""

from __future__ import annotations

import gc
import os
from typing import Any

bind = "127.0.0.1:8000"  # never a public address: nginx is in front (deploy/nginx)
workers = 4
# Threaded workers with keep-alive: hundreds of callers between key presses hold a
# connection each without holding a thread; two threads per worker overlap one request's
# wait for the SQLite write lock with another's work.
worker_class = "gthread"
threads = 2
keepalive = 75  # seconds; longer than nginx keeps an idle upstream connection (60 s)
backlog = 2048  # callers ringing at once wait in the queue instead of being refused
timeout = 30  # a worker stuck this long is replaced (Twilio has given up after 15 s)
graceful_timeout = 20  # a HUP or stop lets requests in flight finish
# gunicorn itself believes no forwarding header, from any address, not even over a unix
# socket (where it would otherwise trust them all): the app reads X-Forwarded-* for exactly
# IVR_PROXY_HOPS proxies (werkzeug's ProxyFix), so with 0 hops a local client cannot make a
# request look https, and with nginx in front only nginx's own headers count.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
forwarder_headers = ""
control_socket_disable = True  # gunicorn 25+: no control socket in $HOME (HUP and TERM do)
# Files gunicorn and the line create (logs, the database, its WAL, the spool, lock files)
# are readable by the line's user only. (Not gunicorn's `umask` setting: that one would also
# close a unix socket gunicorn binds itself to nginx.)
os.umask(0o077)


def post_worker_init(worker: Any) -> None:
    """Move what the app loaded at start-up (catalogue, prompts, modules) out of the
    garbage collector's full passes: they live as long as the worker, and scanning them
    paused a worker for 50-80 ms several times a minute under load."""
    gc.freeze()
