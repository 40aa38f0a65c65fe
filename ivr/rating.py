"""Rating a service by keypad: office, service, the catalogue's survey, an optional comment,
and an anonymous reference. Each answer is stored the moment it is given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from twilio.twiml.voice_response import VoiceResponse

from ivr import tree
from ivr.catalog import Catalog, Office
from ivr.offices import Chooser, choice_keys, choose
from ivr.prompts import PAGE_SIZE
from ivr.steps import Action, Context, Menu, Outcome, Position, paged, reference_prompts

COMMENT_SECONDS = 60
SKIP = "9"


def _after_office(pos: Position, office_id: str) -> Position:
    """The service is known when the caller came from its facts: straight to the survey."""
    if pos.service:
        return pos.to(tree.RATE_QUESTION.path(number="1"), office=office_id)
    return pos.to(tree.RATE_CATEGORIES.path(), office=office_id)


def _before_office(pos: Position) -> Position:
    if pos.service:
        return Position(pos.lang, tree.SERVICE.path(service=pos.service))
    return Position(pos.lang, tree.MAIN.path())


def _where_given(catalog: Catalog, pos: Position) -> Sequence[Office]:
    """A service chosen first (from its facts) is rated where it is given: only the offices
    that give it are offered (a provincial one: the provincial units)."""
    if pos.service:
        return catalog.offices_offering(pos.service)
    return catalog.offices


OFFICE = choose(Chooser(tree.RATE_OFFICE, tree.RATE_OFFICE_CODE, tree.RATE_PROVINCES,
                        tree.RATE_PROVINCE, tree.RATE_OFFICE_CHOSEN, after=_after_office,
                        back=_before_office, choosable=_where_given))


def _known(catalog: Catalog, pos: Position, service: bool = True) -> bool:
    """The office (and the service) in the position are in the catalogue, and the office
    gives the service: nothing is rated where it is not given."""
    if catalog.office(pos.office) is None:
        return False
    return not service or catalog.offers(pos.office, pos.service)


@tree.RATE_CATEGORIES.builder
def categories(flow: Context, pos: Position) -> Menu | None:
    catalog = flow.catalog
    if not _known(catalog, pos, service=False):
        return None
    given = catalog.categories_at(pos.office)  # only what this office gives
    keys = choice_keys("category", [c.id for c in given], [c.id for c in catalog.categories])
    items = [(key, tree.RATE_CATEGORY.path(category=c.id))
             for key, c in zip(keys, given, strict=True)]
    return paged(pos, "rate.service.ask", items, pos.to(tree.RATE_OFFICE.path(), office=""))


@tree.RATE_CATEGORY.builder
def category(flow: Context, pos: Position, category: str) -> Menu | None:
    catalog = flow.catalog
    if not _known(catalog, pos, service=False):
        return None
    full = catalog.category(category)
    found = next((c for c in catalog.categories_at(pos.office) if c.id == category), None)
    if found is None or full is None:
        return None  # no such category, or none of its services is given at this office
    keys = choice_keys("service", [s.id for s in found.services], [s.id for s in full.services])
    given = list(zip(keys, [s.id for s in found.services], strict=True))
    index = next(i for i, c in enumerate(catalog.categories_at(pos.office)) if c.id == category)
    up = replace(pos.to(tree.RATE_CATEGORIES.path()), page=index // PAGE_SIZE + 1)
    menu = paged(pos, f"category.{found.id}.intro", given, up)
    if menu is not None:
        first = tree.RATE_QUESTION.path(number="1")
        menu.choices = {k: pos.to(first, service=v.node) for k, v in menu.choices.items()}
    return menu


@tree.RATE_QUESTION.builder
def question(flow: Context, pos: Position, number: str) -> Menu | None:
    """One survey question; its answer is stored at once, then the next question."""
    survey = flow.catalog.survey
    if not _known(flow.catalog, pos):
        return None
    if not number.isdigit() or not 1 <= int(number) <= len(survey):
        return None
    index = int(number) - 1
    asked = survey[index]
    prompts = []
    if asked.remind:
        prompts.append(f"service.{pos.service}.{asked.remind}.reminder")
    explain = asked.kind.explain  # said once, before the first question of its type
    if explain and asked is next(q for q in survey if q.type == asked.type):
        prompts.append(explain)
    prompts.append(f"survey.{asked.id}")
    after = pos.to(tree.RATE_QUESTION.path(number=str(index + 2)) if index + 1 < len(survey)
                   else tree.RATE_COMMENT.path())
    back = (pos.to(tree.RATE_QUESTION.path(number=str(index))) if index
            else pos.to(tree.RATE_OFFICE.path(), office=""))

    def answer(digits: str) -> Position | None:
        value = asked.value_of(digits)
        if value is None and asked.optional and digits == SKIP:
            value = "skipped"
        if value is None:
            return None
        flow.storage().save_answer(flow.call.sid, flow.call.caller, pos.office, pos.service,
                                   pos.lang, asked.id, value)
        return after

    return Menu(prompts, back=back, on_digits=answer, invalid_prompt="survey.invalid")


@tree.RATE_COMMENT.builder
def comment(flow: Context, pos: Position) -> Menu | None:
    if not _known(flow.catalog, pos):
        return None
    last = pos.to(tree.RATE_QUESTION.path(number=str(len(flow.catalog.survey))))
    thanks = pos.to(tree.RATE_THANKS.path())
    # "to finish, press any other key": silence finishes too (thanks and the reference)
    return Menu(["rate.comment.offer"], {"1": pos.to(tree.RATE_RECORD.path())}, back=last,
                on_digits=lambda digits: thanks, on_silence=lambda: thanks)


@tree.RATE_RECORD.builder
def record(flow: Context, pos: Position) -> Action | None:
    """A short comment after the tone; an empty recording goes straight to the thanks."""
    if not _known(flow.catalog, pos):
        return None

    def run(params: Mapping[str, str]) -> Outcome:
        response = VoiceResponse()
        flow.play(response, "rate.record.instructions", pos.lang)
        response.record(action=flow.urls.step(pos.to(tree.RATE_RECORDED.path())),
                        method="POST", max_length=COMMENT_SECONDS, finish_on_key="#",
                        play_beep=True, timeout=5,
                        recording_status_callback=flow.urls.recording_callback(pos, "comment"),
                        recording_status_callback_method="POST")
        response.redirect(flow.urls.step(pos.to(tree.RATE_THANKS.path())), method="POST")
        return Outcome(response, "record", pos.node)

    return Action(run)


@tree.RATE_RECORDED.builder
def recorded(flow: Context, pos: Position) -> Action | None:
    if not _known(flow.catalog, pos):
        return None

    def run(params: Mapping[str, str]) -> Outcome:
        flow.save_recording(pos, "comment", params)
        return Outcome(flow.present(pos.to(tree.RATE_THANKS.path())), "recorded", pos.node)

    return Action(run)


@tree.RATE_THANKS.builder
def thanks(flow: Context, pos: Position) -> Menu | None:
    """The reference of the answers given; 1 hears it again."""
    if not _known(flow.catalog, pos):
        return None
    reference = (flow.store.feedback_reference(flow.call.sid, pos.office, pos.service)
                 if flow.store is not None else None)
    prompts = ["rate.thanks"]
    if reference:
        prompts += [*reference_prompts(reference), "reference.again"]
    # the answers are kept: "back" from here is the main menu, not the survey again
    return Menu([*prompts, "nav.main"], {"1": pos.to(tree.RATE_THANKS.path())},
                back=Position(pos.lang, tree.MAIN.path()), cacheable=False)
