"""The call-graph walk: every menu of the line, every key a handset has, pressed through the
carrier simulator (ivr.simulate) as a caller presses them, under one carrier's rules.

A state is a request the carrier is about to make (URL, method, parameters). From each state
the simulator runs the call until a Gather waits; there every key, silence and a few typed
codes are tried, each in a call of its own from the same state, and the request the carrier
makes next is a new state. Records are tried spoken, empty and timed out; Dials with every
outcome. Replies are kept by request (the same request always gets the same reply here, and
webhooks are idempotent), so a state's document is fetched once.

With every district office of the country in the catalogue, a walk of every district menu
and every office code takes minutes; a walk can be given a sample: the district menus of some
provinces (`provinces`; the menus of the others are not entered) and some office codes
(`codes`). scripts/measure_keys.py reaches every office through the same menus.

Every document must be schema-valid TwiML; every menu's Gather must lead somewhere; no call
may end by running out of verbs (a dead end), hit an HTTP error or play the apology that the
webhooks give after a fault.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from lxml import etree

from ivr.simulate import (
    DIAL_OUTCOMES,
    Call,
    FlaskTransport,
    GatherInfo,
    Keys,
    PostReply,
    Simulator,
    Step,
)

WALK_SID = {"twilio": "CA" + "7" * 32, "somleng": "7b0f5e8e-0c1d-4d5e-9f00-000000000007"}
ONE_KEYS = list("0123456789*#")
CODE_ENTRIES = ["*", "#", "0#", "01", "9999#"]  # besides each real code
RECORD_WAYS = (("spoken", 7, "#"), ("empty", 0, "#"), ("timed-out", 7, ""))
BASE_PARAMS = {"CallSid", "AccountSid", "From", "To", "Caller", "Called", "CallStatus",
               "Direction", "ApiVersion", "FromCountry", "ToCountry", "CallerCountry",
               "CalledCountry"}
VARYING = {"RecordingSid", "RecordingUrl", "DialCallSid"}  # fresh ids in every call


class KeptReplies:
    """A transport that sends each distinct request once and answers repeats from memory."""

    def __init__(self, app):
        self.inner = FlaskTransport(app)
        self.kept: dict[tuple, PostReply] = {}
        self.sent = 0

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> PostReply:
        key = (url, tuple(sorted(params.items())))
        if key not in self.kept:
            self.sent += 1
            self.kept[key] = self.inner.post(url, params, headers)
        return self.kept[key]

    def get(self, url: str, headers: dict[str, str] | None = None):
        self.sent += 1
        return self.inner.get(url, headers)


def node_of(url: str) -> str:
    """http://localhost/voice/en/category/x?p=2&g=1 -> 'en/category/x?p=2' (the menu and its
    page: what a caller would call "where I am")."""
    parts = urlsplit(url)
    page = dict(parse_qsl(parts.query)).get("p")
    node = re.sub(r"/case/\d+$", "/case/N", parts.path.removeprefix("/voice/"))
    return node + (f"?p={page}" if page and page != "1" else "")


def shape(url: str, params: Iterable[tuple[str, str]]) -> tuple:
    """Requests that differ only in which office, service, topic or code was chosen (or in a
    case number or a recording's id) take the same path through the code: walk one of each."""
    parts = urlsplit(url)
    path = re.sub(r"/case/\d+", "/case/N", parts.path)
    query = tuple(sorted((k, v if k not in "ostk" else "*") for k, v in parse_qsl(parts.query)))
    form = tuple(sorted((k, "*" if k in VARYING else v) for k, v in params))
    return path, query, form


@dataclass(frozen=True)
class State:
    url: str
    method: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, step: Step) -> State:
        extra = tuple(sorted((k, v) for k, v in step.params.items() if k not in BASE_PARAMS))
        return cls(step.url if step.method == "POST" else step.url.split("?")[0], step.method,
                   extra)

    def at(self) -> tuple[str, str, dict[str, str]]:
        return self.url, self.method, dict(self.params)


@dataclass
class Walk:
    """What a walk found: the figures in the README and the checks the tests make."""

    carrier: str
    menus: dict[str, GatherInfo] = field(default_factory=dict)  # node -> its Gather
    reached: dict[str, int] = field(default_factory=dict)  # node -> fewest key presses
    after_hash: dict[str, str] = field(default_factory=dict)  # node -> node after '#'
    after_star: dict[str, str] = field(default_factory=dict)  # node -> node after '*'
    leads_to: dict[str, set[str]] = field(default_factory=dict)  # node -> nodes one press on
    keys_pressed: int = 0
    calls: int = 0
    documents: int = 0
    dead_ends: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    records: int = 0
    dials: int = 0
    hangups: int = 0
    reprompt_delays: list[float] = field(default_factory=list)
    requests: int = 0
    skipped_provinces: set[str] = field(default_factory=set)  # district menus not entered

    def ancestors(self, node: str) -> set[str]:
        """Every node from which some path of presses leads to `node`."""
        before: dict[str, set[str]] = {}
        for source, targets in self.leads_to.items():
            for target in targets:
                before.setdefault(target, set()).add(source)
        found, todo = set(), [node]
        while todo:
            for source in before.get(todo.pop(), ()):
                if source not in found:
                    found.add(source)
                    todo.append(source)
        return found

    def summary(self) -> str:
        delays = self.reprompt_delays or [0.0]
        return (f"{self.carrier}: {len(self.menus)} menus, {self.keys_pressed} keys pressed "
                f"in {self.calls} calls, {self.documents} documents ({self.requests} requests),"
                f" {len(self.dead_ends)} dead ends, re-prompt delay after silence "
                f"max {max(delays):.3f} s, mean {sum(delays) / len(delays):.3f} s")


def walk(app, token: str, carrier: str, codes: list[str], schema,
         faults: Callable[[list[str]], list[str]], prompt_text=None,
         paced_code: str | None = None, provinces: set[str] | None = None,
         stop: Callable[[], bool] | None = None) -> Walk:
    """Walk every menu under `carrier`. `faults(texts heard)` names what must never be heard
    (the apology); `paced_code` is also keyed 2.5 s between keys; `provinces`: only these
    provinces' district menus are entered (None: all); `stop()`, asked after each state, ends
    the walk early (once a fault is found, say)."""
    transport = KeptReplies(app)
    found = Walk(carrier)
    checked: set[tuple] = set()

    def simulator(**options) -> Simulator:
        return Simulator(transport, token, carrier=carrier, status_callback=None,
                         prompt_text=prompt_text, **options)

    plain = simulator()
    recorders = {way: simulator(record_seconds=seconds, record_end=end)
                 for way, seconds, end in RECORD_WAYS}
    diallers = {outcome: simulator(dial_outcome=outcome) for outcome in DIAL_OUTCOMES}

    def run(sim: Simulator, state: State, keys=None, pressed: bool = False) -> tuple[Call, int]:
        call = sim.start(WALK_SID[carrier], at=state.at())
        before = len(call.transcript.steps)
        if pressed and not call.ended:
            call.press(keys)
        found.calls += 1
        check(call, state)
        return call, before

    def check(call: Call, state: State) -> None:
        for step in call.transcript.steps:
            key = (step.url, tuple(sorted(step.params.items())))
            if key in checked:
                continue
            checked.add(key)
            found.documents += 1
            assert step.status == 200, (step.url, step.status, step.twiml[:500])
            doc = etree.fromstring(step.twiml.encode())
            assert schema.validate(doc), (step.url, schema.error_log.last_error)
            check_document(step, doc)
        heard = [p.text or "" for s in call.transcript.steps for p in s.prompts]
        bad = faults(heard)
        if bad:
            found.faults.append(f"{state.url} {state.params}: heard {bad}")
        if call.ended and call.transcript.ended_by == "end":
            found.dead_ends.append(f"{call.transcript.last.url}: the document ran out")

    def check_document(step: Step, doc) -> None:
        verbs = list(doc)
        if "/voice/recording" in step.url or "/voice/status" in step.url:
            return
        assert verbs, f"dead end: an empty document at {step.url}"
        for i, verb in enumerate(verbs):
            if verb.tag == "Gather":
                assert verb.get("action"), step.url
                assert i + 1 < len(verbs), f"nothing follows the Gather at {step.url}"
                assert verb.get("actionOnEmptyResult") == "true", step.url
                one_key = verb.get("numDigits") == "1"
                if one_key:
                    assert verb.get("finishOnKey") == "", f"'#' would end {step.url}"
                    assert len(verb) > 0, f"a menu without prompts at {step.url}"
                else:  # a code: keys ended by '#'
                    assert verb.get("finishOnKey") == "#", step.url
            elif verb.tag == "Record":
                found.records += 1
                assert verb.get("action") and verb.get("recordingStatusCallback"), step.url
                assert int(verb.get("maxLength")) > 0, step.url
                assert i + 1 < len(verbs), "an empty recording would end the call on Twilio"
            elif verb.tag == "Dial":
                found.dials += 1
                assert verb.get("action") and int(verb.get("timeout")) <= 60, step.url
            elif verb.tag == "Hangup":
                found.hangups += 1
            if verb.tag in ("Redirect", "Hangup"):
                assert i == len(verbs) - 1, f"verbs after <{verb.tag}> at {step.url}"
        assert verbs[-1].tag in ("Redirect", "Hangup", "Dial"), f"dead end at {step.url}"

    def inputs(info: GatherInfo) -> list:
        if "a=" in urlsplit(info.action).query:  # a re-prompt: its keys were tried before
            return ["x-silence", "5" if info.num_digits == 1 else "9999#"]
        if info.num_digits == 1:
            return [*ONE_KEYS, "x-silence"]
        entries = [f"{code}#" for code in codes] + CODE_ENTRIES + ["x-silence"]
        if paced_code:
            entries.append(Keys(paced_code, gap=2.5))
        return entries

    # (a request, the key presses it took, the menu the caller was at before it)
    queue: deque[tuple[State, int, str]] = deque([(State(plain.url("/voice"), "POST"), 0, "")])
    seen: set[tuple] = set()
    gathers: set[tuple] = set()
    while queue and not (stop is not None and (found.faults or stop())):
        state, presses, parent = queue.popleft()
        if shape(state.url, state.params) in seen:
            continue
        seen.add(shape(state.url, state.params))
        call, _ = run(plain, state)
        first = call.transcript.steps[0]
        if first.record is not None or "<Record" in first.twiml:
            for way, sim in recorders.items():
                varied, _ = run(sim, state)
                if len(varied.transcript.steps) > 1:
                    queue.appendleft((State.of(varied.transcript.steps[1]), presses, parent))
                else:
                    assert way == "empty" and not varied.ended, first.url
        if first.dial is not None:
            for sim in diallers.values():
                varied, _ = run(sim, state)
                if len(varied.transcript.steps) > 1:
                    queue.appendleft((State.of(varied.transcript.steps[1]), presses, parent))
        if call.ended or not isinstance(call.waiting, GatherInfo):
            continue
        info = call.waiting
        node = node_of(info.action)
        province = re.search(r"/office/province/(\d+)", node)
        if provinces is not None and province and province.group(1) not in provinces:
            found.skipped_provinces.add(province.group(1))  # a district menu not entered
            continue
        found.reached[node] = min(found.reached.get(node, presses), presses)
        if parent and parent != node:
            found.leads_to.setdefault(parent, set()).add(node)
        key = shape(info.action, ()) + (info.num_digits,)
        if key in gathers:
            continue
        gathers.add(key)
        found.menus.setdefault(node, info)
        for keys in inputs(info):
            silent = keys == "x-silence"
            pressed, before = run(plain, state, None if silent else keys, pressed=True)
            found.keys_pressed += 0 if silent else len(getattr(keys, "keys", keys))
            steps = pressed.transcript.steps
            if silent:
                found.reprompt_delays += pressed.transcript.reprompt_delays()
            if len(steps) <= before:
                continue  # the call ended in the same document (a goodbye)
            queue.append((State.of(steps[before]), presses + 1, node))
            if isinstance(pressed.waiting, GatherInfo):
                target = node_of(pressed.waiting.action)
                if keys == "#":
                    found.after_hash[node] = target
                elif keys == "*":
                    found.after_star[node] = target
    found.requests = transport.sent
    return found
