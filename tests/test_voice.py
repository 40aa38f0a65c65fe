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
from ivr.voice import FlaskUrls, _requested_url, twilio_signature
from tests.support import CALLER, Twilio


def rows(settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute(sql).fetchall()


def test_signed_request_gets_the_greeting_and_is_logged(twilio, settings):
    response = twilio.post("/voice", {"CallSid": "CA1"})
    assert response.status_code == 200 and response.mimetype == "text/xml"
    doc = etree.fromstring(response.data)
    assert doc.find("Gather").get("action") == "http://localhost/voice/km/welcome?g=1"
    assert rows(settings, "SELECT sid, language FROM calls") == [("CA1", "km")]


@pytest.mark.parametrize("headers", [{}, {"X-Twilio-Signature": "forged="}])
def test_missing_or_forged_signature_is_refused_without_side_effect(app, settings, headers):
    client = app.test_client()
    response = client.post("/voice/km/main", data={"CallSid": "CA2", "Digits": "1"},
                           headers=headers)
    assert response.status_code == 403
    assert rows(settings, "SELECT count(*) FROM events") == [(0,)]
    assert rows(settings, "SELECT count(*) FROM calls") == [(0,)]


def test_signature_over_different_params_is_refused(app):
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
    assert Twilio(app, token="someone-elses-token").post("/voice").status_code == 403


def test_behind_a_proxy_the_public_url_is_signed(settings):
    """Twilio signs https://line.example.org/voice; the app sees http://10.0.0.5/voice."""
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
    def broken(self, pos, digits, noinput=False):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("ivr.flow.CallFlow.answer", broken)
    response = twilio.post("/voice/en/categories", {"Digits": "1"})
    assert response.status_code == 200
    doc = etree.fromstring(response.data)
    assert "something went wrong" in doc.find("Say").text
    assert doc.find("Redirect").text == "http://localhost/voice/en/main"


def test_a_fault_in_the_main_menu_hangs_up_instead_of_looping(app, twilio, monkeypatch):
    monkeypatch.setattr("ivr.flow.CallFlow.answer",
                        lambda *a, **k: (_ for _ in ()).throw(ValueError("x")))
    doc = etree.fromstring(twilio.post("/voice/km/main", {"Digits": "1"}).data)
    assert doc.find("Hangup") is not None and doc.find("Redirect") is None


def test_a_database_fault_does_not_interrupt_the_call(app, twilio, settings):
    settings.database.unlink()
    settings.database.mkdir()  # the file is gone and cannot be recreated
    response = twilio.post("/voice/km/main", {"Digits": "1"})
    assert response.status_code == 200 and b"<Gather" in response.data


@pytest.mark.parametrize("digits", [None, ""])
def test_a_gather_action_without_digits_is_no_input(twilio, digits):
    """Somleng posts a Gather's action with no Digits (actionOnEmptyResult); the caller
    hears the re-prompt at once, not after a Redirect's extra second."""
    doc = etree.fromstring(twilio.post("/voice/en/main", {"Digits": "1"}).data)
    gather = doc.find("Gather")
    assert gather.get("finishOnKey") == "" and gather.get("actionOnEmptyResult") == "true"
    params = {} if digits is None else {"Digits": digits}
    again = etree.fromstring(twilio.post(gather.get("action"), params).data)
    assert again.find("Gather/Say").text == "Sorry, we did not hear a key."
    assert "a=1" in again.find("Gather").get("action")


def test_status_callback_closes_the_call(twilio, settings):
    twilio.post("/voice", {"CallSid": "CA9"})
    twilio.post("/voice/status", {"CallSid": "CA9", "CallStatus": "completed",
                                  "CallDuration": "42"})
    assert rows(settings, "SELECT status, duration_s, ended_at IS NOT NULL FROM calls") == [
        ("completed", 42, 1)]


def test_no_raw_phone_number_is_stored(twilio, settings):
    twilio.post("/voice", {"CallSid": "CA7", "From": CALLER})
    twilio.post("/voice/km/main", {"CallSid": "CA7", "From": CALLER, "Digits": "1"})
    twilio.post("/voice/status", {"CallSid": "CA7", "From": CALLER, "CallStatus": "completed"})
    dump = "\n".join(sqlite3.connect(settings.database).iterdump())
    assert "CA7" in dump
    for form in (CALLER, CALLER.lstrip("+"), "12345678"):
        assert form not in dump
    hashes = rows(settings, "SELECT DISTINCT caller_hash FROM calls")
    assert len(hashes) == 1 and len(hashes[0][0]) == 32


# --- audio -------------------------------------------------------------------------------


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
    twilio = Twilio(create_app(settings))
    doc = etree.fromstring(twilio.post("/voice").data)
    gather = doc.find("Gather")
    assert gather.find("Play").text == "http://localhost/audio/km/abc123.wav"
    assert gather.find("Say").text == "For English, press 2."
    assert gather.find("Say").get("language") == "en-US"


def test_stale_audio_is_not_played(rendered, settings):
    manifest = json.loads((settings.audio_dir / "manifest.json").read_text())
    manifest["prompts"][0]["text"] = "an older greeting"
    (settings.audio_dir / "manifest.json").write_text(json.dumps(manifest))
    doc = etree.fromstring(Twilio(create_app(settings)).post("/voice").data)
    assert doc.find("Gather/Play") is None


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
    from ivr.app import LiveCatalog

    monkeypatch.setattr(LiveCatalog, "RECHECK_SECONDS", 0.0)
    path = tmp_path / "catalog.yaml"
    original = settings.catalog.read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    app = create_app(settings, catalog=path)
    twilio = Twilio(app)

    def barber_fee() -> str:
        doc = etree.fromstring(twilio.post("/voice/en/category/commerce", {"Digits": "1"}).data)
        return " ".join(e.text for e in doc.iter("Say"))

    assert "20,000 riel" in barber_fee()
    path.write_text(original.replace("riel: 20000\n      per: {km: ក្នុងមួយច្បាប់, en: per "
                                     "licence}", "riel: 25000\n      per: {km: ក្នុងមួយច្បាប់, "
                                     "en: per licence}"), encoding="utf-8")
    assert "25,000 riel" in barber_fee()  # no restart needed
    path.write_text(original.replace("riel: 20000", "riel: twenty"), encoding="utf-8")
    assert "25,000 riel" in barber_fee()  # the last good catalogue stays
    assert "catalogue change NOT applied" in caplog.text and "fee.riel" in caplog.text
