"""The store's start-up, schema and transactions, where mutation testing found nothing
watching: a spool left by a process that stopped is written as soon as the line starts again,
an existing -wal and -shm are made private, a folder made by another process at the same
moment, an older schema in WAL mode upgraded, a database restored from an SQL dump (and one a
writer takes as the line starts), a file that is not a database, a database path
that cannot be opened yet, the migration lock (waited for, and no descriptor left open), and
a write that fails half-way (undone, the write lock given back)."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from ivr.store import SCHEMA_VERSION, SPOOLED, Store
from tests.support import database_locked, wait_until

KEY = b"k"
ANSWER = ("CA1", "+85512000001", "ou-chrov", "barber", "en", "quality", "4")


def rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def started(path: Path) -> Store:
    """Store(path), which must return: a start-up that waits for ever (retrying an error)
    fails the test instead of hanging it."""
    made: list[Store] = []
    worker = threading.Thread(target=lambda: made.append(Store(path, KEY)), daemon=True)
    worker.start()
    worker.join(20)
    assert made, "the store did not start (it is still retrying)"
    return made[0]


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# --- Store.__init__ ---------------------------------------------------------------------------


def test_a_spool_left_by_a_process_that_stopped_is_written_as_soon_as_the_line_starts(settings):
    """A worker stopped during a lock leaves its spool: the next start writes it at once,
    before any caller's write would (the answers reach the admin pages without waiting for
    the next caller)."""
    first = Store(settings.database, KEY, busy_timeout_ms=100)
    with database_locked(settings.database):
        assert first.save_answer(*ANSWER) == SPOOLED
        first.close()  # still locked: the record stays in the spool
    assert first.spool_files()
    again = Store(settings.database, KEY)
    try:
        assert wait_until(lambda: not again.spool_files(), 10)
        assert rows(settings.database, "SELECT question, value FROM answers") == [
            ("quality", "4")]
    finally:
        again.close()


def test_a_world_readable_wal_and_shm_are_made_private_when_the_line_starts(tmp_path):
    """A database made before files were kept private, open in another process (its -wal
    and -shm are there): all three lose the world's access."""
    path = tmp_path / "ivr.db"
    Store(path, KEY).close()
    holder = sqlite3.connect(path)
    try:
        holder.execute("INSERT INTO spool_applied (id, applied_at) VALUES ('x', 'then')")
        holder.commit()
        wal, shm = path.with_name("ivr.db-wal"), path.with_name("ivr.db-shm")
        assert wal.exists() and shm.exists()
        for file in (path, wal, shm):
            os.chmod(file, 0o644)
        Store(path, KEY).close()
        assert (mode(path), mode(wal), mode(shm)) == (0o640, 0o640, 0o640)
    finally:
        holder.close()


def test_a_folder_another_process_makes_at_the_same_moment_does_not_stop_the_start(
        tmp_path, monkeypatch):
    """The line and `ivr` (or the outbound worker) starting together on a new install: the
    folder the store found missing is made by the other one just before it makes it."""
    folder = tmp_path / "instance"
    looked = Path.exists

    def exists(path: Path, *args, **kwargs) -> bool:
        there = looked(path, *args, **kwargs)
        if path == folder and not there:
            folder.mkdir(mode=0o700)  # the other process, right after our look
        return there

    monkeypatch.setattr(Path, "exists", exists)
    store = Store(folder / "ivr.db", KEY)
    monkeypatch.undo()
    assert store.schema_is_current()
    store.close()


# --- the schema -------------------------------------------------------------------------------


def test_an_older_schema_in_wal_mode_is_upgraded_and_keeps_its_calls(tmp_path):
    """A schema-5 database (before outbound calls) is in WAL mode like every database the
    line made: opening it adds the outbound tables and calls.origin (its calls rang in)."""
    path = tmp_path / "ivr.db"
    Store(path, KEY).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE outbound_calls")
    conn.execute("DROP TABLE opt_outs")
    conn.execute("ALTER TABLE calls DROP COLUMN origin")
    conn.execute("INSERT INTO calls (sid, caller_hash, started_at) VALUES ('CA1', 'h', 'then')")
    conn.commit()
    conn.execute("PRAGMA user_version = 5")
    conn.close()
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]
    Store(path, KEY).close()
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(path, "SELECT sid, origin FROM calls") == [("CA1", "inbound")]
    assert rows(path, "SELECT count(*) FROM outbound_calls") == [(0,)]
    assert rows(path, "SELECT count(*) FROM opt_outs") == [(0,)]


def restored_dump(tmp_path: Path) -> Path:
    """A database with one call, dumped (`sqlite3 ivr.db .dump`) and restored into a new
    file: every table and column, but no schema version and no WAL mode."""
    original = tmp_path / "ivr.db"
    store = Store(original, KEY)
    store.record_step("CA1", "+85512000001", "en", "main", None, "enter")
    store.close()
    source = sqlite3.connect(original)
    dump = "\n".join(source.iterdump())
    source.close()
    restored = tmp_path / "restored.db"
    conn = sqlite3.connect(restored)
    conn.executescript(dump)
    conn.close()
    assert rows(restored, "PRAGMA user_version") == [(0,)]
    assert rows(restored, "PRAGMA journal_mode") == [("delete",)]
    return restored


def test_a_database_restored_from_an_sql_dump_starts_the_line_with_its_calls(tmp_path):
    """The line starts on a restored dump, puts it back in WAL mode, and keeps its calls."""
    restored = restored_dump(tmp_path)
    started(restored).close()
    assert rows(restored, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(restored, "PRAGMA journal_mode") == [("wal",)]
    assert rows(restored, "SELECT sid, origin FROM calls") == [("CA1", "inbound")]


def test_a_writer_arriving_as_the_start_reads_the_schema_version_is_waited_for(
        tmp_path, monkeypatch, caplog):
    """The administrator's sqlite3 starts writing the restored file (no WAL: readers are
    kept out) just after the line opened it, before it read the schema version: the start
    waits for the writer, then upgrades the file, instead of starting on an old schema."""
    caplog.set_level(logging.WARNING, logger="ivr.store")
    restored = restored_dump(tmp_path)
    writer = sqlite3.connect(restored, isolation_level=None, check_same_thread=False)
    opened = Store._connect
    taken: list[bool] = []

    def then_a_writer(store: Store, timeout_ms: int) -> sqlite3.Connection:
        conn = opened(store, timeout_ms)
        if not taken:
            writer.execute("BEGIN EXCLUSIVE")
            taken.append(True)
        return conn

    monkeypatch.setattr(Store, "_connect", then_a_writer)
    made: list[Store] = []
    try:
        worker = threading.Thread(target=lambda: made.append(Store(restored, KEY)),
                                  daemon=True)
        worker.start()
        assert wait_until(lambda: "start-up waits" in caplog.text or made, 10)
        assert not made
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    worker.join(20)
    assert made
    made[0].close()
    assert rows(restored, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(restored, "PRAGMA journal_mode") == [("wal",)]


def test_a_file_that_is_not_a_database_stops_the_start_and_is_left_as_it_is(tmp_path):
    """Something else at the database's path (a file copied to the wrong name): the start
    fails saying so (gunicorn stops, the administrator sees why) and the file is kept."""
    path = tmp_path / "ivr.db"
    content = b"these are not the database's pages\n" * 200
    path.write_bytes(content)
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        Store(path, KEY)
    assert path.read_bytes() == content


def test_a_database_path_that_cannot_be_opened_yet_is_waited_for_and_made_private(
        tmp_path, caplog):
    """A folder where the database file should be (a bind mount of a file that did not
    exist yet): the start waits, saying why, and once the path is free the database it
    creates is private like any other, whatever the umask."""
    caplog.set_level(logging.WARNING, logger="ivr.store")
    path = tmp_path / "ivr.db"
    path.mkdir()
    made: list[Store] = []
    umask = os.umask(0o022)
    try:
        worker = threading.Thread(target=lambda: made.append(Store(path, KEY)), daemon=True)
        worker.start()
        assert wait_until(lambda: "start-up waits: the database cannot be written" in
                          caplog.text or made, 10), caplog.text
        assert not made  # nothing started on a folder
        path.rmdir()
        worker.join(20)
    finally:
        os.umask(umask)
    assert made and made[0].schema_is_current()
    assert mode(path) == 0o600
    made[0].close()


# --- the migration lock -----------------------------------------------------------------------


def test_the_start_waits_while_another_process_creates_the_schema(tmp_path, caplog):
    """Workers starting together on a new database take turns: one holding the migration
    lock keeps the others from touching the file until it is done."""
    caplog.set_level(logging.WARNING, logger="ivr.store")
    path = tmp_path / "ivr.db"
    lock = os.open(path.with_name("ivr.db.migrate.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    made: list[Store] = []
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        worker = threading.Thread(target=lambda: made.append(Store(path, KEY)), daemon=True)
        worker.start()
        assert wait_until(lambda: "start-up waits" in caplog.text or made, 10)
        assert not made and rows(path, "SELECT count(*) FROM sqlite_master") == [(0,)]
        fcntl.flock(lock, fcntl.LOCK_UN)
        worker.join(20)
    finally:
        os.close(lock)
    assert made and made[0].schema_is_current()
    made[0].close()


def test_the_migration_lock_leaves_no_descriptor_open_and_is_free_after(tmp_path):
    """The admin tables take it at every start of a worker and of `ivr`: a descriptor left
    each time would run a long-lived process out of them."""
    path = tmp_path / "ivr.db"
    store = Store(path, KEY)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with store.migration_lock():
            pass
    assert len(os.listdir("/proc/self/fd")) == before
    other = os.open(path.with_name("ivr.db.migrate.lock"), os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process may take it
    finally:
        os.close(other)
    store.close()


# --- a transaction that fails ------------------------------------------------------------------


def test_a_write_that_fails_half_way_is_undone_and_gives_the_write_lock_back(tmp_path):
    """The disk fills during an answer's transaction: the caller's answer goes to the spool,
    nothing half-written stays, the write lock is free for other processes at once, and the
    answer is written by the replay once there is room."""
    path = tmp_path / "ivr.db"
    store = Store(path, KEY)
    conn = store.db.conn
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here on
    saved = 0
    try:
        while saved < 500 and store.save_answer(f"CA{saved}", *ANSWER[1:]) != SPOOLED:
            saved += 1
        assert 0 < saved < 500  # the first write that needed a page failed
        assert not conn.in_transaction
        other = sqlite3.connect(path, timeout=2, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process writes: the lock is free
            other.execute("ROLLBACK")
        finally:
            other.close()
    finally:
        conn.execute("PRAGMA max_page_count = 1073741823")  # room again
    assert store.wait_for_spool(10)
    assert rows(path, "SELECT count(*), count(DISTINCT feedback_id) FROM answers") == [
        (saved + 1, saved + 1)]
    store.close()
