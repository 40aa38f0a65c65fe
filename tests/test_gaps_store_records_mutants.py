"""The records of ivr/store.py where mutation testing found nothing watching: one caller is
one pseudonym however the carrier writes the number (and withheld numbers share the day's
lookup limit), a recording named by a URL with a trailing slash, the durations a carrier
reports, call ends and follow-ups kept through a lock, call steps dropped while the database
is locked (and the log that says so), the caller of a recording whose call has none, a
case's closing time, the case lookup when two calls race or the database cannot be read or
written, a reply's file or prompt, and the day in Cambodia."""

from __future__ import annotations

import calendar
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from ivr.store import (
    Reply,
    Store,
    caller_hash,
    cambodia_day,
    e164,
    recording_duration,
)
from tests.support import RECORDING_URL, wait_until

KEY = b"test-caller-key"  # the tests' settings
NUMBER = "+85512777888"
SOMLENG = "https://api.somleng.org/2010-04-01/Accounts/4f1c/Calls/0b6e/Recordings/"


def rows(path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, args).fetchall()


def lock_out(path) -> sqlite3.Connection:
    """Another process holds the write lock (until its ROLLBACK)."""
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    return blocker


def release(blocker: sqlite3.Connection) -> None:
    blocker.execute("ROLLBACK")
    blocker.close()


def damage(path, table: str) -> None:
    """The table can no longer be read (as a damaged database's would not be)."""
    with sqlite3.connect(path) as conn:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_damaged")


def complaint(store: Store, sid: str = "CA1", caller: str = NUMBER, **changes) -> str | None:
    """A complaint about Poipet, as the Record action reports it; its reference."""
    fields = dict(sid=sid, caller=caller, kind="complaint", lang="en", office="poipet",
                  service="", topic="other", recording_sid="RE" + sid,
                  recording_url=RECORDING_URL, duration_s=20)
    return store.save_recording(**{**fields, **changes})


@pytest.fixture
def store(tmp_path):
    opened = Store(tmp_path / "ivr.db", KEY, busy_timeout_ms=100)
    yield opened
    opened.close()


# --- callers' numbers --------------------------------------------------------------------


def test_a_foreign_number_written_with_a_plus_is_not_taken_for_a_cambodian_one():
    """+500 12345 (eight digits, Falklands) is that number, not the Cambodian 050 012 345."""
    assert e164("+500 12345") == "+50012345"
    assert caller_hash(KEY, "+500 12345") != caller_hash(KEY, "050 012 345")


def test_a_cambodian_number_whose_digits_start_855_is_one_caller_however_written():
    """085 512 345 keyed without its trunk 0 starts with 855, like the country code, yet it
    is eight digits: the same caller as with the 0 or the country code."""
    written = ["085 512 345", "85512345", "+855 85 512 345", "00855 85 512 345"]
    assert {e164(n) for n in written} == {"+85585512345"}
    assert len({caller_hash(KEY, n) for n in written}) == 1


def test_a_nine_digit_national_number_without_its_trunk_zero_is_cambodian():
    written = ["096 123 4567", "96 123 4567", "+855 96 123 4567"]
    assert {e164(n) for n in written} == {"+855961234567"}
    assert len({caller_hash(KEY, n) for n in written}) == 1


def test_a_foreign_number_written_without_a_plus_keeps_its_country_and_its_caller():
    assert e164("1 202 555 0123") == e164("+1 202 555 0123") == "+12025550123"
    hashed = caller_hash(KEY, "1 202 555 0123")
    assert hashed and hashed == caller_hash(KEY, "+1 202 555 0123")


def test_withheld_numbers_share_one_daily_limit_of_wrong_references(store):
    """2 + 2 + 1 wrong references in three calls from withheld numbers reach the day's limit
    of 5: a withheld number cannot dial through references one call at a time."""
    for sid, wrong in (("CA1", 2), ("CA2", 2)):
        for _ in range(wrong):
            assert store.lookup_case(sid, "anonymous", "555555") == "wrong"
    assert store.lookup_case("CA3", "", "555555") == "refused"
    assert store.lookup_state("CA4", "anonymous") == "refused"
    assert store.lookup_state("CA4", NUMBER) == "open"  # a known number has its own count


# --- recordings ---------------------------------------------------------------------------


def test_a_recording_url_with_a_trailing_slash_names_the_same_recording_as_its_callback(
        store, tmp_path):
    """Somleng's action has only the URL; its status callback the id: one case, not two."""
    first = complaint(store, recording_sid="", recording_url=f"{SOMLENG}0f3a-77/")
    second = complaint(store, caller="", recording_sid="0f3a-77",
                       recording_url=f"{SOMLENG}0f3a-77")
    assert first and first == second
    assert rows(tmp_path / "ivr.db", "SELECT recording_sid FROM recordings") == [("0f3a-77",)]


def test_a_long_message_keeps_its_length():
    """A two-minute complaint is reported as 120 seconds, and kept so."""
    assert recording_duration("120") == 120
    assert recording_duration("3600") == 3600


@pytest.mark.parametrize("junk", ["99999999999999999999", "-4"])
def test_a_junk_duration_is_dropped_and_the_case_still_made(store, tmp_path, junk):
    """A duration no recording has is no duration: the case is made from its URL, and a
    huge number never reaches SQLite (which cannot store it)."""
    reference = complaint(store, duration_s=recording_duration(junk))
    assert reference
    assert rows(tmp_path / "ivr.db", "SELECT reference, duration_s FROM recordings") == [
        (reference, None)]


def test_a_case_s_received_time_is_utc_in_iso_8601(store):
    """The line says the day a case was received from it (status.received_on)."""
    reference = complaint(store)
    received = datetime.fromisoformat(store.case_summary(reference).created_at)
    assert received.utcoffset() == timedelta(0)
    assert abs(received - datetime.now(timezone.utc)) < timedelta(minutes=5)


@pytest.mark.parametrize("situation", ["withheld", "no call row", "no call sid"])
def test_a_recording_reported_without_a_caller_has_no_pseudonym(store, tmp_path, situation):
    """The status callback has no From: the call's row gives the caller, and where it has
    none (a withheld number, or no row at all) the case has none either (never NULL or a
    made-up pseudonym that every such case would share)."""
    sid = "" if situation == "no call sid" else "CA1"
    if situation == "withheld":
        store.record_step(sid, "anonymous", "en", "main", None, "enter")
    assert complaint(store, sid=sid, caller="")
    assert rows(tmp_path / "ivr.db", "SELECT caller_hash FROM recordings") == [("",)]


def test_a_case_is_still_made_when_the_call_s_row_cannot_be_read(store, tmp_path):
    """Only the caller's pseudonym is missing then (empty, not NULL or made up)."""
    store.record_step("CA1", NUMBER, "en", "main", None, "enter")
    damage(tmp_path / "ivr.db", "calls")
    assert complaint(store, caller="")
    assert rows(tmp_path / "ivr.db", "SELECT caller_hash FROM recordings") == [("",)]


# --- what a lock does to calls and follow-ups ---------------------------------------------


def test_each_step_of_a_call_is_logged_with_what_was_keyed(store, tmp_path):
    """The funnel: where callers went and what they keyed, step by step."""
    store.record_step("CA1", NUMBER, "en", "main", None, "enter")
    store.record_step("CA1", NUMBER, "en", "main", "5", "press")
    assert rows(tmp_path / "ivr.db", "SELECT call_sid, node, digits, event FROM events "
                "ORDER BY id") == [("CA1", "main", None, "enter"), ("CA1", "main", "5", "press")]
    assert rows(tmp_path / "ivr.db", "SELECT caller_hash FROM calls") == [
        (caller_hash(KEY, NUMBER),)]


def test_call_steps_dropped_while_the_database_is_locked_are_counted_in_the_log(
        store, tmp_path, caplog):
    """A step that could not be written blocks writes for a moment (the caller does not wait
    again), and the log says how many steps were not recorded once the database is back."""
    blocker = lock_out(tmp_path / "ivr.db")
    store.record_step("CA1", NUMBER, "en", "main", None, "enter")  # fails: the lock
    store.record_step("CA1", NUMBER, "en", "main", "1", "press")  # not even tried
    release(blocker)
    assert wait_until(lambda: "database writable again" in caplog.text, 5)
    assert "0 records were spooled, 2 call steps were not recorded" in caplog.text
    assert rows(tmp_path / "ivr.db", "SELECT count(*) FROM events") == [(0,)]


def test_a_call_end_reported_during_a_lock_is_stored_later(store, tmp_path):
    store.record_step("CA1", NUMBER, "en", "main", None, "enter")
    blocker = lock_out(tmp_path / "ivr.db")
    store.close_call("CA1", NUMBER, "completed", 42)
    release(blocker)
    assert store.wait_for_spool()
    assert rows(tmp_path / "ivr.db", "SELECT status, duration_s, ended_at IS NOT NULL FROM "
                "calls WHERE sid = 'CA1'") == [("completed", 42, 1)]
    assert not store.rejected_path.exists()


def follow_up(store: Store, reference: str, seconds: int | None) -> str | None:
    return store.save_followup(sid="CA2", caller=NUMBER, reference=reference, lang="en",
                               recording_sid="REfollow", recording_url=RECORDING_URL + "f",
                               duration_s=seconds)


def test_a_follow_up_left_during_a_lock_is_stored_later(store, tmp_path):
    reference = complaint(store)
    blocker = lock_out(tmp_path / "ivr.db")
    follow_up(store, reference, 15)
    release(blocker)
    assert store.wait_for_spool()
    assert rows(tmp_path / "ivr.db", "SELECT reference, duration_s FROM case_followups") == [
        (reference, 15)]
    assert not store.rejected_path.exists()


def test_a_silent_follow_up_is_not_kept(store, tmp_path):
    """Somleng reports an empty recording with duration 0: nothing to listen to."""
    reference = complaint(store)
    assert follow_up(store, reference, 0) is None
    assert rows(tmp_path / "ivr.db", "SELECT count(*) FROM case_followups") == [(0,)]


# --- cases and their lookup ---------------------------------------------------------------


def test_closing_a_case_starts_its_retention_clock_once_and_reopening_clears_it(app, settings):
    """Retention counts from closed_at: set when the case is closed, kept when its note is
    edited while closed, cleared when it is opened again."""
    store = app.extensions["ivr"].store
    reference = complaint(store)

    def closed_at() -> str | None:
        return rows(settings.database, "SELECT closed_at FROM recordings")[0][0]

    assert store.set_case_status(reference, "closed", "settled")
    assert closed_at() is not None
    store.db.execute("UPDATE recordings SET closed_at = '2026-01-01T00:00:00+00:00'")
    assert store.set_case_status(reference, "closed", "settled; the office paid back")
    assert closed_at() == "2026-01-01T00:00:00+00:00"
    assert store.set_case_status(reference, "reviewed", "opened again")
    assert closed_at() is None


def test_a_reference_keyed_after_another_call_from_the_phone_took_the_last_try_is_refused(
        store):
    """Two calls from one phone at once: the lookup was open when the second call asked,
    but the first call's third wrong reference reached the limit before the second call's
    reference was keyed. It is refused, not looked up (and not said to be unavailable)."""
    reference = complaint(store)
    assert store.lookup_state("CA-b", NUMBER) == "open"
    for _ in range(3):
        store.lookup_case("CA-a", NUMBER, "555555")
    assert store.lookup_case("CA-b", NUMBER, reference) == "refused"
    assert not store.looked_up("CA-b", reference)


def test_a_lookup_that_cannot_be_written_is_logged(store, tmp_path, caplog):
    reference = complaint(store)
    blocker = lock_out(tmp_path / "ivr.db")
    try:
        assert store.lookup_case("CA1", NUMBER, reference) == "unavailable"
    finally:
        release(blocker)
    assert "case lookup unavailable" in caplog.text
    assert not store.looked_up("CA1", reference)


def test_when_the_lookups_cannot_be_read_no_case_is_said_and_the_log_says_why(
        store, tmp_path, caplog):
    reference = complaint(store)
    assert store.lookup_case("CA1", NUMBER, reference) == "found"
    damage(tmp_path / "ivr.db", "case_lookups")
    assert store.lookup_state("CA1", NUMBER) == "unavailable"
    assert "case lookup unavailable" in caplog.text
    assert store.looked_up("CA1", reference) is False  # nothing to say about the case


def test_a_request_without_a_call_sid_is_never_told_a_case(store):
    """A lookup counted under an empty call sid does not open the case to every request
    that has none."""
    reference = complaint(store)
    assert store.lookup_case("", NUMBER, reference) == "found"
    assert store.looked_up("", reference) is False


def test_a_reply_names_its_file_or_its_prompt_and_not_the_other(store):
    """What the line plays: a recorded reply's file, a standard reply's prompt."""
    recorded, standard = complaint(store, "CA1"), complaint(store, "CA2")
    rid = store.add_reply(recorded, "recorded", file="reply-1.wav", duration_ms=1500, by="ana")
    assert store.case_summary(recorded).reply == Reply(rid, "recorded", None, "reply-1.wav")
    sid = store.add_reply(standard, "standard", prompt_key="reply.standard.received", by="ana")
    assert store.case_summary(standard).reply == Reply(sid, "standard",
                                                       "reply.standard.received", None)


def test_cambodia_s_day_turns_at_its_midnight_which_is_17_00_utc():
    """The daily limit of wrong references ends at midnight in Cambodia (UTC+7)."""
    evening = calendar.timegm((2026, 12, 3, 16, 59, 59))
    assert cambodia_day(evening) == "2026-12-03"  # 23:59:59 in Phnom Penh
    assert cambodia_day(evening + 1) == "2026-12-04"  # midnight
    assert cambodia_day(calendar.timegm((2026, 12, 3, 0, 30, 0))) == "2026-12-03"
