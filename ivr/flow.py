"""The call flow engine, as plain functions: (where the caller is, what they pressed) -> TwiML.

Where each node's menu comes from is the table (ivr.tree); the menus are in ivr.browse,
ivr.rating, ivr.cases and ivr.offices, over the shared parts in ivr.steps.

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
from dataclasses import replace
from datetime import datetime, timezone

from twilio.twiml.voice_response import Gather, VoiceResponse

# the menus attach their builders to the table's nodes when imported
from ivr import browse, cases, feedback_call, offices, rating, status, tree  # noqa: F401
from ivr.audio import AudioLibrary
from ivr.catalog import Catalog
from ivr.prompts import PromptBook
from ivr.steps import (
    FALLBACK_SAY_LANGUAGE,
    Action,
    CallInfo,
    Context,
    Menu,
    Outcome,
    Position,
    Reask,
    Rendered,
    Sound,
    Step,
    Urls,
)
from ivr.store import Store

__all__ = ["CallFlow", "CallInfo", "Position", "Urls", "MAX_REPROMPTS", "CACHE_SIZE"]
log = logging.getLogger(__name__)

MAX_REPROMPTS = 2  # after two re-prompts (silence or wrong keys) the line says goodbye
CACHE_SIZE = 20_000  # rendered menus kept per process (a few KB each)
MAIN = tree.MAIN.path()
WELCOME = tree.WELCOME.path()


class CallFlow(Context):
    """The engine: finds a position's node in the table, asks its builder for the menu or
    action, and turns keys into the next step (keypad conventions, re-prompts, goodbye)."""

    def __init__(self, catalog: Catalog, book: PromptBook, audio: AudioLibrary, urls: Urls,
                 store: Store | None = None, call: CallInfo | None = None,
                 caller_id: str | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 cache: dict | None = None, generation: int = 0):
        super().__init__(catalog, book, audio, urls, store, call, caller_id, now)
        self.cache = cache
        self.generation = generation  # of the catalogue and prompts: part of a kept menu's key

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
            pos = Position(pos.lang, MAIN)
            main = self.menu(pos)
            assert isinstance(main, Menu)
            menu = main
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
            if isinstance(entry, Sound):
                gather.play(str(entry))
                continue
            key, _, lang = entry.partition("@")  # "key@en": this prompt in another language
            self.play(gather, key, lang if lang in self.catalog.languages else pos.lang)
        response.append(gather)
        response.redirect(self.urls.step(pos, noinput=True), method="POST")
        return response

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

    # --- the table -------------------------------------------------------------------------

    def menu(self, pos: Position) -> Step | None:
        """The menu or action at `pos`: its node's builder, given the parts of its name."""
        found = tree.resolve(pos.node)
        if found is None:
            return None
        node, parts = found
        assert node.build is not None, node
        return node.build(self, pos, **parts)
