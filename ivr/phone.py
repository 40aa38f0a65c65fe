"""A phone in the browser at /phone: hear and try the line with no Twilio account and no internet.

The page only shows and plays; the call itself is made on the server by the TwiML simulator
(ivr.simulate) against this very app, in-process, so every request goes through the same
webhooks, signed with the line's auth token exactly as Twilio signs them.

It is a development and training tool: the calls in progress live in a small in-memory
registry of this one process, keyed by a random id and dropped after CALL_TTL_SECONDS without
use (run it under `ivr serve`, not behind several gunicorn workers). Simulated calls go to the
same database as real ones.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request

from ivr.audio import AudioEntry, read_manifest
from ivr.prompts import PromptBook
from ivr.simulate import Call, FlaskTransport, GatherInfo, Prompt, Simulator, Step

bp = Blueprint("phone", __name__)

CALL_TTL_SECONDS = 30 * 60  # an idle call is hung up and forgotten after this
MAX_CALLS = 50  # beyond this the least recently used call is hung up
KEYS = re.compile(r"[0-9*#]{0,32}")
CALLER = "+85512000001"  # the simulator's test number; stored, like every caller, as a hash


def phone_allowed() -> bool:
    """True in development (`ivr serve`), or when an administrator is logged in.

    Without IVR_ADMIN_PASSWORD the admin pages are off, and then only development counts.
    """
    if current_app.extensions["ivr"].settings.development:
        return True
    from ivr.admin import is_admin

    return is_admin()


# --- the registry of calls in progress --------------------------------------------------------


@dataclass
class PhoneCall:
    call: Call
    used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one request at a time


class Registry:
    """Calls in progress by random id; idle ones are hung up (status callback sent) and dropped."""

    def __init__(self, ttl: float = CALL_TTL_SECONDS, limit: int = MAX_CALLS):
        self.ttl, self.limit = ttl, limit
        self._calls: dict[str, PhoneCall] = {}
        self._lock = threading.Lock()

    def add(self, call: Call) -> str:
        call_id = secrets.token_urlsafe(16)
        with self._lock:
            self._calls[call_id] = PhoneCall(call)
        self._expire()
        return call_id

    def get(self, call_id: str) -> PhoneCall | None:
        self._expire()
        with self._lock:
            entry = self._calls.get(call_id)
            if entry is not None:
                entry.used = time.monotonic()
            return entry

    def drop(self, call_id: str) -> None:
        with self._lock:
            self._calls.pop(call_id, None)

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            by_age = sorted(self._calls.items(), key=lambda item: item[1].used)
            excess = max(0, len(by_age) - self.limit)
            old = [(cid, entry) for n, (cid, entry) in enumerate(by_age)
                   if n < excess or now - entry.used > self.ttl]
            for cid, _ in old:
                del self._calls[cid]
        for _, entry in old:  # outside the registry lock: hanging up makes requests
            if entry.lock.acquire(blocking=False):
                try:
                    entry.call.hangup()
                except Exception:  # best effort: the call was abandoned anyway
                    current_app.logger.exception("hanging up an expired browser call")
                finally:
                    entry.lock.release()


def registry() -> Registry:
    return current_app.extensions["ivr.phone"]


@bp.record_once
def _setup(state: Any) -> None:
    app: Flask = state.app
    app.extensions["ivr.phone"] = Registry()


@bp.before_request
def _only_when_allowed() -> None:
    if not phone_allowed():
        abort(404)


@bp.after_request
def _headers(response: Response) -> Response:
    """Nothing from elsewhere, never framed; call states are never cached."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'none'")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# --- views ------------------------------------------------------------------------------------


@bp.get("/phone")
def page() -> str:
    return render_template("phone.html")


@bp.post("/phone/api/start")
def start() -> Response:
    """Ring the line: the simulator posts to /voice and runs the call to the first Gather."""
    _require_json()
    line = current_app.extensions["ivr"]
    sim = Simulator(FlaskTransport(current_app._get_current_object()),  # type: ignore
                    line.settings.auth_token, caller=CALLER, base_url=request.host_url,
                    allow_errors=True, fetch_audio=True)
    call = sim.start()
    call_id = registry().add(call)
    return _reply(call_id, call)


@bp.post("/phone/api/<call_id>/press")
def press(call_id: str) -> Response:
    """Answer the waiting Gather: {"keys": "2"}, or {"keys": null} (or "") for no input."""
    keys = (_require_json().get("keys") or "")
    if not isinstance(keys, str) or not KEYS.fullmatch(keys):
        return _error(400, "keys must be up to 32 of 0-9 * #")
    entry = registry().get(call_id)
    if entry is None:
        return _error(404, "no such call (it ended or expired)")
    with entry.lock:
        if not entry.call.ended:
            entry.call.press(keys or None)
        return _reply(call_id, entry.call)


@bp.post("/phone/api/<call_id>/hangup")
def hangup(call_id: str) -> Response:
    """The caller hangs up: the line gets its status callback, the call is forgotten."""
    _require_json()
    entry = registry().get(call_id)
    if entry is None:
        return _error(404, "no such call (it ended or expired)")
    with entry.lock:
        entry.call.hangup()
        return _reply(call_id, entry.call)


# --- helpers ----------------------------------------------------------------------------------


def _require_json() -> dict[str, Any]:
    """JSON bodies only: a form on another site cannot post JSON without CORS, so no CSRF."""
    data = request.get_json(silent=True) if request.is_json else None
    if not isinstance(data, dict):
        abort(_error(415, "send a JSON object (Content-Type: application/json)"))
    return data


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _reply(call_id: str, call: Call) -> Response:
    """The whole call so far; the page plays the prompts it has not played yet."""
    if call.ended:
        registry().drop(call_id)
    return jsonify(call=call_id, **describe(call))


def describe(call: Call) -> dict[str, Any]:
    """A call as JSON: every document fetched, what was heard in it, the keys, the callbacks."""
    line = current_app.extensions["ivr"]
    files = {entry.file: entry for entry in read_manifest(line.settings.audio_dir).values()}
    transcript = call.transcript
    waiting = call.waiting
    return {
        "steps": [_step(step, files, line.book) for step in transcript.steps],
        "waiting": None if not isinstance(waiting, GatherInfo) else {
            "numDigits": waiting.num_digits, "finishOnKey": waiting.finish_on_key,
            "timeout": waiting.timeout, "action": waiting.action},
        "ended": call.ended,
        "endedBy": transcript.ended_by,
        "seconds": transcript.duration,
        "callbacks": [{"kind": cb.kind, "url": cb.url, "status": cb.status,
                       "callStatus": cb.params.get("CallStatus")} for cb in transcript.callbacks],
        "statusCallbackSent": transcript.status_callback_sent,
        "errors": list(transcript.errors),
    }


def _step(step: Step, files: dict[str, AudioEntry], book: PromptBook) -> dict[str, Any]:
    return {
        "method": step.method,
        "url": step.url,
        "digits": step.params.get("Digits"),
        "status": step.status,
        "error": step.error,
        "prompts": [prompt_json(p, files, book) for p in step.prompts],
        "inputs": [{"keys": entry.keys, "numDigits": entry.gather.num_digits,
                    "finishOnKey": entry.gather.finish_on_key} for entry in step.inputs],
    }


def prompt_json(prompt: Prompt, files: dict[str, AudioEntry], book: PromptBook) -> dict[str, Any]:
    """One prompt with its text: a Say's own text, a Play's from the manifest entry of its file."""
    if prompt.kind == "say":
        return {"kind": "say", "text": prompt.text, "lang": prompt.language or "en"}
    if prompt.kind == "pause":
        return {"kind": "pause", "seconds": int(prompt.value or 0)}
    entry = files.get(audio_file(prompt.value))
    text = entry.text if entry else None
    if entry and not text and book.has(entry.key, entry.lang):
        text = book.text(entry.key, entry.lang)
    return {"kind": "play", "url": prompt.value or None, "digits": prompt.digits, "text": text,
            "lang": entry.lang if entry else None, "key": entry.key if entry else None}


def audio_file(url: str) -> str:
    """The file name inside the audio directory of an /audio/... URL ('' for other URLs)."""
    path = unquote(urlsplit(url).path)
    return path.split("/audio/", 1)[1] if "/audio/" in path else ""
