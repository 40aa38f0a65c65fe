"""Storage robustness that no caller test reaches by chance (TEST-GAPS.md, gap 9): reference
collisions, unique references, the migration lock, connection settings, the spool's fsync,
case status updates, a new database folder, and the shortest recording."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading

import pytest

from ivr import store as store_module
from ivr.store import SPOOLED, Store, new_reference
from tests.caller import Caller
from tests.support import ROOT

RECORDING = dict(caller="+85512000001", kind="complaint", lang="en", office="ou-chrov",
                 service="", topic="other", recording_url="", duration_s=9)


def draws(monkeypatch, *numbers: str) -> list[str]:
    """new_reference gives these, in order; returns the list of what was drawn."""
    drawn: list[str] = []
    left = iter(numbers)

    def draw() -> str:
        drawn.append(next(left))
        return drawn[-1]

    monkeypatch.setattr(store_module, "new_reference", draw)
    return drawn


def test_a_rating_whose_reference_is_taken_draws_another(settings, monkeypatch):
    store = Store(settings.database, b"k")
    drawn = draws(monkeypatch, "111111", "111111", "222222")
    first = store.save_answer("CA1", "+85512000001", "ou-chrov", "barber", "en", "quality", "4")
    second = store.save_answer("CA2", "+85512000002", "ou-chrov", "barber", "en", "quality", "5")
    assert (first, second) == ("111111", "222222") and drawn == ["111111", "111111", "222222"]
    with sqlite3.connect(settings.database) as conn:
        assert conn.execute("SELECT call_sid, reference FROM feedback ORDER BY id").fetchall() == [
            ("CA1", "111111"), ("CA2", "222222")]
        assert conn.execute("SELECT count(*) FROM answers").fetchone() == (2,)


def test_a_case_whose_reference_is_taken_draws_another(settings, monkeypatch):
    store = Store(settings.database, b"k")
    drawn = draws(monkeypatch, "333333", "333333", "444444")
    first = store.save_recording(sid="CA1", recording_sid="RE1", **RECORDING)
    second = store.save_recording(sid="CA2", recording_sid="RE2", **RECORDING)
    assert (first, second) == ("333333", "444444") and len(drawn) == 3
    with sqlite3.connect(settings.database) as conn:
        assert conn.execute("SELECT recording_sid, reference FROM recordings ORDER BY id"
                            ).fetchall() == [("RE1", "333333"), ("RE2", "444444")]


def test_one_answer_draws_one_reference_and_is_written_once(settings, monkeypatch):
    store = Store(settings.database, b"k")
    drawn = draws(monkeypatch, *(str(n) for n in range(500000, 500040)))
    store.save_answer("CA1", "+85512000001", "ou-chrov", "barber", "en", "quality", "4")
    store.save_answer("CA1", "+85512000001", "ou-chrov", "barber", "en", "timeliness", "3")
    assert drawn == ["500000", "500001"]  # the second finds the feedback row
    store.save_recording(sid="CA9", recording_sid="RE9", **RECORDING)
    assert len(drawn) == 3


def test_references_are_always_six_digits(monkeypatch):
    """The smallest and the largest draw: 100000 and 999999 (never 7 digits)."""
    monkeypatch.setattr(store_module.secrets, "randbelow", lambda n: 0)
    assert new_reference() == "100000"
    monkeypatch.setattr(store_module.secrets, "randbelow", lambda n: n - 1)
    assert new_reference() == "999999"


def test_the_migration_waits_for_the_process_holding_its_lock(tmp_path):
    """A worker that finds another creating the schema (its flock held) waits for it."""
    path = tmp_path / "new.db"
    lock = os.open(path.with_name(path.name + ".migrate.lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    started = threading.Event()
    done: list[Store] = []

    def start() -> None:
        started.set()
        done.append(Store(path, b"k"))

    worker = threading.Thread(target=start, daemon=True)
    worker.start()
    started.wait()
    worker.join(0.5)
    assert worker.is_alive() and not done  # waiting for the lock
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    fcntl.flock(lock, fcntl.LOCK_UN)
    os.close(lock)
    worker.join(30)
    assert done and done[0].schema_is_current()


def test_the_store_s_connections_are_set_for_concurrency_and_durability(settings):
    store = Store(settings.database, b"k", busy_timeout_ms=4000, fast_wait_ms=150)
    conn = store.db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (150,)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert store.patient_db.conn.execute("PRAGMA busy_timeout").fetchone() == (4000,)
    with store.patient() as patient:
        assert patient.execute("PRAGMA busy_timeout").fetchone() == (4000,)
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (150,)


def test_a_spooled_answer_is_fsynced(settings, monkeypatch):
    store = Store(settings.database, b"k", busy_timeout_ms=100)
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    blocker = sqlite3.connect(settings.database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        monkeypatch.setattr(store_module.os, "fsync", fsync)
        assert store.save_answer("CA1", "+85512000001", "ou-chrov", "barber", "en", "quality",
                                 "4") == SPOOLED
        monkeypatch.setattr(store_module.os, "fsync", real)
        assert synced == [str(store.spool_path)]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.wait_for_spool()
    store.close()


def test_a_case_status_for_an_unknown_reference_is_not_saved(settings):
    store = Store(settings.database, b"k")
    reference = store.save_recording(sid="CA1", recording_sid="RE1", **RECORDING)
    assert store.set_case_status(reference, "reviewed", "called back")
    assert not store.set_case_status("999999" if reference != "999999" else "100000", "closed")
    with sqlite3.connect(settings.database) as conn:
        assert conn.execute("SELECT status, note FROM recordings").fetchall() == [
            ("reviewed", "called back")]
    with pytest.raises(ValueError):
        store.set_case_status(reference, "lost")


def test_a_database_in_a_folder_that_does_not_exist_yet(tmp_path):
    path = tmp_path / "var" / "lib" / "ivr" / "ivr.db"
    store = Store(path, b"k")
    assert store.schema_is_current() and path.exists()
    assert path.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("carrier", ["twilio", "somleng"])
def test_a_one_second_message_is_a_case(twilio, settings, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("4").press("1").press("1")
    call.press("0105#").press("1").record(1)
    assert "Your message has been recorded" in call.heard()
    with sqlite3.connect(settings.database) as conn:
        assert conn.execute("SELECT duration_s FROM recordings").fetchall() == [(1,)]


def test_making_a_file_private_leaves_no_descriptor_open(tmp_path):
    from ivr.store import private_file

    before = len(os.listdir("/proc/self/fd"))
    for i in range(5):
        private_file(tmp_path / f"f{i}")
    assert len(os.listdir("/proc/self/fd")) == before


def lock_out(settings) -> sqlite3.Connection:
    blocker = sqlite3.connect(settings.database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    return blocker


def test_the_log_says_when_the_database_is_back_and_what_was_kept(settings, caplog):
    store = Store(settings.database, b"k", busy_timeout_ms=100)
    blocker = lock_out(settings)
    assert store.save_answer("CA1", "+85512000001", "ou-chrov", "barber", "en", "quality",
                             "4") == SPOOLED
    blocker.execute("ROLLBACK")
    blocker.close()
    assert store.wait_for_spool()
    store.close()
    assert "database writable again" in caplog.text and "1 records were spooled" in caplog.text


def test_closing_the_store_waits_for_its_replay(settings):
    store = Store(settings.database, b"k", busy_timeout_ms=100)
    blocker = lock_out(settings)
    store.save_answer("CA1", "+85512000001", "ou-chrov", "barber", "en", "quality", "4")
    replayers = [t for t in threading.enumerate() if t.name == "ivr-spool"]
    assert replayers and all(t.is_alive() for t in replayers)
    # a daemon: it never keeps a worker from exiting (see the test below, in a process)
    assert all(t.daemon for t in replayers)
    store.close()  # the database is still locked: the replay stops, the record stays
    blocker.execute("ROLLBACK")
    blocker.close()
    assert not any(t.is_alive() for t in replayers)
    assert store.spool_files()  # kept for the next replayer
    again = Store(settings.database, b"k")
    assert again.wait_for_spool()
    again.close()


def test_a_worker_can_exit_while_the_database_is_locked(settings):
    """The background replay never keeps a process alive (gunicorn's restart would wait)."""
    import subprocess
    import sys

    program = f"""
import sqlite3
from ivr.store import Store
store = Store({str(settings.database)!r}, b"k", busy_timeout_ms=100)
blocker = sqlite3.connect({str(settings.database)!r}, isolation_level=None)
blocker.execute("BEGIN EXCLUSIVE")
assert store.save_answer("CA1", "+85512000001", "o", "s", "en", "q", "4") == ""
print("spooled", flush=True)
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "spooled" in done.stdout, done.stderr


def test_an_answer_that_can_be_neither_stored_nor_spooled_is_logged_whole(settings,
                                                                         monkeypatch, caplog):
    """The last line of defence: the database is locked and the spool cannot be written (a
    full disk); the answer goes to the log, critical, and the request fails (an apology)."""
    store = Store(settings.database, b"k", busy_timeout_ms=100)

    def full(data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_append", full)
    blocker = lock_out(settings)
    try:
        with pytest.raises(OSError):
            store.save_answer("CA1", "+85512000001", "ou-chrov", "barber", "en", "quality", "4")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    (record,) = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert "could not store or spool a answer" in record.getMessage()
    assert '"question": "quality"' in record.getMessage() and '"value": "4"' in record.getMessage()
    store.close()


def test_a_spooled_record_that_fails_on_replay_is_kept_aside_and_leaves_nothing_half_written(
        settings):
    """An answer whose value cannot be stored fails after its feedback row was written: that
    row is undone, the record is kept aside, and the next record is written."""
    import json

    Store(settings.database, b"k").close()
    spool = settings.database.with_name(f"{settings.database.name}.spool.999999.jsonl")
    base = {"_type": "answer", "sid": "CA1", "caller_hash": "h", "office": "ou-chrov",
            "service": "barber", "lang": "en", "stamp": "2026-12-01T10:00:00+00:00"}
    spool.write_text(json.dumps({**base, "_id": "bad", "question": "quality",
                                 "value": {"not": "text"}}) + "\n"
                     + json.dumps({**base, "_id": "good", "sid": "CA2", "question": "quality",
                                   "value": "4"}) + "\n")
    store = Store(settings.database, b"k")
    assert store.wait_for_spool()
    store.close()
    with sqlite3.connect(settings.database) as conn:
        assert conn.execute("SELECT call_sid FROM feedback").fetchall() == [("CA2",)]
        assert conn.execute("SELECT value FROM answers").fetchall() == [("4",)]
    assert '"_id": "bad"' in store.rejected_path.read_text()


def test_the_backup_says_where_the_copy_is(tmp_path):
    import time as clock

    from ivr.store import backup_database

    Store(tmp_path / "ivr.db", b"k").close()
    copy = backup_database(tmp_path / "ivr.db", tmp_path / "backups")
    assert copy == tmp_path / "backups" / f"ivr-{clock.strftime('%Y-%m-%d', clock.gmtime())}.db"
    assert copy.exists()
