"""The spool keeps every answer given while the database cannot be written, and writes each
one exactly once, whatever else happens at the same time: two threads replaying, a replayer
killed with -9, a line torn by a crash, appends racing claims across processes. And while
the database is locked a caller never waits more than a moment."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import sqlite3
import threading
import time

import pytest

from ivr import create_app
from ivr import store as store_module
from ivr.store import SPOOLED, Store
from tests.caller import Caller
from tests.support import Twilio

KEY = b"test-caller-key"
QUESTIONS = ("quality", "timeliness", "unofficial-payment", "gender")


class ReadOnlyStore(Store):
    """A store whose every connection refuses writes (a read-only file or disk): everything
    it is given goes to the spool."""

    def _connect(self, timeout_ms: int) -> sqlite3.Connection:
        conn = super()._connect(timeout_ms)
        conn.execute("PRAGMA query_only = ON")
        return conn


@pytest.fixture
def read_only():
    """ReadOnlyStore(database, key), closed afterwards (its replay would wait forever)."""
    made: list[Store] = []

    def make(database, key=KEY) -> ReadOnlyStore:
        made.append(ReadOnlyStore(database, key))
        return made[-1]

    yield make
    for store in made:
        store.close()


# Processes are started fresh ("spawn"): forking a test process whose other threads may hold
# a lock (logging's, say) can leave the child waiting for it forever.
SPAWN = multiprocessing.get_context("spawn")


def answer(i: int) -> dict:
    return {"sid": f"CA{i:032d}", "caller": f"+8551{i:08d}", "office": "ou-chrov",
            "service": "barber", "lang": "en", "question": QUESTIONS[i % 4],
            "value": str(1 + i % 5)}


def stored_answers(database) -> list[tuple[str, str, str]]:
    with sqlite3.connect(database) as conn:
        return sorted(conn.execute("SELECT f.call_sid, a.question, a.value FROM answers a "
                                   "JOIN feedback f ON f.id = a.feedback_id"))


def expected(numbers) -> list[tuple[str, str, str]]:
    return sorted((a["sid"], a["question"], a["value"]) for a in map(answer, numbers))


def applied(database) -> int:
    """Spooled records written to the database (each is marked once, when written)."""
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT count(*) FROM spool_applied").fetchone()[0]


def test_two_threads_replaying_while_answers_are_spooled_lose_and_repeat_nothing(tmp_path,
                                                                                read_only):
    """One worker: two request threads replay at once while a third keeps spooling."""
    database = tmp_path / "ivr.db"
    store = Store(database, KEY)
    spooling = read_only(database)  # the same process, the same spool file
    total = 300
    done = threading.Event()
    written: list[int] = []

    def replay() -> None:
        count = 0
        while not done.is_set():
            count += store.replay_spool()
        written.append(count + store.replay_spool())

    replayers = [threading.Thread(target=replay) for _ in range(2)]
    for thread in replayers:
        thread.start()
    results = [spooling.save_answer(**answer(i)) for i in range(total)]
    done.set()
    for thread in replayers:
        thread.join()
    assert results == [SPOOLED] * total  # every one was kept for later
    assert store.wait_for_spool()
    assert stored_answers(database) == expected(range(total))  # none lost
    assert applied(database) == total  # each spooled record written exactly once
    assert sum(written) <= total
    assert not store.rejected_path.exists()


def _replay_and_die(database, kill_at: int) -> None:
    """A replayer killed with -9 in the middle of a transaction (after others committed)."""
    seen = 0
    save = Store._save_answer

    def dying(self, **fields):
        nonlocal seen
        seen += 1
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return save(self, **fields)

    Store._save_answer = dying  # type: ignore[method-assign]
    store_module.APPLY["answer"] = dying
    store = Store(database, KEY)  # (its own replay thread may be the one that dies)
    store.replay_spool()
    store.wait_for_spool(30)


def test_a_replayer_killed_with_minus_9_strands_nothing_and_nothing_is_written_twice(tmp_path,
                                                                                    read_only):
    database = tmp_path / "ivr.db"
    store = Store(database, KEY)
    total = 3 * store_module.SPOOL_BATCH + 7
    spooling = read_only(database)
    assert [spooling.save_answer(**answer(i)) for i in range(total)] == [SPOOLED] * total
    kill_at = 2 * store_module.SPOOL_BATCH + 5  # in the third transaction
    child = SPAWN.Process(target=_replay_and_die, args=(database, kill_at))
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    committed = applied(database)
    assert committed == 2 * store_module.SPOOL_BATCH  # two transactions were written
    assert store.spool_files()  # the batch it had claimed is still there ...
    assert store.replay_spool() == total - committed  # ... and the rest is written, once
    assert stored_answers(database) == expected(range(total))
    assert not store.spool_files()


def test_a_torn_line_is_kept_aside_and_the_caller_s_answer_is_stored(settings, caplog,
                                                                     read_only):
    """A crash in the middle of an append left half a line; the next caller is not hurt."""
    app = create_app(settings)
    line = app.extensions["ivr"]
    torn = b'{"_type": "answer", "_id": "0123", "sid": "CA9", "caller_hash": "'  # no end
    whole = answer(7)
    spooling = read_only(settings.database, settings.caller_key)
    assert spooling.save_answer(**whole) == SPOOLED  # one good record waiting ...
    with open(spooling.spool_path, "ab") as spool:
        spool.write(torn)  # ... then a process died while writing the next one
    assert spooling.save_answer(**answer(8)) == SPOOLED  # appended after the torn tail
    call = Caller(Twilio(app)).start("2").press("2").press("1").press("0105")
    call.press("1").press("2").press("1").press("4")  # on; a barber shop licence; quality 4
    assert "the time the service took" in call.heard()  # no apology: the call goes on
    assert line.store.wait_for_spool()
    stored = stored_answers(settings.database)
    assert (call.sid, "quality", "4") in stored  # the caller's own answer
    assert set(expected([7, 8])) <= set(stored)  # both whole spooled records
    assert line.store.rejected_path.read_bytes() == torn + b"\n"  # kept for a person
    assert "unreadable spool line" in caplog.text


def _append_all(database, first: int, count: int) -> None:
    spooling = ReadOnlyStore(database, KEY)
    for i in range(first, first + count):
        assert spooling.save_answer(**answer(i)) == SPOOLED
    spooling.close()


def _replay_until(database, stop) -> None:
    store = Store(database, KEY)
    while not stop.is_set():
        store.replay_spool()


def test_appends_racing_claims_across_processes_lose_nothing(tmp_path):
    """Three workers spool while two others claim and replay their files all the time."""
    database = tmp_path / "ivr.db"
    Store(database, KEY)
    stop = SPAWN.Event()
    replayers = [SPAWN.Process(target=_replay_until, args=(database, stop)) for _ in range(2)]
    each = 200
    appenders = [SPAWN.Process(target=_append_all, args=(database, n * each, each))
                 for n in range(3)]
    for process in replayers + appenders:
        process.start()
    for process in appenders:
        process.join(60)
        assert process.exitcode == 0
    stop.set()
    for process in replayers:
        process.join(60)
    store = Store(database, KEY)
    assert store.wait_for_spool()
    assert stored_answers(database) == expected(range(3 * each))
    assert applied(database) == 3 * each
    assert not store.rejected_path.exists()


def test_an_append_to_a_file_claimed_under_its_feet_is_not_lost(tmp_path, read_only,
                                                                 monkeypatch):
    """The race of the test above, made to happen: a worker has opened its spool file to
    append when a replayer claims (renames) and reads that file, before the append starts."""
    database = tmp_path / "ivr.db"
    store = Store(database, KEY)
    spooling = read_only(database)
    assert spooling.save_answer(**answer(0)) == SPOOLED
    flock, claimed = fcntl.flock, []

    def claim_first(fd, operation):
        appending = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND
        if appending and operation == fcntl.LOCK_EX and not claimed:
            claimed.append(store.replay_spool())  # another worker takes the file now
        return flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", claim_first)
    assert spooling.save_answer(**answer(1)) == SPOOLED
    monkeypatch.undo()
    assert claimed == [1]  # the file was claimed (and its first answer written) meanwhile
    assert store.wait_for_spool()
    assert stored_answers(database) == expected([0, 1])


@pytest.mark.parametrize("carrier", ["twilio", "somleng"])
def test_while_the_database_is_locked_a_caller_waits_well_under_a_second(settings, carrier,
                                                                         read_only):
    """The fast path: the first write waits at most FAST_WAIT_MS for the lock, later ones go
    straight to the spool; a replay afterwards never holds the caller up either."""
    app = create_app(settings)
    line = app.extensions["ivr"]
    call = Caller(Twilio(app), carrier=carrier).start("2").press("2").press("1")
    call.press("0105#").press("1").press("2").press("1")  # on; barber shop: the first question
    # a big spool waiting, so that the caller's last answers meet a replay in progress
    spooling = read_only(settings.database, settings.caller_key)
    for i in range(250):
        spooling.save_answer(**answer(i))
    blocker = sqlite3.connect(settings.database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    during = []
    for key, next_question in (("4", "the time the service took"),
                               ("2", "asked to pay more"), ("1", "a woman or a man")):
        began = time.monotonic()
        call.press(key)
        during.append(time.monotonic() - began)
        assert next_question in call.heard()
    blocker.execute("ROLLBACK")
    blocker.close()
    after = []
    for key in ("9", "2"):  # while the background replay writes the spool
        began = time.monotonic()
        call.press(key)
        after.append(time.monotonic() - began)
    assert "Thank you" in call.heard()
    print(f"webhooks during the lock {[round(w, 3) for w in during]} s, "
          f"during the replay {[round(w, 3) for w in after]} s")
    # Twilio waits 15 s; the caller should not notice at all: only the first request waits
    # for the lock, and not for long
    assert sum(during) < 1.0 and max(after) < 1.0, (during, after)
    assert line.store.wait_for_spool()
    answers = {q: v for sid, q, v in stored_answers(settings.database)
               if sid == call.sid}
    assert answers == {"quality": "4", "timeliness": "2", "unofficial-payment": "yes",
                       "gender": "skipped"}
