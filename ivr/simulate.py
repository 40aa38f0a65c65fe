"""A TwiML client that behaves as Twilio does on a call, so whole calls can be tested offline.

It signs every webhook exactly as Twilio does, executes the TwiML it gets back verb by verb
(Say/Play/Pause are heard, Gather waits for scripted keys, Redirect/Record/Dial make the requests
Twilio would make) and keeps a transcript.  It runs against a Flask app in-process or against a
running server by URL, so the same scripted call can check a deployment.

Behaviours copied from Twilio on purpose (see shared/PITFALLS.md, TwiML section):
- a Gather that gets no key does not call its action (unless actionOnEmptyResult): the next verb
  runs, and the call ends if there is none;
- a Gather or Record without an action posts back to the URL of its own document;
- an empty recording does not call the Record action; the recording status callback may arrive
  after the call has ended;
- Dial reports DialCallStatus to its action, or moves on to the next verb when it has none;
- when the call ends, the status callback gets CallStatus=completed.

Script semantics: a script is a list of entries, each a burst of keys typed in one go ("1",
"12#") or None for silence.  A Gather takes keys up to numDigits or the finishOnKey; keys left
over stay queued for the next Gather (type-ahead).  An entry that ends before the Gather is
satisfied is submitted when the Gather times out, as Twilio does.  When the script runs out at a
Gather the caller hangs up there (or `ask_keys` is asked, for interactive use).
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator

__all__ = [
    "Call", "Callback", "Dial", "DialInfo", "FlaskTransport", "Gather", "GatherInfo", "Hangup",
    "HttpTransport", "Input", "Pause", "Play", "Prompt", "Record", "RecordInfo", "Redirect",
    "Say", "SimulatorError", "Simulator", "Step", "Transcript", "Transport", "parse_keys",
    "parse_twiml", "sign",
]

TEST_ACCOUNT_SID = "AC" + "0" * 32
DIAL_OUTCOMES = ("completed", "busy", "no-answer", "failed", "canceled")
RECORD_FINISH_KEYS = "1234567890*#"  # Twilio's default finishOnKey for <Record>
PROMPT_SECONDS = 3  # simulated length of one Say/Play, only for CallDuration


class SimulatorError(Exception):
    """The app did something Twilio would reject (or the call looped); says where and what."""

    def __init__(self, message: str, url: str = "", status: int | None = None, body: str = ""):
        details = [message]
        if url:
            details.append(f"url: {url}")
        if status is not None:
            details.append(f"status: {status}")
        if body:
            details.append(f"body: {body[:2000]}")
        super().__init__("\n".join(details))
        self.url, self.status, self.body = url, status, body


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature for a request to the full `url` (query included) with POST `params`."""
    return RequestValidator(auth_token).compute_signature(url, params)


# --- transport -------------------------------------------------------------------------------


class PostReply(NamedTuple):
    status: int
    body: str
    content_type: str


class GetReply(NamedTuple):
    status: int
    content: bytes
    headers: dict[str, str]


class Transport(Protocol):
    """How requests reach the app: in-process (Flask test client) or over HTTP."""

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> PostReply: ...

    def get(self, url: str, headers: dict[str, str] | None = None) -> GetReply: ...


def _split(url: str) -> tuple[str, str]:
    """('http://host:port', '/path?query') so the app rebuilds the very URL that was signed."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", urlunsplit(("", "", parts.path or "/",
                                                           parts.query, ""))


def _decode(data: bytes, content_type: str) -> str:
    """Body text; XML without a charset is UTF-8 (requests would guess Latin-1 for text/*)."""
    charset = "utf-8"
    for piece in content_type.split(";")[1:]:
        name, _, value = piece.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


class FlaskTransport:
    """In-process: the Flask test client, with the scheme and host of the absolute URL."""

    def __init__(self, app_or_client: Any):
        self.client = (app_or_client.test_client() if hasattr(app_or_client, "test_client")
                       else app_or_client)

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> PostReply:
        base, path = _split(url)
        response = self.client.post(path, base_url=base, data=params, headers=headers)
        return PostReply(response.status_code, _decode(response.get_data(), response.content_type
                                                       or ""), response.content_type or "")

    def get(self, url: str, headers: dict[str, str] | None = None) -> GetReply:
        base, path = _split(url)
        response = self.client.get(path, base_url=base, headers=headers or {})
        return GetReply(response.status_code, response.get_data(), dict(response.headers))


class HttpTransport:
    """Over HTTP to a running server; HTTP redirects are not followed (they are errors here)."""

    def __init__(self, timeout: float = 15.0):
        import requests

        self.session = requests.Session()
        self.timeout = timeout  # Twilio gives up on a webhook after 15 s

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> PostReply:
        reply = self.session.post(url, data=params, headers=headers, timeout=self.timeout,
                                  allow_redirects=False)
        content_type = reply.headers.get("Content-Type", "")
        return PostReply(reply.status_code, _decode(reply.content, content_type), content_type)

    def get(self, url: str, headers: dict[str, str] | None = None) -> GetReply:
        reply = self.session.get(url, headers=headers or {}, timeout=self.timeout,
                                 allow_redirects=False)
        return GetReply(reply.status_code, reply.content, dict(reply.headers))


# --- TwiML -----------------------------------------------------------------------------------


@dataclass
class Say:
    text: str
    language: str | None = None
    voice: str | None = None
    loop: int = 1


@dataclass
class Play:
    url: str
    loop: int = 1
    digits: str | None = None


@dataclass
class Pause:
    length: int = 1


@dataclass
class Gather:
    action: str | None = None  # None: Twilio posts to the document's own URL
    method: str = "POST"
    num_digits: int | None = None
    finish_on_key: str = "#"
    timeout: int = 5
    input: str = "dtmf"
    action_on_empty_result: bool = False
    children: list[Say | Play | Pause] = field(default_factory=list)


@dataclass
class Redirect:
    url: str
    method: str = "POST"


@dataclass
class Record:
    action: str | None = None
    method: str = "POST"
    max_length: int = 3600
    finish_on_key: str = RECORD_FINISH_KEYS
    play_beep: bool = True
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"
    timeout: int = 5


@dataclass
class Dial:
    action: str | None = None
    method: str = "POST"
    timeout: int = 30
    caller_id: str | None = None
    numbers: list[str] = field(default_factory=list)


@dataclass
class Hangup:
    pass


Verb = Say | Play | Pause | Gather | Redirect | Record | Dial | Hangup


def _int(element: ET.Element, name: str, default: int | None) -> int | None:
    value = element.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"<{element.tag} {name}={value!r}> is not a number") from None


def _bool(element: ET.Element, name: str, default: bool) -> bool:
    value = element.get(name)
    return default if value is None else value.strip().lower() == "true"


def _url(base: str, value: str | None) -> str | None:
    return urljoin(base, value.strip()) if value and value.strip() else None


def _method(element: ET.Element, name: str = "method") -> str:
    method = (element.get(name) or "POST").upper()
    if method not in ("GET", "POST"):
        raise ValueError(f"<{element.tag} {name}={method!r}>: Twilio only uses GET or POST")
    return method


def _prompt(element: ET.Element, base: str) -> Say | Play | Pause:
    if element.tag == "Say":
        text = " ".join("".join(element.itertext()).split())  # SSML children keep their text
        return Say(text, element.get("language"), element.get("voice"),
                   _int(element, "loop", 1) or 0)
    if element.tag == "Play":
        digits = element.get("digits")
        url = _url(base, element.text)
        if not url and not digits:
            raise ValueError("<Play> without a URL or digits")
        return Play(url or "", _int(element, "loop", 1) or 0, digits)
    if element.tag == "Pause":
        return Pause(_int(element, "length", 1) or 0)
    raise ValueError(f"<{element.tag}> is not allowed here")


def _verb(element: ET.Element, base: str) -> Verb:
    tag = element.tag
    if tag in ("Say", "Play", "Pause"):
        return _prompt(element, base)
    if tag == "Gather":
        children = []
        for child in element:
            if child.tag not in ("Say", "Play", "Pause"):
                raise ValueError(f"<{child.tag}> inside <Gather>: only Say, Play, Pause")
            children.append(_prompt(child, base))
        return Gather(_url(base, element.get("action")), _method(element),
                      _int(element, "numDigits", None), element.get("finishOnKey", "#"),
                      _int(element, "timeout", 5) or 0, element.get("input", "dtmf"),
                      _bool(element, "actionOnEmptyResult", False), children)
    if tag == "Redirect":
        url = _url(base, element.text)
        if not url:
            raise ValueError("<Redirect> without a URL")
        return Redirect(url, _method(element))
    if tag == "Record":
        return Record(_url(base, element.get("action")), _method(element),
                      _int(element, "maxLength", 3600) or 0,
                      element.get("finishOnKey", RECORD_FINISH_KEYS),
                      _bool(element, "playBeep", True),
                      _url(base, element.get("recordingStatusCallback")),
                      _method(element, "recordingStatusCallbackMethod"),
                      _int(element, "timeout", 5) or 0)
    if tag == "Dial":
        numbers = []
        if element.text and element.text.strip():
            numbers.append(element.text.strip())
        for child in element:
            if child.tag != "Number":
                raise ValueError(f"<{child.tag}> inside <Dial> is not supported (only <Number>)")
            numbers.append((child.text or "").strip())
        if not numbers:
            raise ValueError("<Dial> without a number")
        return Dial(_url(base, element.get("action")), _method(element),
                    _int(element, "timeout", 30) or 0, element.get("callerId"), numbers)
    if tag == "Hangup":
        return Hangup()
    raise ValueError(f"unknown or unsupported verb <{tag}>")


def parse_twiml(xml: str | bytes, url: str = "") -> list[Verb]:
    """The verbs of a TwiML document; relative URLs resolve against `url`, the document's URL."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as error:
        raise SimulatorError(f"malformed XML: {error}", url,
                             body=xml if isinstance(xml, str) else repr(xml)) from None
    if root.tag != "Response":
        raise SimulatorError(f"the root element is <{root.tag}>, not <Response>", url,
                             body=str(xml))
    try:
        return [_verb(element, url) for element in root]
    except ValueError as error:
        raise SimulatorError(str(error), url, body=str(xml)) from None


# --- transcript ------------------------------------------------------------------------------


@dataclass
class Prompt:
    """One thing the caller heard: kind 'say' | 'play' | 'pause'."""

    kind: str
    value: str  # the text (say), the audio URL (play; '' for digits only), the seconds (pause)
    text: str | None  # what it says: the Say text, or prompt_text(url) for a Play
    language: str | None = None
    voice: str | None = None
    loop: int = 1
    digits: str | None = None


@dataclass
class GatherInfo:
    """A Gather waiting for the caller: what `ask_keys` is shown in interactive mode."""

    url: str  # the document the Gather is in
    action: str  # where Twilio posts the keys
    method: str
    num_digits: int | None
    finish_on_key: str
    timeout: int
    action_on_empty_result: bool
    prompts: list[Prompt]


@dataclass
class Input:
    gather: GatherInfo
    keys: str | None  # the Digits sent; None: no input (timeout)


@dataclass
class RecordInfo:
    action: str | None
    seconds: int  # 0: empty recording, the action was not called
    digits: str | None  # the Digits sent to the action: the finish key, 'hangup' or None
    recording_sid: str | None
    recording_url: str | None
    status_callback: str | None


@dataclass
class DialInfo:
    numbers: list[str]
    caller_id: str | None
    action: str | None
    status: str
    seconds: int


@dataclass
class Step:
    """One TwiML document: the request that fetched it and what the caller did with it."""

    url: str
    method: str
    params: dict[str, str]
    status: int | None = None
    twiml: str = ""
    prompts: list[Prompt] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)
    record: RecordInfo | None = None
    dial: DialInfo | None = None
    error: str | None = None

    @property
    def gather(self) -> GatherInfo | None:
        """The last Gather that waited for input in this document."""
        return self.inputs[-1].gather if self.inputs else None

    @property
    def keys(self) -> str | None:
        """The keys that answered that Gather (None: no input)."""
        return self.inputs[-1].keys if self.inputs else None


@dataclass
class Callback:
    """A request that expects no TwiML: the call status or a recording status callback."""

    kind: str  # 'status' | 'recording'
    url: str
    params: dict[str, str]
    status: int | None
    body: str


@dataclass
class Transcript:
    call_sid: str
    steps: list[Step] = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)
    ended_by: str | None = None  # 'hangup' verb, 'caller' hung up, 'end' of document, 'error'
    status_callback_sent: bool = False
    duration: int = 0  # simulated seconds, sent as CallDuration
    errors: list[str] = field(default_factory=list)  # only with allow_errors=True
    unused: list[str | None] = field(default_factory=list)  # script entries never consumed

    def heard(self) -> list[str]:
        """The texts heard in order (Plays without a known text are left out)."""
        return [p.text for step in self.steps for p in step.prompts if p.text]

    def urls(self) -> list[str]:
        return [step.url for step in self.steps]

    @property
    def last(self) -> Step:
        return self.steps[-1]

    def text(self) -> str:
        """A readable transcript: one block per document."""
        lines: list[str] = []
        for step in self.steps:
            digits = step.params.get("Digits")
            suffix = f" Digits={digits}" if digits is not None else ""
            lines.append(f"{step.method} {step.url}{suffix} [{step.status}]")
            for prompt in step.prompts:
                lines.append("  > " + _describe(prompt))
            for entry in step.inputs:
                gather = entry.gather
                limit = (f"numDigits={gather.num_digits}" if gather.num_digits
                         else f"finishOnKey={gather.finish_on_key!r}")
                lines.append(f"  gather {limit} -> {gather.action}")
                lines.append(f"  keys: {entry.keys}" if entry.keys is not None
                             else "  keys: (no input)")
            if step.record:
                lines.append(f"  record {step.record.seconds}s, ended by {step.record.digits}")
            if step.dial:
                lines.append(f"  dial {', '.join(step.dial.numbers)}: {step.dial.status}")
            if step.error:
                lines.append(f"  ERROR {step.error}")
        for callback in self.callbacks:
            what = callback.params.get("CallStatus") or callback.params.get("RecordingStatus")
            lines.append(f"{callback.kind} callback {callback.url} {what} [{callback.status}]")
        lines.append(f"call ended by {self.ended_by} after {self.duration}s")
        return "\n".join(lines)


def _describe(prompt: Prompt) -> str:
    if prompt.kind == "pause":
        return f"(pause {prompt.value}s)"
    if prompt.kind == "say":
        label = f"say {prompt.language}" if prompt.language else "say"
        return f"({label}) {prompt.text}"
    label = prompt.value or f"digits {prompt.digits}"
    return f"(play {label}) {prompt.text}" if prompt.text else f"(play {label})"


def parse_keys(keys: str | Iterable[str | None]) -> list[str | None]:
    """A script as a list: 'A B - C' splits on spaces, '-' or '_' meaning no input."""
    if isinstance(keys, str):
        return [None if token in ("-", "_") else token for token in keys.split()]
    return [entry or None for entry in keys]


# --- the simulator ---------------------------------------------------------------------------


class _Hangup(Exception):
    """The caller hung up (script exhausted, or during a Record)."""


HANGUP = object()  # sent into the call generator when the caller hangs up


class Simulator:
    """Plays Twilio's part in calls to one app; each `call()` is one independent phone call."""

    def __init__(self, target: Any, auth_token: str, *, caller: str = "+85512000001",
                 to: str = "+85523000000", base_url: str | None = None,
                 prompt_text: Callable[[str], str | None] | None = None,
                 dial_outcome: str = "completed", dial_seconds: int = 30,
                 record_seconds: int = 5, record_end: str = "#",
                 late_recording_callback: bool = False,
                 status_callback: str | None = "/voice/status",
                 account_sid: str = TEST_ACCOUNT_SID, allow_errors: bool = False,
                 ask_keys: Callable[[GatherInfo], str | None] | None = None,
                 fetch_audio: bool = False, max_documents: int = 200, max_redirects: int = 20):
        """`target`: a Flask app or test client, a base URL string, or a Transport.

        record_end: how a recording ends: a key (sent as Digits when it is in the Record's
        finishOnKey, else the recording times out), or 'hangup' (the caller hangs up).
        ask_keys: asked for the next keys when the script runs out at a Gather (interactive
        mode); it returns keys, '' for no input, or None for hanging up.
        fetch_audio: GET every Play URL once, as Twilio does, and fail on a non-2xx reply.
        """
        if dial_outcome not in DIAL_OUTCOMES:
            raise ValueError(f"dial_outcome must be one of {DIAL_OUTCOMES}")
        if isinstance(target, str):
            self.transport: Transport = HttpTransport()
            base_url = base_url or target
        elif hasattr(target, "test_client") or hasattr(target, "application"):
            self.transport = FlaskTransport(target)
        else:
            self.transport = target
        self.base_url = (base_url or "http://localhost").rstrip("/") + "/"
        self.auth_token = auth_token
        self.caller, self.to, self.account_sid = caller, to, account_sid
        self.prompt_text = prompt_text
        self.dial_outcome, self.dial_seconds = dial_outcome, dial_seconds
        self.record_seconds, self.record_end = record_seconds, record_end
        self.late_recording_callback = late_recording_callback
        self.status_callback = status_callback
        self.allow_errors, self.ask_keys, self.fetch_audio = allow_errors, ask_keys, fetch_audio
        self.max_documents, self.max_redirects = max_documents, max_redirects
        self.audio_status: dict[str, int] = {}  # Twilio caches media by URL

    def url(self, path: str) -> str:
        """An absolute URL on the app (paths resolve against base_url)."""
        return urljoin(self.base_url, path)

    def start(self, call_sid: str | None = None) -> Call:
        """Ring the line: POST /voice and run the reply until a Gather waits or the call ends."""
        return Call(self, call_sid or "CA" + secrets.token_hex(16))

    def call(self, keys: str | Iterable[str | None] = (), call_sid: str | None = None
             ) -> Transcript:
        """One whole call driven by a script of keys (see parse_keys); returns its transcript."""
        script = parse_keys(keys)
        live = self.start(call_sid)
        while not live.ended:
            if script:
                live.press(script.pop(0))
            elif self.ask_keys is not None and live.waiting is not None:
                answer = self.ask_keys(live.waiting)
                if answer is None:
                    live.hangup()
                else:
                    live.press(answer)
            else:
                live.hangup()
        live.transcript.unused = script
        return live.transcript


class Call:
    """A call in progress, driven one Gather at a time (for tests and a terminal UI)."""

    def __init__(self, sim: Simulator, call_sid: str):
        self.sim = sim
        self.transcript = Transcript(call_sid)
        self.params = {
            "CallSid": call_sid, "AccountSid": sim.account_sid, "From": sim.caller,
            "To": sim.to, "Caller": sim.caller, "Called": sim.to, "CallStatus": "ringing",
            "Direction": "inbound", "ApiVersion": "2010-04-01", "FromCountry": "KH",
            "ToCountry": "KH", "CallerCountry": "KH", "CalledCountry": "KH",
        }
        self.buffer = ""  # keys typed ahead, not yet taken by a Gather
        self.waiting: GatherInfo | None = None
        self.ended = False
        self.late: list[tuple[str, str, dict[str, str]]] = []  # recording callbacks after hangup
        self._run = self._execute()
        self._advance(None)

    # driving

    def press(self, keys: str | None) -> Call:
        """Answer the waiting Gather: keys typed in one go, or None / '' for no input."""
        if self.ended:
            raise SimulatorError("the call has already ended")
        self.buffer += keys or ""
        self._advance(keys or "")
        return self

    def silence(self) -> Call:
        return self.press(None)

    def hangup(self) -> Transcript:
        """The caller hangs up now."""
        if not self.ended:
            self._advance(HANGUP)
        return self.transcript

    def _advance(self, value: Any) -> None:
        try:
            self.waiting = self._run.send(value) if value is not None else next(self._run)
        except StopIteration:
            self.waiting = None
            self.ended = True
        except SimulatorError as error:
            if not self.sim.allow_errors:
                raise
            self.transcript.errors.append(str(error))
            self.transcript.ended_by = "error"
            self.waiting = None
            self._finish()

    # requests

    def _request(self, url: str, method: str, extra: dict[str, str] | None = None
                 ) -> tuple[str, PostReply]:
        """Send a signed webhook as Twilio would; returns the URL requested and the reply."""
        params = {**self.params, **(extra or {})}
        if method == "GET":
            parts = urlsplit(url)
            query = "&".join(q for q in (parts.query, urlencode(params)) if q)
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
            headers = {"X-Twilio-Signature": sign(self.sim.auth_token, url, {})}
            got = self.sim.transport.get(url, headers)
            content_type = got.headers.get("Content-Type", "")
            return url, PostReply(got.status, _decode(got.content, content_type), content_type)
        headers = {"X-Twilio-Signature": sign(self.sim.auth_token, url, params)}
        return url, self.sim.transport.post(url, params, headers)

    def _document(self, url: str, method: str, extra: dict[str, str] | None = None
                  ) -> tuple[Step, list[Verb]]:
        """Fetch one TwiML document and parse it; every error says URL, status and body."""
        if len(self.transcript.steps) >= self.sim.max_documents:
            raise SimulatorError(f"redirect loop: more than {self.sim.max_documents} documents "
                                 "in one call", url)
        step = Step(url, method, {**self.params, **(extra or {})})
        self.transcript.steps.append(step)
        step.url, reply = self._request(url, method, extra)
        step.status, step.twiml = reply.status, reply.body
        self.params["CallStatus"] = "in-progress"
        try:
            if not 200 <= reply.status < 300:
                raise SimulatorError("the app answered with an HTTP error", url, reply.status,
                                     reply.body)
            if "xml" not in reply.content_type.lower():
                raise SimulatorError(f"not TwiML: content type {reply.content_type!r}", url,
                                     reply.status, reply.body)
            return step, parse_twiml(reply.body, url)
        except SimulatorError as error:
            step.error = str(error).splitlines()[0]
            raise

    def _callback(self, kind: str, url: str, method: str, params: dict[str, str]) -> None:
        """A status or recording callback: Twilio only needs a 2xx, the body is ignored."""
        sent_url, reply = self._request(url, method, params)
        record = Callback(kind, sent_url, {**self.params, **params}, reply.status, reply.body)
        self.transcript.callbacks.append(record)
        if not 200 <= reply.status < 300:
            error = SimulatorError(f"the {kind} callback failed", url, reply.status, reply.body)
            if not self.sim.allow_errors:
                raise error
            self.transcript.errors.append(str(error))

    def _finish(self) -> None:
        """The call is over: status callback, then any recording callbacks held back."""
        self.ended = True
        self.params["CallStatus"] = "completed"
        if self.sim.status_callback:
            self._callback("status", self.sim.url(self.sim.status_callback), "POST", {
                "CallStatus": "completed", "CallDuration": str(self.transcript.duration),
                "CallbackSource": "call-progress-events", "SequenceNumber": "0",
                "Timestamp": formatdate(usegmt=True)})
            self.transcript.status_callback_sent = True
        for url, method, params in self.late:
            self._callback("recording", url, method, params)
        self.late = []

    # executing TwiML

    def _execute(self) -> Generator[GatherInfo, Any, None]:
        """Twilio's loop: fetch a document, run its verbs, follow where they lead."""
        url, method, extra = self.sim.url("/voice"), "POST", None
        redirects = 0
        try:
            while True:
                step, verbs = self._document(url, method, extra)
                target = yield from self._verbs(step, verbs)
                if target is None:
                    break
                url, method, extra, redirected = target
                # a Gather that waited (even in vain) means the caller had a chance to act
                redirects = redirects + 1 if redirected and not step.inputs else 0
                if redirects > self.sim.max_redirects:
                    raise SimulatorError(f"redirect loop: {redirects} Redirects in a row "
                                         "without a Gather", url)
        except _Hangup:
            self.transcript.ended_by = "caller"
        self._finish()  # not in a `finally`: a call abandoned mid-way is not a hang-up

    def _heard(self, step: Step, prompt: Say | Play | Pause) -> Prompt:
        if isinstance(prompt, Pause):
            heard = Prompt("pause", str(prompt.length), None)
            self.transcript.duration += prompt.length
        elif isinstance(prompt, Say):
            heard = Prompt("say", prompt.text, prompt.text, prompt.language, prompt.voice,
                           prompt.loop)
            self.transcript.duration += PROMPT_SECONDS
        else:
            text = self.sim.prompt_text(prompt.url) if self.sim.prompt_text and prompt.url else None
            heard = Prompt("play", prompt.url, text, loop=prompt.loop, digits=prompt.digits)
            self.transcript.duration += PROMPT_SECONDS
            if self.sim.fetch_audio and prompt.url:
                self._fetch(prompt.url)
        step.prompts.append(heard)
        return heard

    def _fetch(self, url: str) -> None:
        if url not in self.sim.audio_status:
            self.sim.audio_status[url] = self.sim.transport.get(url).status
        status = self.sim.audio_status[url]
        if not 200 <= status < 300:
            raise SimulatorError("a <Play> URL cannot be fetched", url, status)

    def _verbs(self, step: Step, verbs: Sequence[Verb]
               ) -> Generator[GatherInfo, Any, tuple[str, str, dict[str, str] | None, bool] | None]:
        """Run one document; returns where to go next (url, method, params, redirected) or None
        when the call ends."""
        for verb in verbs:
            if isinstance(verb, Say | Play | Pause):
                self._heard(step, verb)
            elif isinstance(verb, Gather):
                digits = yield from self._gather(step, verb)
                if digits is not None:
                    return verb.action or step.url, verb.method, {"Digits": digits}, False
            elif isinstance(verb, Redirect):
                return verb.url, verb.method, None, True
            elif isinstance(verb, Record):
                target = self._record(step, verb)
                if target is not None:
                    return target
            elif isinstance(verb, Dial):
                target = self._dial(step, verb)
                if target is not None:
                    return target
            elif isinstance(verb, Hangup):
                self.transcript.ended_by = "hangup"
                return None
        self.transcript.ended_by = "end"
        return None

    def _gather(self, step: Step, verb: Gather) -> Generator[GatherInfo, Any, str | None]:
        """Wait for keys; returns the Digits to post, or None to fall through to the next verb."""
        if "dtmf" not in verb.input.split():
            raise SimulatorError(f"<Gather input={verb.input!r}>: the simulator has no speech",
                                 step.url)
        prompts = [self._heard(step, child) for child in verb.children]
        info = GatherInfo(step.url, verb.action or step.url, verb.method, verb.num_digits,
                          verb.finish_on_key, verb.timeout, verb.action_on_empty_result, prompts)
        if not self.buffer:
            answer = yield info
            if answer is HANGUP:
                raise _Hangup
        digits, finished = self._take(verb)
        keys = digits if digits or finished else None
        step.inputs.append(Input(info, keys))
        self.transcript.duration += 2 if finished else verb.timeout
        if digits or verb.action_on_empty_result:
            return digits
        return None

    def _take(self, verb: Gather) -> tuple[str, bool]:
        """Take keys from the buffer as Twilio would: (digits, ended before the timeout)."""
        digits = ""
        while self.buffer:
            key, self.buffer = self.buffer[0], self.buffer[1:]
            if verb.finish_on_key and key in verb.finish_on_key:
                return digits, True
            digits += key
            if verb.num_digits and len(digits) >= verb.num_digits:
                return digits, True
        return digits, False

    def _record(self, step: Step, verb: Record
                ) -> tuple[str, str, dict[str, str] | None, bool] | None:
        """A scripted recording of record_seconds, ended by record_end."""
        seconds = min(self.sim.record_seconds, verb.max_length or self.sim.record_seconds)
        hangup = self.sim.record_end == "hangup"
        digits = ("hangup" if hangup else self.sim.record_end
                  if self.sim.record_end and self.sim.record_end in verb.finish_on_key else None)
        self.transcript.duration += seconds + (0 if hangup or digits else verb.timeout)
        if seconds <= 0:  # Twilio skips the action of an empty recording
            step.record = RecordInfo(verb.action, 0, digits, None, None, None)
            if hangup:
                raise _Hangup
            return None
        sid = "RE" + secrets.token_hex(16)
        recording_url = (f"https://api.twilio.com/2010-04-01/Accounts/{self.sim.account_sid}"
                         f"/Recordings/{sid}")
        step.record = RecordInfo(verb.action or step.url, seconds, digits, sid, recording_url,
                                 verb.recording_status_callback)
        recording = {"RecordingSid": sid, "RecordingUrl": recording_url,
                     "RecordingDuration": str(seconds)}
        if verb.recording_status_callback:
            callback = (verb.recording_status_callback, verb.recording_status_callback_method,
                        {**recording, "RecordingStatus": "completed", "RecordingChannels": "1",
                         "RecordingSource": "RecordVerb"})
            if self.sim.late_recording_callback:
                self.late.append(callback)
            else:
                self._callback("recording", *callback)
        extra = {**recording, **({"Digits": digits} if digits else {})}
        if hangup:  # Twilio still posts the action, but the call is over: its TwiML is ignored
            self._document(verb.action or step.url, verb.method, extra)
            raise _Hangup
        return verb.action or step.url, verb.method, extra, False

    def _dial(self, step: Step, verb: Dial
              ) -> tuple[str, str, dict[str, str] | None, bool] | None:
        """A scripted outcome of dial_outcome; the action hears it, or the next verb runs."""
        status = self.sim.dial_outcome
        seconds = self.sim.dial_seconds if status == "completed" else 0
        self.transcript.duration += seconds or (verb.timeout if status == "no-answer" else 1)
        step.dial = DialInfo(verb.numbers, verb.caller_id, verb.action, status, seconds)
        if not verb.action:
            return None
        extra = {"DialCallStatus": status, "DialCallSid": "CA" + secrets.token_hex(16)}
        if status == "completed":
            extra["DialCallDuration"] = str(seconds)
        return verb.action, verb.method, extra, False
