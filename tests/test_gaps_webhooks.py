"""The webhooks' parameters, the signature fallback, faults, and the funnel's raw steps
(TEST-GAPS.md, gaps 5 and 7: the `events` rows the line writes for every step)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from urllib.parse import urlencode

import pytest
from lxml import etree

from ivr import create_app
from ivr.flow import CallFlow
from ivr.simulate import sign
from ivr.store import caller_hash
from tests.caller import Caller
from tests.support import MINIMAL, OPEN_HOURS, ROOT, TOKEN, Twilio, with_ombudsman

CARRIERS = ["twilio", "somleng"]
APOLOGY = "Sorry, something went wrong on our side. Here is the main menu."
KEY = b"test-caller-key"  # the tests' settings
NUMBER = "+85512777888"


def rows(settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute(sql).fetchall()


def signed_get(app, url: str):
    """A GET as a carrier sends it when the TwiML says method="GET": everything in the
    signed URL."""
    full = "http://localhost" + url
    return app.test_client().get(url, headers={"X-Twilio-Signature": sign(TOKEN, full, {})})


# --- gap 5: parameters and the signature fallback -----------------------------------------


def test_a_webhook_signed_over_the_url_with_its_port_is_answered(app, settings):
    """Twilio may sign the URL with an explicit :80; the validator's fallback accepts it,
    with the POST's form (the fast check over the URL as requested fails first)."""
    twilio = Twilio(app)
    reply = twilio.post("/voice", {"CallSid": "CA" + "1" * 32}, signed_url="http://localhost:80/voice")
    assert reply.status_code == 200 and b"<Gather" in reply.data
    reply = twilio.post("/voice/en/main?g=1", {"CallSid": "CA" + "1" * 32, "Digits": "1"},
                        signed_url="http://localhost:80/voice/en/main?g=1")
    assert reply.status_code == 200 and b"categories" in reply.data
    forged = twilio.post("/voice", {"CallSid": "CA" + "2" * 32},
                         signed_url="http://localhost:81/voice")
    assert forged.status_code == 403


def test_a_long_call_keeps_its_whole_duration(twilio, settings):
    reply = twilio.post("/voice/status", {"CallSid": "CA" + "3" * 32, "From": NUMBER,
                                          "CallStatus": "completed", "CallDuration": "3725"})
    assert reply.status_code == 200
    assert rows(settings, "SELECT status, duration_s FROM calls") == [("completed", 3725)]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_ratings_cases_and_calls_carry_the_caller_s_pseudonym(twilio, settings, carrier):
    expected = caller_hash(KEY, NUMBER)
    call = Caller(twilio, number=NUMBER, carrier=carrier).start("2")
    call.press("2").press("1").press("0105#").press("1").press("2").press("1")
    call.press("3").press("3").press("2").press("2").press("1").record(9)
    call.hangup()
    assert rows(settings, "SELECT caller_hash FROM calls") == [(expected,)]
    assert rows(settings, "SELECT caller_hash FROM feedback") == [(expected,)]
    assert rows(settings, "SELECT caller_hash FROM recordings") == [(expected,)]


def test_a_call_that_ends_before_any_menu_still_has_its_caller(twilio, settings):
    """Only the status callback comes (the caller hung up during the greeting)."""
    twilio.post("/voice/status", {"CallSid": "CA" + "4" * 32, "From": NUMBER,
                                  "CallStatus": "completed", "CallDuration": "2"})
    assert rows(settings, "SELECT caller_hash, status, duration_s FROM calls") == [
        (caller_hash(KEY, NUMBER), "completed", 2)]


def test_get_webhooks_are_answered(app, settings):
    """Twilio's method=GET: the call, a step and the status callback as GET requests."""
    params = {"CallSid": "CA" + "5" * 32, "From": NUMBER}
    reply = signed_get(app, "/voice?" + urlencode(params))
    assert reply.status_code == 200 and b"<Gather" in reply.data
    reply = signed_get(app, "/voice/en/main?" + urlencode({**params, "Digits": "1"}))
    assert reply.status_code == 200 and b"/voice/en/categories" in reply.data
    reply = signed_get(app, "/voice/status?" + urlencode(
        {**params, "CallStatus": "completed", "CallDuration": "31"}))
    assert reply.status_code == 200
    assert rows(settings, "SELECT caller_hash, status, duration_s FROM calls") == [
        (caller_hash(KEY, NUMBER), "completed", 31)]


@pytest.mark.parametrize("query", ["p=junk&a=x", "p=-1&a=99999", "p=1e3&a=%20"])
def test_junk_numbers_in_a_step_url_give_the_menu(twilio, query):
    reply = twilio.post(f"/voice/en/categories?{query}")
    text = reply.get_data(as_text=True)
    assert reply.status_code == 200 and "Choose a type of service." in text
    assert "went wrong" not in text
    assert 'action="http://localhost/voice/en/categories?g=1"' in text


def test_a_fault_at_the_greeting_is_apologised_for_in_the_caller_s_words(app, twilio,
                                                                           monkeypatch):
    """The apology is the line's own prompt (Khmer, or its English text when no audio is
    rendered), not the last-resort sentence; at the greeting it then hangs up."""
    monkeypatch.setattr(CallFlow, "present",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk on fire")))
    reply = twilio.post("/voice")
    doc = etree.fromstring(reply.data)
    assert [e.text for e in doc.iter("Say")] == [APOLOGY]
    assert doc.find("Hangup") is not None and doc.find("Redirect") is None


def test_when_the_apology_fails_too_the_caller_is_told_to_call_again(app, twilio,
                                                                       monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(CallFlow, "answer", broken)
    monkeypatch.setattr(CallFlow, "apology", broken)
    call = Caller(twilio).start("2")
    assert "Please call again later" in call.heard()
    assert call.ended and call.transcript.ended_by == "hangup"
    say = call.doc.find("Say")
    assert say.get("language") == "en-US"


# --- gap 7: the steps each call passed through (the `events` rows) --------------------------


def events(settings, sid: str) -> list[tuple[str, str | None, str]]:
    return rows(settings, f"SELECT node, digits, event FROM events WHERE call_sid = '{sid}' "
                "ORDER BY id")


def settings_with(settings, tmp_path, text: str):
    path = tmp_path / "catalog-variant.yaml"
    path.write_text(text, encoding="utf-8")
    return settings.__class__(**{**settings.__dict__, "catalog": path})


def test_the_steps_of_a_browsing_call(settings, tmp_path):
    service = MINIMAL[MINIMAL.index("  - id: copy"):MINIMAL.index("  - id: permit")]
    many = "".join(service.replace("id: copy", f"id: copy-{i}")
                   .replace("a copy}", f"copy {i}}}") for i in range(12))
    mine = settings_with(settings, tmp_path, MINIMAL.replace(service, many))
    call = Caller(Twilio(create_app(mine))).start()  # silence: Khmer
    call.press("1").press("1").press("9").press("0").press("*").press("7").press("#")
    call.silence().silence().silence()
    assert call.ended
    assert events(mine, call.sid) == [
        ("welcome", None, "call"), ("welcome", None, "default-language"),
        ("main", "1", "choice"), ("categories", "1", "choice"),
        ("category/papers", "9", "more"), ("category/papers", "0", "repeat"),
        ("category/papers", "*", "back"), ("category/papers", "7", "choice"),
        ("service/copy-6", "#", "main"), ("main", None, "noinput"), ("main", None, "noinput"),
        ("main", None, "noinput-goodbye")]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_the_steps_of_a_complaint_and_a_rating_comment(twilio, settings, carrier):
    call = Caller(twilio, carrier=carrier).start("2")
    call.press("4").press("1").press("1").press("0105#").press("1").record(10)
    call.press("#").press("2").press("1").press("0105#").press("1").press("2").press("1")
    call.press("3").press("3").press("2").press("2").press("1").record(8)
    steps = [(node, event) for node, _, event in events(settings, call.sid)]
    assert steps[:2] == [("welcome", "call"), ("welcome", "choice")]
    # (a step that records or dials is shown by the step before it: the office code's
    # answer, the comment offer's choice; its own label is written only when its URL is asked)
    assert ("complaint/recorded", "case") in steps and ("rate/recorded", "recorded") in steps
    assert steps.index(("complaint/office/code", "answer")) + 1 == steps.index(
        ("complaint/office/chosen/code", "choice"))  # the office said back, then 1
    assert steps.index(("complaint/office/chosen/code", "choice")) + 1 == steps.index(
        ("complaint/recorded", "case"))
    assert steps.index(("rate/comment", "choice")) + 1 == steps.index(
        ("rate/recorded", "recorded"))
    assert [e for _, e in steps].count("answer") == 4 + 2  # 4 answers, 2 office codes
    call.press("#").press("2").press("1").press("0105#").press("1").press("2").press("1")
    call.press("3").press("3").press("2").press("2").silence()  # no comment: silence
    assert events(settings, call.sid)[-1] == ("rate/comment", None, "noinput")


def test_the_steps_of_ombudsman_calls(settings, tmp_path):
    staffed = settings_with(settings, tmp_path, with_ombudsman(
        (ROOT / "catalog.yaml").read_text(encoding="utf-8"), hours=OPEN_HOURS))
    app = create_app(staffed)
    found = []
    for moment, outcome in ((datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc), "busy"),
                            (datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc), "completed")):
        app.extensions["ivr"].clock = lambda moment=moment: moment
        call = Caller(Twilio(app), dial_outcome=outcome).start("2")
        call.press("3").press("1").press("0105#").press("1")
        found.append([(n, e) for n, _, e in events(staffed, call.sid) if n.startswith("omb")])
    assert found[0][-3:] == [("ombudsman/office/code", "answer"),
                             ("ombudsman/office/chosen/code", "choice"),
                             ("ombudsman/dialled", "dial-busy")]
    assert found[1][-3:] == [("ombudsman/office/code", "answer"),
                             ("ombudsman/office/chosen/code", "choice"),
                             ("ombudsman/dialled", "dial-completed")]


# --- more of what a caller hears --------------------------------------------------------------


def render(settings, *entries: tuple[str, str]) -> None:
    """Rendered audio for these (key, language) prompts, in the manifest as the renderer
    writes it."""
    import json

    from ivr.catalog import load_catalog
    from ivr.prompts import PromptBook, load_wording

    catalog = load_catalog(settings.catalog)
    book = PromptBook(catalog, load_wording(settings.prompts, catalog.languages))
    prompts = []
    for i, (key, lang) in enumerate(entries):
        (settings.audio_dir / lang).mkdir(parents=True, exist_ok=True)
        (settings.audio_dir / lang / f"f{i}.wav").write_bytes(b"RIFF" + b"\0" * 60)
        prompts.append({"key": key, "lang": lang, "text": book.text(key, lang),
                        "file": f"{lang}/f{i}.wav", "duration_ms": 1000, "engine": "gtts"})
    (settings.audio_dir / "manifest.json").write_text(json.dumps({"version": 1,
                                                                  "prompts": prompts}))


def test_the_english_offer_is_played_in_english_at_the_khmer_greeting(settings):
    render(settings, ("language.offer", "km"), ("language.offer", "en"))
    call = Caller(Twilio(create_app(settings)), fetch_audio=True).start()
    offer = call.transcript.steps[0].prompts[1]
    assert offer.kind == "play" and offer.value == "http://localhost/audio/en/f1.wav"


def test_when_the_apology_prompt_itself_fails_the_line_still_says_sorry(app, twilio,
                                                                          monkeypatch, caplog):
    from ivr.steps import Context

    play = Context.play

    def broken_apology(self, verb, key, lang):
        if key == "error.apology":
            raise RuntimeError("no such prompt")
        return play(self, verb, key, lang)

    call = Caller(twilio).start("2").press("1")
    answer = CallFlow.answer
    monkeypatch.setattr(CallFlow, "answer", lambda self, pos, *a, **k: (
        (_ for _ in ()).throw(RuntimeError("disk on fire")) if pos.node == "categories"
        else answer(self, pos, *a, **k)))
    monkeypatch.setattr(Context, "play", broken_apology)
    call.press("1")
    assert call.heard().startswith("Sorry, something went wrong.") and "Main menu." in call.heard()
    assert "fault answering /voice/en/categories" in caplog.text and "disk on fire" in caplog.text


def test_a_carrier_that_follows_the_redirect_after_silence_hears_the_reprompt(twilio):
    """A carrier that ignores actionOnEmptyResult runs the Redirect after the Gather: that
    is no input too, counted like the Gather's own."""
    reply = twilio.post("/voice/en/categories")
    redirect = etree.fromstring(reply.data).find("Redirect").text
    for attempt in (1, 2):
        reply = twilio.post(redirect)
        doc = etree.fromstring(reply.data)
        assert "Sorry, we did not hear a key." in [e.text for e in doc.iter("Say")]
        assert f"a={attempt}" in doc.find("Gather").get("action")
        redirect = doc.find("Redirect").text
    doc = etree.fromstring(twilio.post(redirect).data)
    assert doc.find("Hangup") is not None


def test_a_status_callback_without_a_status_is_stored_as_unknown(twilio, settings):
    twilio.post("/voice/status", {"CallSid": "CA" + "6" * 32, "CallDuration": "12"})
    assert rows(settings, "SELECT status, duration_s FROM calls") == [("unknown", 12)]


@pytest.mark.parametrize("url", ["/voice/en/rate/q/1?o=ou-chrov&s=no-such-service",
                                 "/voice/en/rate/thanks?o=no-such-office&s=barber-2-4-chairs",
                                 "/voice/en/service/no-such-service"])
def test_a_step_whose_service_or_office_is_gone_leads_to_the_main_menu(twilio, settings, url):
    """After a catalogue edit a caller's position can name what no longer exists: silence
    there gets the main menu (with "not on this menu"), and the step is logged as unknown."""
    reply = twilio.post(url, {"CallSid": "CA" + "8" * 32})
    texts = [e.text for e in etree.fromstring(reply.data).iter("Say")]
    assert "Main menu." in texts and "Sorry, that key is not on this menu." in texts
    assert not any("satisfied" in t for t in texts)
    assert rows(settings, "SELECT event FROM events") == [("unknown",)]


@pytest.mark.parametrize("keyed", ["abc", "١٢", "0" * 21])
def test_junk_keys_so_far_in_a_code_url_are_ignored(twilio, keyed):
    """k= (the keys of a code the carrier cut short) must be a few ASCII digits: junk there
    gives the code prompt afresh."""
    reply = twilio.post(f"/voice/en/rate/office/code?k={keyed}")
    text = reply.get_data(as_text=True)
    assert "Key in the district code, then press hash." in text and "Main menu." not in text
