"""The browser phone's server side: /phone drives the real webhooks through the simulator."""

from __future__ import annotations

import json
import sqlite3
import wave
from dataclasses import replace
from pathlib import Path

import pytest

from ivr import create_app
from ivr.config import Settings
from ivr.phone import audio_file

JSON = {"Content-Type": "application/json"}


def write_audio(audio_dir: Path, prompts: dict[tuple[str, str], str]) -> None:
    """Short silent 8 kHz WAV files and a manifest whose texts are the prompt book's."""
    audio_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for (key, lang), text in prompts.items():
        name = f"{lang}/{key}.wav"
        (audio_dir / lang).mkdir(exist_ok=True)
        with wave.open(str(audio_dir / name), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\0\0" * 800)
        entries.append({"key": key, "lang": lang, "text": text, "file": name,
                        "duration_ms": 100, "engine": "test"})
    (audio_dir / "manifest.json").write_text(json.dumps({"prompts": entries}), encoding="utf-8")


@pytest.fixture
def dev_app(settings: Settings):
    """`ivr serve`: development, with the Khmer greeting rendered (the rest is spoken text)."""
    app = create_app(replace(settings, development=True))
    book = app.extensions["ivr"].book
    write_audio(settings.audio_dir, {("greeting", "km"): book.text("greeting", "km")})
    return app


@pytest.fixture
def client(dev_app):
    return dev_app.test_client()


def heard(reply: dict, since_step: int = 0) -> list[str]:
    return [p["text"] for step in reply["steps"][since_step:] for p in step["prompts"]
            if p.get("text")]


def start(client) -> dict:
    response = client.post("/phone/api/start", json={})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def press(client, call: str, keys: str | None) -> dict:
    response = client.post(f"/phone/api/{call}/press", json={"keys": keys})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_phone_is_not_found_outside_development(app) -> None:
    client = app.test_client()
    assert client.get("/phone").status_code == 404
    assert client.post("/phone/api/start", json={}).status_code == 404


def test_an_administrator_may_use_it_outside_development(settings) -> None:
    from tests.support import log_in

    app = create_app(settings, admin_password="a long admin password")
    client = app.test_client()
    assert client.get("/phone").status_code == 404  # not signed in
    assert log_in(client, "a long admin password").status_code == 302
    assert client.get("/phone").status_code == 200


def test_the_page_has_a_keypad_and_its_script(client) -> None:
    response = client.get("/phone")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for key in "123456789*0#":
        assert f'data-key="{key}"' in page
    assert 'id="call"' in page and 'id="hangup"' in page and "<audio" in page
    assert client.get("/static/phone.js").status_code == 200
    assert client.get("/static/phone.css").status_code == 200


def test_a_call_hears_the_khmer_greeting_then_the_english_menu(client, dev_app) -> None:
    book = dev_app.extensions["ivr"].book
    reply = start(client)
    greeting = reply["steps"][0]["prompts"][0]
    assert greeting["kind"] == "play"
    assert greeting["text"] == book.text("greeting", "km")
    assert (greeting["lang"], greeting["key"]) == ("km", "greeting")
    assert audio_file(greeting["url"]) == "km/greeting.wav"
    audio = client.get(greeting["url"])
    assert audio.status_code == 200 and audio.content_type == "audio/wav"
    assert reply["waiting"]["numDigits"] == 1 and not reply["ended"]
    assert book.text("language.offer", "en") in heard(reply)  # not rendered: spoken text

    reply = press(client, reply["call"], "2")
    assert reply["steps"][-1]["digits"] == "2"
    assert heard(reply, since_step=1)[0] == "Main menu."
    assert book.text("menu.main.services", "en") in heard(reply, since_step=1)

    reply = press(client, reply["call"], "1")
    assert book.text("menu.categories.intro", "en") in heard(reply, since_step=2)
    # every webhook was signed with the line's token and accepted
    assert [step["status"] for step in reply["steps"]] == [200, 200, 200]
    assert reply["errors"] == []


def test_the_webhooks_do_check_signatures(client) -> None:
    """So the 200s above mean the simulator's signatures were verified, not skipped."""
    assert client.post("/voice", data={"CallSid": "CA1"}).status_code == 403


def test_no_input_asks_again(client, dev_app) -> None:
    book = dev_app.extensions["ivr"].book
    reply = start(client)
    reply = press(client, reply["call"], "2")
    reply = press(client, reply["call"], None)
    assert reply["steps"][1]["inputs"] == [{"keys": None, "numDigits": 1, "finishOnKey": ""}]
    assert "g=1" in reply["steps"][-1]["url"]  # the Gather's action, with no key
    assert heard(reply, since_step=2)[0] == book.text("error.noinput", "en")
    assert reply["waiting"] is not None and not reply["ended"]


def test_hanging_up_ends_the_call_and_sends_the_status_callback(client, settings) -> None:
    reply = start(client)
    call = reply["call"]
    response = client.post(f"/phone/api/{call}/hangup", json={})
    assert response.status_code == 200
    reply = response.get_json()
    assert reply["ended"] and reply["endedBy"] == "caller" and reply["statusCallbackSent"]
    assert reply["callbacks"] == [{"kind": "status", "url": "http://localhost/voice/status",
                                   "status": 200, "callStatus": "completed"}]
    with sqlite3.connect(settings.database) as db:
        assert db.execute("SELECT status FROM calls").fetchall() == [("completed",)]
    # the call is forgotten
    assert client.post(f"/phone/api/{call}/press", json={"keys": "1"}).status_code == 404


def test_unknown_calls_and_bad_requests_are_clean_errors(client) -> None:
    for path in ("/phone/api/nope/press", "/phone/api/nope/hangup"):
        response = client.post(path, json={"keys": "1"})
        assert response.status_code == 404
        assert response.get_json() == {"error": "no such call (it ended or expired)"}
    call = start(client)["call"]
    assert client.post(f"/phone/api/{call}/press", json={"keys": "1; DROP"}).status_code == 400
    # a plain form post (what another site could send) is refused
    assert client.post(f"/phone/api/{call}/press", data={"keys": "1"}).status_code == 415
    assert client.post("/phone/api/start").status_code == 415


def test_idle_calls_expire(client, dev_app, settings) -> None:
    registry = dev_app.extensions["ivr.phone"]
    call = start(client)["call"]
    registry.ttl = 0
    with dev_app.test_request_context():
        assert registry.get(call) is None  # hung up on the way out
    with sqlite3.connect(settings.database) as db:
        assert db.execute("SELECT status FROM calls").fetchall() == [("completed",)]
