"""What every step of a call is made of, shared by the engine (ivr.flow) and the menus.

A menu builder gets a `Context` (the catalogue, the wording, storage, the caller, and the
helpers to speak) and a `Position`, and gives a `Menu` (a Gather the engine renders) or an
`Action` (a step that builds its own TwiML). This module sits below both the engine and
the menus, so no menu imports the engine: the call flow has no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Protocol

from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.audio import AudioLibrary
from ivr.catalog import Catalog
from ivr.prompts import PromptBook, pages
from ivr.store import Store, recording_duration

GATHER_TIMEOUT = 6  # seconds of silence before a menu counts as "no input"
FALLBACK_SAY_LANGUAGE = "en-US"  # <Say> has no Khmer voice (PITFALLS.md)


@dataclass(frozen=True)
class Position:
    """Where a caller is: carried in every action URL."""

    lang: str
    node: str
    page: int = 1
    attempt: int = 0  # re-prompts so far on this menu
    office: str = ""  # chosen so far (rating, complaint, ombudsman)
    service: str = ""
    topic: str = ""
    keyed: str = ""  # keys of a code typed so far, when the carrier ended the entry early

    def to(self, node: str, **changes: str) -> Position:
        """Another node of the same call, keeping what the caller has chosen so far."""
        return replace(self, node=node, page=1, attempt=0, keyed="", **changes)


class Urls(Protocol):
    """How the flow names the URLs Twilio should request next (the views provide it)."""

    key: str  # what the URLs depend on (the public host), for keeping rendered menus

    def step(self, pos: Position, noinput: bool = False, gather: bool = False) -> str:
        """The URL of a step; `gather`: a Gather's action, where no Digits means no input."""
        ...

    def audio(self, file: str) -> str: ...

    def recording_callback(self, pos: Position, kind: str) -> str: ...


@dataclass(frozen=True)
class CallInfo:
    """Who is calling (as Twilio says), for what the flow stores."""

    sid: str = ""
    caller: str = ""


@dataclass
class Outcome:
    """The TwiML for one step and what happened, for the call funnel in `events`."""

    response: VoiceResponse | str
    event: str
    node: str


@dataclass(frozen=True)
class Reask:
    """Keys that are not accepted, and what to say before asking again (an attempt)."""

    prompts: tuple[str, ...]


@dataclass
class Menu:
    """A Gather: its prompts, where each key leads, and what keys or silence mean."""

    prompts: list[str]
    choices: dict[str, Position] = field(default_factory=dict)
    back: Position | None = None
    more: Position | None = None  # key 9, when a list has another page
    timeout: int = GATHER_TIMEOUT
    num_digits: int | None = 1  # None: a code of several keys ended with '#'
    # keys that are answers: where they lead, or what to say before asking again
    on_digits: Callable[[str], Position | Reask | None] | None = None
    # what silence means when it is not "ask again" (None: "we did not hear a key", again)
    on_silence: Callable[[], Position | Reask] | None = None
    invalid_prompt: str = "error.invalid"
    cacheable: bool = True  # False when the prompts depend on stored data


@dataclass
class Action:
    """A step that is not a menu (record, dial, store what arrived): it builds its own TwiML
    from Twilio's parameters."""

    run: Callable[[Mapping[str, str]], Outcome]


Step = Menu | Action


class Rendered(str):
    """TwiML already rendered to text (a kept menu): str() of it is the document."""


def paged(pos: Position, intro: str, items: Sequence[tuple[str, str]],
          back: Position | None) -> Menu | None:
    """A list menu: intro, one choice prompt per item on this page, 'more', hints.
    `items` are (prompt key, node); None when the position's page does not exist."""
    all_pages = pages(items)
    if not 1 <= pos.page <= len(all_pages):
        return None
    page = all_pages[pos.page - 1]
    prompts = [intro, *(key for key, _ in page)]
    more = None
    if pos.page < len(all_pages):
        prompts.append("menu.more")
        more = replace(pos, page=pos.page + 1, attempt=0)
    prompts.append("nav.hint")
    choices = {str(i): pos.to(node) for i, (_, node) in enumerate(page, start=1)}
    if pos.page > 1:
        back = replace(pos, page=pos.page - 1, attempt=0)
    return Menu(prompts, choices, back=back, more=more)


def reference_prompts(reference: str) -> list[str]:
    """A reference number read digit by digit, from one recorded word per digit."""
    return ["reference.is", *(f"digit.{d}" for d in reference)]


class Context:
    """What a menu builder is given: the catalogue and wording of this request, storage, the
    caller, and the helpers to speak. The engine (ivr.flow.CallFlow) is one; it adds
    `present`, which renders another node (an Action that ends by showing a menu uses it)."""

    def __init__(self, catalog: Catalog, book: PromptBook, audio: AudioLibrary, urls: Urls,
                 store: Store | None = None, call: CallInfo | None = None,
                 caller_id: str | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.catalog = catalog
        self.book = book
        self.audio = audio
        self.urls = urls
        self.store = store
        self.call = call or CallInfo()
        self.caller_id = caller_id
        self.now = now

    def present(self, pos: Position, before: Sequence[str] = ()) -> VoiceResponse | str:
        """The TwiML of the step at `pos` (the engine's)."""
        raise NotImplementedError

    def storage(self) -> Store:
        """The store; a flow made without one (tests of menus alone) fails where it writes."""
        if self.store is None:
            raise RuntimeError("this call flow has no store")
        return self.store

    def play(self, verb: VoiceResponse | Gather, key: str, lang: str) -> None:
        """Play the rendered audio of a prompt; when it is missing or stale, its parts (fixed
        phrases, number words, names) if each has current audio; else say its English text."""
        text = self.book.text(key, lang)
        entry = self.audio.find(key, lang, text)
        if entry is not None:
            verb.play(self.urls.audio(entry.file))
            return
        parts = [self.audio.find(part, lang, self.book.text(part, lang))
                 for part in self.book.parts(key, lang)]
        if parts and all(parts):
            for part_entry in parts:
                assert part_entry is not None
                verb.play(self.urls.audio(part_entry.file))
            return
        english = self.book.text(key, "en") if self.book.has(key, "en") else text
        verb.say(english, language=FALLBACK_SAY_LANGUAGE)

    def goodbye(self, lang: str, before: Sequence[str] = ()) -> VoiceResponse:
        response = VoiceResponse()
        for key in [*before, "goodbye"]:
            self.play(response, key, lang)
        response.hangup()
        return response

    def save_recording(self, pos: Position, kind: str, params: Mapping[str, str]
                       ) -> str | None:
        """Store what the carrier says was recorded (Somleng sends no RecordingSid to the
        action, only RecordingUrl and RecordingDuration); None when it was empty."""
        return self.storage().save_recording(
            sid=self.call.sid, caller=self.call.caller, kind=kind, lang=pos.lang,
            office=pos.office, service=pos.service, topic=pos.topic,
            recording_sid=params.get("RecordingSid", ""),
            recording_url=params.get("RecordingUrl", ""),
            duration_s=recording_duration(params.get("RecordingDuration")))
