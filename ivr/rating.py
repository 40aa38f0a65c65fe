"""Rating a service by keypad: office, service, the catalogue's survey, an optional comment,
and an anonymous reference. Each answer is stored the moment it is given."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import VoiceResponse

from ivr import tree
from ivr.catalog import Catalog
from ivr.offices import Chooser, choose
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


OFFICE = choose(Chooser(tree.RATE_OFFICE, tree.RATE_OFFICE_CODE, tree.RATE_PROVINCES,
                        tree.RATE_PROVINCE, after=_after_office, back=_before_office))


def _known(catalog: Catalog, pos: Position, service: bool = True) -> bool:
    """The office (and the service) in the position are in the catalogue."""
    return catalog.office(pos.office) is not None and (
        not service or catalog.service(pos.service) is not None)


@tree.RATE_CATEGORIES.builder
def categories(flow: Context, pos: Position) -> Menu | None:
    catalog = flow.catalog
    if not _known(catalog, pos, service=False):
        return None
    items = [(f"category.{c.id}.choice", tree.RATE_CATEGORY.path(category=c.id))
             for c in catalog.categories]
    return paged(pos, "rate.service.ask", items, pos.to(tree.RATE_OFFICE.path(), office=""))


@tree.RATE_CATEGORY.builder
def category(flow: Context, pos: Position, category: str) -> Menu | None:
    catalog = flow.catalog
    if not _known(catalog, pos, service=False):
        return None
    found = catalog.category(category)
    if found is None:
        return None
    menu = paged(pos, f"category.{found.id}.intro",
                 [(f"service.{s.id}.choice", s.id) for s in found.services],
                 pos.to(tree.RATE_CATEGORIES.path()))
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
