"""When SQLite is busy or broken, callers still get valid TwiML and no answer is lost."""

from __future__ import annotations

import sqlite3

import pytest

from ivr import create_app
from ivr.store import Store
from tests.caller import Caller
from tests.support import Twilio


def test_answers_given_while_the_database_is_locked_are_kept_and_stored_later(settings):
    app = create_app(settings)
    line = app.extensions["ivr"]
    line.store = Store(settings.database, settings.caller_key, busy_timeout_ms=100)
    call = Caller(Twilio(app)).start("2").press("2").press("1").press("0105")
    call.press("1").press("2").press("1")  # business licences, barber shop: the first question
    blocker = sqlite3.connect(settings.database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    call.press("4")
    assert "the time the service took" in call.heard()  # the call goes on
    assert line.store.spool_path.exists()
    blocker.execute("ROLLBACK")
    blocker.close()
    call.press("2")
    assert line.store.wait_for_spool()  # written in the background once the lock is gone
    with sqlite3.connect(settings.database) as conn:
        stored = dict(conn.execute("SELECT question, value FROM answers"))
    assert stored == {"quality": "4", "timeliness": "2"}
    assert not line.store.spool_path.exists()


@pytest.mark.parametrize("carrier", ["twilio", "somleng"])
def test_a_recording_during_a_lock_is_kept_and_the_caller_is_thanked(settings, carrier):
    app = create_app(settings)
    line = app.extensions["ivr"]
    line.store = Store(settings.database, settings.caller_key, busy_timeout_ms=100)
    call = Caller(Twilio(app), carrier=carrier).start("2").press("4").press("1").press("1")
    call.press("0105#").press("1")
    blocker = sqlite3.connect(settings.database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    call.record(20, "RE77")  # the carrier reports it twice: status callback, Record action
    assert "Your message has been recorded" in call.heard()
    assert [c.status for c in call.transcript.callbacks if c.kind == "recording"] == [200]
    spooled = line.store.spool_path.read_text()
    assert spooled.count('"recording_sid": "RE77"') == 2  # both reports were kept ...
    blocker.execute("ROLLBACK")
    blocker.close()
    assert line.store.wait_for_spool()
    with sqlite3.connect(settings.database) as conn:  # ... and name one case
        assert conn.execute("SELECT kind, recording_sid, duration_s FROM recordings"
                            ).fetchall() == [("complaint", "RE77", 20)]


class ReadOnly:
    """Makes every connection of the store refuse writes (as a read-only file or disk would:
    SQLite's 'attempt to write a readonly database'), then allows them again."""

    def __init__(self, monkeypatch, store: Store):
        self.on = False
        self.conns: list[sqlite3.Connection] = [store.db.conn]
        connect = Store._connect

        def tracked(store_self, timeout_ms):
            conn = connect(store_self, timeout_ms)
            conn.execute(f"PRAGMA query_only = {int(self.on)}")
            self.conns.append(conn)
            return conn

        monkeypatch.setattr(Store, "_connect", tracked)

    def set(self, on: bool) -> None:
        self.on = on
        for conn in self.conns:
            conn.execute(f"PRAGMA query_only = {int(on)}")


def test_a_read_only_database_spools_answers_until_it_is_writable(settings, monkeypatch):
    app = create_app(settings)
    line = app.extensions["ivr"]
    readonly = ReadOnly(monkeypatch, line.store)
    call = Caller(Twilio(app)).start("2").press("2").press("1").press("0105")
    call.press("1").press("2").press("1")
    readonly.set(True)  # SQLite now refuses every write
    call.press("5")
    assert "the time the service took" in call.heard()
    assert line.store.spool_path.read_text().count('"question": "quality"') == 1
    with sqlite3.connect(settings.database) as conn:
        assert conn.execute("SELECT count(*) FROM answers").fetchone() == (0,)
    readonly.set(False)
    call.press("4")
    assert line.store.wait_for_spool()
    with sqlite3.connect(settings.database) as conn:
        assert dict(conn.execute("SELECT question, value FROM answers")) == {
            "quality": "5", "timeliness": "4"}


def test_the_audio_folder_missing_does_not_stop_the_line(settings):
    import json
    import shutil

    (settings.audio_dir / "km").mkdir(parents=True)
    (settings.audio_dir / "km" / "a.wav").write_bytes(b"RIFF")
    app = create_app(settings)
    book = app.extensions["ivr"].book
    (settings.audio_dir / "manifest.json").write_text(json.dumps({"prompts": [{
        "key": "greeting", "lang": "km", "text": book.text("greeting", "km"),
        "file": "km/a.wav", "duration_ms": 500, "engine": "gtts"}]}))
    twilio = Twilio(app)

    def greeting() -> list:  # a new call each time; the carrier fetches what it plays
        return Caller(twilio, fetch_audio=True).start().transcript.steps[0].prompts

    assert [p.kind for p in greeting()] == ["play", "say"]
    shutil.rmtree(settings.audio_dir)
    import time

    time.sleep(1.1)  # the manifest is re-checked once a second
    prompts = greeting()  # a <Play> of a missing file would fail the carrier's fetch
    assert [p.kind for p in prompts] == ["say", "say"]
    assert "Welcome to the information line" in prompts[0].text  # said, not silent
    # requested directly: an HTTP-level check that the file itself is gone
    assert app.test_client().get("/audio/km/a.wav").status_code == 404


def test_workers_starting_together_on_a_new_database_all_start(tmp_path):
    """gunicorn starts every worker at once; each creates the schema if it is missing."""
    import multiprocessing

    path = tmp_path / "new.db"
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(8) as pool:
        pool.map(_open_store, [path] * 16)
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"calls", "events", "feedback", "answers", "recordings"} <= tables


def _open_store(path) -> None:
    Store(path, b"k")


def test_a_spool_left_by_the_previous_version_is_written_after_an_upgrade(settings):
    """The spool file of the version before (one shared file, records without an id) is
    picked up by the new line at start-up and written once."""
    import json

    from ivr.store import caller_hash

    settings.database.parent.mkdir(parents=True, exist_ok=True)
    old = settings.database.with_name(settings.database.name + ".spool.jsonl")
    record = {"_type": "answer", "sid": "CA" + "5" * 32,
              "caller_hash": caller_hash(settings.caller_key, "+85512345678"),
              "office": "ou-chrov", "service": "barber-2-4-chairs", "lang": "en",
              "question": "quality", "value": "3", "stamp": "2026-12-01T10:00:00+00:00"}
    old.write_text(json.dumps(record) + "\n")
    line = create_app(settings).extensions["ivr"]
    assert line.store.wait_for_spool()
    assert not old.exists()
    with sqlite3.connect(settings.database) as conn:
        assert conn.execute("SELECT f.call_sid, a.question, a.value FROM answers a JOIN "
                            "feedback f ON f.id = a.feedback_id").fetchall() == [
            ("CA" + "5" * 32, "quality", "3")]
