"""The webhooks of ivr/voice.py as the carrier drives them, where mutation testing found
nothing watching: the recording status callback alone makes the case or the follow-up (with
the office, service, topic, caller, duration and URL the carrier reported), a recording that
did not complete makes none, the status callback's missing duration, keys a carrier cut
short (kept in the URL; a reference keyed too long is still looked up), the Redirect after a
silent Gather, the exact URLs a menu gives the carrier, GET requests, kept menus per host,
and what a caller hears and an administrator finds in the log when a webhook fails."""

from __future__ import annotations

import logging
import re
import sqlite3
from urllib.parse import urlencode

import pytest

from ivr.flow import CallFlow
from ivr.simulate import CARRIERS as PROFILES
from ivr.simulate import sign
from ivr.store import caller_hash
from tests.caller import Caller
from tests.support import TOKEN, Twilio

CARRIERS = ["twilio", "somleng"]
KEY = b"test-caller-key"  # the tests' settings
NUMBER = "+85512777888"
WRONG = "Sorry, we cannot find that reference number. Please check it and key it again."
ASK = "Key in the six-digit reference number you were given, then press hash."
FALLBACK = "Sorry, something went wrong. Please call again later."


def rows(settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute(sql).fetchall()


def carrier_post(app, url: str, params: dict[str, str]):
    """A POST signed as the carrier signs it, with only the parameters given (a recording
    status callback has no From)."""
    return app.test_client().post(url, data=params,
                                  headers={"X-Twilio-Signature": sign(TOKEN, url, params)})


def signed_get(app, url: str):
    full = "http://localhost" + url
    return app.test_client().get(url, headers={"X-Twilio-Signature": sign(TOKEN, full, {})})


def recording_report(call: Caller, carrier: str, seconds: int, status: str = "completed"
                     ) -> tuple[str, dict[str, str]]:
    """The recording status callback the carrier sends for the Record the caller is at:
    its URL (the Record's recordingStatusCallback) and its parameters."""
    record = call.doc.find("Record")
    assert record is not None and record.get("recordingStatusCallbackMethod") == "POST"
    profile = PROFILES[carrier]
    account = profile.new_account_sid()
    recording_sid, recording_url = profile.new_recording(account, call.sid)
    return record.get("recordingStatusCallback"), {
        "AccountSid": account, "CallSid": call.sid, "RecordingSid": recording_sid,
        "RecordingUrl": recording_url, "RecordingStatus": status,
        "RecordingDuration": str(seconds), "RecordingChannels": "1",
        "RecordingSource": "RecordVerb"}


def to_complaint_record(twilio, carrier: str, number: str = NUMBER) -> Caller:
    """A complaint about an unofficial fee at Ou Chrov (code 0105), at the Record."""
    call = Caller(twilio, number=number, carrier=carrier).start("2")
    call.press("4").press("1").press("1").press("0105#").press("1")
    assert call.doc.find("Record") is not None
    return call


def to_comment_record(twilio, carrier: str, number: str = NUMBER) -> Caller:
    """A rating of a service at Ou Chrov, then its comment: at the Record."""
    call = Caller(twilio, number=number, carrier=carrier).start("2")
    call.press("2").press("1").press("0105#").press("1").press("2").press("1")
    call.press("3").press("3").press("2").press("2").press("1")
    assert call.doc.find("Record") is not None
    return call


def complaint_reference(twilio, carrier: str) -> str:
    """A whole complaint call; the reference the caller heard."""
    call = to_complaint_record(twilio, carrier, number="+85512345678").record(20)
    found = re.search(r"Your reference number is((?: \d){6})", call.heard())
    assert found, call.heard()
    call.hangup()
    return found.group(1).replace(" ", "")


def to_followup_record(twilio, carrier: str, reference: str) -> Caller:
    """Main menu 5 on another phone: the reference, then 2 for a follow-up: at the Record."""
    call = Caller(twilio, number=NUMBER, carrier=carrier).start("2").press("5")
    assert call.heard() == ASK
    call.press(f"{reference}#@2.5" if carrier == "somleng" else f"{reference}#")
    assert call.heard().startswith("Your complaint about"), call.heard()
    call.press("2")
    assert call.doc.find("Record") is not None
    return call


RECORDING_COLUMNS = ("SELECT kind, call_sid, caller_hash, office_id, service_id, topic, lang, "
                     "duration_s, recording_sid, recording_url, status FROM recordings")


# --- the recording status callback, when the Record action never reached the line ---------


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("kind", ["complaint", "comment"])
def test_the_recording_callback_alone_makes_the_case(app, twilio, settings, carrier, kind):
    """The carrier's report of a finished recording, the Record action lost (the caller
    hung up and the action never arrived): the case is made from the callback's URL and
    parameters, with the caller's pseudonym from the call's own row."""
    call = (to_complaint_record if kind == "complaint" else to_comment_record)(twilio, carrier)
    url, params = recording_report(call, carrier, 17)
    assert carrier_post(app, url, params).status_code == 200
    call.hangup()
    office, service, topic = (("ou-chrov", "", "unofficial-fee") if kind == "complaint" else
                              ("ou-chrov", re.search(r"[?&]s=([^&]+)", url).group(1), ""))
    assert service or kind == "complaint"
    assert rows(settings, RECORDING_COLUMNS) == [
        (kind, call.sid, caller_hash(KEY, NUMBER), office, service, topic, "en", 17,
         params["RecordingSid"], params["RecordingUrl"], "new")]
    if kind == "comment":  # a rating's comment is filed under the rating's reference
        assert rows(settings, "SELECT reference FROM recordings") == rows(
            settings, "SELECT reference FROM feedback")


@pytest.mark.parametrize("status", ["failed", "absent"])
def test_a_recording_that_did_not_complete_makes_no_case(app, twilio, settings, status):
    call = to_complaint_record(twilio, "twilio")
    url, params = recording_report(call, "twilio", 12, status=status)
    assert carrier_post(app, url, params).status_code == 200
    call.hangup()
    assert rows(settings, "SELECT count(*) FROM recordings") == [(0,)]


def test_a_recording_callback_without_a_status_is_a_finished_recording(app, twilio, settings):
    """A report that does not say RecordingStatus is taken as completed."""
    call = to_complaint_record(twilio, "somleng")
    url, params = recording_report(call, "somleng", 9)
    del params["RecordingStatus"]
    assert carrier_post(app, url, params).status_code == 200
    call.hangup()
    assert rows(settings, "SELECT kind, duration_s FROM recordings") == [("complaint", 9)]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_the_recording_callback_alone_keeps_the_follow_up(app, twilio, settings, carrier):
    """Main menu 5's follow-up message, reported only by the recording callback: kept on
    the case the caller keyed (case_followups), not as a new case."""
    reference = complaint_reference(twilio, carrier)
    call = to_followup_record(twilio, carrier, reference)
    url, params = recording_report(call, carrier, 14)
    assert "kind=followup" in url and f"c={reference}" in url
    assert carrier_post(app, url, params).status_code == 200
    call.hangup()
    assert rows(settings, "SELECT reference, call_sid, caller_hash, lang, duration_s, "
                          "recording_sid, recording_url FROM case_followups") == [
        (reference, call.sid, caller_hash(KEY, NUMBER), "en", 14, params["RecordingSid"],
         params["RecordingUrl"])]
    assert rows(settings, "SELECT count(*) FROM recordings") == [(1,)]


def test_a_follow_up_callback_from_a_call_that_did_not_key_the_case_is_not_kept(
        app, twilio, settings):
    """Even signed, a follow-up report for a case this call never looked up adds nothing."""
    reference = complaint_reference(twilio, "twilio")
    call = Caller(twilio, number=NUMBER).start("2")  # rang in, never keyed the reference
    profile = PROFILES["twilio"]
    recording_sid, recording_url = profile.new_recording(profile.new_account_sid(), call.sid)
    url = "http://localhost/voice/recording?" + urlencode(
        {"kind": "followup", "lang": "en", "c": reference})
    reply = carrier_post(app, url, {
        "CallSid": call.sid, "RecordingSid": recording_sid, "RecordingUrl": recording_url,
        "RecordingStatus": "completed", "RecordingDuration": "11"})
    assert reply.status_code == 200
    call.hangup()
    assert rows(settings, "SELECT count(*) FROM case_followups") == [(0,)]


# --- the status callback -------------------------------------------------------------------


def test_a_call_that_ended_without_a_duration_is_closed_with_0_seconds(twilio, settings):
    """A call given up before it was answered: the carrier's final status has no
    CallDuration."""
    reply = twilio.post("/voice/status", {"CallSid": "CA" + "6" * 32, "From": NUMBER,
                                          "CallStatus": "canceled"})
    assert reply.status_code == 200
    assert rows(settings, "SELECT status, duration_s FROM calls") == [("canceled", 0)]


# --- keys a carrier cut short, and the Redirect after a silent Gather ----------------------


@pytest.mark.parametrize("carrier", CARRIERS)
def test_an_office_code_keyed_slowly_still_chooses_the_office(twilio, settings, carrier):
    """2.5 s between keys: Somleng ends each Gather after one key; the keys so far travel in
    the step URLs (k=) until the code is whole."""
    call = Caller(twilio, number=NUMBER, carrier=carrier).start("2")
    call.press("4").press("1").press("1").press("0105@2.5")
    actions = [step.url for step in call.steps]
    if carrier == "somleng":
        assert any("k=010" in url for url in actions), actions
    call.press("1")
    assert call.doc.find("Record").get("action") == (
        "http://localhost/voice/en/complaint/recorded?o=ou-chrov&t=unofficial-fee")


def test_a_reference_cut_short_then_keyed_too_long_is_looked_up(twilio, settings):
    """Somleng cuts a slow entry: five keys one by one, then two more in one go (seven in
    all). The caller hears that the reference is unknown and is asked again (it used to be
    dropped at the main menu without a word: the entry was kept for a '#' in a URL the
    menu then refused)."""
    call = Caller(twilio, number=NUMBER, carrier="somleng").start("2").press("5")
    call.press("12345@2.5").press("67")
    assert call.heard() == f"{WRONG} {ASK}"
    assert rows(settings, "SELECT count(*) FROM case_lookups") == [(1,)]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_the_redirect_after_a_silent_gather_counts_as_no_key(app, twilio, carrier):
    """A carrier that does not call the Gather's action on silence runs the Redirect after
    it: the caller hears that no key came, and the menu again (attempt 1)."""
    call = Caller(twilio, number=NUMBER, carrier=carrier).start("2")
    redirect = call.doc.find("Redirect")
    assert redirect.text == "http://localhost/voice/en/main?noinput=1"
    reply = twilio.post(redirect.text, {"CallSid": call.sid, "From": NUMBER})
    text = reply.get_data(as_text=True)
    assert reply.status_code == 200 and "Sorry, we did not hear a key." in text
    assert 'action="http://localhost/voice/en/main?a=1&amp;g=1"' in text
    call.hangup()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_menus_give_the_carrier_urls_with_only_the_position(twilio, carrier):
    """No office, topic or case the caller has not chosen rides along in the URLs: each
    Gather's action, and the Redirect after it, carry what was chosen so far."""
    call = Caller(twilio, number=NUMBER, carrier=carrier).start("2")
    base = "http://localhost/voice/en/"
    expected = [("main", ""), ("complaint", ""), ("complaint/office", "t=unofficial-fee&"),
                ("complaint/office/code", "t=unofficial-fee&"),
                ("complaint/office/chosen/code", "o=ou-chrov&t=unofficial-fee&")]
    for keys, (node, query) in zip([None, "4", "1", "1", "0105#"], expected, strict=True):
        if keys:
            call.press(keys)
        assert call.action() == f"{base}{node}?{query}g=1"
        assert call.doc.find("Redirect").text == f"{base}{node}?{query}noinput=1"
    call.press("1")
    assert call.doc.find("Record").get("action") == (
        f"{base}complaint/recorded?o=ou-chrov&t=unofficial-fee")
    call.hangup()


# --- GET, and kept menus under two host names ----------------------------------------------


def test_the_call_and_a_step_are_answered_as_get(app):
    params = {"CallSid": "CA" + "7" * 32, "From": NUMBER}
    reply = signed_get(app, "/voice?" + urlencode(params))
    assert reply.status_code == 200 and b"<Gather" in reply.data
    reply = signed_get(app, "/voice/en/main?" + urlencode({**params, "Digits": "4"}))
    assert reply.status_code == 200 and b"/voice/en/complaint" in reply.data


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_kept_menu_names_the_host_each_carrier_asked(app, carrier):
    for host in ("http://localhost", "https://line.example.org"):
        call = Caller(Twilio(app, base=host), carrier=carrier).start("2")
        assert call.action() == host + "/voice/en/main?g=1"
        call.hangup()


# --- faults: what the caller hears, what the log keeps --------------------------------------


def broken(*args, **kwargs):
    raise RuntimeError("broken on purpose")


@pytest.mark.parametrize("carrier", CARRIERS)
def test_when_the_apology_fails_too_the_caller_hears_a_last_sentence(
        twilio, monkeypatch, caplog, carrier):
    monkeypatch.setattr(CallFlow, "present", broken)
    monkeypatch.setattr(CallFlow, "apology", broken)
    with caplog.at_level(logging.ERROR, logger="ivr.voice"):
        call = Caller(twilio, number=NUMBER, carrier=carrier)
        call.call = call.sim.start()
    said = call.doc.findall("Say")
    assert [s.text for s in said] == [FALLBACK] and said[0].get("language") == "en-US"
    assert call.doc.find("Hangup") is not None and call.ended
    faults = [r for r in caplog.records if r.name == "ivr.voice" and r.exc_info]
    assert len(faults) == 2 and all(r.levelno == logging.ERROR for r in faults)
    assert [str(r.exc_info[1]) for r in faults] == ["broken on purpose"] * 2


def test_a_step_that_cannot_be_recorded_is_logged_and_the_call_goes_on(
        app, twilio, monkeypatch, caplog):
    monkeypatch.setattr(app.extensions["ivr"].store, "record_step", broken)
    with caplog.at_level(logging.ERROR, logger="ivr.voice"):
        call = Caller(twilio, number=NUMBER).start("2")
    assert call.heard().startswith("Main menu.")
    faults = [r for r in caplog.records if r.name == "ivr.voice" and r.exc_info]
    assert faults and all(str(r.exc_info[1]) == "broken on purpose" for r in faults)
