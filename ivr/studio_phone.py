"""The phone studio: a voice talent records the line's prompts by phone (OpenVBX's pattern).

A separate webhook, `POST /studio`, for a number of its own (or the same carrier account's
second number): it is not a branch of the citizens' line, so no key pressed on the line
reaches it, and the phone tree (ivr/tree.py) knows nothing of it. It answers only while
IVR_STUDIO_PIN is set (4 to 12 digits); otherwise it rejects the call unanswered. Every
request is signed by the carrier, as on the line.

    PIN, then #          three wrong tries (silence counts) and the studio hangs up
    1 Khmer / 2 English  the language of the prompts to record (when the line has both)
    number, then #       the prompt's number in the recording script (admin, Voice studio)
                         -> the number read back, the prompt's current audio, the beep
    record, then #       -> what was recorded is played back
    1 keep               the recording is fetched from the carrier (only from the trusted
                         recording hosts, with the account's credentials), converted and
                         live from the next call; then the next number
    2 record again

After the PIN, each step's URL carries `s`, a keyed hash of the call's CallSid: a step of
the studio cannot be requested for another call, nor before the PIN.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

import requests
from flask import Blueprint, Response, current_app, request, url_for
from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr import studio
from ivr.admin import provider_url, recording_refusal
from ivr.admin.accounts import audit
from ivr.flow import CallFlow
from ivr.line import Line
from ivr.voice import FlaskUrls, check_signature

log = logging.getLogger(__name__)
bp = Blueprint("studio", __name__, url_prefix="/studio")
bp.before_request(check_signature)

PIN_TRIES = 3
ASK_TIMEOUT = 10  # seconds to key a PIN or a number
ATTEMPTS = 3  # silences at a menu before the studio says goodbye
MAX_RECORD_SECONDS = 120
WHO = "phone studio"
FETCH_TRIES = 3  # the carrier may still be writing the file: a 404 is tried again


def line() -> Line:
    return current_app.extensions["ivr"]


def pin() -> str | None:
    """The studio's PIN, when it is a usable one (4-12 digits); None: the studio is off."""
    value = line().settings.studio_pin
    if value and value.isascii() and value.isdigit() and 4 <= len(value) <= 12:
        return value
    if value:
        log.error("IVR_STUDIO_PIN must be 4 to 12 digits: the phone studio is off")
    return None


def token(call_sid: str) -> str:
    """The studio session of one call: a keyed hash of its CallSid (the PIN is in the key,
    so changing the PIN ends every session)."""
    key = f"{line().settings.auth_token}|studio|{pin()}".encode()
    return hmac.new(key, call_sid.encode(), hashlib.sha256).hexdigest()[:24]


def flow() -> CallFlow:
    return line().flow(FlaskUrls())


def first_lang() -> str:
    return line().catalog.languages[0]


def twiml(response: VoiceResponse) -> Response:
    return Response(str(response), mimetype="text/xml")


def url(step: str, **query: Any) -> str:
    return url_for(f"studio.{step}", _external=True,
                   **{k: v for k, v in query.items() if v not in (None, "")})


def play(verb: VoiceResponse | Gather, lang: str, *keys: str) -> None:
    f = flow()
    for key in keys:
        f.play(verb, key, lang)


def goodbye(lang: str, *before: str) -> Response:
    response = VoiceResponse()
    play(response, lang, *before, "goodbye")
    response.hangup()
    return twiml(response)


def studio_step(view: Callable[..., Response]) -> Callable[..., Response]:
    """A step after the PIN: only for the call that keyed it; any fault becomes valid TwiML
    (an apology and goodbye), never an HTTP 500."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            if pin() is None or not hmac.compare_digest(
                    request.args.get("s", ""), token(request.values.get("CallSid", ""))):
                log.warning("phone studio: a step without a valid session; hanging up")
                response = VoiceResponse()
                response.hangup()
                return twiml(response)
            return view(*args, **kwargs)
        except Exception:
            log.exception("phone studio: fault answering %s", request.path)
            try:
                return goodbye(kwargs.get("lang") or first_lang(), "studio.fault")
            except Exception:
                fallback = VoiceResponse()
                fallback.hangup()
                return twiml(fallback)

    return wrapper


# --- the PIN and the language ------------------------------------------------------------


def ask_pin(tries: int, before: tuple[str, ...] = ()) -> Response:
    lang = first_lang()
    response = VoiceResponse()
    play(response, lang, *before)
    action = url("check_pin", t=tries)
    gather = Gather(input="dtmf", finish_on_key="#", timeout=ASK_TIMEOUT, action=action,
                    method="POST", action_on_empty_result=True)
    play(gather, lang, "studio.pin")
    response.append(gather)
    response.redirect(action, method="POST")
    return twiml(response)


@bp.route("", methods=["POST"])
def start() -> Response:
    """A call to the studio's number: the PIN, or (no PIN set) not answered at all."""
    try:
        if pin() is None:
            response = VoiceResponse()
            response.reject(reason="rejected")
            return twiml(response)
        return ask_pin(0)
    except Exception:
        log.exception("phone studio: fault answering the call")
        response = VoiceResponse()
        response.hangup()
        return twiml(response)


@bp.route("/pin", methods=["POST"])
def check_pin() -> Response:
    """A PIN keyed (or silence, or '#' alone: a wrong try). The third wrong try hangs up."""
    try:
        expected = pin()
        digits = request.values.get("Digits", "")
        tries = _number(request.args.get("t"), 0)
        if expected is not None and digits and hmac.compare_digest(digits, expected):
            log.info("phone studio: PIN accepted")
            return choose_language_menu()
        tries += 1
        log.warning("phone studio: wrong PIN (try %d of %d)", tries, PIN_TRIES)
        if expected is None or tries >= PIN_TRIES:
            return goodbye(first_lang(), "studio.pin.wrong")
        return ask_pin(tries, ("studio.pin.wrong",))
    except Exception:
        log.exception("phone studio: fault checking the PIN")
        response = VoiceResponse()
        response.hangup()
        return twiml(response)


def session() -> str:
    return token(request.values.get("CallSid", ""))


def choose_language_menu(attempt: int = 0) -> Response:
    languages = line().catalog.languages
    if len(languages) == 1:
        return number_menu(languages[0])
    response = VoiceResponse()
    action = url("language", s=session(), a=attempt)
    gather = Gather(input="dtmf", num_digits=1, finish_on_key="", timeout=ASK_TIMEOUT,
                    action=action, method="POST", action_on_empty_result=True)
    play(gather, first_lang(), "studio.language")
    response.append(gather)
    response.redirect(action, method="POST")
    return twiml(response)


@bp.route("/language", methods=["POST"])
@studio_step
def language() -> Response:
    languages = line().catalog.languages
    digits = request.values.get("Digits", "")
    if digits.isdigit() and 1 <= int(digits) <= len(languages):
        return number_menu(languages[int(digits) - 1])
    attempt = _number(request.args.get("a"), 0) + 1
    if attempt >= ATTEMPTS:
        return goodbye(first_lang())
    return choose_language_menu(attempt)


# --- a prompt: its number, its audio, the recording ------------------------------------------


def number_menu(lang: str, before: tuple[str, ...] = (), attempt: int = 0) -> Response:
    response = VoiceResponse()
    play(response, lang, *before)
    action = url("prompt", lang=lang, s=session(), a=attempt)
    gather = Gather(input="dtmf", finish_on_key="#", timeout=ASK_TIMEOUT, action=action,
                    method="POST", action_on_empty_result=True)
    play(gather, lang, "studio.number")
    response.append(gather)
    response.redirect(action, method="POST")
    return twiml(response)


def find(lang: str, number: int) -> studio.Line | None:
    settings = line().settings
    return studio.find_line(line().book, lang, settings.audio_dir, settings.recordings_dir,
                            number=number)


def record_part(response: VoiceResponse, lang: str, number: int) -> None:
    """The beep and the recording; Twilio skips the action of an empty recording and runs
    the Redirect after it (Somleng posts the action with a duration of 0)."""
    play(response, lang, "studio.record")
    take = url("take", lang=lang, s=session(), n=number)
    response.record(action=take, method="POST", max_length=MAX_RECORD_SECONDS,
                    finish_on_key="#", play_beep=True, timeout=5)
    response.redirect(url("take", lang=lang, s=session(), n=number, empty=1), method="POST")


def record_again(lang: str, number: int, *before: str) -> Response:
    """The prompts `before`, then the beep and the recording: where the prompt, take and keep
    steps all lead."""
    response = VoiceResponse()
    play(response, lang, *before)
    record_part(response, lang, number)
    return twiml(response)


def carried_line(lang: str) -> studio.Line | None:
    """The prompt whose number the take and keep steps carry in `n`; None: no such prompt
    (or language) any more."""
    if lang not in line().catalog.languages:
        return None
    return find(lang, _number(request.args.get("n"), 0, limit=10**6))


@bp.route("/<lang>/prompt", methods=["POST"])
@studio_step
def prompt(lang: str) -> Response:
    """A number keyed: the number read back, the prompt's audio as callers hear it now,
    then the beep."""
    if lang not in line().catalog.languages:
        return goodbye(first_lang())
    digits = request.values.get("Digits", "").strip("#")
    if not digits:  # silence
        attempt = _number(request.args.get("a"), 0) + 1
        if attempt >= ATTEMPTS:
            return goodbye(lang)
        return number_menu(lang, ("error.noinput",), attempt)
    found = find(lang, int(digits)) if digits.isdigit() and len(digits) <= 6 else None
    if found is None:
        return number_menu(lang, ("studio.number.unknown",))
    current = ("studio.current", found.key) if found.file else ("studio.current.none",)
    return record_again(lang, found.number, "office.code.keyed",
                        *(f"digit.{d}" for d in str(found.number)), *current)


@bp.route("/<lang>/take", methods=["POST"])
@studio_step
def take(lang: str) -> Response:
    """The recording's end: play it back, then 1 keep / 2 record again."""
    found = carried_line(lang)
    if found is None:
        return number_menu(lang if lang in line().catalog.languages else first_lang())
    recording_url = request.values.get("RecordingUrl", "")
    seconds = _number(request.values.get("RecordingDuration"), 0, limit=10**6)
    if request.args.get("empty") == "1" or not recording_url or seconds <= 0:
        return record_again(lang, found.number, "recording.empty")
    return keep_menu(lang, found.number, recording_url)


def keep_menu(lang: str, number: int, recording_url: str, attempt: int = 0) -> Response:
    response = VoiceResponse()
    action = url("keep", lang=lang, s=session(), n=number, u=recording_url, a=attempt)
    gather = Gather(input="dtmf", num_digits=1, finish_on_key="", timeout=ASK_TIMEOUT,
                    action=action, method="POST", action_on_empty_result=True)
    play(gather, lang, "studio.heard")
    gather.play(recording_url)
    play(gather, lang, "studio.keep")
    response.append(gather)
    response.redirect(action, method="POST")
    return twiml(response)


@bp.route("/<lang>/keep", methods=["POST"])
@studio_step
def keep(lang: str) -> Response:
    found = carried_line(lang)
    if found is None:
        return number_menu(lang if lang in line().catalog.languages else first_lang())
    number = found.number
    recording_url = request.args.get("u", "")
    digits = request.values.get("Digits", "")
    if digits == "2":
        return record_again(lang, number)
    if digits != "1":
        attempt = _number(request.args.get("a"), 0) + 1
        if attempt >= ATTEMPTS:
            return number_menu(lang)
        return keep_menu(lang, number, recording_url, attempt)
    settings = line().settings
    try:
        data = fetch(recording_url)
        duration_ms = studio.store(found.utterance, data, settings.audio_dir,
                                   settings.recordings_dir, by=WHO, via="phone",
                                   library=line().audio)
    except (studio.StudioError, FetchError) as exc:
        log.error("phone studio: the recording of prompt %s [%s] was not kept: %s",
                  found.key, lang, exc)
        return record_again(lang, number, "studio.failed")
    audit(line().store.db.conn, WHO, "studio", "voice.replace" if found.recorded
          else "voice.record", f"{lang}/{found.key}",
          f"phone, {duration_ms / 1000:.1f} s, replaced {found.source}, "
          f"call {request.values.get('CallSid', '')[:64]}")
    return number_menu(lang, ("studio.saved",))


# --- fetching the recording ------------------------------------------------------------------


class FetchError(Exception):
    """The recording could not be fetched from the carrier (the message says why)."""


def fetch(recording_url: str) -> bytes:
    """The recording's WAV from the carrier, with the account's credentials, only from a
    trusted recording host (IVR_RECORDING_HOSTS; see PITFALLS.md, URLs you fetch with
    credentials), at most studio.MAX_FILE_BYTES."""
    settings = line().settings
    hosts = settings.recording_hosts
    target = provider_url(recording_url, "wav", hosts)
    if target is None:
        raise FetchError(f"refused: {recording_refusal(recording_url, hosts)}")
    if not settings.twilio_account_sid:
        raise FetchError("TWILIO_ACCOUNT_SID is not set: recordings cannot be fetched")
    for attempt in range(1, FETCH_TRIES + 1):
        try:
            reply = requests.get(target, auth=(settings.twilio_account_sid,
                                               settings.auth_token or ""),
                                 timeout=(5, 20), stream=True, allow_redirects=False)
        except requests.RequestException as exc:
            raise FetchError(f"no answer from the carrier: {exc}") from exc
        with reply:
            if reply.status_code == 404 and attempt < FETCH_TRIES:
                time.sleep(1.0)  # not written yet: the carrier converts it after the call step
                continue
            if reply.status_code != 200:
                raise FetchError(f"the carrier answered {reply.status_code}")
            data = b""
            for chunk in reply.iter_content(64 * 1024):
                data += chunk
                if len(data) > studio.MAX_FILE_BYTES:
                    raise FetchError("the recording is too large")
            return data
    raise FetchError("the recording was not found")


def _number(value: str | None, default: int, limit: int = 1000) -> int:
    if value is None or not value.isascii() or not value.isdigit():
        return default
    number = int(value)
    return number if number <= limit else default
