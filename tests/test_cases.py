"""Complaints and the District Ombudsman: recordings become cases with a reference, the
Ombudsman is dialled only during hours (Cambodian time), every dial outcome is handled."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from ivr import create_app
from ivr.cases import is_open
from ivr.catalog import load_catalog
from ivr.cli import main as cli
from ivr.store import new_reference
from tests.caller import Caller
from tests.support import ROOT, Twilio

MONDAY_10AM = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)  # 10:00 in Phnom Penh
MONDAY_6PM = datetime(2026, 11, 23, 11, 0, tzinfo=timezone.utc)  # 18:00 in Phnom Penh
SATURDAY_10AM = datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc)
HOURS = '{days: [mon, tue, wed, thu, fri], open: "07:30", close: "17:00"}'


def db_rows(settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def staffed(settings, tmp_path):
    """The bundled catalogue with Ou Chrov's Ombudsman number and hours filled in, and a
    public holiday on Tuesday 24 November 2026."""
    text = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "    ombudsman:\n      phone: PLACEHOLDER (not published)\n"
        "      hours: PLACEHOLDER (not published)",
        f'    ombudsman:\n      phone: "+85512000999"\n      hours: {HOURS}', 1)
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
    return call.press("3").press("1").press("0105")


# --- complaints ---------------------------------------------------------------------------


def test_complaint_is_recorded_with_a_case_reference(twilio, settings):
    call = Caller(twilio).start("2").press("4")
    assert "What is your complaint" in call.heard()
    call.press("1").press("1").press("0110")  # unofficial fee, at Poipet
    assert "confidential" in call.heard() and "120 seconds" in call.heard()
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
    assert " ".join(reference) in call.heard()
    call.press("1")  # hear it again
    assert " ".join(reference) in call.heard()


def test_empty_recording_makes_no_case_and_offers_a_retry(twilio, settings):
    call = Caller(twilio).start("2").press("4").press("2").press("1").press("0105")
    call.record(0)
    assert "did not receive a message" in call.heard()
    assert db_rows(settings, "SELECT count(*) FROM recordings") == [(0,)]
    assert ("complaint/empty",) in db_rows(settings, "SELECT node FROM events")
    call.press("1")
    assert call.doc.find("Record") is not None


def test_recording_callback_after_hang_up_still_makes_the_case(twilio, settings):
    call = Caller(twilio, sid="CA55").start("2").press("4").press("3").press("1").press("0203")
    callback = call.doc.find("Record").get("recordingStatusCallback")
    # the caller hangs up while recording: only the status callback arrives
    twilio.post(callback, {"CallSid": "CA55", "RecordingSid": "RE7", "RecordingStatus":
                           "completed", "RecordingDuration": "20", "RecordingUrl": "https://x/RE7"})
    assert db_rows(settings, "SELECT kind, topic, office_id, duration_s FROM recordings") == [
        ("complaint", "staff-behaviour", "battambang", 20)]


def test_recording_callback_before_the_action_gives_one_case(twilio, settings):
    call = Caller(twilio, sid="CA56").start("2").press("4").press("1").press("1").press("0105")
    callback = call.doc.find("Record").get("recordingStatusCallback")
    twilio.post(callback, {"CallSid": "CA56", "RecordingSid": "RE8", "RecordingStatus":
                           "completed", "RecordingDuration": "9", "RecordingUrl": "https://x/RE8"})
    call.record(9, "RE8")
    rows = db_rows(settings, "SELECT reference FROM recordings")
    assert len(rows) == 1 and " ".join(rows[0][0]) in call.heard()


def test_empty_recording_callback_is_logged_not_a_case(twilio, settings, caplog):
    caplog.set_level(logging.INFO, logger="ivr.store")
    twilio.post("/voice/recording?kind=complaint", {"RecordingSid": "RE9",
                                                    "RecordingDuration": "0"})
    assert db_rows(settings, "SELECT count(*) FROM recordings") == [(0,)]
    assert "empty recording" in caplog.text


# Somleng: the Record action has RecordingUrl and RecordingDuration only (no RecordingSid);
# the status callback has RecordingSid (the URL's last segment) but no From.
SOMLENG_CALL = "4f7b2c1e-9a0d-4c55-8e3b-2d6f1a9c7e10"
SOMLENG_URL = ("https://api.somleng.org/2010-04-01/Accounts/0b9d5c1e-6d4f-4e1a-9a3b-7c2e8f"
               "1d0a42/Calls/" + SOMLENG_CALL + "/Recordings/{}")


def somleng_post(twilio: Twilio, url: str, params: dict[str, str]):
    """A signed request with exactly these parameters (Twilio.post would add a From)."""
    from ivr.simulate import sign
    from tests.support import TOKEN

    return twilio.send(url, params, {"X-Twilio-Signature": sign(TOKEN, url, params)})


def somleng_callback(twilio: Twilio, callback: str, recording: str, seconds: int):
    return somleng_post(twilio, callback, {
        "CallSid": SOMLENG_CALL, "RecordingSid": recording, "RecordingStatus": "completed",
        "RecordingUrl": SOMLENG_URL.format(recording), "RecordingDuration": str(seconds)})


def test_somleng_recording_action_then_callback_make_one_case(twilio, settings):
    call = Caller(twilio, sid=SOMLENG_CALL).start("2").press("4").press("1").press("1")
    call.press("0105")
    action = call.doc.find("Record").get("action")
    # an empty recording: Somleng still calls the action, with duration 0
    empty = "1c3e5a7b-0000-4000-8000-000000000001"
    call._post(action, {"RecordingUrl": SOMLENG_URL.format(empty), "RecordingDuration": "0"})
    assert "did not receive a message" in call.heard()
    call.press("1")
    record = call.doc.find("Record")
    recording = "9e8d7c6b-5a49-4838-a716-151413121110"
    call._post(record.get("action"), {"RecordingUrl": SOMLENG_URL.format(recording),
                                      "RecordingDuration": "14"})
    assert somleng_callback(twilio, record.get("recordingStatusCallback"), recording,
                            14).status_code == 200
    ((reference, sid, hashed, duration),) = db_rows(
        settings, "SELECT reference, recording_sid, caller_hash, duration_s FROM recordings")
    assert (sid, duration) == (recording, 14)
    assert " ".join(reference) in call.heard()
    assert db_rows(settings, f"SELECT caller_hash FROM calls WHERE sid = '{SOMLENG_CALL}'") == [
        (hashed,)] and len(hashed) == 32


def test_somleng_callback_before_the_action_gives_one_case(twilio, settings):
    call = Caller(twilio, sid=SOMLENG_CALL).start("2").press("4").press("2").press("1")
    call.press("0203")
    record = call.doc.find("Record")
    recording = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
    somleng_callback(twilio, record.get("recordingStatusCallback"), recording, 9)
    call._post(record.get("action"), {"RecordingUrl": SOMLENG_URL.format(recording) + ".wav",
                                      "RecordingDuration": "9"})
    ((reference, sid, hashed, office),) = db_rows(
        settings, "SELECT reference, recording_sid, caller_hash, office_id FROM recordings")
    assert (sid, office) == (recording, "battambang")
    assert " ".join(reference) in call.heard()  # the case the callback made
    assert db_rows(settings, "SELECT caller_hash FROM calls") == [(hashed,)] and hashed


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


def test_during_hours_the_line_says_who_and_dials(staffed):
    call = to_ombudsman(Caller(Twilio(app_at(staffed, MONDAY_10AM))).start("2"))
    assert "District Ombudsman for Ou Chrov" in call.heard()
    dial = call.doc.find("Dial")
    assert dial.find("Number").text == "+85512000999"
    assert dial.get("callerId") == "+85523000000" and int(dial.get("timeout")) <= 30
    assert dial.get("action").startswith("http://localhost/voice/en/ombudsman/dialled")


@pytest.mark.parametrize("status, heard", [
    ("busy", "line is busy"), ("no-answer", "Nobody answered"),
    ("failed", "could not be connected"), ("canceled", "was cancelled")])
def test_every_failed_dial_offers_a_voice_message(staffed, status, heard):
    app = app_at(staffed, MONDAY_10AM)
    call = to_ombudsman(Caller(Twilio(app)).start("2"))
    call._post(call.doc.find("Dial").get("action"), {"DialCallStatus": status})
    assert heard in call.heard() and "leave a voice message" in call.heard()
    call.press("1")
    assert "confidential" in call.heard()
    call.record(15, "RE30")
    assert db_rows(staffed, "SELECT kind, office_id FROM recordings") == [
        ("ombudsman-message", "ou-chrov")]
    assert "Your reference number is" in call.heard()


def test_a_completed_dial_ends_the_call_politely(staffed):
    call = to_ombudsman(Caller(Twilio(app_at(staffed, MONDAY_10AM))).start("2"))
    call._post(call.doc.find("Dial").get("action"), {"DialCallStatus": "completed",
                                                     "DialCallDuration": "300"})
    assert "Goodbye" in call.heard() and call.doc.find("Hangup") is not None


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
    Caller(twilio).start("2").press("4").press("5").press("1").press("0802").record(10, "RE1")
    monkeypatch.setenv("IVR_DATABASE", str(settings.database))
    result = CliRunner().invoke(cli, ["report", "--cases"])
    assert result.exit_code == 0 and "kien-svay" in result.output and "other" in result.output


def test_recordings_are_not_served_publicly(app, twilio):
    Caller(twilio).start("2").press("4").press("5").press("1").press("0802").record(10, "RE1")
    client = app.test_client()
    for path in ("/recordings/RE1", "/audio/RE1.wav", "/voice/recording"):
        assert client.get(path).status_code in (403, 404, 405)
