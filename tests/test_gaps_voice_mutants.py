"""The webhooks' signature check in the cases its fast path exists for (ivr/voice.py's
check_signature, twilio_signature and _requested_url; the mutants that survived the suite).

The line first signs the URL exactly as requested (scheme, host, SCRIPT_NAME + PATH_INFO,
the raw QUERY_STRING) with every value of every POST field, as Twilio's RequestValidator
signs it; only when that fails does it ask the validator over werkzeug's `request.url` and
the form's first values. The validator alone refuses what carriers do send:

- a query with percent-escaped UTF-8 (Khmer text in a GET's parameters): `request.url`
  decodes and re-quotes it, so its signature is not the carrier's;
- a POST field sent twice (`form.to_dict()` keeps only the first value);

so these tests pass only while the fast path signs the very URL and form the carrier signed:
under a path prefix (SCRIPT_NAME), and on a WSGI server that leaves out an empty SCRIPT_NAME
or QUERY_STRING (PEP 3333 allows it). A forged signature is still refused in each case.
"""

from __future__ import annotations

import sqlite3
from urllib.parse import urlencode, urlsplit

import pytest
from lxml import etree
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder, run_wsgi_app

from ivr.simulate import CARRIERS, GatherInfo, Simulator, sign
from ivr.store import caller_hash
from ivr.terminal import prompt_texts
from tests.support import TOKEN

CARRIER_NAMES = ["twilio", "somleng"]
KEY = b"test-caller-key"  # the tests' settings
NUMBER = "+85512777888"
KHMER_NAME = "សុខ ចាន់"  # a CallerName (or a SpeechResult) as a carrier may send it
FORGED = "bm90IHRoZSBzaWduYXR1cmUgYXQgYWxsIQ=="


def rows(settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute(sql).fetchall()


def carrier_params(carrier: str, sid: str, **more: str) -> list[tuple[str, str]]:
    """What the carrier posts with every webhook (ivr.simulate's CallEngine), plus `more`."""
    return list({"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": NUMBER,
                 "To": "+85523000000", "Direction": "inbound", "CallStatus": "in-progress",
                 **dict(CARRIERS[carrier].extra_params), **more}.items())


def twice(carrier: str, sid: str, **more: str) -> MultiDict:
    """The carrier's fields with one (that the line does not read) sent twice, as a proxy or
    the carrier may repeat a field; Twilio's validator signs every value."""
    return MultiDict([*carrier_params(carrier, sid, **more),
                      ("ForwardedFrom", "+85512000001"), ("ForwardedFrom", "+85512000002")])


def parsed(body: bytes):
    return etree.fromstring(body)


def steps_of(settings, sid: str) -> list[tuple]:
    """The funnel's rows of one call: (lang, node, digits, event), in order."""
    return rows(settings, f"SELECT lang, node, digits, event FROM events "
                          f"WHERE call_sid = '{sid}' ORDER BY rowid")


def said(body: bytes) -> str:
    return " ".join(e.text or "" for e in parsed(body).iter("Say"))


# --- a GET with Khmer text in its signed query ---------------------------------------------


@pytest.mark.parametrize("carrier", CARRIER_NAMES)
def test_a_call_rung_by_get_with_khmer_in_the_query_is_answered(app, settings, carrier):
    """The number's voice URL set to GET: the carrier puts its fields (a Khmer CallerName
    among them, percent-escaped UTF-8) in the signed query. The caller hears the greeting,
    then the English main menu; the call's rows are written."""
    sim = Simulator(app, TOKEN, carrier=carrier, caller=NUMBER, pause_at_record=True,
                    prompt_text=prompt_texts(settings))
    call = sim.start(at=(sim.url("/voice"), "GET", {"CallerName": KHMER_NAME}))
    first = call.transcript.steps[0]
    assert first.method == "GET" and "%E1%9E" in first.url and first.status == 200
    assert isinstance(call.waiting, GatherInfo)
    assert urlsplit(call.waiting.action).path == "/voice/km/welcome"
    call.press("2")
    assert all(step.status == 200 for step in call.transcript.steps)
    heard = " ".join(p.text or "" for step in call.transcript.steps[1:] for p in step.prompts)
    assert "Main menu." in heard and "went wrong" not in heard, heard
    sid = call.transcript.call_sid
    assert rows(settings, f"SELECT caller_hash FROM calls WHERE sid = '{sid}'") == [
        (caller_hash(KEY, NUMBER),)]
    assert ("welcome", "call") in rows(settings, "SELECT node, event FROM events")
    # the same query under a forged signature: refused, nothing written
    query = urlencode({**dict(carrier_params(carrier, "CA" + "9" * 32)),
                       "CallerName": KHMER_NAME})
    forged = app.test_client().get("/voice?" + query, headers={"X-Twilio-Signature": FORGED})
    assert forged.status_code == 403
    assert rows(settings, "SELECT count(*) FROM calls WHERE sid = 'CA" + "9" * 32 + "'") == [(0,)]


@pytest.mark.parametrize("carrier", CARRIER_NAMES)
def test_a_key_sent_by_get_with_khmer_in_the_query_is_taken(app, settings, carrier):
    """A Gather's action requested with GET: Digits and the rest in the query."""
    sid = "CA" + "4" * 32
    query = urlencode([*carrier_params(carrier, sid), ("Digits", "2"),
                       ("CallerName", KHMER_NAME)])
    url = "/voice/km/welcome?g=1&" + query
    reply = app.test_client().get(url, headers={
        "X-Twilio-Signature": sign(TOKEN, "http://localhost" + url, {})})
    assert reply.status_code == 200
    assert "Main menu." in said(reply.data) and "went wrong" not in said(reply.data)
    assert steps_of(settings, sid) == [("km", "welcome", "2", "choice")]


# --- a POST with a field sent twice -----------------------------------------------------


@pytest.mark.parametrize("carrier", CARRIER_NAMES)
def test_a_post_with_a_field_sent_twice_is_answered(app, settings, carrier):
    """The call rings, the caller presses 2 (English), the call ends: every webhook POST
    carries one field twice, signed over both values."""
    sid = "CA" + "5" * 32
    client = app.test_client()

    def post(path: str, **more: str):
        form = twice(carrier, sid, **more)
        return client.post(path, data=form, headers={
            "X-Twilio-Signature": sign(TOKEN, "http://localhost" + path, form)})

    greeting = post("/voice")
    assert greeting.status_code == 200
    action = parsed(greeting.data).find("Gather").get("action")
    assert urlsplit(action).path == "/voice/km/welcome"
    menu = post(action.removeprefix("http://localhost"), Digits="2")
    assert menu.status_code == 200 and "Main menu." in said(menu.data)
    end = post("/voice/status", CallStatus="completed", CallDuration="42")
    assert end.status_code == 200
    assert rows(settings, f"SELECT caller_hash, status, duration_s FROM calls "
                          f"WHERE sid = '{sid}'") == [(caller_hash(KEY, NUMBER), "completed", 42)]
    assert steps_of(settings, sid) == [("km", "welcome", None, "call"),
                                        ("km", "welcome", "2", "choice")]
    form = twice(carrier, "CA" + "6" * 32)
    forged = client.post("/voice", data=form, headers={"X-Twilio-Signature": FORGED})
    assert forged.status_code == 403


# --- the line under a path prefix, and on a server that omits empty CGI variables ----------


@pytest.mark.parametrize("carrier", CARRIER_NAMES)
def test_under_a_path_prefix_the_signed_url_keeps_the_prefix(app, settings, carrier):
    """Mounted at /ivr (SCRIPT_NAME, as gunicorn sets it): the carrier signs
    http://host/ivr/voice...; a GET with Khmer in its query is answered, and the Gather's
    action keeps the prefix."""
    sid = "CA" + "7" * 32
    client = app.test_client()
    query = urlencode([*carrier_params(carrier, sid), ("CallerName", KHMER_NAME)])
    signed = "http://localhost/ivr/voice?" + query
    reply = client.get("/voice?" + query, base_url="http://localhost/ivr",
                       headers={"X-Twilio-Signature": sign(TOKEN, signed, {})})
    assert reply.status_code == 200
    action = parsed(reply.data).find("Gather").get("action")
    assert action == "http://localhost/ivr/voice/km/welcome?g=1"
    form = twice(carrier, sid, Digits="2")
    menu = client.post("/voice/km/welcome?g=1", data=form, base_url="http://localhost/ivr",
                       headers={"X-Twilio-Signature": sign(TOKEN, action, form)})
    assert menu.status_code == 200 and "Main menu." in said(menu.data)
    assert steps_of(settings, sid) == [("km", "welcome", None, "call"),
                                        ("km", "welcome", "2", "choice")]
    # signed without the prefix: not the URL the carrier requested
    unprefixed = client.get("/voice?" + query, base_url="http://localhost/ivr", headers={
        "X-Twilio-Signature": sign(TOKEN, "http://localhost/voice?" + query, {})})
    assert unprefixed.status_code == 403


@pytest.mark.parametrize("left_out", [("SCRIPT_NAME",), ("QUERY_STRING",),
                                      ("SCRIPT_NAME", "QUERY_STRING")])
@pytest.mark.parametrize("carrier", CARRIER_NAMES)
def test_a_server_that_leaves_out_empty_cgi_variables(app, settings, carrier, left_out):
    """PEP 3333 lets a server omit SCRIPT_NAME and QUERY_STRING when they are empty: the
    URL signed is still http://localhost/voice... (no prefix, no '?')."""
    sid = "CA" + "8" * 32

    def post(path: str, signature: str = "", **more: str) -> tuple[str, bytes]:
        form = twice(carrier, sid, **more)
        environ = EnvironBuilder(path=path, method="POST", data=form, headers={
            "X-Twilio-Signature": signature or sign(TOKEN, "http://localhost" + path, form),
        }).get_environ()
        for name in left_out:
            environ.pop(name)
        body, status, _ = run_wsgi_app(app, environ, buffered=True)
        return status, b"".join(body)

    status, body = post("/voice")
    assert status == "200 OK" and parsed(body).find("Gather") is not None
    status, body = post("/voice/en/main", Digits="1")
    assert status == "200 OK" and "Choose a type of service." in said(body)
    assert parsed(body).find("Gather").get("action") == "http://localhost/voice/en/categories?g=1"
    status, _ = post("/voice/status", CallStatus="completed", CallDuration="7")
    assert status == "200 OK"
    assert rows(settings, f"SELECT status, duration_s FROM calls WHERE sid = '{sid}'") == [
        ("completed", 7)]
    status, _ = post("/voice", signature=FORGED)
    assert status.startswith("403")
