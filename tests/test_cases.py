"""Complaints and the District Ombudsman: recordings become cases with a reference, the
Ombudsman is dialled only during hours (Cambodian time), every dial outcome is handled."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
import uuid
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from lxml import etree

from ivr import create_app
from ivr.cases import is_open
from ivr.catalog import load_catalog
from ivr.cli import main as cli
from ivr.simulate import RecordPrompt
from ivr.store import new_reference
from tests.caller import Caller
from tests.support import ROOT, Twilio, with_ombudsman

MONDAY_10AM = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)  # 10:00 in Phnom Penh
MONDAY_6PM = datetime(2026, 11, 23, 11, 0, tzinfo=timezone.utc)  # 18:00 in Phnom Penh
SATURDAY_10AM = datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc)
HOURS = '{days: [mon, tue, wed, thu, fri], open: "07:30", close: "17:00"}'
CARRIERS = ["twilio", "somleng"]


def db_rows(settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute(sql).fetchall()


def count_cases(settings) -> int:
    return db_rows(settings, "SELECT count(*) FROM recordings")[0][0]


def references_heard(call: Caller) -> list[str]:
    """The reference numbers read back (digit by digit) since the last key press."""
    return [digits.replace(" ", "") for digits in
            re.findall(r"Your reference number is((?: \d)+)", call.heard())]


def check_caller_hash(settings, call: Caller) -> None:
    """Every case of the call carries the caller hash of the call's own row, never ''."""
    ((hashed,),) = db_rows(settings, f"SELECT caller_hash FROM calls WHERE sid = '{call.sid}'")
    assert hashed and len(hashed) == 32
    cases = db_rows(settings, "SELECT caller_hash FROM recordings")
    assert cases and all(row == (hashed,) for row in cases), cases


def to_complaint_recording(call: Caller) -> Caller:
    """Main menu (English): complaint, unofficial fee, by office code, Ou Chrov."""
    return call.press("4").press("1").press("1").press("0105#").press("1")


def to_ombudsman_recording(call: Caller) -> Caller:
    """Ombudsman, by code, Ou Chrov (no published number): leave a voice message."""
    call.press("3").press("1").press("0105#").press("1")
    assert "cannot put you through" in call.heard()
    return call.press("1")


def to_comment_recording(call: Caller) -> Caller:
    """Rate, by code, Ou Chrov, business licences, barber shop; four answers; a comment."""
    call.press("2").press("1").press("0105#").press("1").press("2").press("1")
    call.press("3").press("3").press("2").press("2")
    assert "short comment" in call.heard()
    return call.press("1")


RECORDING_ROUTES = {"complaint": to_complaint_recording,
                    "ombudsman-message": to_ombudsman_recording,
                    "comment": to_comment_recording}


@pytest.fixture
def staffed(settings, tmp_path):
    """The bundled catalogue with Ou Chrov's Ombudsman number and hours filled in, and a
    public holiday on Tuesday 24 November 2026."""
    text = with_ombudsman((ROOT / "catalog.yaml").read_text(encoding="utf-8"), hours=HOURS)
    text = text.replace("public_holidays: []", "public_holidays: [2026-11-24]")
    path = tmp_path / "staffed.yaml"
    path.write_text(text, encoding="utf-8")
    return settings.__class__(**{**settings.__dict__, "catalog": path,
                                 "caller_id": "+85523000000"})


def app_at(settings, moment: datetime):
    app = create_app(settings)
    app.extensions["ivr"].clock = lambda: moment
    return app


def to_ombudsman(call: Caller) -> Caller:
    return call.press("3").press("1").press("0105").press("1")


# --- complaints ---------------------------------------------------------------------------


def test_complaint_is_recorded_with_a_case_reference(twilio, settings):
    call = Caller(twilio).start("2").press("4")
    assert "What is your complaint" in call.heard()
    call.press("1").press("1").press("0110").press("1")  # unofficial fee, at Poipet
    assert "administrators of this line will listen" in call.heard()
    assert "up to 2 minutes" in call.heard() and "120 seconds" not in call.heard()
    record = call.doc.find("Record")
    assert record.get("maxLength") == "120" and record.get("finishOnKey") == "#"
    assert "kind=complaint" in record.get("recordingStatusCallback")
    call.record(34, "RE100")
    ((reference, kind, topic, office, lang, duration, sid, url, status),) = db_rows(
        settings, "SELECT reference, kind, topic, office_id, lang, duration_s, recording_sid, "
        "recording_url, status FROM recordings")
    assert (kind, topic, office, lang, duration, sid, status) == (
        "complaint", "unofficial-fee", "poipet", "en", 34, "RE100", "new")
    assert url.endswith("RE100") and len(reference) == 6 and reference.isdigit()
    assert references_heard(call) == [reference]
    call.press("1")  # hear it again
    assert references_heard(call) == [reference]


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("kind", ["complaint", "ombudsman-message"])
def test_empty_recording_makes_no_case_and_offers_a_retry(twilio, settings, caplog, carrier,
                                                          kind):
    """Twilio skips the Record action for an empty recording (the Redirect after it runs);
    Somleng posts it with RecordingDuration=0. Either way: no case, and a second try."""
    caplog.set_level(logging.INFO, logger="ivr")
    call = RECORDING_ROUTES[kind](Caller(twilio, carrier=carrier).start("2"))
    assert isinstance(call.waiting, RecordPrompt)
    call.record(0)
    assert "did not receive a message" in call.heard() and "To try again" in call.heard()
    assert count_cases(settings) == 0
    if carrier == "somleng":  # the action came, with duration 0: seen and refused
        assert "empty recording" in caplog.text
        assert any(event == "recorded-empty" for (event,) in db_rows(
            settings, "SELECT event FROM events"))
    else:
        assert any(node.endswith("/empty") for (node,) in db_rows(
            settings, "SELECT node FROM events"))
    call.press("1")
    assert isinstance(call.waiting, RecordPrompt)
    assert "Only the Ombudsman of that district" in call.heard()
    call.record(8)
    assert count_cases(settings) == 1
    ((reference,),) = db_rows(settings, "SELECT reference FROM recordings")
    assert references_heard(call) == [reference]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_recording_callback_after_hang_up_still_makes_the_case(twilio, settings, carrier):
    """The caller hangs up while recording: the action's TwiML goes unheard, the recording
    status callback comes after the call has ended."""
    call = Caller(twilio, carrier=carrier, recording_callback="late").start("2")
    call.press("4").press("3").press("1").press("0203").press("1")
    call.record(20, end="hangup")
    assert call.ended and call.transcript.ended_by == "caller"
    assert [c.kind for c in call.transcript.callbacks] == ["status", "recording"]
    assert db_rows(settings, "SELECT kind, topic, office_id, duration_s FROM recordings") == [
        ("complaint", "staff-behaviour", "battambang", 20)]
    check_caller_hash(settings, call)


def test_recording_callback_before_the_action_gives_one_case(twilio, settings):
    call = Caller(twilio, recording_callback="before").start("2")
    call.press("4").press("1").press("1").press("0105").press("1")
    call.record(9, "RE8")
    callbacks = call.transcript.callbacks
    assert [c.kind for c in callbacks] == ["recording"]  # before the action, mid-call
    rows = db_rows(settings, "SELECT reference, recording_sid FROM recordings")
    assert len(rows) == 1 and rows[0][1] == "RE8"
    assert references_heard(call) == [rows[0][0]]


# One case per recording, whichever report of it comes first, on both carriers: Twilio sends
# RecordingSid to the action and the callback; Somleng's action has only RecordingUrl and
# RecordingDuration, its callback (no From) the RecordingSid that ends that URL.
SOMLENG_CALL = "4f7b2c1e-9a0d-4c55-8e3b-2d6f1a9c7e10"


def new_recording_sid(carrier: str) -> str:
    return "RE" + uuid.uuid4().hex if carrier == "twilio" else str(uuid.uuid4())


@pytest.mark.parametrize("order", ["before", "after", "late"])
@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("kind", ["complaint", "ombudsman-message", "comment"])
def test_each_recording_makes_one_case_and_the_caller_hears_its_reference(
        twilio, settings, kind, carrier, order):
    call = RECORDING_ROUTES[kind](Caller(twilio, carrier=carrier,
                                         recording_callback=order).start("2"))
    recording = new_recording_sid(carrier)
    call.record(14, recording)
    heard = references_heard(call)
    call.hangup()  # the status callback, then a late recording callback
    assert sorted(c.kind for c in call.transcript.callbacks) == ["recording", "status"]
    rows = db_rows(settings, "SELECT kind, office_id, recording_sid, duration_s, call_sid, "
                   "reference FROM recordings")
    assert len(rows) == 1, rows
    ((stored_kind, office, sid, duration, call_sid, reference),) = rows
    assert (stored_kind, office, sid, duration, call_sid) == (
        kind, "ou-chrov", recording, 14, call.sid)
    if kind == "comment":  # the comment is a case under the rating's own reference
        assert db_rows(settings, "SELECT reference FROM feedback") == [(reference,)]
    assert heard == [reference]
    check_caller_hash(settings, call)


def test_a_rating_and_a_case_never_share_a_reference(settings, monkeypatch):
    """References are drawn at random per table; the second draw of a number already used
    by the other table is refused and drawn again (a caller's reference finds one thing)."""
    from ivr import store as store_module
    from ivr.store import Store

    draws = iter(["111111", "111111", "222222"])
    monkeypatch.setattr(store_module, "new_reference", lambda: next(draws))
    store = Store(settings.database, b"k")
    case = store.save_recording(sid="CA1", caller="+85512000001", kind="complaint", lang="en",
                                office="ou-chrov", service="", topic="other",
                                recording_sid="RE1", recording_url="", duration_s=9)
    rating = store.save_answer("CA2", "+85512000002", "ou-chrov", "barber", "en", "quality",
                               "4")
    assert (case, rating) == ("111111", "222222")


def test_somleng_recording_action_then_callback_make_one_case(twilio, settings):
    call = Caller(twilio, sid=SOMLENG_CALL, carrier="somleng", recording_callback="after")
    call.start("2").press("4").press("1").press("1").press("0105").press("1")
    call.record(0)  # an empty recording: Somleng still calls the action, with duration 0
    assert "did not receive a message" in call.heard()
    call.press("1")
    recording = "9e8d7c6b-5a49-4838-a716-151413121110"
    call.record(14, recording)
    action = call.transcript.steps[-1]
    assert "RecordingSid" not in action.params and action.params["RecordingDuration"] == "14"
    assert action.params["RecordingUrl"].endswith("/Recordings/" + recording)
    (callback,) = [c for c in call.transcript.callbacks if c.kind == "recording"]
    assert "From" not in callback.params and callback.status == 200
    ((reference, sid, hashed, duration),) = db_rows(
        settings, "SELECT reference, recording_sid, caller_hash, duration_s FROM recordings")
    assert (sid, duration) == (recording, 14)
    assert references_heard(call) == [reference]
    assert db_rows(settings, f"SELECT caller_hash FROM calls WHERE sid = '{SOMLENG_CALL}'") == [
        (hashed,)] and len(hashed) == 32


def test_somleng_callback_before_the_action_gives_one_case(twilio, settings):
    call = Caller(twilio, sid=SOMLENG_CALL, carrier="somleng", recording_callback="before")
    call.start("2").press("4").press("2").press("1").press("0203").press("1")
    recording = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
    call.record(9, recording)
    (callback,) = call.transcript.callbacks  # mid-call, before the action
    assert callback.kind == "recording" and "From" not in callback.params
    ((reference, sid, hashed, office),) = db_rows(
        settings, "SELECT reference, recording_sid, caller_hash, office_id FROM recordings")
    assert (sid, office) == (recording, "battambang")
    assert references_heard(call) == [reference]  # the case the callback made
    assert db_rows(settings, "SELECT caller_hash FROM calls") == [(hashed,)] and hashed


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("purpose", ["complaint", "rate"])
def test_an_office_code_keyed_slowly_reaches_that_office(twilio, settings, carrier, purpose):
    """2.5 s between keys and no '#': Somleng ends the Gather after 2 s with the keys so
    far, Twilio waits its timeout; either way the caller gets to office 0105 (Ou Chrov)."""
    call = Caller(twilio, carrier=carrier).start("2")
    if purpose == "complaint":
        call.press("4").press("1").press("1").press("0105@2.5")
        assert "You chose Ou Chrov District." in call.heard()
        call.silence()  # waiting goes on
        assert "Only the Ombudsman of that district" in call.heard()
        assert "no office has that code" not in call.heard()
        assert isinstance(call.waiting, RecordPrompt) and "o=ou-chrov" in call.waiting.action
        call.record(10)
        assert db_rows(settings, "SELECT kind, office_id FROM recordings") == [
            ("complaint", "ou-chrov")]
    else:
        call.press("1").press("2").press("1").press("2")  # barber shop: rate this service
        call.press("1").press("0105@2.5")
        assert "You chose Ou Chrov District." in call.heard()
        call.press("1")
        assert "quality" in call.heard() and "very satisfied" in call.heard()
        assert "no office has that code" not in call.heard()
        call.press("4")
        assert db_rows(settings, "SELECT office_id, service_id FROM feedback") == [
            ("ou-chrov", "barber-2-4-chairs")]
    if carrier == "somleng":  # it did come in pieces
        assert any("k=010" in step.url for step in call.transcript.steps)


SOMLENG_URL = ("https://api.somleng.org/2010-04-01/Accounts/0b9d5c1e-6d4f-4e1a-9a3b-7c2e8f"
               "1d0a42/Calls/" + SOMLENG_CALL + "/Recordings/{}")


def test_a_recording_is_named_alike_by_the_action_and_the_callback():
    from ivr.store import has_sound, recording_identity

    url = SOMLENG_URL.format("ab-12")
    assert recording_identity("", url) == recording_identity("ab-12", url) == "ab-12"
    assert recording_identity("", url + ".mp3") == "ab-12"
    assert recording_identity("", "") == ""
    assert recording_identity("", "https://x.example/rec") == "https://x.example/rec"
    assert has_sound(None, url) and not has_sound(0, url) and not has_sound(None, "")


def test_references_are_unique_and_reveal_no_order():
    refs = [new_reference() for _ in range(2000)]
    assert all(len(r) == 6 and r.isdigit() for r in refs)
    assert len(set(refs)) > 1990  # random, and the database makes them unique
    assert refs != sorted(refs)


# --- the Ombudsman ------------------------------------------------------------------------


def dial_step(call: Caller):
    """The document with the <Dial> among those fetched since the last key press."""
    (step,) = [step for step in call.steps if step.dial is not None]
    return step


def test_during_hours_the_line_says_who_and_dials(staffed):
    call = to_ombudsman(Caller(Twilio(app_at(staffed, MONDAY_10AM)), dial_outcome="no-answer")
                        .start("2"))
    assert "Ombudsman's office of Ou Chrov District" in call.heard()
    step = dial_step(call)
    assert step.dial.numbers == ["+85512000999"] and step.dial.caller_id == "+85523000000"
    assert step.dial.action.startswith("http://localhost/voice/en/ombudsman/dialled")
    assert int(etree.fromstring(step.twiml.encode()).find("Dial").get("timeout")) <= 30


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("status, heard", [
    ("busy", "line is busy"), ("no-answer", "Nobody answered"),
    ("failed", "could not be connected"), ("canceled", "was cancelled")])
def test_every_failed_dial_offers_a_voice_message(staffed, status, heard, carrier):
    app = app_at(staffed, MONDAY_10AM)
    call = to_ombudsman(Caller(Twilio(app), carrier=carrier, dial_outcome=status).start("2"))
    assert dial_step(call).dial.status == status
    assert heard in call.heard() and "leave a voice message" in call.heard()
    call.press("1")
    assert "Only the Ombudsman of that district" in call.heard()
    call.record(15)
    ((kind, office, reference),) = db_rows(staffed, "SELECT kind, office_id, reference "
                                           "FROM recordings")
    assert (kind, office) == ("ombudsman-message", "ou-chrov")
    assert references_heard(call) == [reference]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_completed_dial_ends_the_call_politely(staffed, carrier):
    call = to_ombudsman(Caller(Twilio(app_at(staffed, MONDAY_10AM)), carrier=carrier,
                               dial_outcome="completed", dial_seconds=300).start("2"))
    assert dial_step(call).dial.status == "completed"
    assert "Goodbye" in call.heard() and call.doc.find("Hangup") is not None
    assert call.ended and call.transcript.ended_by == "hangup"


@pytest.mark.parametrize("moment", [MONDAY_6PM, SATURDAY_10AM,
                                    datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)])
def test_outside_hours_or_on_a_holiday_no_dial(staffed, moment):
    call = to_ombudsman(Caller(Twilio(app_at(staffed, moment))).start("2"))
    assert call.doc.find("Dial") is None
    assert "closed now" in call.heard() and "leave a voice message" in call.heard()


def test_unpublished_number_is_never_dialled(twilio):
    call = to_ombudsman(Caller(twilio).start("2"))
    assert call.doc.find("Dial") is None and "cannot put you through" in call.heard()


def test_hours_are_cambodian_whatever_the_server_zone(staffed, monkeypatch):
    hours = load_catalog(staffed.catalog).office("ou-chrov").ombudsman.hours
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        assert is_open(hours, frozenset(), MONDAY_10AM)
        assert not is_open(hours, frozenset(), MONDAY_6PM)
        # 07:29 and 07:30 in Phnom Penh are 00:29 and 00:30 UTC
        assert not is_open(hours, frozenset(), datetime(2026, 11, 23, 0, 29, tzinfo=timezone.utc))
        assert is_open(hours, frozenset(), datetime(2026, 11, 23, 0, 30, tzinfo=timezone.utc))
        # Sunday 23:30 UTC is already Monday 06:30 in Phnom Penh: not yet open
        assert not is_open(hours, frozenset(), datetime(2026, 11, 22, 23, 30, tzinfo=timezone.utc))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert os.environ.get("TZ") is None


def test_ivr_report_lists_cases(twilio, settings, monkeypatch):
    call = Caller(twilio).start("2").press("4").press("5").press("1").press("0802").press("1")
    call.record(10, "RE1")
    monkeypatch.setenv("IVR_DATABASE", str(settings.database))
    result = CliRunner().invoke(cli, ["report", "--cases"])
    assert result.exit_code == 0 and "kien-svay" in result.output and "other" in result.output


def test_recordings_are_not_served_publicly(app, twilio):
    call = Caller(twilio).start("2").press("4").press("5").press("1").press("0802").press("1")
    call.record(10, "RE1")
    client = app.test_client()
    for path in ("/recordings/RE1", "/audio/RE1.wav", "/voice/recording"):
        assert client.get(path).status_code in (403, 404, 405)


class LostRecordAction:
    """A carrier whose Record action never reaches the line (lost with the caller's hang-up,
    say): the recording status callback alone must make the whole case."""

    def __init__(self, transport):
        self.transport = transport

    def post(self, url, params, headers):
        from ivr.simulate import PostReply

        if "/recorded" in url.split("?")[0]:
            return PostReply(200, "<Response/>", "text/xml")
        return self.transport.post(url, params, headers)

    def get(self, url, headers=None):
        return self.transport.get(url, headers)


CASE_OF = {"complaint": ("unofficial-fee", ""), "ombudsman-message": ("", ""),
           "comment": ("", "barber-2-4-chairs")}


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("kind", ["complaint", "ombudsman-message", "comment"])
def test_a_message_over_60_s_then_a_hang_up_is_a_whole_case_from_the_callback_alone(
        twilio, settings, kind, carrier):
    """A caller speaks for 75 s and hangs up; only the recording status callback arrives.
    The case has everything an administrator needs: kind, call, caller, language, office,
    topic or service, the whole duration and the recording's URL."""
    caller = Caller(twilio, carrier=carrier, recording_callback="late")
    caller.sim.transport = LostRecordAction(caller.sim.transport)
    call = RECORDING_ROUTES[kind](caller.start("2"))
    assert isinstance(call.waiting, RecordPrompt)
    longest = call.waiting.max_length  # comments stop at 60 s, messages at 120 s
    call.record(75, end="hangup")
    (callback,) = [c for c in call.transcript.callbacks if c.kind == "recording"]
    assert callback.status == 200
    topic, service = CASE_OF[kind]
    assert db_rows(settings, "SELECT kind, call_sid, lang, office_id, topic, service_id, "
                   "duration_s, recording_url, status FROM recordings") == [
        (kind, call.sid, "en", "ou-chrov", topic, service, min(75, longest),
         callback.params["RecordingUrl"], "new")]
    check_caller_hash(settings, call)
    ((reference,),) = db_rows(settings, "SELECT reference FROM recordings")
    assert reference.isdigit() and len(reference) == 6


def test_a_recording_that_failed_is_no_case(twilio, settings):
    """The carrier reports a recording it could not make (RecordingStatus failed)."""
    call = Caller(twilio).start("2")
    reply = twilio.post("/voice/recording?kind=complaint&lang=en&o=ou-chrov&t=unofficial-fee",
                        {"CallSid": call.sid, "RecordingSid": "RE" + "f" * 32,
                         "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/"
                         "Recordings/RE" + "f" * 32, "RecordingStatus": "failed",
                         "RecordingDuration": "30"})
    assert reply.status_code == 200
    assert count_cases(settings) == 0
