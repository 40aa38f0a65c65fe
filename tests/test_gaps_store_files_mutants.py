"""The store's files and its start-up, where mutation testing found nothing watching: what
the log tells an administrator while a start-up waits (locked, or unwritable and why, when
it started waiting, a reminder every 10 s, how long it waited), the same on Python 3.10
(whose SQLite errors carry no code), a file everyone could read made private (and said so),
a database of the current schema opened while another process writes, a call's end and a
follow-up spooled and written later, and the nightly backup (a new private folder, a
private copy on disk before it is named, the copies kept for 30 days, what an earlier
backup or a moved copy left behind)."""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import re
import sqlite3
import threading
import time

import pytest

from ivr import store as store_module
from ivr.store import SPOOLED, Store, backup_database, private_file
from tests.support import wait_until

WAITS = re.compile(r"start-up waits: (.*) \((\d+) s so far\); retrying")
DONE = re.compile(r"schema step done after waiting ([\d.]+) s")
DAY = 86400


def store_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ivr.store"]


def waits(caplog) -> list[tuple[str, int]]:
    """The start-up's "waits" lines: (why, seconds so far)."""
    return [(m.group(1), int(m.group(2))) for line in store_lines(caplog)
            if (m := WAITS.search(line))]


def failing_once(error: Exception):
    """A schema step that meets `error` once, then succeeds."""
    met: list[Exception] = []

    def attempt() -> None:
        if not met:
            met.append(error)
            raise error

    return attempt


# --- the start-up's log --------------------------------------------------------------------


def test_a_new_line_starts_quietly(tmp_path, caplog):
    """Nothing to wait for, nothing to make private: no warning in the log (an administrator
    would look for a problem that is not there)."""
    caplog.set_level(logging.INFO)
    Store(tmp_path / "ivr.db", b"k").close()
    Store(tmp_path / "ivr.db", b"k").close()  # and again on the schema now current
    assert [r for r in caplog.records if r.name == "ivr.store" and r.levelno >= logging.WARNING
            ] == []


def test_a_new_database_another_process_holds_is_waited_for_and_the_log_says_it_is_locked(
        tmp_path, caplog):
    path = tmp_path / "ivr.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    made: list[Store] = []
    worker = threading.Thread(target=lambda: made.append(Store(path, b"k", busy_timeout_ms=100)),
                              daemon=True)
    worker.start()
    try:
        assert wait_until(lambda: waits(caplog), 10), store_lines(caplog)
        assert not made
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    worker.join(30)
    assert made and made[0].schema_is_current()
    assert {why for why, _ in waits(caplog)} == {"the database is locked"}
    assert any(DONE.search(line) for line in store_lines(caplog))
    made[0].close()


def test_a_database_that_cannot_be_written_at_start_up_is_waited_for_and_the_log_says_why(
        tmp_path, caplog):
    """A read-only disk: the log gives SQLite's reason (not "locked": no other process to
    look for), and the line starts once it can write."""
    refused = threading.Event()
    refused.set()

    class ReadOnlyDisk(Store):
        def _connect(self, timeout_ms: int) -> sqlite3.Connection:
            conn = super()._connect(timeout_ms)
            conn.execute(f"PRAGMA query_only = {int(refused.is_set())}")
            return conn

    made: list[Store] = []
    worker = threading.Thread(target=lambda: made.append(ReadOnlyDisk(tmp_path / "ivr.db", b"k")),
                              daemon=True)
    worker.start()
    try:
        assert wait_until(lambda: waits(caplog), 10), store_lines(caplog)
    finally:
        refused.clear()
    worker.join(30)
    assert made and made[0].schema_is_current()
    assert {why for why, _ in waits(caplog)} == {
        "the database cannot be written (attempt to write a readonly database)"}
    made[0].close()


def test_a_table_locked_by_a_statement_still_reading_it_is_a_lock_that_passes(tmp_path, caplog):
    """SQLITE_LOCKED (the same connection still reads the table a schema step changes) is a
    lock like SQLITE_BUSY: the log says so, not that the database cannot be written."""
    store = Store(tmp_path / "ivr.db", b"k")
    conn = sqlite3.connect(tmp_path / "scratch.db", isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1), (2)")
    reading = conn.execute("SELECT x FROM t")
    reading.fetchone()
    with pytest.raises(sqlite3.OperationalError) as locked:
        conn.execute("DROP TABLE t")
    conn.close()
    assert locked.value.sqlite_errorcode == 6  # SQLITE_LOCKED
    store.wait_for(failing_once(locked.value), "the database is locked")
    assert waits(caplog) == [("the database is locked", 0)]
    store.close()


@pytest.mark.parametrize("text, why", [
    ("database is locked", "the database is locked"),
    ("database table is locked", "the database is locked"),
    ("attempt to write a readonly database",
     "the database cannot be written (attempt to write a readonly database)"),
    ("disk I/O error", "the database cannot be written (disk I/O error)"),
])
def test_on_python_3_10_the_start_up_log_tells_a_lock_from_a_database_that_cannot_be_written(
        tmp_path, caplog, text, why):
    """Python 3.10 (the oldest the line supports) gives SQLite's errors as text only, no
    error code: a lock is still told from a broken or read-only database, and a start-up
    meeting either waits, it does not fail."""
    store = Store(tmp_path / "ivr.db", b"k")
    error = sqlite3.OperationalError(text)
    assert getattr(error, "sqlite_errorcode", None) is None  # as Python 3.10 raises it
    store.wait_for(failing_once(error), "the database is locked")
    assert waits(caplog) == [(why, 0)]
    store.close()


class Clock:
    """`time` for ivr.store on a clock of its own: each pause the store takes moves it on one
    second (a slow start-up without waiting for it); `at` is called with the seconds gone.
    A store that retries without ever pausing is stopped (it would spin a CPU)."""

    def __init__(self, at):
        self.now = 1000.0
        self.reads = 0
        self.at = at

    def monotonic(self) -> float:
        self.reads += 1
        if self.reads > 10_000:
            raise AssertionError("the start-up retries without pausing")
        return self.now

    def sleep(self, seconds: float) -> None:
        assert 0 < seconds <= 0.5
        self.now += 1.0
        self.at(self.now - 1000.0)


def test_a_start_up_that_waits_says_so_at_once_every_10_s_and_when_it_is_done(
        tmp_path, monkeypatch, caplog):
    """Another process creates the schema for 35 s: the log says the start-up waits at its
    first retry, again every 10 s (not at every retry), and how long it waited in all."""
    store = Store(tmp_path / "ivr.db", b"k")
    held = os.open(tmp_path / "ivr.db.migrate.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)  # the other process

    def at(seconds: float) -> None:
        if seconds >= 35:
            fcntl.flock(held, fcntl.LOCK_UN)

    monkeypatch.setattr(store_module, "time", Clock(at))
    try:
        with store.migration_lock():
            pass
    finally:
        os.close(held)
    monkeypatch.undo()
    assert waits(caplog) == [("another process is creating the schema", s)
                             for s in (0, 10, 20, 30)]
    assert [m.group(1) for line in store_lines(caplog) if (m := DONE.search(line))] == ["35.0"]
    store.close()


# --- files made private --------------------------------------------------------------------


def test_a_file_everyone_could_use_is_made_private_and_the_log_says_what_it_is_now(
        tmp_path, caplog):
    """A database copied in with mode 777: other users lose every access (reading, writing,
    running), the group keeps its own, and the log names the file and its new mode."""
    path = tmp_path / "ivr.db"
    path.write_bytes(b"")
    os.chmod(path, 0o777)
    private_file(path)
    assert path.stat().st_mode & 0o777 == 0o770
    assert store_lines(caplog) == [f"{path} was readable by every user: now 770"]


# --- the schema ----------------------------------------------------------------------------


def test_a_database_of_the_current_schema_opens_while_another_process_writes(tmp_path):
    """The line's databases carry schema version 6 (since the outbound calls): a worker
    restarting on one while another process holds the write lock boots at once, it does
    not wait to upgrade what is current."""
    path = tmp_path / "ivr.db"
    Store(path, b"k").close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 6")  # as the line leaves its databases
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    made: list[Store] = []
    worker = threading.Thread(target=lambda: made.append(Store(path, b"k", busy_timeout_ms=100)),
                              daemon=True)
    try:
        worker.start()
        worker.join(10)
        assert made, "the start-up waited for the writer"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        worker.join(30)
    made[0].close()


# --- the spool ------------------------------------------------------------------------------


def test_a_call_s_end_and_a_follow_up_given_during_a_lock_are_written_once_it_is_free(tmp_path):
    path = tmp_path / "ivr.db"
    store = Store(path, b"k", busy_timeout_ms=100)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        store.close_call("CA1", "+85512000001", "completed", 42)
        assert store.save_followup(sid="CA1", caller="+85512000001", reference="123456",
                                   lang="km", recording_sid="RE1", recording_url="",
                                   duration_s=7) == SPOOLED
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.wait_for_spool()
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT sid, status, duration_s FROM calls").fetchall() == [
            ("CA1", "completed", 42)]
        assert conn.execute("SELECT reference, recording_sid, duration_s FROM case_followups"
                            ).fetchall() == [("123456", "RE1", 7)]
    assert not store.rejected_path.exists()


# --- the nightly backup --------------------------------------------------------------------


def database_with_a_call(tmp_path):
    path = tmp_path / "ivr.db"
    store = Store(path, b"k")
    store.close_call("CA1", "+85512000001", "completed", 42)
    store.close()
    return path


def open_files() -> list[str]:
    """What this process's descriptors name."""
    names = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            names.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # the listing's own descriptor
    return names


def today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


def test_a_backup_into_a_new_folder_makes_it_and_keeps_folder_and_copy_private(tmp_path):
    """/var/backups/owso-ivr may not exist yet (nor its parent): it is made, for the line's
    user only, and so is the copy (it holds every caller's answers)."""
    folder = tmp_path / "var" / "backups" / "owso-ivr"
    database = database_with_a_call(tmp_path)
    umask = os.umask(0o022)  # the usual one (the line's own, 077, is set by gunicorn_conf)
    try:
        copy = backup_database(database, folder)
    finally:
        os.umask(umask)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert copy.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT sid FROM calls").fetchall() == [("CA1",)]


def test_a_backup_is_on_disk_before_it_is_named_a_copy_and_leaves_no_descriptor_open(
        tmp_path, monkeypatch):
    """A power cut after the night's backup must not leave a copy that was never written
    out; and the backup leaves neither the copy nor the database open (the connections
    it made closed, not left to the garbage collector)."""
    database = database_with_a_call(tmp_path)
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real(fd)

    gc.collect()  # the connections of the store that wrote the database, closed
    before = open_files()
    monkeypatch.setattr(store_module.os, "fsync", fsync)
    copy = backup_database(database, tmp_path / "backups")
    monkeypatch.undo()
    assert synced == [copy.stat().st_ino]
    assert [path for path in open_files() if path.startswith(str(tmp_path))] == [
        path for path in before if path.startswith(str(tmp_path))]


def test_copies_older_than_30_days_are_removed_and_younger_ones_kept(tmp_path):
    database = database_with_a_call(tmp_path)
    folder = tmp_path / "backups"
    folder.mkdir()
    old, young, other = (folder / "ivr-2020-01-01.db", folder / "ivr-2020-01-02.db",
                         folder / "other-2020-01-01.db")
    stamp = time.time()
    for path, age in ((old, 30 * DAY + 10), (young, 30 * DAY - 10), (other, 60 * DAY)):
        path.write_bytes(b"a copy")
        os.utime(path, (stamp - age, stamp - age))
    copy = backup_database(database, folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [copy.name, young.name, other.name])


def test_a_copy_that_is_no_longer_there_does_not_stop_the_backup(tmp_path):
    """A name left for a copy that is gone (moved off the machine, a link to it left; or
    removed by another backup at the same moment): the backup is made, the name removed."""
    folder = tmp_path / "backups"
    folder.mkdir()
    gone = folder / "ivr-2020-01-01.db"
    gone.symlink_to(tmp_path / "moved" / "ivr-2020-01-01.db")
    copy = backup_database(database_with_a_call(tmp_path), folder)
    assert copy.exists() and not os.path.lexists(gone)


def test_a_backup_cut_short_earlier_in_the_day_does_not_stop_the_next(tmp_path):
    """The unfinished copy of a backup cut short (half written, its journal lost) is not
    a database: the next backup starts afresh instead of failing on it."""
    database = database_with_a_call(tmp_path)
    folder = tmp_path / "backups"
    folder.mkdir()
    whole = database.read_bytes()
    (folder / f".ivr-{today()}.db.partial").write_bytes(whole[:len(whole) // 2])
    copy = backup_database(database, folder)
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT sid, duration_s FROM calls").fetchall() == [("CA1", 42)]
