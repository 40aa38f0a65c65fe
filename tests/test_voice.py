"""The webhooks as Twilio sees them: signatures, faults, audio files, the call record."""

from __future__ import annotations

import json
import sqlite3
from urllib.parse import quote, urlencode

import pytest
from flask import request
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from lxml import etree
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from ivr import create_app
from ivr.flow import CallFlow
from ivr.simulate import GatherInfo
from ivr.voice import FlaskUrls, _requested_url, twilio_signature
from tests.caller import Caller
from tests.support import CALLER, Twilio, editable_catalogue, raise_barber_fee

CARRIERS = ["twilio", "somleng"]
APOLOGY = "something went wrong"


def rows(settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute(sql).fetchall()


# Requests posted directly (not through the carrier simulator) below are the ones no caller
# can make: missing, forged or tampered signatures, another account's token, a proxy's
# headers, and HTTP-level checks (status, content type). Everything a caller hears goes
# through tests.caller.Caller, keys pressed as on a handset.


def test_signed_request_gets_the_greeting_and_is_logged(twilio, settings):
    # posted directly: an HTTP-level check of a signed request (status, content type)
    response = twilio.post("/voice", {"CallSid": "CA1"})
    assert response.status_code == 200 and response.mimetype == "text/xml"
    doc = etree.fromstring(response.data)
    assert doc.find("Gather").get("action") == "http://localhost/voice/km/welcome?g=1"
    assert rows(settings, "SELECT sid, language FROM calls") == [("CA1", "km")]


@pytest.mark.parametrize("headers", [{}, {"X-Twilio-Signature": "forged="}])
def test_missing_or_forged_signature_is_refused_without_side_effect(app, settings, headers):
    # posted directly: a request the carrier never sends (no or a forged signature)
    client = app.test_client()
    response = client.post("/voice/km/main", data={"CallSid": "CA2", "Digits": "1"},
                           headers=headers)
    assert response.status_code == 403
    assert rows(settings, "SELECT count(*) FROM events") == [(0,)]
    assert rows(settings, "SELECT count(*) FROM calls") == [(0,)]


def test_signature_over_different_params_is_refused(app):
    # posted directly: a tampered request (the signature is over other Digits)
    twilio = Twilio(app)
    params = {"CallSid": "CA3", "From": CALLER, "To": "+85523000000", "Digits": "1"}
    signature = twilio.validator.compute_signature("http://localhost/voice/km/main", params)
    tampered = {**params, "Digits": "2"}
    response = twilio.client.post("/voice/km/main", data=tampered,
                                  headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


@hypothesis_settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(st.characters(codec="utf-8", exclude_characters="?#"), max_size=20),
       query=st.dictionaries(st.sampled_from("pasot"), st.text(max_size=8), max_size=3),
       form=st.lists(st.tuples(st.sampled_from(["Digits", "CallSid", "From", "Ünï"]),
                               st.text(max_size=12)), max_size=6))
def test_the_signature_check_agrees_with_twilios_validator(app, path, query, form):
    """Our one-HMAC check of the requested URL gives Twilio's signature for any URL and form
    (repeated fields, non-ASCII): what Twilio signs, the line accepts."""
    target = "/voice/" + quote(path) + ("?" + urlencode(query) if query else "")
    with app.test_request_context(target, method="POST", data=MultiDict(form)):
        url = _requested_url()
        params = MultiDict(form)
        expected = RequestValidator("tok").compute_signature(url, params)
        assert twilio_signature("tok", url, params) == expected
        assert url == request.url or "%" in target  # the usual URL: one HMAC, no fallback


def test_signature_with_another_token_is_refused(app):
    # posted directly: signed with another account's token, as no carrier of ours signs
    assert Twilio(app, token="someone-elses-token").post("/voice").status_code == 403


def test_behind_a_proxy_the_public_url_is_signed(settings):
    """Twilio signs https://line.example.org/voice; the app sees http://10.0.0.5/voice."""
    # posted directly: the proxy's X-Forwarded-* headers and the URL signed differ from the
    # URL requested, which is HTTP plumbing between the carrier and the app
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "line.example.org"}
    public = "https://line.example.org/voice"
    behind = Twilio(create_app(settings, proxy_hops=1), base="http://10.0.0.5")
    response = behind.post("/voice", signed_url=public, **forwarded)
    assert response.status_code == 200
    # TwiML URLs point at the public address too
    assert b'action="https://line.example.org/voice/km/welcome?g=1"' in response.data
    # without trusting the proxy, the same request fails validation
    direct = Twilio(create_app(settings), base="http://10.0.0.5")
    assert direct.post("/voice", signed_url=public, **forwarded).status_code == 403


def test_production_refuses_to_start_without_a_token(settings):
    with pytest.raises(RuntimeError, match="TWILIO_AUTH_TOKEN"):
        create_app(settings, auth_token=None)


def test_a_fault_becomes_an_apology_and_the_main_menu(app, twilio, monkeypatch):
    answer = CallFlow.answer

    def broken_at_the_categories(self, pos, digits, noinput=False, params=None):
        if pos.node == "categories":
            raise RuntimeError("disk on fire")
        return answer(self, pos, digits, noinput, params)

    call = Caller(twilio).start("2").press("1")  # English, the categories menu
    monkeypatch.setattr(CallFlow, "answer", broken_at_the_categories)
    call.press("1")
    heard = call.heard()
    assert APOLOGY in heard and "Main menu." in heard
    assert heard.index(APOLOGY) < heard.index("Main menu.")  # sorry, then the main menu
    assert call.action() == "http://localhost/voice/en/main?g=1"


def test_a_fault_in_the_main_menu_hangs_up_instead_of_looping(app, twilio, monkeypatch):
    call = Caller(twilio).start()  # silence: the Khmer main menu
    monkeypatch.setattr("ivr.flow.CallFlow.answer",
                        lambda *a, **k: (_ for _ in ()).throw(ValueError("x")))
    call.press("1")  # a Redirect back to the main menu would loop (the simulator says so)
    assert APOLOGY in call.heard()
    assert call.ended and call.transcript.ended_by == "hangup" and len(call.steps) == 1


def test_a_database_fault_does_not_interrupt_the_call(app, twilio, settings):
    settings.database.unlink()
    settings.database.mkdir()  # the file is gone and cannot be recreated
    call = Caller(twilio).start().press("1")
    assert isinstance(call.waiting, GatherInfo) and "/voice/km/categories" in call.action()
    assert APOLOGY not in call.heard()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_gather_action_without_digits_is_no_input(twilio, carrier):
    """Silence at a menu: Twilio posts the Gather's action with Digits empty
    (actionOnEmptyResult), Somleng with no Digits at all; either way the caller hears the
    re-prompt at once, not after a Redirect (which Somleng follows a second later)."""
    call = Caller(twilio, carrier=carrier).start("2").press("1")
    assert call.waiting.finish_on_key == "" and call.waiting.action_on_empty_result
    call.silence()
    (step,) = call.steps  # the Gather's action: no Redirect was followed
    assert step.params.get("Digits") == ("" if carrier == "twilio" else None)
    assert not step.redirected and step.delay == 0
    assert call.heard().startswith("Sorry, we did not hear a key.")
    assert "a=1" in call.action()


def test_status_callback_closes_the_call(twilio, settings):
    call = Caller(twilio, sid="CA" + "9" * 32).start("2").press("1")
    call.hangup()  # the carrier reports the call's end and its length
    assert call.transcript.status_callback_sent and call.transcript.duration > 0
    assert rows(settings, "SELECT status, duration_s, ended_at IS NOT NULL FROM calls") == [
        ("completed", call.transcript.duration, 1)]


def test_no_raw_phone_number_is_stored(twilio, settings):
    call = Caller(twilio, sid="CA" + "7" * 32, number=CALLER).start().press("1")
    call.hangup()
    dump = "\n".join(sqlite3.connect(settings.database).iterdump())
    assert "CA" + "7" * 32 in dump
    for form in (CALLER, CALLER.lstrip("+"), "12345678"):
        assert form not in dump
    hashes = rows(settings, "SELECT DISTINCT caller_hash FROM calls")
    assert len(hashes) == 1 and len(hashes[0][0]) == 32


# --- audio -------------------------------------------------------------------------------
# What the caller hears goes through the Caller (fetch_audio: the carrier GETs each <Play>);
# the file requests themselves (headers, revalidation, 404s) are HTTP-level checks.


@pytest.fixture
def rendered(settings):
    """One rendered prompt in the manifest, as the renderer writes it."""
    from ivr.catalog import load_catalog
    from ivr.prompts import PromptBook, load_wording

    catalog = load_catalog(settings.catalog)
    book = PromptBook(catalog, load_wording(settings.prompts, catalog.languages))
    (settings.audio_dir / "km").mkdir(parents=True)
    wav = settings.audio_dir / "km" / "abc123.wav"
    wav.write_bytes(b"RIFF" + b"\0" * 60)
    manifest = {"version": 1, "prompts": [{
        "key": "greeting", "lang": "km", "text": book.text("greeting", "km"),
        "file": "km/abc123.wav", "duration_ms": 1000, "engine": "gtts"}]}
    (settings.audio_dir / "manifest.json").write_text(json.dumps(manifest))
    return wav


def test_rendered_prompt_is_played_and_missing_ones_are_said_in_english(rendered, settings):
    app = create_app(settings)
    call = Caller(Twilio(app), fetch_audio=True).start()  # the carrier fetches what it plays
    played, said = call.transcript.steps[0].prompts  # the greeting
    assert played.kind == "play" and played.value == "http://localhost/audio/km/abc123.wav"
    assert played.text == app.extensions["ivr"].book.text("greeting", "km")
    assert call.sim.audio_status == {played.value: 200}
    assert said.kind == "say" and said.text == "For English, press 2."
    assert said.language == "en-US"


def test_stale_audio_is_not_played(rendered, settings):
    manifest = json.loads((settings.audio_dir / "manifest.json").read_text())
    manifest["prompts"][0]["text"] = "an older greeting"
    (settings.audio_dir / "manifest.json").write_text(json.dumps(manifest))
    call = Caller(Twilio(create_app(settings)), fetch_audio=True).start()
    greeting = call.transcript.steps[0].prompts
    assert [p.kind for p in greeting] == ["say", "say"]
    assert "Welcome to the information line" in greeting[0].text  # said, not silent


def test_audio_headers_and_revalidation(rendered, app):
    client = app.test_client()
    response = client.get("/audio/km/abc123.wav")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/wav"
    assert response.headers["Content-Length"] == str(rendered.stat().st_size)
    assert "max-age=31536000" in response.headers["Cache-Control"]
    etag = response.headers["ETag"]
    again = client.get("/audio/km/abc123.wav", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


@pytest.mark.parametrize("path", ["/audio/km/nothing.wav", "/audio/../catalog.yaml",
                                  "/audio/manifest.json", "/audio/km/abc123.txt"])
def test_audio_outside_the_rendered_files_is_not_served(rendered, app, path):
    assert app.test_client().get(path).status_code == 404


def test_urls_carry_the_position(app):
    from ivr.flow import Position

    with app.test_request_context("/voice", base_url="http://localhost"):
        url = FlaskUrls().step(Position("en", "category/transport", page=2, attempt=1),
                               noinput=True)
    assert url == "http://localhost/voice/en/category/transport?p=2&a=1&noinput=1"



def test_catalogue_edits_reach_the_next_call_and_broken_ones_are_refused(settings, tmp_path,
                                                                          caplog, monkeypatch):
    app, path, original = editable_catalogue(settings, tmp_path, monkeypatch)
    twilio = Twilio(app)

    def barber_fee() -> str:  # a new call: English, services, business licences, barber
        return Caller(twilio).start("2").press("1").press("2").press("1").heard()

    def noticed() -> None:  # a request notices the edit; the files are read beside the calls
        live = app.extensions["ivr"].live
        live.current()
        assert live.loader is not None
        live.loader.join(30)

    assert "20,000 riel" in barber_fee()
    raise_barber_fee(path, original)
    noticed()
    assert "25,000 riel" in barber_fee()  # no restart needed
    path.write_text(original.replace("riel: 20000", "riel: twenty"), encoding="utf-8")
    noticed()
    assert "25,000 riel" in barber_fee()  # the last good catalogue stays
    assert "catalogue change NOT applied" in caplog.text and "fee.riel" in caplog.text
