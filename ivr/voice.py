"""The Twilio webhooks: thin views that check the signature and ask the call flow.

Twilio must never get a 5xx: any fault becomes an apology and the main menu, and is logged.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, request, url_for
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.datastructures import MultiDict

from ivr.flow import WELCOME, CallFlow
from ivr.line import Line
from ivr.steps import CallInfo, Position
from ivr.store import recording_duration

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__)
SAFE = "/:@!$&'()*+,;=~"  # what a path keeps unescaped (as werkzeug rebuilds request.url)
NOTHING_TO_SAY = str(VoiceResponse())  # the reply to a callback: an empty <Response/>


class FlaskUrls:
    """URLs for the flow, absolute, as Twilio must request them."""

    def __init__(self) -> None:
        # what the URLs below depend on, cheaper than request.host_url
        self.key = (f"{request.scheme}://{request.host}{request.script_root}"
                    if request else "")

    def step(self, pos: Position, noinput: bool = False, gather: bool = False) -> str:
        """The step's URL: the position in the path and query; `g=1` marks a Gather's action
        (no Digits there means no key came), `noinput=1` the Redirect after a Gather."""
        query: dict[str, Any] = {}
        if pos.page != 1:
            query["p"] = pos.page
        if pos.attempt:
            query["a"] = pos.attempt
        for name, value in (("o", pos.office), ("s", pos.service), ("t", pos.topic),
                            ("k", pos.keyed)):
            if value:
                query[name] = value
        if gather:
            query["g"] = 1
        if noinput:
            query["noinput"] = 1
        return url_for("voice.step", lang=pos.lang, node=pos.node, _external=True, **query)

    def recording_callback(self, pos: Position, kind: str) -> str:
        """Where Twilio reports a finished recording, even after the caller hung up."""
        query = {"kind": kind, "lang": pos.lang, "o": pos.office, "s": pos.service,
                 "t": pos.topic}
        return url_for("voice.recording", _external=True,
                       **{k: v for k, v in query.items() if v})

    def audio(self, file: str) -> str:
        return url_for("audio.file", filename=file, _external=True)


def line() -> Line:
    return current_app.extensions["ivr"]


def flow() -> CallFlow:
    call = CallInfo(request.values.get("CallSid", ""), request.values.get("From", ""))
    return line().flow(FlaskUrls(), call)


def twiml(response: VoiceResponse | str) -> Response:
    return Response(str(response), mimetype="text/xml")


@bp.before_request
def check_signature() -> None:
    """Only Twilio (holding our auth token) may drive a call: 403 and no side effect."""
    if request.method not in ("POST", "GET"):
        # carriers send POST (or GET, with everything in the signed URL); a HEAD's form
        # would be read as the request's values without being covered by the signature
        abort(405)
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        _refuse()
    form = request.form if request.method == "POST" else None
    token = line().settings.auth_token
    assert token is not None  # create_app's settings always have one (or the app stops)
    # The URL as requested, signed in one HMAC (the usual case, and the cheap one); then the
    # validator's own rules, which also try the URL with and without an explicit port.
    if hmac.compare_digest(twilio_signature(token, _requested_url(), form).encode(),
                           signature.encode()):
        return
    params = form.to_dict() if form is not None else {}
    if not RequestValidator(token).validate(request.url, params, signature):
        _refuse()


def twilio_signature(token: str, url: str, form: MultiDict | None) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1 of the URL followed by every POST parameter,
    name then value, sorted (the algorithm of twilio's RequestValidator, in one C call)."""
    parts = [url]
    if form:
        for name in sorted(form.keys()):
            for value in sorted(set(form.getlist(name))):
                parts += (name, value)
    digest = hmac.digest(token.encode(), "".join(parts).encode(), "sha1")
    return base64.b64encode(digest).decode()


def _requested_url() -> str:
    environ = request.environ
    url = (f"{environ['wsgi.url_scheme']}://{request.host}"
           f"{quote(environ.get('SCRIPT_NAME', '') + environ.get('PATH_INFO', ''), safe=SAFE)}")
    query = environ.get("QUERY_STRING", "")
    return f"{url}?{query}" if query else url


def printable(text: str) -> str:
    """Text from a request as one log line: control characters (a newline in a URL's
    %0A) are written escaped, so nobody can add lines of their own to the log."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _refuse() -> None:
    log.warning("rejected a request to %s with a missing or wrong signature",
                printable(request.path))
    abort(403)


def never_fail(view: Callable[..., Response]) -> Callable[..., Response]:
    """Turn any exception in a webhook into valid TwiML: an apology, then the main menu."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except Exception:
            lang = kwargs.get("lang") or "km"
            node = kwargs.get("node") or WELCOME
            log.exception("fault answering %s; the caller hears an apology",
                          printable(request.path))
            try:
                return twiml(flow().apology(lang, node))
            except Exception:
                log.exception("the apology failed too")
                fallback = VoiceResponse()
                fallback.say("Sorry, something went wrong. Please call again later.",
                             language="en-US")
                fallback.hangup()
                return twiml(fallback)

    return wrapper


def log_step(lang: str, node: str, digits: str | None, event: str) -> None:
    """Record the step for the funnel; a storage fault must not break the call."""
    try:
        line().store.record_step(request.values.get("CallSid", ""),
                                 request.values.get("From", ""), lang, node, digits, event)
    except Exception:
        log.exception("could not record a call step (%s %s)", node, event)


@bp.route("/voice", methods=["POST", "GET"])
@never_fail
def welcome() -> Response:
    pos = Position("km", WELCOME)
    response = flow().present(pos)
    log_step(pos.lang, pos.node, None, "call")
    return twiml(response)


@bp.route("/voice/<lang>/<path:node>", methods=["POST", "GET"])
@never_fail
def step(lang: str, node: str) -> Response:
    keyed = request.args.get("k", "")
    pos = Position(lang, node, page=_small_int(request.args.get("p"), 1),
                   attempt=_small_int(request.args.get("a"), 0),
                   office=request.args.get("o", ""), service=request.args.get("s", ""),
                   topic=request.args.get("t", ""),
                   keyed=keyed if keyed.isascii() and keyed.isdigit() and len(keyed) <= 20
                   else "")
    digits = request.values.get("Digits") or None
    # A Gather's action without Digits: no key came (Somleng leaves Digits out, Twilio and
    # the simulator send it empty), as the Redirect after the Gather would say a second later.
    noinput = request.args.get("noinput") == "1" or (request.args.get("g") == "1"
                                                     and digits is None)
    outcome = flow().answer(pos, digits, noinput=noinput, params=request.values)
    log_step(pos.lang, outcome.node, digits, outcome.event)
    return twiml(outcome.response)


@bp.route("/voice/status", methods=["POST", "GET"])
@never_fail
def status() -> Response:
    """Twilio's status callback: the call is over."""
    duration = _small_int(request.values.get("CallDuration"), 0, limit=10**7)
    line().store.close_call(request.values.get("CallSid", ""), request.values.get("From", ""),
                            request.values.get("CallStatus", "") or "unknown", duration)
    return twiml(NOTHING_TO_SAY)


@bp.route("/voice/recording", methods=["POST"])
@never_fail
def recording() -> Response:
    """Twilio's recordingStatusCallback: a recording is ready, perhaps after the caller hung
    up. The case it belongs to is created now if the Record action has not done it."""
    values = request.values
    if values.get("RecordingStatus", "completed") == "completed":
        line().store.save_recording(
            # no From in this callback (Twilio's or Somleng's): the store takes the caller
            # hash from the call's own row
            sid=values.get("CallSid", ""), caller="",
            kind=request.args.get("kind", "complaint"), lang=request.args.get("lang", ""),
            office=request.args.get("o", ""), service=request.args.get("s", ""),
            topic=request.args.get("t", ""), recording_sid=values.get("RecordingSid", ""),
            recording_url=values.get("RecordingUrl", ""),
            duration_s=recording_duration(values.get("RecordingDuration")))
    return twiml(NOTHING_TO_SAY)


def _small_int(value: str | None, default: int, limit: int = 1000) -> int:
    """Query numbers come from URLs anyone can edit: junk becomes the default."""
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if 0 <= number <= limit else default
