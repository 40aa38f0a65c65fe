"""The spool of ivr/store.py where mutation testing found nothing watching: what the log tells
an administrator about an outage (once when it starts, once when it ends, with true figures),
the store staying on the spool for as long as the database stays locked or read-only without
taking a CPU for it, a spool left by a dead worker noticed by the next write, one replay writing
every waiting file and leaving them to a replayer elsewhere, a replay stopped by the database
or by a fault saying so once, odd lines kept aside as they were (the rest written), records of
the previous version, of a replay cut short, of a file torn after one byte or claimed under an
append's feet or spooled just as the replayer ends, callers' writes getting the lock between
replay transactions, and a call over Cambodia's midnight keeping its count of wrong
references."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import sqlite3
import threading
import time
from pathlib import Path

from ivr import store as store_module
from ivr.store import SPOOLED, Store, caller_hash, cambodia_day
from tests.support import CALLER, database_locked, wait_until

KEY = b"test-caller-key"
STAMP = "2026-12-03T10:00:00+00:00"


class ReadOnlyDisk(Store):
    """A store whose database sits on a disk that has become read-only (remounted so after an
    error): it opens and reads, BEGIN IMMEDIATE still succeeds, every change fails. Counts the
    replayer's probes of the database."""

    def __init__(self, path: Path, key: bytes = KEY, **kwargs):
        self.probes = 0
        super().__init__(path, key, **kwargs)

    def _connect(self, timeout_ms: int) -> sqlite3.Connection:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=timeout_ms / 1000,
                               isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        conn.set_trace_callback(self._count)
        return conn

    def _count(self, statement: str) -> None:
        if statement.startswith("DELETE FROM spool_applied WHERE 0"):
            self.probes += 1


def answer(i: int) -> dict:
    """What save_answer is given for the i-th caller's quality answer."""
    return {"sid": f"CA{i:032d}", "caller": f"+8551{i:08d}", "office": "ou-chrov",
            "service": "barber", "lang": "en", "question": "quality", "value": str(1 + i % 5)}


def record(i: int, **extra) -> dict:
    """The spool record of answer(i), as a worker writes it."""
    a = answer(i)
    return {"_type": "answer", "_id": f"{i:032x}", "sid": a["sid"],
            "caller_hash": caller_hash(KEY, a["caller"]), "office": a["office"],
            "service": a["service"], "lang": a["lang"], "question": a["question"],
            "value": a["value"], "stamp": STAMP, **extra}


def line(rec: dict) -> bytes:
    return (json.dumps(rec, ensure_ascii=False) + "\n").encode()


def spool_file(database: Path, pid: int, *lines: bytes) -> Path:
    """The spool file a worker with this pid left (it died, say)."""
    path = database.with_name(f"{database.name}.spool.{pid}.jsonl")
    path.write_bytes(b"".join(lines))
    return path


def stored(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as conn:
        return sorted(conn.execute("SELECT f.call_sid, a.value FROM answers a "
                                   "JOIN feedback f ON f.id = a.feedback_id"))


def expected(*numbers: int) -> list[tuple[str, str]]:
    return sorted((answer(i)["sid"], answer(i)["value"]) for i in numbers)


def applied(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT count(*) FROM spool_applied").fetchone()[0]


def messages(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def replayer_done(store: Store) -> bool:
    """The store's background replay has ended (nothing left to do)."""
    return store._replayer is None or not store._replayer.is_alive()


# --- what the log tells about an outage ---------------------------------------------------

def test_the_log_says_once_when_the_database_is_unavailable_and_when_it_is_back(tmp_path,
                                                                               caplog):
    """One error when the outage starts (not one per probe), one warning when it ends with its
    true length and figures, and the same again for the next outage, even one where only a
    call step failed (nothing spooled): someone must notice that one ended too."""
    caplog.set_level(logging.INFO, logger="ivr.store")
    database = tmp_path / "ivr.db"
    store = Store(database, KEY, busy_timeout_ms=300, fast_wait_ms=50)
    began = time.monotonic()
    with database_locked(database):
        store.record_step("CA1", CALLER, "en", "greeting", None, "heard")  # not recorded
        assert store.save_answer(**answer(1)) == SPOOLED
        assert len(messages(caplog, "database unavailable")) == 1  # said at once
        # the replayer finds it still locked, again and again
        until = store._blocked_until
        assert wait_until(lambda: store._blocked_until > until, 3)
    assert wait_until(lambda: messages(caplog, "writable again"), 5)
    back = messages(caplog, "writable again")
    assert len(back) == 1 and len(messages(caplog, "database unavailable")) == 1
    found = re.search(r"after ([\d.]+) s: (\d+) records were spooled, (\d+) call steps", back[0])
    assert found, back
    assert 0 <= float(found[1]) <= time.monotonic() - began
    assert found.group(2, 3) == ("1", "1")
    assert store.wait_for_spool() and stored(database) == expected(1)
    assert wait_until(lambda: replayer_done(store), 5)
    with database_locked(database):  # the next outage: only a call step fails
        store.record_step("CA2", CALLER, "en", "greeting", None, "heard")
        assert len(messages(caplog, "database unavailable")) == 2
    assert wait_until(lambda: len(messages(caplog, "writable again")) == 2, 5)
    assert messages(caplog, "writable again")[1].endswith(
        "0 records were spooled, 1 call steps were not recorded")
    store.close()


# --- staying on the spool while the database cannot be written ---------------------------

def test_while_the_database_stays_locked_writes_keep_going_straight_to_the_spool(tmp_path,
                                                                                monkeypatch):
    """A lock held longer than BLOCKED_SECONDS: the replayer's probes keep the store blocked
    (no caller waits for the lock again) until the lock is gone, then the spool is written."""
    monkeypatch.setattr(store_module, "BLOCKED_SECONDS", 0.4)  # probes of 0.2 s
    database = tmp_path / "ivr.db"
    store = Store(database, KEY, busy_timeout_ms=3000, fast_wait_ms=50)
    with database_locked(database):
        assert store.save_answer(**answer(1)) == SPOOLED
        time.sleep(1.0)  # more than twice BLOCKED_SECONDS
        assert store.blocked()
        assert store.save_answer(**answer(2)) == SPOOLED
    assert wait_until(lambda: not store.blocked(), 5)
    assert store.wait_for_spool() and stored(database) == expected(1, 2)
    store.close()


def test_a_read_only_disk_is_never_taken_for_writable_and_is_probed_now_and_then(tmp_path,
                                                                                caplog):
    """On a read-only disk BEGIN IMMEDIATE succeeds but no change does: the store stays on
    the spool, the log never says the database is back, and the replayer probes it a few
    times a second, not in a loop that takes a CPU from the callers."""
    caplog.set_level(logging.INFO, logger="ivr.store")
    database = tmp_path / "ivr.db"
    Store(database, KEY).close()  # the schema, made while the disk was writable
    store = ReadOnlyDisk(database)
    try:
        assert store.save_answer(**answer(1)) == SPOOLED
        assert wait_until(lambda: store.probes, 3)  # the replayer has found it read-only
        probes = store.probes
        time.sleep(0.3)
        assert store.blocked() and store.probes - probes <= 15  # one each 0.05 s at most
        assert not messages(caplog, "writable again")
        assert store.save_answer(**answer(2)) == SPOOLED
    finally:
        store.close()
    assert store.spool_path.read_bytes().count(b'"_type": "answer"') == 2
    assert stored(database) == []


def test_a_spool_file_torn_after_its_first_byte_still_takes_the_next_answer(tmp_path):
    """A worker died one byte into its first record; the next append keeps its own record
    whole after it, and the byte is kept aside when the spool is written."""
    database = tmp_path / "ivr.db"
    Store(database, KEY).close()
    store = ReadOnlyDisk(database)
    try:
        store.spool_path.write_bytes(b"{")
        assert store.save_answer(**answer(1)) == SPOOLED
    finally:
        store.close()
    assert store.spool_path.read_bytes().startswith(b"{\n{")
    writable = Store(database, KEY)
    assert writable.wait_for_spool() and stored(database) == expected(1)
    assert (tmp_path / "ivr.db.spool-rejected.jsonl").read_bytes() == b"{\n"
    writable.close()


def test_an_append_whose_file_was_claimed_and_replaced_meanwhile_goes_into_the_new_file(
        tmp_path, monkeypatch):
    """Two stores of one process on one database (the same spool path): one has opened the
    file to append when a replayer claims it and the other store starts a new file there.
    The append notices the new file and goes into it: nothing is lost."""
    database = tmp_path / "ivr.db"
    replayer = Store(database, KEY)
    appending, other = ReadOnlyDisk(database), ReadOnlyDisk(database)
    try:
        assert appending.save_answer(**answer(0)) == SPOOLED
        flock, claimed = fcntl.flock, []

        def claim_first(fd, operation):
            if (fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND and operation == fcntl.LOCK_EX
                    and not claimed):
                claimed.append(replayer.replay_spool())  # renamed away, written
                assert other.save_answer(**answer(2)) == SPOOLED  # a new file at the path
            return flock(fd, operation)

        monkeypatch.setattr(fcntl, "flock", claim_first)
        assert appending.save_answer(**answer(1)) == SPOOLED
        monkeypatch.undo()
        assert claimed == [1]
    finally:
        appending.close()
        other.close()
    assert replayer.wait_for_spool()
    assert stored(database) == expected(0, 1, 2)
    replayer.close()


def test_an_answer_spooled_just_as_the_replayer_ends_is_still_written(tmp_path, monkeypatch):
    """The race, made to happen: the replayer has found nothing left and is ending when a
    caller's write fails (the database locked again); the replayer still looks alive to the
    failure, but it is gone by the time the answer is in the spool: the spooling starts a new
    one, and the answer is written once the lock is gone, with no further write."""
    database = tmp_path / "ivr.db"
    store = Store(database, KEY, fast_wait_ms=50)
    spool_file(database, 4014, line(record(1)))  # a dead worker's: the next write notices it
    blocker = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    listdir, fsync = os.listdir, os.fsync
    ending: list[threading.Thread] = []
    at_fsync = threading.Event()
    results: list[str | None] = []
    caller = threading.Thread(target=lambda: results.append(store.save_answer(**answer(2))))

    def listing(path):
        names = listdir(path)
        spools = [n for n in names if n.startswith(database.name + ".spool")
                  and n.endswith(".jsonl") and "rejected" not in n]
        if threading.current_thread().name == "ivr-spool" and not spools and not ending:
            ending.append(threading.current_thread())  # about to end: nothing left
            blocker.execute("BEGIN EXCLUSIVE")
            caller.start()
            at_fsync.wait(10)
        return names

    def syncing(fd):
        if threading.current_thread() is caller and not at_fsync.is_set():
            at_fsync.set()  # the answer is being spooled ...
            ending[0].join(10)  # ... and the old replayer has ended meanwhile
        fsync(fd)

    monkeypatch.setattr(os, "listdir", listing)
    monkeypatch.setattr(os, "fsync", syncing)
    assert store.save_answer(**answer(3)) not in (SPOOLED, None)
    assert wait_until(at_fsync.is_set, 5)
    caller.join(10)
    monkeypatch.undo()
    assert results == [SPOOLED]
    blocker.execute("ROLLBACK")
    blocker.close()
    assert wait_until(lambda: stored(database) == expected(1, 2, 3), 5)
    store.close()


# --- noticing and writing the spool -------------------------------------------------------

def test_a_write_notices_a_spool_left_by_a_worker_that_died(tmp_path):
    """No outage in this process: its first successful write finds the dead worker's spool
    and the background replay writes it."""
    database = tmp_path / "ivr.db"
    store = Store(database, KEY)
    spool_file(database, 4002, line(record(1)))
    assert store.save_answer(**answer(2)) not in (SPOOLED, None)  # written at once
    assert wait_until(lambda: not store.spool_files(), 5)
    assert stored(database) == expected(1, 2)
    store.close()


def test_one_replay_writes_every_waiting_file_and_logs_how_many(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ivr.store")
    database = tmp_path / "ivr.db"
    store = Store(database, KEY)
    spool_file(database, 4003, line(record(1)))
    spool_file(database, 4004, line(record(2)), line(record(3)))
    assert store.replay_spool() == 3
    assert not store.spool_files() and stored(database) == expected(1, 2, 3)
    assert messages(caplog, "spooled records") == ["wrote 3 spooled records to the database"]
    store.close()


def test_while_another_process_writes_the_spool_this_one_leaves_it_and_waits_quietly(
        tmp_path, monkeypatch):
    """The spool lock is held elsewhere: a replay here writes nothing (0), its background
    replay tries again a few times a second (not in a tight loop), wait_for_spool says False
    when it gives up; once the lock is free the spool is written here."""
    database = tmp_path / "ivr.db"
    store = Store(database, KEY)
    spool_file(database, 4005, line(record(1)))
    lock = os.open(database.with_name(database.name + ".spool.lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)  # another worker is replaying
    flock, tries = fcntl.flock, []

    def counting(fd, operation):
        if operation == fcntl.LOCK_EX | fcntl.LOCK_NB:
            tries.append(fd)
        return flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", counting)
    try:
        assert store.replay_spool() == 0
        assert store.wait_for_spool(0.3) is False
        assert 2 <= len(tries) <= 8
        assert stored(database) == [] and len(store.spool_files()) == 1
    finally:
        monkeypatch.undo()
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    assert store.wait_for_spool() and stored(database) == expected(1)
    assert store.replay_spool() == 0  # nothing left
    store.close()


def test_a_replay_that_finds_the_database_read_only_stops_there_and_says_so_once(tmp_path,
                                                                                caplog):
    """The first file fails: the others are not tried (one line in the log, not one per
    file) and every record stays on disk for the next replay."""
    database = tmp_path / "ivr.db"
    Store(database, KEY).close()
    store = ReadOnlyDisk(database)
    spool_file(database, 4006, line(record(1)))
    spool_file(database, 4007, line(record(2)))
    try:
        assert store.replay_spool() == 0
        assert len(messages(caplog, "spool replay paused")) == 1
        assert len(store.spool_files()) == 2
    finally:
        store.close()
    writable = Store(database, KEY)
    assert writable.wait_for_spool() and stored(database) == expected(1, 2)
    writable.close()


def test_a_dead_replayer_s_claim_removed_during_a_replay_does_not_stop_it(tmp_path,
                                                                        monkeypatch):
    """An administrator deletes a claimed file left by a dead replayer just as a replay has
    listed it: the replay goes on with the other files and counts only what it wrote."""
    database = tmp_path / "ivr.db"
    store = Store(database, KEY)
    old = database.with_name(f"{database.name}.spool-claimed.4008-0123456789ab.jsonl")
    old.write_bytes(line(record(1)))
    spool_file(database, 4009, line(record(2)))
    flock = fcntl.flock

    def delete_old_claim(fd, operation):
        reading = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
        if reading and operation == fcntl.LOCK_EX and old.exists():
            old.unlink()  # while the replay claims the other file
        return flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", delete_old_claim)
    assert store.replay_spool() == 1
    monkeypatch.undo()
    assert stored(database) == expected(2) and not store.spool_files()
    store.close()


def test_odd_lines_are_kept_aside_as_they_were_and_the_rest_is_written(tmp_path, caplog,
                                                                       monkeypatch):
    """A blank line, JSON that is no spool record, a record of an unknown kind, one this
    version cannot write (a field it does not know, Khmer text in it) and a torn last line:
    the good records around them are written; the others are kept, durably and readable, in
    <db>.spool-rejected.jsonl (the name the README gives), and the log says so."""
    database = tmp_path / "ivr.db"
    store = Store(database, KEY)
    unknown = b'{"_type": "unknown", "_id": "x9"}'
    unwritable = record(3, note="ខ្មែរ")
    torn = b'{"_type": "answer", "_id": "t1", "sid": "CA'
    spool_file(database, 4010, line(record(1)), b"\n", b"[1, 2]\n", unknown + b"\n",
               line(record(2)), line(unwritable), torn)
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert store.replay_spool() == 2
    monkeypatch.undo()
    assert stored(database) == expected(1, 2)
    rejected = tmp_path / "ivr.db.spool-rejected.jsonl"
    kept = rejected.read_bytes().split(b"\n")
    assert kept[:3] == [b"[1, 2]", unknown, torn] and kept[4:] == [b""]
    assert json.loads(kept[3]) == unwritable and "ខ្មែរ".encode() in kept[3]
    assert str(rejected) in synced
    open_files = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            open_files.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    assert str(rejected) not in open_files
    assert len(messages(caplog, "unreadable spool line")) == 3
    assert len(messages(caplog, "could not be written")) == 1
    store.close()


def test_records_of_the_previous_version_without_ids_are_each_written(tmp_path):
    """The previous version's spool (one shared file, records without an id): each record is
    named by its content, so two of them are two records."""
    database = tmp_path / "ivr.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    old = [{k: v for k, v in record(i).items() if k != "_id"} for i in (1, 2)]
    database.with_name(database.name + ".spool.jsonl").write_bytes(b"".join(map(line, old)))
    store = Store(database, KEY)
    assert store.wait_for_spool() and stored(database) == expected(1, 2)
    store.close()


def test_a_record_written_before_a_replay_was_cut_short_is_skipped_and_the_next_written(
        tmp_path):
    """A replayer killed after its commit, before it removed its claim: the next replay skips
    what was written and writes the rest of the batch."""
    database = tmp_path / "ivr.db"
    store = Store(database, KEY)
    spool_file(database, 4011, line(record(1)))
    assert store.replay_spool() == 1
    left = database.with_name(f"{database.name}.spool-claimed.4011-0123456789ab.jsonl")
    left.write_bytes(line(record(1)) + line(record(2)))
    assert store.replay_spool() == 1
    assert stored(database) == expected(1, 2) and applied(database) == 2
    assert not store.spool_files()
    store.close()


def test_a_replay_that_fails_to_keep_a_line_aside_stops_with_a_line_in_the_log(tmp_path,
                                                                               caplog):
    """The rejected file cannot be written (a folder in its place): the background replay
    stops and says so; once it can be written, the next replay finishes the file without
    writing anything twice."""
    database = tmp_path / "ivr.db"
    store = Store(database, KEY)
    rejected = tmp_path / "ivr.db.spool-rejected.jsonl"
    rejected.mkdir()
    torn = b'{"_type": "answer", "_id": "t2", "sid": "CA'
    spool_file(database, 4012, line(record(1)), torn)
    assert store.save_answer(**answer(2)) not in (SPOOLED, None)  # it notices the spool
    assert wait_until(lambda: messages(caplog, "the spool replay stopped"), 5)
    rejected.rmdir()
    assert store.wait_for_spool() and stored(database) == expected(1, 2)
    assert applied(database) == 1 and rejected.read_bytes() == torn + b"\n"
    store.close()


def test_callers_waiting_for_the_lock_during_a_replay_get_it_between_two_transactions(
        tmp_path, monkeypatch):
    """A long spool is written in transactions with a pause between them: a caller whose
    answer waits for the lock while a transaction is under way gets it in the pause, and the
    answer is stored at once, not sent to the spool for want of the lock."""
    # short transactions (some 10 ms: a caller's 100 ms wait outlasts one many times over) and
    # many of them (without the pause, the rest of the replay outlasts that wait)
    monkeypatch.setattr(store_module, "SPOOL_BATCH", 200)
    database = tmp_path / "ivr.db"
    store = Store(database, KEY, fast_wait_ms=100)
    total = 30 * store_module.SPOOL_BATCH - 1
    spool_file(database, 4013, *(line(record(i)) for i in range(1, total + 1)))
    transactions, callers, given = [], [], []

    def replaying(statement: str) -> None:  # the replay's own connection (this thread's)
        if statement == "BEGIN IMMEDIATE":
            transactions.append(statement)
        elif (statement.startswith("INSERT INTO spool_applied") and len(transactions) in (2, 5)
              and len(callers) < len(transactions) // 2):  # a transaction holds the lock
            n = 90000 + len(callers)
            callers.append(threading.Thread(target=lambda: given.append(
                store.save_answer(**answer(n)))))
            callers[-1].start()

    store.db.conn.set_trace_callback(replaying)
    assert store.replay_spool() == total
    store.db.conn.set_trace_callback(None)
    for caller in callers:
        caller.join(10)
    assert len(given) == 2 and SPOOLED not in given  # each one stored at once
    assert len(stored(database)) == total + 2
    store.close()


# --- a call over Cambodia's midnight --------------------------------------------------------

def test_a_call_that_keyed_its_wrong_references_before_midnight_is_still_refused_after(
        tmp_path):
    """The call's own count of wrong references does not start again at midnight (the day's
    count does: a new call is offered the lookup)."""
    database = tmp_path / "ivr.db"
    store = Store(database, KEY)
    sid = "CA" + "7" * 32
    yesterday = cambodia_day(time.time() - 86400)
    wrong = [(sid, caller_hash(KEY, CALLER), yesterday, STAMP)] * store_module.LOOKUP_WRONG_PER_CALL
    with sqlite3.connect(database) as conn:
        conn.executemany(
            "INSERT INTO case_lookups (call_sid, caller_hash, day, reference, found, at) "
            "VALUES (?, ?, ?, NULL, 0, ?)", wrong)
    assert store.lookup_state(sid, CALLER) == "refused"
    assert store.lookup_state("CA" + "8" * 32, CALLER) == "open"
    store.close()
