"""The task queue of outbound calls: huey, with its SQLite storage beside the database (or
Redis when the line runs on several hosts), and the `ivr worker` that runs it.

The queue holds only triggers, never a number: `place` (one outbound call's row id, at its
due time) and `sweep` (every minute, and once when a worker starts: whatever is due). What to
call, and whether it was called, is in the line's database (ivr/outbound.py), so a worker
killed at any moment loses no call (the sweep finds it) and repeats none (a call is placed
only by whoever moves its row from 'scheduled' to 'dialing').
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab

from ivr.config import Settings
from ivr.outbound import Outbound, utcnow
from ivr.store import Store

log = logging.getLogger(__name__)
QUEUE_NAME = "owso-ivr"


def queue_location(settings: Settings) -> str:
    """IVR_QUEUE, or `queue.db` beside the database."""
    return settings.queue or str(Path(settings.database).with_name("queue.db"))


class Queue:
    """The huey instance and the line's tasks on it, for the app (enqueue) and the worker."""

    def __init__(self, settings: Settings, store: Store | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.settings = settings
        where = queue_location(settings)
        self.huey: Huey
        if where.startswith(("redis://", "rediss://", "unix://")):
            self.huey = RedisHuey(QUEUE_NAME, url=where, utc=True)
        else:
            self.huey = SqliteHuey(QUEUE_NAME, filename=where, utc=True)
        self._store = store
        self._outbound: Outbound | None = None
        self._clock = clock
        self.place_task = self.huey.task(name="place")(self._place)
        self.sweep_task = self.huey.periodic_task(crontab(minute="*"), name="sweep")(
            self._sweep)

    @property
    def outbound(self) -> Outbound:
        """The worker's own Outbound (made when first needed, in the worker process)."""
        if self._outbound is None:
            assert self.settings.caller_key is not None
            store = self._store or Store(self.settings.database, self.settings.caller_key)
            self._outbound = Outbound(self.settings, store, enqueue=self.enqueue,
                                      clock=self._clock or utcnow)
        return self._outbound

    def enqueue(self, row_id: int, eta: datetime | None) -> None:
        """A trigger for call `row_id` at `eta` (now when None); a queue that cannot be
        reached loses nothing: the minute's sweep places the call."""
        try:
            if eta is None:
                self.place_task(row_id)
            else:
                naive = eta.astimezone(timezone.utc).replace(tzinfo=None)
                self.place_task.schedule(args=(row_id,), eta=naive)
        except Exception:
            log.exception("outbound call %d: could not be queued; the sweep will place it",
                          row_id)

    def _place(self, row_id: int) -> bool:
        return self.outbound.place(row_id)

    def _sweep(self) -> int:
        return self.outbound.dispatch_due()

    def run(self, workers: int = 1) -> None:
        """Run the consumer in this process until it is stopped (SIGTERM, SIGINT)."""
        self.sweep_task()  # whatever came due while no worker ran
        consumer: Any = self.huey.create_consumer(workers=workers, worker_type="thread",
                                                  periodic=True, check_worker_health=True,
                                                  initial_delay=0.1, max_delay=1.0)
        consumer.run()
