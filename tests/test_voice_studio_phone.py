"""The phone studio (POST /studio, IVR_STUDIO_PIN) through the carrier simulator, under
Twilio's and Somleng's rules: a wrong PIN three times hangs up and records nothing; a prompt
keyed by its script number is recorded, played back, recorded again (2) and kept (1); the
kept take is fetched from the carrier's recording URL (served here from local bytes below
requests, the HTTP boundary), stored as 8 kHz mu-law and played on the next call."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from ivr import create_app, render, studio
from ivr.simulate import FlaskTransport, GatherInfo, RecordPrompt, Simulator
from ivr.terminal import prompt_texts
from tests.studio_support import fresh, greeting_played, manifest, settings_for, tone
from tests.support import TOKEN, Twilio, TwimlSchemas, below_requests, reply_to

PIN = "2468"
ACCOUNT = "AC" + "1" * 32
HOSTS = {"twilio": "api.twilio.com", "somleng": "api.somleng.org"}


class Carrier:
    """The carrier's recordings, below requests: a take's id -> its bytes; what was asked."""

    def __init__(self) -> None:
        self.takes: dict[str, bytes] = {}
        self.sent: list[requests.PreparedRequest] = []

    def send(self, adapter, request, **kwargs):
        self.sent.append(request)
        name = (request.url or "").rsplit("/", 1)[-1].removesuffix(".wav")
        body = self.takes.get(name)
        return reply_to(request, 200 if body is not None else 404, body or b"",
                        {"Content-Type": "audio/x-wav"})


@pytest.fixture
def carrier(monkeypatch) -> Carrier:
    fake = Carrier()
    below_requests(monkeypatch, fake)
    monkeypatch.setattr("ivr.studio_phone.time.sleep", lambda seconds: None)
    return fake


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    """A line per carrier (and one without a PIN), made once; `line_app` empties its audio
    and recordings folders for each test."""
    made: dict[tuple[str, str | None], Any] = {}

    def get(provider: str, pin: str | None) -> Any:
        if (provider, pin) not in made:
            extra = {"somleng_api_url": "https://api.somleng.org"} \
                if provider == "somleng" else {}
            made[(provider, pin)] = create_app(settings_for(
                tmp_path_factory.mktemp(provider), studio_pin=pin, provider=provider,
                twilio_account_sid=ACCOUNT, **extra))
        return made[(provider, pin)]

    return get


@pytest.fixture
def line_app(lines):
    def make(tmp_path: Path, provider: str, pin: str | None = PIN):
        app = lines(provider, pin)
        fresh(app)
        return app

    return make


def recordings(app) -> Path:
    return app.extensions["ivr"].settings.recordings_dir


def dial_studio(app, provider: str):
    sim = Simulator(FlaskTransport(app.test_client()), TOKEN, carrier=provider,
                    pause_at_record=True,
                    prompt_text=prompt_texts(app.extensions["ivr"].settings))
    return sim.start(at=(sim.url("/studio"), "POST", None))


def heard(call, since: int = 0) -> str:
    return " ".join(p.text or "" for step in call.transcript.steps[since:]
                    for p in step.prompts)


def en(app, key: str) -> str:
    return app.extensions["ivr"].book.text(key, "en")  # no audio rendered: <Say> in English


@pytest.mark.parametrize("provider", ["twilio", "somleng"])
@pytest.mark.parametrize("tries", [["1357#", "0000#", "9#"], ["1357#", None, "#"]])
def test_a_wrong_pin_three_times_hangs_up_and_records_nothing(tmp_path, carrier, provider,
                                                              tries, line_app):
    app = line_app(tmp_path, provider)
    call = dial_studio(app, provider)
    assert en(app, "studio.pin") in heard(call)
    for keys in tries:  # a wrong PIN, silence, '#' alone: each is a wrong try
        assert isinstance(call.waiting, GatherInfo)
        call.press(keys)
    assert call.ended and call.transcript.ended_by == "hangup"
    assert heard(call).count(en(app, "studio.pin.wrong")) == 3
    assert all(step.record is None for step in call.transcript.steps)  # never a <Record>
    assert not carrier.sent and not recordings(app).exists()
    assert manifest(app) == {}


@pytest.mark.parametrize("provider", ["twilio", "somleng"])
def test_record_again_then_keep_and_the_next_call_plays_it(tmp_path, carrier, provider,
                                                           line_app):
    app = line_app(tmp_path, provider)
    first, second = tone(tmp_path, "wav", hz=440), tone(tmp_path, "wav", hz=880)
    carrier.takes.update({"RE" + "a" * 32: first, "RE" + "b" * 32: second})
    call = dial_studio(app, provider)
    call.press("2468#")
    assert en(app, "studio.language") in heard(call)
    call.press("1")  # Khmer prompts
    mark = len(call.transcript.steps)
    call.press("1#")  # prompt 1 of the script: the greeting
    assert isinstance(call.waiting, RecordPrompt)
    said = heard(call, mark)
    assert en(app, "office.code.keyed") in said and en(app, "digit.1") in said
    assert en(app, "studio.current.none") in said and en(app, "studio.record") in said

    call.record(4, "#", "RE" + "a" * 32)
    assert isinstance(call.waiting, GatherInfo)
    take = call.transcript.steps[-1].prompts
    assert any(p.kind == "play" and p.value.startswith(f"https://{HOSTS[provider]}/")
               and p.value.endswith("RE" + "a" * 32) for p in take)  # the take played back
    assert en(app, "studio.keep") in heard(call, len(call.transcript.steps) - 1)
    call.press("2")  # record again
    assert isinstance(call.waiting, RecordPrompt)
    call.record(4, "#", "RE" + "b" * 32)
    call.press("1")  # keep
    assert en(app, "studio.saved") in heard(call, len(call.transcript.steps) - 1)
    assert isinstance(call.waiting, GatherInfo)  # the next number
    call.hangup()
    schemas = TwimlSchemas()
    for step in call.transcript.steps:  # every document is TwiML the carriers accept
        assert schemas.validate(etree.fromstring(step.twiml.encode())), (
            step.url, schemas.error_log.last_error)

    (fetched,) = carrier.sent  # only the kept take, once
    assert fetched.url == (f"https://{HOSTS[provider]}/2010-04-01/Accounts/"
                           f"{call.sim.account_sid}/" + fetched.url.split(
                               f"{call.sim.account_sid}/", 1)[1])
    assert fetched.url.endswith("RE" + "b" * 32 + ".wav")
    auth = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert fetched.headers["Authorization"] == f"Basic {auth}"
    stored = recordings(app) / "km" / "greeting.wav"
    info = render.wav_info(stored)
    assert (info.format_tag, info.channels, info.rate) == (7, 1, 8000)
    assert stored.read_bytes() == studio.telephone(second)[0]  # the second take, not the first
    assert greeting_played(app, provider) == manifest(app)[("greeting", "km")]["file"]
    conn = app.extensions["ivr"].store.db.conn
    assert conn.execute("SELECT user, action, target FROM audit_log WHERE action LIKE "
                        "'voice.%' AND id > ?", [app.config["audit_mark"]]).fetchall() == [
        ("phone studio", "voice.record", "km/greeting")]


@pytest.mark.parametrize("provider", ["twilio", "somleng"])
def test_an_empty_take_is_asked_again_and_stores_nothing(tmp_path, carrier, provider,
                                                         line_app):
    app = line_app(tmp_path, provider)
    call = dial_studio(app, provider)
    call.press("2468#").press("2").press("3#")
    assert isinstance(call.waiting, RecordPrompt)
    mark = len(call.transcript.steps)
    call.record(0, "#")  # nothing said (Twilio skips the action; Somleng posts it, empty)
    assert en(app, "recording.empty") in heard(call, mark)
    assert isinstance(call.waiting, RecordPrompt)  # the beep again
    call.hangup()
    assert not carrier.sent and not recordings(app).exists()


def test_the_studio_is_off_without_a_pin(tmp_path, carrier, line_app):
    app = line_app(tmp_path, "twilio", pin=None)
    call = dial_studio(app, "twilio")
    assert call.ended and call.transcript.ended_by == "rejected"  # not even answered


def test_a_step_needs_the_calls_session_and_a_trusted_recording_host(tmp_path, carrier,
                                                                      line_app):
    app = line_app(tmp_path, "twilio")
    twilio = Twilio(app)
    forged = twilio.post("/studio/km/keep?n=1&s=0123456789abcdef01234567&u=https://api."
                         "twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", {"Digits": "1"})
    assert forged.status_code == 200 and b"<Hangup" in forged.data and b"<Record" not in \
        forged.data
    from ivr.studio_phone import token

    with app.test_request_context():
        session = token("CA" + "0" * 32)  # tests.support.Twilio's CallSid
    unsafe = twilio.post(f"/studio/km/keep?n=1&s={session}&u=https://attacker%5C@api.twilio"
                         ".com/x", {"Digits": "1"})
    assert unsafe.status_code == 200
    assert en(app, "studio.failed").encode() in unsafe.data  # refused: nothing was fetched
    assert not carrier.sent and not recordings(app).exists()
    unsigned = app.test_client().post("/studio", data={"CallSid": "CA1"})
    assert unsigned.status_code == 403


def test_a_fault_in_a_studio_step_is_valid_twiml_never_a_500(tmp_path, carrier, line_app,
                                                             monkeypatch):
    app = line_app(tmp_path, "somleng")
    call = dial_studio(app, "somleng")
    call.press("2468#").press("1")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(studio, "find_line", broken)
    call.press("1#")
    last = call.transcript.steps[-1]
    assert last.status == 200 and call.ended and call.transcript.ended_by == "hangup"
    assert en(app, "studio.fault") in heard(call, len(call.transcript.steps) - 1)
