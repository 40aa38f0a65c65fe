"""A carrier in a box: a TwiML client that behaves as Twilio or Somleng does on a call, so whole
calls can be tested offline.

It signs every webhook as the carrier does, executes the TwiML it gets back verb by verb
(Say/Play are heard, Gather waits for keys pressed at a given pace, Redirect/Record/Dial make
the requests the carrier would make) and keeps a transcript with a simulated clock. It runs
against a Flask app in-process or against a running server by URL, so the same scripted call
can check a deployment; and its engine (`CallEngine`) does no I/O itself, so an asyncio load
generator drives exactly the same carrier model (`scripts/loadtest.py`).

Each carrier is a `Carrier` profile: what TwiML leaves open and the carrier decides. Both:
- a Gather that gets no key does not call its action unless actionOnEmptyResult="true"; the
  next verb runs, and the call ends if there is none;
- `finishOnKey` defaults to '#', also with numDigits=1: '#' pressed with no digits before it
  ends the Gather with nothing; finishOnKey="" makes '#' an ordinary key;
- a Gather or Record without an action posts back to the URL of its own document.
Twilio (twilio.com/docs/voice/twiml): the Gather `timeout` is also the wait between keys; an
empty recording does not call the Record action; the action gets RecordingSid; Gather posts
FinishedOnKey; `Digits` is posted empty when actionOnEmptyResult fires with no key.
Somleng (somleng-switch, components/app: execute_gather.rb, execute_record.rb,
execute_redirect.rb, call_controller.rb): CallSids are UUIDs; a multi-key Gather ends 2 s after
the last key (its `timeout` is only the wait for the first); no `Digits` at all when nothing was
pressed; Record always posts its action, empty or not, with RecordingUrl and RecordingDuration
only (no RecordingSid, no Digits); every Redirect waits 1 s; <Pause> is an invalid element that
ends the call. Neither sends `From` with the recording status callback.

Script semantics: a script is a list of entries, each a burst of keys typed in one go ("1",
"12#"), `Keys("0105", gap=2.5)` (or "0105@2.5") for keys with that many seconds between them,
or None for silence. A Gather takes keys as its carrier would; keys left over stay queued for
the next Gather (type-ahead). When the script runs out at a Gather the caller hangs up there
(or `ask_keys` is asked, for interactive use).
"""

from __future__ import annotations

import secrets
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator

__all__ = [
    "CARRIERS", "Call", "CallEngine", "Callback", "Carrier", "CarrierCalls", "Dial", "DialInfo",
    "FlaskTransport", "Gather", "GatherInfo", "Hangup", "HttpTransport", "Input", "Keys", "Pause",
    "Play", "Prompt", "Record", "RecordInfo", "RecordPrompt", "Redirect", "Reject", "Reply",
    "Request", "SOMLENG", "Say", "SimulatorError", "Simulator", "Step", "TWILIO", "Transcript",
    "Transport", "parse_keys", "parse_twiml", "sign",
]

TEST_ACCOUNT_SID = "AC" + "0" * 32
DIAL_OUTCOMES = ("completed", "busy", "no-answer", "failed", "canceled")
RECORD_FINISH_KEYS = "1234567890*#"  # the default finishOnKey of <Record> on both carriers
PROMPT_SECONDS = 3.0  # simulated length of one Say/Play
KEY_GAP = 0.3  # seconds between keys typed in one go
FIRST_KEY = 0.5  # seconds from the end of the prompts (or the start of a Gather) to a key
RECORDING_CALLBACK_ORDERS = ("before", "after", "late")


class SimulatorError(Exception):
    """The app did something the carrier would reject (or the call looped); says where, what."""

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
    """X-Twilio-Signature for a request to the full `url` (query included) with POST `params`
    (Somleng signs the same way, with its account's auth token)."""
    return RequestValidator(auth_token).compute_signature(url, params)


# --- carriers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Carrier:
    """What one carrier does where TwiML leaves it open (see the module docstring)."""

    name: str
    inter_digit_timeout: float | None  # None: the Gather's own timeout applies between keys
    redirect_delay: float  # seconds before a <Redirect> is followed
    empty_digits: str | None  # Digits posted when actionOnEmptyResult fires: '' or not at all
    finished_on_key: bool  # FinishedOnKey posted with a Gather's result
    record_action_sid: bool  # RecordingSid posted to the Record action
    record_action_digits: bool  # Digits (the finish key, or 'hangup') posted to the action
    record_action_when_empty: bool  # the Record action is called for an empty recording
    invalid_verbs: frozenset[str] = frozenset()  # verbs that end the call as invalid
    recording_host: str = "api.twilio.com"
    extra_params: tuple[tuple[str, str], ...] = ()  # sent with every request

    def new_call_sid(self) -> str:
        return "CA" + secrets.token_hex(16) if self.name == "twilio" else str(uuid.uuid4())

    def new_account_sid(self) -> str:
        return TEST_ACCOUNT_SID if self.name == "twilio" else str(uuid.uuid4())

    def new_recording(self, account_sid: str, call_sid: str, sid: str | None = None
                      ) -> tuple[str, str]:
        """(recording id, its URL) as the carrier reports them (`sid`: that id)."""
        if self.name == "twilio":
            sid = sid or "RE" + secrets.token_hex(16)
            return sid, (f"https://{self.recording_host}/2010-04-01/Accounts/{account_sid}"
                         f"/Recordings/{sid}")
        sid = sid or str(uuid.uuid4())
        return sid, (f"https://{self.recording_host}/2010-04-01/Accounts/{account_sid}"
                     f"/Calls/{call_sid}/Recordings/{sid}")

    def finish_keys(self, attribute: str | None) -> str:
        """The Gather's terminators: absent -> '#', '' -> none, one key -> that key (Somleng
        turns anything else into '#'; Twilio refuses it, and so do we)."""
        if attribute is None:
            return "#"
        if attribute == "" or (len(attribute) == 1 and attribute in "0123456789*#"):
            return attribute
        if self.name == "somleng":
            return "#"
        raise SimulatorError(f"<Gather finishOnKey={attribute!r}>: Twilio takes one key or ''")


TWILIO = Carrier(
    "twilio", inter_digit_timeout=None, redirect_delay=0.0, empty_digits="",
    finished_on_key=True, record_action_sid=True, record_action_digits=True,
    record_action_when_empty=False,
    extra_params=(("FromCountry", "KH"), ("ToCountry", "KH"), ("CallerCountry", "KH"),
                  ("CalledCountry", "KH")))
SOMLENG = Carrier(
    "somleng", inter_digit_timeout=2.0, redirect_delay=1.0, empty_digits=None,
    finished_on_key=False, record_action_sid=False, record_action_digits=False,
    record_action_when_empty=True, invalid_verbs=frozenset({"Pause"}),
    recording_host="api.somleng.org")
CARRIERS = {"twilio": TWILIO, "somleng": SOMLENG}


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
    action: str | None = None  # None: the carrier posts to the document's own URL
    method: str = "POST"
    num_digits: int | None = None
    finish_on_key: str | None = None  # as written; None: the attribute is absent
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


@dataclass
class Reject:
    reason: str = "rejected"


Verb = Say | Play | Pause | Gather | Redirect | Record | Dial | Hangup | Reject


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
        raise ValueError(f"<{element.tag} {name}={method!r}>: only GET or POST")
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
                      _int(element, "numDigits", None), element.get("finishOnKey"),
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
    if tag == "Reject":
        reason = element.get("reason", "rejected")
        if reason not in ("rejected", "busy"):
            raise ValueError(f"<Reject reason={reason!r}>: 'rejected' or 'busy'")
        return Reject(reason)
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


# --- keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """Keys typed in one go, `gap` seconds apart (the first `first` seconds into the Gather)."""

    keys: str
    gap: float = KEY_GAP
    first: float = FIRST_KEY


def parse_keys(keys: str | Iterable[str | Keys | None]) -> list[str | Keys | None]:
    """A script as a list: 'A B - C' splits on spaces, '-' or '_' meaning no input, and
    '0105@2.5' the keys 0105 pressed 2.5 s apart."""
    entries: Iterable[str | Keys | None] = keys.split() if isinstance(keys, str) else keys
    script: list[str | Keys | None] = []
    for entry in entries:
        if isinstance(entry, Keys):
            script.append(entry)
        elif not entry or entry in ("-", "_"):
            script.append(None)
        elif "@" in entry:
            typed, _, gap = entry.rpartition("@")
            script.append(Keys(typed, float(gap)))
        else:
            script.append(entry)
    return script


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
    at: float = 0.0  # simulated seconds into the call when it began


@dataclass
class GatherInfo:
    """A Gather waiting for the caller: what `ask_keys` is shown in interactive mode."""

    url: str  # the document the Gather is in
    action: str  # where the carrier posts the keys
    method: str
    num_digits: int | None
    finish_on_key: str  # the terminators in force on this carrier ('' = none)
    timeout: int
    action_on_empty_result: bool
    prompts: list[Prompt]


@dataclass
class Input:
    gather: GatherInfo
    keys: str | None  # the Digits sent; None: nothing was sent (no input, or only a terminator)
    pressed: str = ""  # every key the Gather took, terminators included
    ended_at: float = 0.0  # simulated seconds into the call when the Gather ended


@dataclass
class RecordPrompt:
    """A <Record> about to start, with `pause_at_record`: the driver says how it goes."""

    url: str  # the document the Record is in
    action: str | None
    max_length: int
    finish_on_key: str


@dataclass
class RecordInfo:
    action: str | None
    seconds: int  # 0: an empty recording
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
    delay: float = 0.0  # seconds the carrier waited before requesting it (Somleng's Redirect)
    fetch_ms: float = 0.0  # wall time of the request, measured
    redirected: bool = False  # fetched because of a <Redirect>

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
    carrier: str = "twilio"
    steps: list[Step] = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)
    ended_by: str | None = None  # 'hangup' verb, 'caller' hung up, 'end' of document,
    #                              'rejected', 'error'
    status_callback_sent: bool = False
    clock: float = 0.0  # simulated seconds since the call was answered
    errors: list[str] = field(default_factory=list)  # only with allow_errors=True
    unused: list[str | Keys | None] = field(default_factory=list)  # script entries never consumed

    @property
    def duration(self) -> int:
        """Whole simulated seconds, as sent in CallDuration."""
        return int(round(self.clock))

    def heard(self) -> list[str]:
        """The texts heard in order (Plays without a known text are left out)."""
        return [p.text for step in self.steps for p in step.prompts if p.text]

    def urls(self) -> list[str]:
        return [step.url for step in self.steps]

    @property
    def last(self) -> Step:
        return self.steps[-1]

    def reprompt_delays(self) -> list[float]:
        """For each Gather that ended with nothing sent, the seconds of silence before the
        caller heard the next prompt: what the carrier waited (its Redirect delay) plus the
        measured time of the requests in between."""
        delays = []
        prompts = [(step, p) for step in self.steps for p in step.prompts]
        for index, step in enumerate(self.steps):
            for entry in step.inputs:
                if entry.keys:
                    continue
                later = [(s, p) for s, p in prompts if p.at >= entry.ended_at
                         and self.steps.index(s) > index]
                if not later:
                    continue
                first_step, first = later[0]
                between = self.steps[index + 1:self.steps.index(first_step) + 1]
                delays.append(round(first.at - entry.ended_at
                                    + sum(s.fetch_ms for s in between) / 1000, 4))
        return delays

    def text(self) -> str:
        """A readable transcript: one block per document."""
        lines: list[str] = []
        for step in self.steps:
            digits = step.params.get("Digits")
            suffix = f" Digits={digits}" if digits is not None else ""
            wait = f" (after {step.delay:g}s)" if step.delay else ""
            lines.append(f"{step.method} {step.url}{suffix} [{step.status}]{wait}")
            for prompt in step.prompts:
                lines.append("  > " + _describe(prompt))
            for entry in step.inputs:
                gather = entry.gather
                limit = (f"numDigits={gather.num_digits}" if gather.num_digits
                         else f"finishOnKey={gather.finish_on_key!r}")
                lines.append(f"  gather {limit} -> {gather.action}")
                pressed = f", pressed {entry.pressed}" if entry.pressed else ""
                lines.append(f"  keys: {entry.keys}" if entry.keys is not None
                             else f"  keys: (no input{pressed})")
            if step.record:
                lines.append(f"  record {step.record.seconds}s, ended by {step.record.digits}")
            if step.dial:
                lines.append(f"  dial {', '.join(step.dial.numbers)}: {step.dial.status}")
            if step.error:
                lines.append(f"  ERROR {step.error}")
        for callback in self.callbacks:
            what = callback.params.get("CallStatus") or callback.params.get("RecordingStatus")
            lines.append(f"{callback.kind} callback {callback.url} {what} [{callback.status}]")
        lines.append(f"call ended by {self.ended_by} after {self.duration}s ({self.carrier})")
        return "\n".join(lines)


def _describe(prompt: Prompt) -> str:
    if prompt.kind == "pause":
        return f"(pause {prompt.value}s)"
    if prompt.kind == "say":
        label = f"say {prompt.language}" if prompt.language else "say"
        return f"({label}) {prompt.text}"
    label = prompt.value or f"digits {prompt.digits}"
    return f"(play {label}) {prompt.text}" if prompt.text else f"(play {label})"


# --- the carrier's engine (no I/O) -----------------------------------------------------------


@dataclass
class Request:
    """A request the engine wants sent; the driver sends it and returns a `Reply`."""

    kind: str  # 'document' | 'status' | 'recording' | 'media'
    url: str
    method: str
    params: dict[str, str]
    headers: dict[str, str]


class Reply(NamedTuple):
    status: int
    body: str
    content_type: str
    fetch_ms: float = 0.0


class _Hangup(Exception):
    """The caller hung up (script exhausted, or during a Record)."""


HANGUP = object()  # sent into the engine when the caller hangs up
Event = Request | GatherInfo | RecordPrompt  # what the engine yields


class CallEngine:
    """One call's carrier logic as a generator: it yields a `Request` (send it back a
    `Reply`) or a `GatherInfo` (send back `Keys`, None for silence, or HANGUP). The same engine
    serves the in-process simulator, `ivr call`, the browser phone and the async load test."""

    def __init__(self, sim: Simulator, call_sid: str | None = None,
                 start: tuple[str, str, dict[str, str] | None] | None = None,
                 placed: Mapping[str, str] | None = None):
        self.sim = sim
        self.carrier = sim.carrier
        call_sid = call_sid or self.carrier.new_call_sid()
        self.transcript = Transcript(call_sid, self.carrier.name)
        caller, to, direction = sim.caller, sim.to, "inbound"
        self.status_url = sim.url(sim.status_callback) if sim.status_callback else None
        self.status_method = "POST"
        if placed is not None:  # a call the app placed through the Calls resource
            caller, to, direction = placed["From"], placed["To"], "outbound-api"
            start = (placed["Url"], placed.get("Method", "POST"), None)
            self.status_url = placed.get("StatusCallback") or None
            self.status_method = placed.get("StatusCallbackMethod", "POST")
        self.params = {
            "CallSid": call_sid, "AccountSid": sim.account_sid, "From": caller,
            "To": to, "Caller": caller, "Called": to, "CallStatus": "ringing",
            "Direction": direction, "ApiVersion": "2010-04-01",
            **dict(self.carrier.extra_params),
        }
        self.buffer: list[tuple[str, float]] = []  # (key, seconds after the one before)
        self.start = start or (sim.url("/voice"), "POST", None)
        self.late: list[tuple[str, str, dict[str, str]]] = []  # recording callbacks held back
        self.after_document: tuple[str, str, dict[str, str]] | None = None
        self.audio_status = sim.audio_status

    def run(self) -> Generator[Event, Any, None]:
        """The carrier's loop: fetch a document, run its verbs, follow where they lead."""
        url, method, extra = self.start
        redirects = 0
        delay, redirected = 0.0, False
        try:
            try:
                while True:
                    step, verbs = yield from self._document(url, method, extra, delay, redirected)
                    if self.after_document is not None:
                        callback, self.after_document = self.after_document, None
                        yield from self._callback("recording", *callback)
                    target = yield from self._verbs(step, verbs)
                    if target is None:
                        break
                    url, method, extra, redirected = target
                    delay = self.carrier.redirect_delay if redirected else 0.0
                    self.transcript.clock += delay
                    # a Gather that waited (even in vain) means the caller had a chance to act
                    redirects = redirects + 1 if redirected and not step.inputs else 0
                    if redirects > self.sim.max_redirects:
                        raise SimulatorError(f"redirect loop: {redirects} Redirects in a row "
                                             "without a Gather", url)
            except _Hangup:
                self.transcript.ended_by = "caller"
        except SimulatorError as error:
            if not self.sim.allow_errors:
                raise
            self.transcript.errors.append(str(error))
            self.transcript.ended_by = "error"
        yield from self._finish()

    # requests

    def _request(self, kind: str, url: str, method: str, params: dict[str, str]
                 ) -> Generator[Event, Any, tuple[str, Reply]]:
        """A signed request as the carrier sends it; returns the URL requested and the reply."""
        if method == "GET":
            parts = urlsplit(url)
            query = "&".join(q for q in (parts.query, urlencode(params)) if q)
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
            headers = {"X-Twilio-Signature": sign(self.sim.auth_token, url, {})}
            reply = yield Request(kind, url, "GET", {}, headers)
        else:
            headers = {"X-Twilio-Signature": sign(self.sim.auth_token, url, params)}
            reply = yield Request(kind, url, "POST", params, headers)
        return url, reply

    def _document(self, url: str, method: str, extra: dict[str, str] | None, delay: float,
                  redirected: bool) -> Generator[Event, Any, tuple[Step, list[Verb]]]:
        """Fetch one TwiML document and parse it; every error says URL, status and body."""
        if len(self.transcript.steps) >= self.sim.max_documents:
            raise SimulatorError(f"redirect loop: more than {self.sim.max_documents} documents "
                                 "in one call", url)
        params = {**self.params, **(extra or {})}
        step = Step(url, method, params, delay=delay, redirected=redirected)
        self.transcript.steps.append(step)
        step.url, reply = yield from self._request("document", url, method, params)
        step.status, step.twiml, step.fetch_ms = reply.status, reply.body, reply.fetch_ms
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

    def _callback(self, kind: str, url: str, method: str, params: dict[str, str]
                  ) -> Generator[Event, Any, None]:
        """A status or recording callback: only a 2xx is needed, the body is ignored."""
        sent_url, reply = yield from self._request(kind, url, method, params)
        self.transcript.callbacks.append(Callback(kind, sent_url, params, reply.status,
                                                  reply.body))
        if not 200 <= reply.status < 300:
            error = SimulatorError(f"the {kind} callback failed", url, reply.status, reply.body)
            if not self.sim.allow_errors:
                raise error
            self.transcript.errors.append(str(error))

    def unanswered(self, status: str) -> Generator[Event, Any, None]:
        """A placed call that was never answered: only its status callback (busy,
        no-answer, failed), no document fetched."""
        self.transcript.ended_by = status
        self.params["CallStatus"] = status
        if self.status_url:
            yield from self._callback("status", self.status_url, self.status_method, {
                **self.params, "CallStatus": status, "CallDuration": "0",
                "CallbackSource": "call-progress-events", "SequenceNumber": "0",
                "Timestamp": formatdate(usegmt=True)})
            self.transcript.status_callback_sent = True

    def _finish(self) -> Generator[Event, Any, None]:
        """The call is over: status callback, then any recording callbacks held back."""
        self.params["CallStatus"] = "completed"
        if self.status_url:
            yield from self._callback("status", self.status_url, self.status_method, {
                **self.params, "CallStatus": "completed",
                "CallDuration": str(self.transcript.duration),
                "CallbackSource": "call-progress-events", "SequenceNumber": "0",
                "Timestamp": formatdate(usegmt=True)})
            self.transcript.status_callback_sent = True
        for url, method, params in self.late:
            yield from self._callback("recording", url, method, params)
        self.late = []

    # executing TwiML

    def _heard(self, step: Step, prompt: Say | Play | Pause) -> Generator[Event, Any, Prompt]:
        clock = self.transcript.clock
        if isinstance(prompt, Pause):
            if "Pause" in self.carrier.invalid_verbs:
                raise SimulatorError(f"<Pause> is an invalid element on {self.carrier.name}: "
                                     "the call ends", step.url)
            heard = Prompt("pause", str(prompt.length), None, at=clock)
            self.transcript.clock += prompt.length
        elif isinstance(prompt, Say):
            heard = Prompt("say", prompt.text, prompt.text, prompt.language, prompt.voice,
                           prompt.loop, at=clock)
            self.transcript.clock += PROMPT_SECONDS
        else:
            text = self.sim.prompt_text(prompt.url) if self.sim.prompt_text and prompt.url else None
            heard = Prompt("play", prompt.url, text, loop=prompt.loop, digits=prompt.digits,
                           at=clock)
            self.transcript.clock += PROMPT_SECONDS
            if self.sim.fetch_audio and prompt.url:
                yield from self._fetch(prompt.url)
        step.prompts.append(heard)
        return heard

    def _fetch(self, url: str) -> Generator[Event, Any, None]:
        """GET a Play URL once per URL (carriers cache media by URL)."""
        if url not in self.audio_status:
            reply = yield Request("media", url, "GET", {}, {})
            self.audio_status[url] = reply.status
        status = self.audio_status[url]
        if not 200 <= status < 300:
            raise SimulatorError("a <Play> URL cannot be fetched", url, status)

    def _verbs(self, step: Step, verbs: Sequence[Verb]
               ) -> Generator[Event, Any, tuple[str, str, dict[str, str] | None, bool] | None]:
        """Run one document; returns where to go next (url, method, params, redirected) or None
        when the call ends."""
        for verb in verbs:
            if type(verb).__name__ in self.carrier.invalid_verbs:
                raise SimulatorError(f"<{type(verb).__name__}> is an invalid element on "
                                     f"{self.carrier.name}: the call ends", step.url)
            if isinstance(verb, Say | Play | Pause):
                yield from self._heard(step, verb)
            elif isinstance(verb, Gather):
                extra = yield from self._gather(step, verb)
                if extra is not None:
                    return verb.action or step.url, verb.method, extra, False
            elif isinstance(verb, Redirect):
                return verb.url, verb.method, None, True
            elif isinstance(verb, Record):
                target = yield from self._record(step, verb)
                if target is not None:
                    return target
            elif isinstance(verb, Dial):
                target = self._dial(step, verb)
                if target is not None:
                    return target
            elif isinstance(verb, Hangup):
                self.transcript.ended_by = "hangup"
                return None
            elif isinstance(verb, Reject):
                if step is not self.transcript.steps[0] or step.prompts:
                    raise SimulatorError("<Reject> must be the first verb of the call's first "
                                         "document (any other verb answers the call)", step.url)
                self.transcript.ended_by = "rejected"
                return None
        self.transcript.ended_by = "end"
        return None

    def _gather(self, step: Step, verb: Gather
                ) -> Generator[Event, Any, dict[str, str] | None]:
        """Wait for keys; returns the parameters to post, or None to fall through."""
        if "dtmf" not in verb.input.split():
            raise SimulatorError(f"<Gather input={verb.input!r}>: the simulator has no speech",
                                 step.url)
        terminators = self.carrier.finish_keys(verb.finish_on_key)
        prompts = []
        for child in verb.children:
            prompts.append((yield from self._heard(step, child)))
        info = GatherInfo(step.url, verb.action or step.url, verb.method, verb.num_digits,
                          terminators, verb.timeout, verb.action_on_empty_result, prompts)
        if not self.buffer:
            answer = yield info
            if answer is HANGUP:
                raise _Hangup
            entry = answer if isinstance(answer, Keys) else Keys(answer) if answer else None
            if entry is not None and entry.keys:
                self.buffer = [(key, entry.first if i == 0 else entry.gap)
                               for i, key in enumerate(entry.keys)]
        digits, pressed, terminator = self._take(verb, terminators)
        step.inputs.append(Input(info, digits or None, pressed, self.transcript.clock))
        if digits:
            extra = {"Digits": digits}
        elif verb.action_on_empty_result:
            extra = {} if self.carrier.empty_digits is None else {
                "Digits": self.carrier.empty_digits}
        else:
            return None
        if self.carrier.finished_on_key:
            extra["FinishedOnKey"] = terminator
        return extra

    def _take(self, verb: Gather, terminators: str) -> tuple[str, str, str]:
        """Take keys from the buffer as the carrier would, advancing the clock: (digits,
        every key taken, the terminator that ended it or '')."""
        digits = pressed = ""
        while self.buffer:
            key, wait = self.buffer[0]
            limit = (verb.timeout if not pressed or self.carrier.inter_digit_timeout is None
                     else self.carrier.inter_digit_timeout)
            if wait > limit:  # the Gather gives up before this key comes
                self.buffer[0] = (key, wait - limit)
                self.transcript.clock += limit
                return digits, pressed, ""
            self.buffer.pop(0)
            self.transcript.clock += wait
            pressed += key
            if key in terminators:
                return digits, pressed, key
            digits += key
            if verb.num_digits and len(digits) >= verb.num_digits:
                return digits, pressed, ""
        limit = (verb.timeout if not pressed or self.carrier.inter_digit_timeout is None
                 else self.carrier.inter_digit_timeout)
        self.transcript.clock += limit  # the caller stopped typing: the Gather times out
        return digits, pressed, ""

    def _record(self, step: Step, verb: Record
                ) -> Generator[Event, Any, tuple[str, str, dict[str, str] | None, bool] | None]:
        """A scripted recording of record_seconds, ended by record_end."""
        sim, carrier = self.sim, self.carrier
        seconds, end, recording_id = sim.record_seconds, sim.record_end, None
        if sim.pause_at_record:
            answer = yield RecordPrompt(step.url, verb.action, verb.max_length,
                                        verb.finish_on_key)
            if answer is HANGUP:
                raise _Hangup
            if answer is not None:
                seconds, end, recording_id = answer
        seconds = min(seconds, verb.max_length or seconds)
        hangup = end == "hangup"
        finish_key = end if end and end in verb.finish_on_key else None
        self.transcript.clock += seconds + (0 if hangup or finish_key else verb.timeout)
        action = verb.action or step.url
        if seconds <= 0 and not carrier.record_action_when_empty:  # Twilio skips the action
            step.record = RecordInfo(verb.action, 0, finish_key, None, None, None)
            if hangup:
                raise _Hangup
            return None
        sid, recording_url = carrier.new_recording(sim.account_sid, self.params["CallSid"],
                                                   recording_id)
        digits = "hangup" if hangup else finish_key
        step.record = RecordInfo(action, max(seconds, 0), digits if carrier.record_action_digits
                                 else None, sid, recording_url, verb.recording_status_callback)
        extra = {"RecordingUrl": recording_url, "RecordingDuration": str(max(seconds, 0))}
        if carrier.record_action_sid:
            extra["RecordingSid"] = sid
        if carrier.record_action_digits and digits:
            extra["Digits"] = digits
        callback = None
        if verb.recording_status_callback and seconds > 0:
            callback = (verb.recording_status_callback, verb.recording_status_callback_method,
                        {"AccountSid": sim.account_sid, "CallSid": self.params["CallSid"],
                         "RecordingSid": sid, "RecordingUrl": recording_url,
                         "RecordingStatus": "completed", "RecordingDuration": str(seconds),
                         "RecordingChannels": "1", "RecordingSource": "RecordVerb"})
        order = sim.recording_callback
        if callback and order == "before":
            yield from self._callback("recording", *callback)
        elif callback and order == "late":
            self.late.append(callback)
        if hangup:  # the action is still posted, but the call is over: its TwiML is ignored
            yield from self._document(action, verb.method, extra, 0.0, False)
            if callback and order == "after":
                yield from self._callback("recording", *callback)
            raise _Hangup
        if callback and order == "after":  # it arrives once the action's document is fetched
            self.after_document = callback
        return action, verb.method, extra, False

    def _dial(self, step: Step, verb: Dial
              ) -> tuple[str, str, dict[str, str] | None, bool] | None:
        """A scripted outcome of dial_outcome; the action hears it, or the next verb runs."""
        status = self.sim.dial_outcome
        seconds = self.sim.dial_seconds if status == "completed" else 0
        self.transcript.clock += seconds or (verb.timeout if status == "no-answer" else 1)
        step.dial = DialInfo(verb.numbers, verb.caller_id, verb.action, status, seconds)
        if not verb.action:
            return None
        extra = {"DialCallStatus": status}
        if status == "completed" or self.carrier.name == "twilio":  # Somleng: joined calls only
            extra["DialCallSid"] = self.carrier.new_call_sid()
        if status == "completed":
            extra["DialCallDuration"] = str(seconds)
        return verb.action, verb.method, extra, False


# --- the carrier's REST API, for calls the app places ----------------------------------------


class CarrierCalls:
    """The Calls resource as the simulated carrier takes a request to place a call (what
    ivr.outbound posts to Twilio's or Somleng's API): kept in `placed` with the sid it gets,
    for `Simulator.receive` to ring the person."""

    def __init__(self, carrier: Carrier = TWILIO):
        self.carrier = carrier
        self.placed: list[tuple[dict[str, str], str]] = []

    def place(self, to: str, from_: str, url: str, status_callback: str) -> str:
        sid = self.carrier.new_call_sid()
        self.placed.append(({"To": to, "From": from_, "Url": url, "Method": "POST",
                             "StatusCallback": status_callback,
                             "StatusCallbackMethod": "POST"}, sid))
        return sid


# --- the simulator ---------------------------------------------------------------------------


class Simulator:
    """Plays the carrier's part in calls to one app; each `call()` is one independent call."""

    def __init__(self, target: Any, auth_token: str, *, carrier: str | Carrier = "twilio",
                 caller: str = "+85512000001", to: str = "+85523000000",
                 base_url: str | None = None,
                 prompt_text: Callable[[str], str | None] | None = None,
                 dial_outcome: str = "completed", dial_seconds: int = 30,
                 record_seconds: int = 5, record_end: str = "#",
                 recording_callback: str = "before", late_recording_callback: bool = False,
                 status_callback: str | None = "/voice/status",
                 account_sid: str | None = None, allow_errors: bool = False,
                 ask_keys: Callable[[GatherInfo], str | Keys | None] | None = None,
                 fetch_audio: bool = False, pause_at_record: bool = False,
                 max_documents: int = 200, max_redirects: int = 20):
        """`target`: a Flask app or test client, a base URL string, or a Transport.

        carrier: 'twilio' (default) or 'somleng', or a `Carrier`.
        record_end: how a recording ends: a key (sent as Digits when it is in the Record's
        finishOnKey, else the recording times out), or 'hangup' (the caller hangs up).
        recording_callback: when the recording status callback comes: 'before' the Record
        action, 'after' it (once the call ends), or 'late' (after the call's status callback).
        ask_keys: asked for the next keys when the script runs out at a Gather (interactive
        mode); it returns keys, '' for no input, or None for hanging up.
        fetch_audio: GET every Play URL once, as carriers do, and fail on a non-2xx reply.
        pause_at_record: stop at each <Record> (Call.waiting is a RecordPrompt) until
        Call.record(seconds, end) says how the caller records; otherwise record_seconds and
        record_end apply.
        """
        if dial_outcome not in DIAL_OUTCOMES:
            raise ValueError(f"dial_outcome must be one of {DIAL_OUTCOMES}")
        self.carrier = carrier if isinstance(carrier, Carrier) else CARRIERS[carrier]
        if late_recording_callback:
            recording_callback = "late"
        if recording_callback not in RECORDING_CALLBACK_ORDERS:
            raise ValueError(f"recording_callback must be one of {RECORDING_CALLBACK_ORDERS}")
        if isinstance(target, str):
            self.transport: Transport = HttpTransport()
            base_url = base_url or target
        elif hasattr(target, "test_client") or hasattr(target, "application"):
            self.transport = FlaskTransport(target)
        else:
            self.transport = target
        self.base_url = (base_url or "http://localhost").rstrip("/") + "/"
        self.auth_token = auth_token
        self.caller, self.to = caller, to
        self.account_sid = account_sid or self.carrier.new_account_sid()
        self.prompt_text = prompt_text
        self.dial_outcome, self.dial_seconds = dial_outcome, dial_seconds
        self.record_seconds, self.record_end = record_seconds, record_end
        self.recording_callback = recording_callback
        self.status_callback = status_callback
        self.allow_errors, self.ask_keys, self.fetch_audio = allow_errors, ask_keys, fetch_audio
        self.max_documents, self.max_redirects = max_documents, max_redirects
        self.pause_at_record = pause_at_record
        self.audio_status: dict[str, int] = {}  # carriers cache media by URL

    def url(self, path: str) -> str:
        """An absolute URL on the app (paths resolve against base_url)."""
        return urljoin(self.base_url, path)

    def start(self, call_sid: str | None = None,
              at: tuple[str, str, dict[str, str] | None] | None = None) -> Call:
        """Ring the line: POST /voice (or the request `at`: url, method, parameters) and run
        the reply until a Gather waits or the call ends."""
        return Call(self, call_sid, at)

    def receive(self, placed: Mapping[str, str], call_sid: str,
                keys: str | Iterable[str | Keys | None] = (), answer: str = "answered"
                ) -> Transcript:
        """The carrier places a call the app asked for (`placed`: the form it posted to the
        Calls resource: To, From, Url, Method, StatusCallback, StatusCallbackMethod; `call_sid`:
        the sid the carrier's reply gave it). `answer`: 'answered' (the person picks up and
        presses `keys`), or 'busy', 'no-answer', 'failed' (only the status callback comes)."""
        if answer != "answered":
            if answer not in ("busy", "no-answer", "failed", "canceled"):
                raise ValueError("answer must be 'answered', 'busy', 'no-answer' or 'failed'")
            engine = CallEngine(self, call_sid, placed=placed)
            run = engine.unanswered(answer)
            try:
                event = next(run)
                while True:  # only requests: the status callback
                    assert isinstance(event, Request)
                    event = run.send(self.send(event))
            except StopIteration:
                pass
            return engine.transcript
        return self.call(keys, call_sid, placed=placed)

    def call(self, keys: str | Iterable[str | Keys | None] = (), call_sid: str | None = None,
             placed: Mapping[str, str] | None = None) -> Transcript:
        """One whole call driven by a script of keys (see parse_keys); returns its transcript."""
        script = parse_keys(keys)
        live = Call(self, call_sid, placed=placed)
        while not live.ended:
            if script:
                live.press(script.pop(0))
            elif self.ask_keys is not None and isinstance(live.waiting, GatherInfo):
                answer = self.ask_keys(live.waiting)
                if answer is None:
                    live.hangup()
                else:
                    live.press(answer)
            else:
                live.hangup()
        live.transcript.unused = script
        return live.transcript

    def send(self, request: Request) -> Reply:
        """Send one of the engine's requests through this simulator's transport."""
        began = time.perf_counter()
        if request.method == "GET":
            got = self.transport.get(request.url, request.headers)
            content_type = got.headers.get("Content-Type", "")
            reply = Reply(got.status, _decode(got.content, content_type) if request.kind !=
                          "media" else "", content_type)
        else:
            posted = self.transport.post(request.url, request.params, request.headers)
            reply = Reply(posted.status, posted.body, posted.content_type)
        return reply._replace(fetch_ms=(time.perf_counter() - began) * 1000)


class Call:
    """A call in progress, driven one Gather at a time (for tests and the phones)."""

    def __init__(self, sim: Simulator, call_sid: str | None = None,
                 at: tuple[str, str, dict[str, str] | None] | None = None,
                 placed: Mapping[str, str] | None = None):
        self.sim = sim
        self.engine = CallEngine(sim, call_sid, at, placed)
        self.transcript = self.engine.transcript
        self.params = self.engine.params
        self.waiting: GatherInfo | RecordPrompt | None = None
        self.ended = False
        self._run = self.engine.run()
        self._advance(None)

    @property
    def buffer(self) -> str:
        """Keys typed ahead, not yet taken by a Gather."""
        return "".join(key for key, _ in self.engine.buffer)

    def press(self, keys: str | Keys | None) -> Call:
        """Answer the waiting Gather: keys typed in one go (or `Keys` at a pace), or None / ''
        for no input."""
        if self.ended:
            raise SimulatorError("the call has already ended")
        if isinstance(self.waiting, RecordPrompt):
            raise SimulatorError("the caller is being recorded: use record()")
        if isinstance(keys, str) and "@" in keys:
            keys = parse_keys([keys])[0]
        self._advance(keys or "")
        return self

    def silence(self) -> Call:
        return self.press(None)

    def record(self, seconds: int, end: str = "#", recording_id: str | None = None) -> Call:
        """Say how the waiting <Record> goes: `seconds` of speech (0: nothing), ended by the
        key `end`, by the Record's timeout (end=''), or by hanging up (end='hangup');
        `recording_id`: the id the carrier gives the recording (default: a new one)."""
        if not isinstance(self.waiting, RecordPrompt):
            raise SimulatorError("no <Record> is waiting")
        self._advance((seconds, end, recording_id))
        return self

    def hangup(self) -> Transcript:
        """The caller hangs up now."""
        if not self.ended:
            self._advance(HANGUP)
        return self.transcript

    def _advance(self, value: Any) -> None:
        try:
            event = self._run.send(value) if value is not None else next(self._run)
            while isinstance(event, Request):
                event = self._run.send(self.sim.send(event))
            self.waiting = event
        except StopIteration:
            self.waiting = None
            self.ended = True
