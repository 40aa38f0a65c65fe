"""The call flow as plain functions: (where the caller is, what they pressed) -> TwiML.

The caller's position lives in the URL (language, node, page, attempt), never in process
memory, so any gunicorn worker can serve any step of any call. Keypad conventions, the
same on every menu: 1-8 choose, 9 next page, 0 repeat, * back one step, # main menu.
Every menu is a <Gather numDigits=1 finishOnKey=""> (so # and * are keys) with its prompts
nested inside (the caller can press a key at any time). Its action is requested even when no
key came (actionOnEmptyResult): that is the no-input step, without the 1 s wait a <Redirect>
costs on Somleng. A <Redirect> still follows each Gather, for a carrier that ignores it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, Protocol

from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.audio import AudioLibrary
from ivr.catalog import Catalog, FeeChoice, Service
from ivr.prompts import PAGE_SIZE, PromptBook, fee_key, fee_node, pages

log = logging.getLogger(__name__)

MAX_REPROMPTS = 2  # after two re-prompts (silence or wrong keys) the line says goodbye
GATHER_TIMEOUT = 6  # seconds of silence before a menu counts as "no input"
WELCOME_TIMEOUT = 3  # the greeting waits less: no key simply means Khmer
FALLBACK_SAY_LANGUAGE = "en-US"  # <Say> has no Khmer voice (PITFALLS.md)
MAIN = "main"
WELCOME = "welcome"
CACHE_SIZE = 20_000  # rendered menus kept per process (a few KB each)


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

    def to(self, node: str, **changes: object) -> Position:
        """Another node of the same call, keeping what the caller has chosen so far."""
        return replace(self, node=node, page=1, attempt=0, keyed="",  # type: ignore[arg-type]
                       **changes)


class Urls(Protocol):
    """How the flow names the URLs Twilio should request next (the views provide it)."""

    def step(self, pos: Position, noinput: bool = False, gather: bool = False) -> str:
        """The URL of a step; `gather`: a Gather's action, where no Digits means no input."""
        ...

    def audio(self, file: str) -> str: ...

    key: str  # what the URLs depend on (the public host), for keeping rendered menus

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


class Rendered(str):
    """TwiML already rendered to text (a kept menu): str() of it is the document."""


@dataclass
class Action:
    """A step that is not a menu (record, dial, store what arrived): it builds its own TwiML
    from Twilio's parameters."""

    run: Callable[[Mapping[str, str]], Outcome]


class CallFlow:
    """All menus of the line, generated from the catalogue and the prompt book."""

    # Main-menu branches: (prompt key, digit, node).
    main_items: Sequence[tuple[str, str, str]] = (
        ("menu.main.services", "1", "categories"),
        ("menu.main.rate", "2", "rate/office"),
        ("menu.main.ombudsman", "3", "ombudsman/office"),
        ("menu.main.complaint", "4", "complaint"),
    )

    def __init__(self, catalog: Catalog, book: PromptBook, audio: AudioLibrary, urls: Urls,
                 store: Any = None, call: CallInfo | None = None, caller_id: str | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 cache: dict | None = None, generation: int = 0):
        self.catalog = catalog
        self.book = book
        self.audio = audio
        self.urls = urls
        self.store = store
        self.call = call or CallInfo()
        self.caller_id = caller_id
        self.now = now
        self.cache = cache
        self.generation = generation  # of the catalogue and prompts: part of a kept menu's key

    @cached_property
    def menus(self) -> dict[str, Callable[[Position, str], Menu | Action | None]]:
        """Menu builders by the first part of a node (built only when a step needs one: a
        kept menu does not)."""
        from ivr import cases, rating

        return {
            WELCOME: lambda pos, rest: self._welcome_menu(),
            MAIN: lambda pos, rest: self._main_menu(pos),
            "categories": lambda pos, rest: self._categories_menu(pos),
            "category": self._category_menu,
            "service": self._service_menu,
            **rating.menus(self),
            **cases.menus(self),
        }

    # --- answering a request -----------------------------------------------------------

    def answer(self, pos: Position, digits: str | None, noinput: bool = False,
               params: Mapping[str, str] | None = None) -> Outcome:
        """The response to one webhook request at `pos` with the keys `digits`.

        A menu step that only moves the caller (no answer stored, no parameters read) gives
        the same document every time: it is kept with the rendered menus.
        """
        if pos.lang not in self.catalog.languages:
            pos = replace(pos, lang=self.catalog.languages[0])
        key = None
        if self.cache is not None and (digits is None or len(digits) <= 2):
            key = ("answer", self.urls.key, self.generation, self.audio.version(), pos, digits,
                   noinput)
            kept = self.cache.get(key)
            if kept is not None:
                return Outcome(*kept)
        outcome, pure = self._answer(pos, digits, noinput, params)
        if key is not None and pure and isinstance(outcome.response, Rendered):
            self._keep(key, (outcome.response, outcome.event, outcome.node))
        return outcome

    def _answer(self, pos: Position, digits: str | None, noinput: bool,
                params: Mapping[str, str] | None) -> tuple[Outcome, bool]:
        """The outcome, and whether it depends on nothing but the position and the keys."""
        menu = self.menu(pos)
        if isinstance(menu, Action):
            return menu.run(params or {}), False
        if menu is None:
            log.info("unknown position %r: back to the main menu", pos.node)
            main = Position(pos.lang, MAIN)
            return Outcome(self.present(main, before=["error.invalid"]), "unknown",
                           pos.node), True
        if pos.node == WELCOME and noinput:
            return Outcome(self.present(Position(pos.lang, MAIN)), "default-language",
                           pos.node), True
        if noinput and menu.on_silence is not None:
            target = menu.on_silence()
            if isinstance(target, Reask):
                return self._retry(pos, target.prompts, "noinput"), False
            return Outcome(self.present(target), "noinput", pos.node), False
        if noinput:
            return self._retry(pos, ["error.noinput"], "noinput"), True
        if not digits:
            return Outcome(self.present(pos), "present", pos.node), True
        found, event = self._route(pos, menu, digits)
        if isinstance(found, Reask):
            return self._retry(pos, found.prompts, "invalid"), False
        if found is None:
            return self._retry(pos, [menu.invalid_prompt], "invalid"), event != "answer"
        return Outcome(self.present(found), event, pos.node), event != "answer"

    def _route(self, pos: Position, menu: Menu, digits: str
               ) -> tuple[Position | Reask | None, str]:
        if digits == "*":
            return (menu.back or replace(pos, attempt=0)), "back"
        if digits == "#":
            return Position(pos.lang, MAIN), "main"
        if menu.num_digits is None and menu.on_digits is not None:
            return menu.on_digits(digits), "answer"  # a code: 0 and 9 are part of it
        if digits == "0":
            return replace(pos, attempt=0), "repeat"
        if digits == "9" and menu.more is not None:
            return menu.more, "more"
        if digits in menu.choices:
            return menu.choices[digits], "choice"
        if menu.on_digits is not None:
            return menu.on_digits(digits), "answer"
        return None, "invalid"

    def _retry(self, pos: Position, prompts: Sequence[str], event: str) -> Outcome:
        """Say `prompts`, then the same menu from its start (a code is keyed afresh)."""
        if pos.attempt >= MAX_REPROMPTS:
            return Outcome(self.goodbye(pos.lang), f"{event}-goodbye", pos.node)
        again = replace(pos, attempt=pos.attempt + 1, keyed="")
        return Outcome(self.present(again, before=prompts), event, pos.node)

    # --- building TwiML --------------------------------------------------------------------

    def present(self, pos: Position, before: Sequence[str] = ()) -> VoiceResponse | Rendered:
        """A menu: its prompts inside a Gather, then a Redirect for silence.

        A menu's TwiML depends only on the catalogue, the prompts, the rendered audio and
        the host: it is kept (per process) and served again while those stay the same.
        """
        key = None
        if self.cache is not None:
            key = (self.urls.key, self.generation, self.audio.version(), pos, tuple(before))
            if key in self.cache:
                return self.cache[key]
        menu = self.menu(pos)
        if isinstance(menu, Action):
            return menu.run({}).response
        response = self._present(pos, menu, before)
        if key is not None and menu is not None and menu.cacheable:
            self._keep(key, Rendered(str(response)))
        return response

    def _keep(self, key: tuple, value: object) -> None:
        """Keep a rendered menu or step; the store is bounded (emptied when full)."""
        assert self.cache is not None
        if len(self.cache) >= CACHE_SIZE:
            self.cache.clear()
        self.cache[key] = value

    def _present(self, pos: Position, menu: Menu | None, before: Sequence[str]
                 ) -> VoiceResponse:
        if menu is None:  # a target that vanished (catalogue reloaded): the main menu
            pos, menu = Position(pos.lang, MAIN), self._main_menu(Position(pos.lang, MAIN))
        response = VoiceResponse()
        action = self.urls.step(pos, gather=True)
        # actionOnEmptyResult: silence (or '#' alone at a code) asks the action, with no Digits
        if menu.num_digits is None:  # a code: keys until '#'
            gather = Gather(finish_on_key="#", action=action, method="POST",
                            timeout=menu.timeout, action_on_empty_result=True)
        else:  # finishOnKey "": '#' (main menu) and '*' (back) are keys like the others
            gather = Gather(num_digits=menu.num_digits, finish_on_key="", action=action,
                            method="POST", timeout=menu.timeout, action_on_empty_result=True)
        for entry in [*before, *menu.prompts]:
            key, _, lang = entry.partition("@")  # "key@en": this prompt in another language
            self.play(gather, key, lang if lang in self.catalog.languages else pos.lang)
        response.append(gather)
        response.redirect(self.urls.step(pos, noinput=True), method="POST")
        return response

    def play(self, verb: VoiceResponse | Gather, key: str, lang: str) -> None:
        """Play the rendered audio of a prompt, or say its English text when there is none."""
        text = self.book.text(key, lang)
        entry = self.audio.find(key, lang, text)
        if entry is not None:
            verb.play(self.urls.audio(entry.file))
            return
        english = self.book.text(key, "en") if self.book.has(key, "en") else text
        verb.say(english, language=FALLBACK_SAY_LANGUAGE)

    def goodbye(self, lang: str, before: Sequence[str] = ()) -> VoiceResponse:
        response = VoiceResponse()
        for key in [*before, "goodbye"]:
            self.play(response, key, lang)
        response.hangup()
        return response

    def reference_prompts(self, reference: str) -> list[str]:
        """A reference number read digit by digit, from one recorded word per digit."""
        return ["reference.is", *(f"digit.{d}" for d in reference)]

    def apology(self, lang: str, node: str) -> VoiceResponse:
        """After a fault: say sorry and go to the main menu (or hang up if that failed)."""
        response = VoiceResponse()
        try:
            self.play(response, "error.apology", lang)
        except Exception:  # the apology must not fail itself
            response.say("Sorry, something went wrong.", language=FALLBACK_SAY_LANGUAGE)
        if node in (MAIN, WELCOME):
            response.hangup()
        else:
            response.redirect(self.urls.step(Position(lang, MAIN)), method="POST")
        return response

    # --- the menus -------------------------------------------------------------------------

    def menu(self, pos: Position) -> Menu | Action | None:
        head, _, rest = pos.node.partition("/")
        build = self.menus.get(head)
        if build is None or (rest and head in (WELCOME, MAIN, "categories")):
            return None
        return build(pos, rest)

    def _welcome_menu(self) -> Menu:
        prompts = ["greeting", "language.offer@en"]
        choices = {"1": Position("km", MAIN)}
        if "en" in self.catalog.languages:
            choices["2"] = Position("en", MAIN)
        return Menu(prompts, choices, timeout=WELCOME_TIMEOUT)

    def _main_menu(self, pos: Position) -> Menu:
        prompts = ["menu.main.intro", *(key for key, _, _ in self.main_items), "menu.repeat"]
        choices = {digit: Position(pos.lang, node) for _, digit, node in self.main_items}
        return Menu(prompts, choices)

    def paged(self, pos: Position, intro: str, items: Sequence[tuple[str, str]],
               back: Position | None) -> Menu | None:
        """A list menu: intro, one choice prompt per item on this page, 'more', hints."""
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

    def _categories_menu(self, pos: Position) -> Menu | None:
        items = [(f"category.{c.id}.choice", f"category/{c.id}") for c in self.catalog.categories]
        return self.paged(pos, "menu.categories.intro", items, Position(pos.lang, MAIN))

    def _category_menu(self, pos: Position, category_id: str) -> Menu | None:
        category = self.catalog.category(category_id)
        if category is None:
            return None
        items = [(f"service.{s.id}.choice", f"service/{s.id}") for s in category.services]
        index = self.catalog.categories.index(category)
        back = Position(pos.lang, "categories", page=index // PAGE_SIZE + 1)
        return self.paged(pos, f"category.{category.id}.intro", items, back)

    def _service_menu(self, pos: Position, rest: str) -> Menu | None:
        service_id, _, fee_path = rest.partition("/fee/")
        if rest.endswith("/fee"):
            return None
        service = self.catalog.service(service_id)
        if service is None:
            return None
        category = self.catalog.category(service.category)
        assert category is not None
        index = category.services.index(service)
        up = Position(pos.lang, f"category/{category.id}", page=index // PAGE_SIZE + 1)
        if not fee_path:
            prompts = [f"service.{service.id}.info"]
            if isinstance(service.fee, FeeChoice):
                return self._fee_menu(pos, service, "", prompts, up)
            return Menu([*prompts, "service.again", "service.rate", "nav.hint"],
                        {"1": replace(pos, attempt=0), "2": self.rate(pos, service)}, back=up)
        parent = fee_path.rpartition(".")[0]
        back = replace(pos, node=self.fee_node_name(service, parent), attempt=0)
        return self._fee_menu(pos, service, fee_path, [], back)

    def _fee_menu(self, pos: Position, service: Service, path: str, prompts: list[str],
                  back: Position) -> Menu | None:
        """One question of a fee table, or the fee it leads to."""
        found = fee_node(service.fee, path)
        if found is None:
            return None
        _, node = found
        prompts = [*prompts, fee_key(service, path)]
        if isinstance(node, FeeChoice):
            choices = {
                str(i): Position(pos.lang, self.fee_node_name(service, f"{path}.{i}" if path
                                                              else str(i)))
                for i in range(1, len(node.options) + 1)
            }
            return Menu([*prompts, "nav.hint"], choices, back=back)
        return Menu([*prompts, "service.again", "service.rate", "nav.hint"],
                    {"1": replace(pos, attempt=0), "2": self.rate(pos, service)}, back=back)

    @staticmethod
    def rate(pos: Position, service: Service) -> Position:
        return Position(pos.lang, "rate/office", service=service.id)

    @staticmethod
    def fee_node_name(service: Service, path: str) -> str:
        return f"service/{service.id}" + (f"/fee/{path}" if path else "")
