"""The Twilio simulator against a small toy IVR that checks signatures as the real app does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr import simulate
from ivr.simulate import (
    DIAL_OUTCOMES,
    Dial,
    FlaskTransport,
    Hangup,
    Keys,
    Pause,
    Play,
    Record,
    Redirect,
    Say,
    Simulator,
    SimulatorError,
    parse_keys,
    parse_twiml,
    sign,
)

TOKEN = "toy-auth-token"
MENU = "Press 1 for a case, 2 for fees, 3 to complain, 4 for an officer, 9 to hang up."
TEXTS = {"http://localhost/audio/welcome.wav": "Welcome to the One Window Service Office."}


def twiml(response: VoiceResponse) -> Response:
    return Response(str(response), mimetype="text/xml")


def signed_app(name: str) -> Flask:
    """A Flask app whose every URL but /audio/ checks X-Twilio-Signature (403 if wrong) and
    records what was requested in app.config["events"]."""
    app = Flask(name)
    events: list[tuple[str, dict[str, str]]] = []
    app.config["events"] = events

    @app.before_request
    def check_signature() -> None:
        if request.path.startswith("/audio/"):  # media fetches are not signed
            return
        params = request.form.to_dict() if request.method == "POST" else {}
        signature = request.headers.get("X-Twilio-Signature", "")
        if not RequestValidator(TOKEN).validate(request.url, params, signature):
            abort(403)
        events.append((request.path, {**request.args.to_dict(), **params}))

    return app


def toy_app() -> Flask:
    """A miniature IVR."""
    app = signed_app("toy")

    @app.route("/voice", methods=["POST"])
    @app.route("/voice/again", methods=["POST"])
    def voice() -> Response:
        response = VoiceResponse()
        gather = Gather(num_digits=1, action="/menu", timeout=3)
        gather.play("audio/welcome.wav")  # relative: resolves against /voice
        gather.say(MENU, language="en-US")
        response.append(gather)
        response.redirect("/voice/noinput")
        return twiml(response)

    @app.route("/voice/noinput", methods=["POST"])
    def noinput() -> Response:
        response = VoiceResponse()
        response.say("We did not hear you.")
        response.redirect("again")  # relative: http://localhost/voice/again
        return twiml(response)

    @app.route("/menu", methods=["POST"])
    def menu() -> Response:
        digits = request.form.get("Digits", "")
        response = VoiceResponse()
        if digits == "1":
            gather = Gather(action="number", finish_on_key="#")  # relative: /number
            gather.say("Enter your case number, then the hash key.")
            response.append(gather)
            response.redirect("/voice")
        elif digits == "2":
            gather = Gather(num_digits=2, action="/fees", action_on_empty_result=True)
            gather.say("Enter the service code.")
            response.append(gather)
        elif digits == "3":
            response.say("Speak after the beep.")
            response.record(action="/recorded", recording_status_callback="/recording-status",
                            max_length=60)
            response.say("We got nothing.")
            response.redirect("/voice")
        elif digits == "4":
            dial = response.dial(action="/dialed", timeout=20, caller_id="+85523000000")
            dial.number("+85512999999")
            response.say("Never heard when Dial has an action.")
        elif digits == "5":
            response.redirect("/get-target", method="GET")
        elif digits == "6":
            abort(500)
        elif digits == "7":
            response.redirect("/loop")
        elif digits == "8":
            return Response("<p>not twiml</p>", mimetype="text/html")
        elif digits == "9":
            response.say("Goodbye.")
            response.pause(length=1)
            response.hangup()
            response.say("Never heard after Hangup.")
        else:
            response.say("That is not an option.")
            response.redirect("/voice")
        return twiml(response)

    @app.route("/number", methods=["POST"])
    def number() -> Response:
        response = VoiceResponse()
        response.say(f"Case {request.form.get('Digits')}.")
        response.redirect("/voice")
        return twiml(response)

    @app.route("/fees", methods=["POST"])
    def fees() -> Response:
        response = VoiceResponse()
        digits = request.form.get("Digits", "")
        response.say(f"Fees for service {digits}." if digits else "No service code.")
        response.hangup()
        return twiml(response)

    @app.route("/recorded", methods=["POST"])
    def recorded() -> Response:
        response = VoiceResponse()
        response.say(f"Got {request.form['RecordingDuration']} seconds.")
        response.hangup()
        return twiml(response)

    @app.route("/dialed", methods=["POST"])
    def dialed() -> Response:
        response = VoiceResponse()
        response.say(f"Dial {request.form['DialCallStatus']}.")
        response.hangup()
        return twiml(response)

    @app.route("/get-target", methods=["GET"])
    def get_target() -> Response:
        response = VoiceResponse()
        response.say(f"Fetched by GET for {request.args['CallSid']}.")
        return twiml(response)

    @app.route("/loop", methods=["POST"])
    def loop() -> Response:
        response = VoiceResponse()
        response.redirect("/loop")
        return twiml(response)

    @app.route("/audio/<name>", methods=["GET"])
    def audio(name: str) -> Response:
        if app.config.get("audio_missing"):
            abort(404)
        return Response(b"RIFF....WAVE", mimetype="audio/wav")

    @app.route("/recording-status", methods=["POST"])
    @app.route("/voice/status", methods=["POST"])
    def callback() -> Response:
        return Response("", status=204)

    return app


@pytest.fixture
def app() -> Flask:
    return toy_app()


@pytest.fixture
def sim(app: Flask) -> Simulator:
    return Simulator(app, TOKEN, prompt_text=TEXTS.get)


def paths(app: Flask) -> list[str]:
    return [path for path, _ in app.config["events"]]


def posted(app: Flask, path: str) -> list[dict[str, str]]:
    return [params for p, params in app.config["events"] if p == path]


# --- signatures --------------------------------------------------------------------------------


def test_sign_is_twilios_signature() -> None:
    url, params = "http://localhost/menu?x=1", {"Digits": "1", "CallSid": "CA1"}
    assert sign(TOKEN, url, params) == RequestValidator(TOKEN).compute_signature(url, params)
    assert RequestValidator(TOKEN).validate(url, params, sign(TOKEN, url, params))


def test_signed_requests_are_accepted(app: Flask, sim: Simulator) -> None:
    transcript = sim.call(["9"], call_sid="CA" + "5" * 32)
    assert [step.status for step in transcript.steps] == [200, 200]
    assert paths(app) == ["/voice", "/menu", "/voice/status"]
    first = posted(app, "/voice")[0]
    assert first["CallSid"] == "CA" + "5" * 32 and first["CallStatus"] == "ringing"
    assert first["Direction"] == "inbound" and first["ApiVersion"] == "2010-04-01"
    assert first["From"] == first["Caller"] == "+85512000001"
    assert first["FromCountry"] == first["ToCountry"] == "KH"
    assert "Digits" not in first
    assert posted(app, "/menu")[0]["CallStatus"] == "in-progress"


class Tampering(FlaskTransport):
    """Changes one character of every signature, as a forged request would."""

    def post(self, url, params, headers):
        signature = headers["X-Twilio-Signature"]
        forged = ("A" if signature[0] != "A" else "B") + signature[1:]
        return super().post(url, params, {"X-Twilio-Signature": forged})


def test_tampered_or_wrongly_keyed_signature_is_refused(app: Flask) -> None:
    with pytest.raises(SimulatorError, match="403") as error:
        Simulator(Tampering(app), TOKEN).call(["9"])
    assert "http://localhost/voice" in str(error.value)
    with pytest.raises(SimulatorError, match="403"):
        Simulator(app, "another-token").call(["9"])
    assert app.config["events"] == []


# --- Gather ----------------------------------------------------------------------------------


def test_num_digits_takes_one_key_and_queues_the_rest(app: Flask, sim: Simulator) -> None:
    transcript = sim.call(["14711#9"])  # typed ahead: menu 1, case 4711#, then 9 at the menu
    assert [step.params.get("Digits") for step in transcript.steps] == [None, "1", "4711",
                                                                        None, "9"]
    assert transcript.steps[0].gather.num_digits == 1 and transcript.steps[0].keys == "1"
    assert "Case 4711." in transcript.heard()
    assert transcript.ended_by == "hangup"
    assert transcript.unused == []


def test_finish_on_key_is_not_sent_and_partial_input_is_submitted(sim: Simulator) -> None:
    transcript = sim.call(["1", "12#34"])
    assert transcript.steps[2].params["Digits"] == "12"  # '#' ends it and is not sent
    assert transcript.steps[4].params["Digits"] == "3"  # '34' was typed ahead to the menu
    assert transcript.steps[4].url == "http://localhost/menu"

    transcript = sim.call(["1", "55", "9"])  # no '#': submitted when the Gather times out
    assert transcript.steps[2].params["Digits"] == "55"
    assert transcript.ended_by == "hangup"


def test_no_input_falls_through_to_the_redirect(app: Flask, sim: Simulator) -> None:
    transcript = sim.call([None])
    assert transcript.urls() == ["http://localhost/voice", "http://localhost/voice/noinput",
                                 "http://localhost/voice/again"]
    assert transcript.steps[0].inputs[0].keys is None
    assert "Digits" not in transcript.steps[1].params
    assert "/menu" not in paths(app)
    assert "We did not hear you." in transcript.heard()
    assert transcript.ended_by == "caller"  # the script ran out at the second menu


def test_action_on_empty_result_posts_empty_digits(sim: Simulator) -> None:
    transcript = sim.call("2 -")
    assert transcript.steps[2].url == "http://localhost/fees"
    assert transcript.steps[2].params["Digits"] == ""
    assert transcript.heard()[-1] == "No service code."


def test_relative_urls_resolve_against_their_document(sim: Simulator) -> None:
    transcript = sim.call("- 1 7#")
    assert transcript.steps[0].prompts[0].value == "http://localhost/audio/welcome.wav"
    assert transcript.steps[2].url == "http://localhost/voice/again"
    assert transcript.steps[4].url == "http://localhost/number"
    assert transcript.steps[2].gather.action == "http://localhost/menu"


def test_parse_twiml_resolves_and_reads_every_verb() -> None:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Gather action="next" numDigits="2" finishOnKey="*" timeout="7" input="dtmf"'
        ' actionOnEmptyResult="true" method="GET"><Play loop="2">a.wav</Play>'
        '<Say language="km-KH" voice="x">ជំរាបសួរ</Say><Pause length="2"/></Gather>'
        '<Play digits="1w2"/><Redirect>/top</Redirect>'
        '<Record action="../rec" maxLength="30" finishOnKey="#" playBeep="false"'
        ' recordingStatusCallback="cb" timeout="3"/>'
        '<Dial action="d" timeout="10" callerId="+855">+85512</Dial>'
        "<Dial><Number>+1</Number><Number>+2</Number></Dial><Hangup/></Response>"
    )
    verbs = parse_twiml(xml, "https://ivr.example/voice/km/menu")
    gather = verbs[0]
    assert isinstance(gather, simulate.Gather)
    assert (gather.action, gather.method, gather.num_digits, gather.finish_on_key,
            gather.timeout, gather.action_on_empty_result) == (
        "https://ivr.example/voice/km/next", "GET", 2, "*", 7, True)
    assert gather.children == [Play("https://ivr.example/voice/km/a.wav", 2),
                               Say("ជំរាបសួរ", "km-KH", "x"), Pause(2)]
    assert verbs[1] == Play("", 1, "1w2")
    assert verbs[2] == Redirect("https://ivr.example/top")
    assert verbs[3] == Record("https://ivr.example/voice/rec", "POST", 30, "#", False,
                              "https://ivr.example/voice/km/cb", "POST", 3)
    assert verbs[4] == Dial("https://ivr.example/voice/km/d", "POST", 10, "+855", ["+85512"])
    assert verbs[5] == Dial(None, "POST", 30, None, ["+1", "+2"])
    assert verbs[6] == Hangup()


@pytest.mark.parametrize("xml, message", [
    ("<Response><Sms>hi</Sms></Response>", "unknown or unsupported verb <Sms>"),
    ("<Response><Say>unclosed</Response>", "malformed XML"),
    ("<html><body/></html>", "not <Response>"),
    ("<Response><Gather><Redirect>/x</Redirect></Gather></Response>", "inside <Gather>"),
])
def test_bad_twiml_is_a_clear_error(xml: str, message: str) -> None:
    with pytest.raises(SimulatorError, match=message) as error:
        parse_twiml(xml, "http://localhost/doc")
    assert "url: http://localhost/doc" in str(error.value) and xml in str(error.value)


# --- Record, Dial, the end of the call -----------------------------------------------------------


def test_record_posts_the_action_and_the_status_callback(app: Flask) -> None:
    transcript = Simulator(app, TOKEN, record_seconds=7).call(["3"])
    recorded = posted(app, "/recorded")[0]
    assert recorded["RecordingDuration"] == "7" and recorded["Digits"] == "#"
    assert recorded["RecordingUrl"].endswith(recorded["RecordingSid"])
    status = posted(app, "/recording-status")[0]
    assert status["RecordingStatus"] == "completed"
    assert status["RecordingSid"] == recorded["RecordingSid"]
    assert paths(app)[-3:] == ["/recording-status", "/recorded", "/voice/status"]
    assert transcript.steps[1].record.seconds == 7
    assert transcript.heard()[-1] == "Got 7 seconds."


def test_empty_recording_skips_the_action(app: Flask) -> None:
    transcript = Simulator(app, TOKEN, record_seconds=0).call(["3"])
    assert "/recorded" not in paths(app) and "/recording-status" not in paths(app)
    assert "We got nothing." in transcript.heard()
    assert transcript.steps[2].url == "http://localhost/voice"


def test_late_recording_callback_arrives_after_the_call(app: Flask) -> None:
    transcript = Simulator(app, TOKEN, late_recording_callback=True).call(["3"])
    assert paths(app)[-3:] == ["/recorded", "/voice/status", "/recording-status"]
    assert [c.kind for c in transcript.callbacks] == ["status", "recording"]


def test_caller_hanging_up_during_a_recording(app: Flask) -> None:
    transcript = Simulator(app, TOKEN, record_end="hangup").call(["3"])
    assert posted(app, "/recorded")[0]["Digits"] == "hangup"
    assert transcript.ended_by == "caller"
    assert "Got 5 seconds." not in transcript.heard()  # the action's TwiML is not played


@pytest.mark.parametrize("outcome", DIAL_OUTCOMES)
def test_each_dial_status_reaches_the_action(app: Flask, outcome: str) -> None:
    transcript = Simulator(app, TOKEN, dial_outcome=outcome, dial_seconds=42).call(["4"])
    dialed = posted(app, "/dialed")[0]
    assert dialed["DialCallStatus"] == outcome
    assert dialed["DialCallSid"].startswith("CA")
    assert dialed.get("DialCallDuration") == ("42" if outcome == "completed" else None)
    assert transcript.steps[1].dial.numbers == ["+85512999999"]
    assert transcript.heard()[-1] == f"Dial {outcome}."


def test_status_callback_when_the_call_ends(app: Flask, sim: Simulator) -> None:
    transcript = sim.call(["9"])
    status = posted(app, "/voice/status")
    assert len(status) == 1 and status[0]["CallStatus"] == "completed"
    assert int(status[0]["CallDuration"]) == transcript.duration > 0
    assert transcript.status_callback_sent and transcript.ended_by == "hangup"
    assert "Never heard after Hangup." not in transcript.heard()

    Simulator(app, TOKEN, status_callback=None).call(["9"])
    assert len(posted(app, "/voice/status")) == 1


def test_redirect_by_get_is_signed_with_the_query(app: Flask, sim: Simulator) -> None:
    transcript = sim.call(["5"], call_sid="CA" + "7" * 32)
    assert transcript.steps[2].method == "GET"
    assert transcript.heard()[-1] == f"Fetched by GET for CA{'7' * 32}."
    assert transcript.ended_by == "end"


# --- errors ----------------------------------------------------------------------------------


def test_redirect_loop_is_caught(sim: Simulator) -> None:
    with pytest.raises(SimulatorError, match="redirect loop"):
        sim.call(["7"])


@pytest.mark.parametrize("key, message", [("8", "not TwiML"), ("6", "HTTP error")])
def test_a_reply_that_is_not_twiml_is_an_error(sim: Simulator, key: str, message: str) -> None:
    with pytest.raises(SimulatorError, match=message) as error:
        sim.call([key])
    assert "url: http://localhost/menu" in str(error.value)
    assert ("<p>not twiml</p>" if key == "8" else "status: 500") in str(error.value)


def test_allow_errors_records_instead_of_raising(app: Flask) -> None:
    transcript = Simulator(app, TOKEN, allow_errors=True).call(["8", "9"])
    assert transcript.ended_by == "error" and "not TwiML" in transcript.errors[0]
    assert transcript.last.status == 200 and transcript.last.error
    assert transcript.status_callback_sent
    assert transcript.unused == ["9"]


def test_fetch_audio_gets_every_play_once(app: Flask) -> None:
    sim = Simulator(app, TOKEN, fetch_audio=True)
    sim.call("9")
    sim.call("9")
    assert sim.audio_status == {"http://localhost/audio/welcome.wav": 200}
    # the same relative <Play> served from /voice/again points at /voice/audio/welcome.wav
    with pytest.raises(SimulatorError, match="/voice/audio/welcome.wav"):
        sim.call("- 9")
    app.config["audio_missing"] = True
    with pytest.raises(SimulatorError, match="cannot be fetched"):
        Simulator(app, TOKEN, fetch_audio=True).call(["9"])


# --- transcript, scripts, interactive use ------------------------------------------------------


def test_transcript_text_and_heard(sim: Simulator) -> None:
    transcript = sim.call("1 4711# 9")
    heard = transcript.heard()
    assert heard[:2] == [TEXTS["http://localhost/audio/welcome.wav"], MENU]
    assert heard[-1] == "Goodbye."
    text = transcript.text()
    for line in ("POST http://localhost/voice [200]", "  keys: 1", "  keys: 4711",
                 f"  > (say en-US) {MENU}", "  > (pause 1s)", "call ended by hangup"):
        assert line in text
    assert TEXTS["http://localhost/audio/welcome.wav"] in text


def test_parse_keys() -> None:
    assert parse_keys("1 1 2 0 # - _") == ["1", "1", "2", "0", "#", None, None]
    assert parse_keys(["1", None, ""]) == ["1", None, None]


def test_ask_keys_continues_an_exhausted_script(app: Flask) -> None:
    asked = []

    def ask(gather):
        asked.append(gather)
        return "9" if len(asked) == 1 else None

    transcript = Simulator(app, TOKEN, ask_keys=ask).call([])
    assert asked[0].num_digits == 1 and asked[0].action == "http://localhost/menu"
    assert MENU in [prompt.text for prompt in asked[0].prompts]
    assert transcript.ended_by == "hangup"


def test_live_call_step_by_step(app: Flask, sim: Simulator) -> None:
    live = sim.start()
    assert live.waiting.action == "http://localhost/menu" and not live.ended
    live.press("1")
    assert live.waiting.action == "http://localhost/number"
    transcript = live.hangup()
    assert live.ended and transcript.ended_by == "caller"
    assert posted(app, "/voice/status")[0]["CallSid"] == transcript.call_sid


# --- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    from tests.browser import serve

    with serve(app) as url:
        yield url


def test_the_same_menu_over_http(app: Flask, server: str) -> None:
    transcript = Simulator(server, TOKEN).call("1 4711# 9")
    assert transcript.urls()[:3] == [f"{server}/voice", f"{server}/menu", f"{server}/number"]
    assert "Case 4711." in transcript.heard() and transcript.ended_by == "hangup"
    assert paths(app)[-1] == "/voice/status"
    with pytest.raises(SimulatorError, match="403"):
        Simulator(server, "another-token").call(["9"])


# --- carrier profiles ------------------------------------------------------------------------


def rules_app() -> Flask:
    """Documents that show where Twilio and Somleng differ (every URL checks signatures)."""
    app = signed_app("rules")

    @app.route("/voice", methods=["POST"])
    def voice() -> Response:
        response = VoiceResponse()
        kind = app.config.get("menu", "default")
        if kind == "keys":  # '#' and '*' are keys; silence asks the action
            gather = Gather(num_digits=1, finish_on_key="", action="/got",
                            action_on_empty_result=True)
        elif kind == "code":
            gather = Gather(finish_on_key="#", action="/got", timeout=8)
        elif kind == "pause":
            response.pause(length=1)
            gather = Gather(num_digits=1, action="/got")
        else:  # the carriers' defaults: finishOnKey '#', no action on an empty result
            gather = Gather(num_digits=1, action="/got")
        gather.say("Menu.")
        response.append(gather)
        response.redirect("/silent")
        return twiml(response)

    @app.route("/got", methods=["POST"])
    def got() -> Response:
        response = VoiceResponse()
        if app.config.get("record"):
            response.record(action="/recorded", recording_status_callback="/recording-status",
                            max_length=60, finish_on_key="#")
            response.redirect("/nothing-recorded")
        else:
            response.say(f"Got {request.form.get('Digits', 'no Digits')}.")
            response.hangup()
        return twiml(response)

    @app.route("/silent", methods=["POST"])
    @app.route("/nothing-recorded", methods=["POST"])
    @app.route("/recorded", methods=["POST"])
    def end() -> Response:
        response = VoiceResponse()
        response.say("End.")
        response.hangup()
        return twiml(response)

    @app.route("/recording-status", methods=["POST"])
    @app.route("/voice/status", methods=["POST"])
    def callback() -> Response:
        return Response("", status=204)

    return app


@pytest.fixture
def rules() -> Flask:
    return rules_app()


@pytest.mark.parametrize("carrier", ["twilio", "somleng"])
def test_hash_alone_ends_a_default_gather_with_nothing(rules: Flask, carrier: str) -> None:
    """finishOnKey defaults to '#', also on a one-key menu: '#' is swallowed and the next verb
    runs (the bug that made 'press hash for the main menu' do nothing)."""
    transcript = Simulator(rules, TOKEN, carrier=carrier).call(["#"])
    assert paths(rules)[:2] == ["/voice", "/silent"] and "/got" not in paths(rules)
    assert transcript.steps[0].inputs[0].keys is None
    assert transcript.steps[0].inputs[0].pressed == "#"


@pytest.mark.parametrize("carrier", ["twilio", "somleng"])
def test_empty_finish_on_key_makes_hash_and_star_keys(rules: Flask, carrier: str) -> None:
    rules.config["menu"] = "keys"
    for key in "#*":
        transcript = Simulator(rules, TOKEN, carrier=carrier).call([key])
        assert f"Got {key}." in transcript.heard()


def test_action_on_empty_result_posts_without_digits_on_somleng(rules: Flask) -> None:
    rules.config["menu"] = "keys"
    Simulator(rules, TOKEN, carrier="twilio").call([None])
    Simulator(rules, TOKEN, carrier="somleng").call([None])
    twilio, somleng = posted(rules, "/got")
    assert twilio["Digits"] == "" and twilio["FinishedOnKey"] == ""  # Twilio: empty Digits
    assert "Digits" not in somleng and "FinishedOnKey" not in somleng  # Somleng: none at all
    assert "/silent" not in paths(rules)  # the Redirect after the Gather is never reached


def test_somleng_ends_a_code_two_seconds_after_a_key(rules: Flask) -> None:
    """Somleng's Gather `timeout` is only the wait for the first key; 2 s between keys end it.
    Twilio waits `timeout` seconds between keys too."""
    rules.config["menu"] = "code"
    Simulator(rules, TOKEN, carrier="twilio").call([Keys("0105", gap=2.5)])
    Simulator(rules, TOKEN, carrier="somleng").call([Keys("0105", gap=2.5)])
    Simulator(rules, TOKEN, carrier="somleng").call([Keys("0105#", gap=1.5)])
    assert [p["Digits"] for p in posted(rules, "/got")] == ["0105", "0", "0105"]
    assert parse_keys("0105@2.5 -") == [Keys("0105", gap=2.5), None]


def test_somleng_waits_a_second_before_a_redirect(rules: Flask) -> None:
    twilio = Simulator(rules, TOKEN, carrier="twilio").call([None])
    somleng = Simulator(rules, TOKEN, carrier="somleng").call([None])
    assert [s.delay for s in twilio.steps] == [0.0, 0.0]
    assert [s.delay for s in somleng.steps] == [0.0, 1.0]
    assert twilio.reprompt_delays()[0] < 0.5 <= 1.0 <= somleng.reprompt_delays()[0]


def test_somleng_refuses_pause(rules: Flask) -> None:
    rules.config["menu"] = "pause"
    with pytest.raises(SimulatorError, match="invalid element"):
        Simulator(rules, TOKEN, carrier="somleng").call(["1"])
    assert "Got 1." in Simulator(rules, TOKEN, carrier="twilio").call(["1"]).heard()


def test_somleng_calls_look_like_somlengs(rules: Flask) -> None:
    import uuid

    Simulator(rules, TOKEN, carrier="somleng").call(["1"])
    first = posted(rules, "/voice")[0]
    assert str(uuid.UUID(first["CallSid"])) == first["CallSid"]
    assert set(first) == {"Caller", "Called", "From", "To", "CallSid", "Direction",
                          "AccountSid", "ApiVersion", "CallStatus"}
    assert posted(rules, "/got")[0]["Digits"] == "1"
    assert "FinishedOnKey" not in posted(rules, "/got")[0]


@pytest.mark.parametrize("carrier", ["twilio", "somleng"])
def test_record_action_and_callback_parameters(rules: Flask, carrier: str) -> None:
    rules.config.update(menu="keys", record=True)
    transcript = Simulator(rules, TOKEN, carrier=carrier, record_seconds=9,
                           recording_callback="after").call(["1"])
    action, = posted(rules, "/recorded")
    callback, = posted(rules, "/recording-status")
    assert paths(rules).index("/recorded") < paths(rules).index("/recording-status")
    assert action["RecordingDuration"] == callback["RecordingDuration"] == "9"
    assert action["RecordingUrl"] == callback["RecordingUrl"]
    assert callback["RecordingUrl"].endswith("/Recordings/" + callback["RecordingSid"])
    assert "From" not in callback and callback["CallSid"] == transcript.call_sid
    if carrier == "twilio":
        assert action["RecordingSid"] == callback["RecordingSid"] and action["Digits"] == "#"
    else:  # Somleng: no RecordingSid and no Digits at the action; its own API host
        assert "RecordingSid" not in action and "Digits" not in action
        assert callback["RecordingUrl"].startswith("https://api.somleng.org/")


@pytest.mark.parametrize("carrier", ["twilio", "somleng"])
def test_an_empty_recording(rules: Flask, carrier: str) -> None:
    """Twilio does not call the action of an empty recording (the next verb runs); Somleng
    always posts it, with RecordingDuration 0. Neither sends a recording callback."""
    rules.config.update(menu="keys", record=True)
    Simulator(rules, TOKEN, carrier=carrier, record_seconds=0).call(["1"])
    assert "/recording-status" not in paths(rules)
    if carrier == "twilio":
        assert "/recorded" not in paths(rules) and "/nothing-recorded" in paths(rules)
    else:
        assert posted(rules, "/recorded")[0]["RecordingDuration"] == "0"
        assert "/nothing-recorded" not in paths(rules)


def test_pause_at_record_lets_the_caller_say_how(rules: Flask) -> None:
    rules.config.update(menu="keys", record=True)
    live = Simulator(rules, TOKEN, pause_at_record=True).start()
    live.press("1")
    assert live.waiting is not None and live.waiting.finish_on_key == "#"
    live.record(4, "#", "RE" + "4" * 32)
    assert posted(rules, "/recorded")[0]["RecordingSid"] == "RE" + "4" * 32
    assert posted(rules, "/recorded")[0]["RecordingDuration"] == "4"
