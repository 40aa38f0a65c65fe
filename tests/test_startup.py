"""Workers (re)starting while another process holds the database: the line stays up.

gunicorn's master exits when a worker fails to boot ("Worker failed to boot", status 3), so
a worker whose start-up needs the write lock would take the whole line down with it the
first time it restarts during a long write (a backup, a batch job, an administrator's
sqlite3 session). These run the line under gunicorn with the production settings."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

from ivr.store import SCHEMA_VERSION
from tests.caller import Caller
from tests.support import Gunicorn, HttpTwilio, wait_until

LOCK_SECONDS = 12  # the reproduction: an exclusive lock longer than any busy timeout


class Lock:
    """Another process's exclusive write transaction on the database, held until released
    (and at least `seconds`)."""

    def __init__(self, database, seconds: float):
        self.conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN EXCLUSIVE")
        self.conn.execute("INSERT INTO calls (sid) VALUES ('a writer holding the lock')")
        self.until = time.monotonic() + seconds

    def release(self) -> None:
        time.sleep(max(0.0, self.until - time.monotonic()))
        self.conn.execute("ROLLBACK")
        self.conn.close()


def rate_one_service(base: str, sid: str) -> Caller:
    """English, rate, office 0100 (Banteay Meanchey's provincial unit, which gives driving
    licences), 1 (the office said back: on), transport, the first licence, quality 4."""
    call = Caller(HttpTwilio(base), sid=sid).start("2").press("2").press("1").press("0100#")
    return call.press("1").press("2").press("1").press("4")


def test_workers_restarted_by_a_kill_or_a_reload_during_a_lock_boot_and_the_line_answers(
        tmp_path):
    line = Gunicorn(tmp_path)
    try:
        rate_one_service(line.base, "CA" + "1" * 32)  # the line has served a call
        lock = Lock(line.database, LOCK_SECONDS)
        try:
            # kill -9 of each worker in turn: every worker now running was started during
            # the lock, so /health answering means they booted while it was held
            for victim in sorted(line.worker_pids()):
                os.kill(victim, signal.SIGKILL)
                assert wait_until(lambda v=victim: line.ready() and v not in line.worker_pids(),
                                  LOCK_SECONDS), ("no worker booted after kill -9 during the "
                                                  "lock: " + line.log()[-3000:])
            assert time.monotonic() < lock.until, "the machine is too slow for this test"
            # the same with a reload: HUP replaces every worker
            before = line.worker_pids()
            os.kill(line.pid, signal.SIGHUP)
            assert wait_until(lambda: line.ready() and not line.worker_pids() & before,
                              LOCK_SECONDS), "no worker booted after HUP: " + line.log()[-3000:]
            assert line.alive()
        finally:
            lock.release()
        assert line.alive() and line.health()
        call = rate_one_service(line.base, "CA" + "2" * 32)  # the line answers afterwards
        assert "the time the service took" in call.heard()
        with sqlite3.connect(line.database) as conn:
            answers = conn.execute("SELECT f.call_sid, a.value FROM answers a "
                                   "JOIN feedback f ON f.id = a.feedback_id").fetchall()
        assert sorted(answers) == [("CA" + "1" * 32, "4"), ("CA" + "2" * 32, "4")]
        assert "Worker failed to boot" not in line.log()
    finally:
        line.stop()


def test_a_schema_upgrade_waits_for_the_lock_then_the_line_starts(tmp_path):
    """An older database (schema 3) locked while the line starts: the workers wait for the
    lock (here past a 3 s worker timeout: none is taken for hung), then upgrade it."""
    database = tmp_path / "ivr.db"
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE calls (sid TEXT PRIMARY KEY, caller_hash TEXT)")
        conn.execute("PRAGMA user_version = 3")
    lock = Lock(database, 0)
    line = Gunicorn(tmp_path, "--timeout", "3", wait=False)
    try:
        assert wait_until(lambda: "start-up waits" in line.log(), 60), line.log()[-3000:]
        # held on past the worker timeout from the moment the workers wait (however long
        # they took to get there on a busy machine)
        lock.until = time.monotonic() + 5
        releasing = threading.Thread(target=lock.release)
        releasing.start()
        workers = line.worker_pids()
        assert not line.health(1)  # nothing is served before the schema is there
        releasing.join()
        assert wait_until(line.ready, 30), line.log()[-3000:]
        assert line.worker_pids() == workers  # the same workers: none was taken for hung
        log = line.log()
        assert "WORKER TIMEOUT" not in log and "Worker failed to boot" not in log, log[-3000:]
        with sqlite3.connect(database) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            assert conn.execute("SELECT count(*) FROM spool_applied").fetchone() == (0,)
    finally:
        line.stop()
