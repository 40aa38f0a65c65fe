"""When SQLite is busy or broken, callers still get valid TwiML and no answer is lost."""

from __future__ import annotations

import sqlite3

from ivr import create_app
from ivr.store import Store
from tests.conftest import Caller, Twilio


def test_answers_given_while_the_database_is_locked_are_kept_and_stored_later(settings):
    app = create_app(settings)
    line = app.extensions["ivr"]
    line.store = Store(settings.database, settings.caller_key, busy_timeout_ms=100)
    call = Caller(Twilio(app)).start("2").press("2").press("1").press("0105")
    call.press("2").press("1")  # business licences, barber shop: the first question
    blocker = sqlite3.connect(settings.database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    call.press("4")
    assert "the time the service took" in call.heard()  # the call goes on
    assert line.store.spool_path.exists()
    blocker.execute("ROLLBACK")
    blocker.close()
    call.press("2")
    with sqlite3.connect(settings.database) as conn:
        stored = dict(conn.execute("SELECT question, value FROM answers"))
    assert stored == {"quality": "4", "timeliness": "2"}
    assert not line.store.spool_path.exists()


def test_a_recording_during_a_lock_is_kept_and_the_caller_is_thanked(settings):
    app = create_app(settings)
    line = app.extensions["ivr"]
    line.store = Store(settings.database, settings.caller_key, busy_timeout_ms=100)
    call = Caller(Twilio(app)).start("2").press("4").press("1").press("1").press("0105")
    blocker = sqlite3.connect(settings.database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    call.record(20, "RE77")
    assert "Your message has been recorded" in call.heard()
    blocker.execute("ROLLBACK")
    blocker.close()
    assert line.store.replay_spool() == 1
    with sqlite3.connect(settings.database) as conn:
        assert conn.execute("SELECT kind, recording_sid FROM recordings").fetchall() == [
            ("complaint", "RE77")]
