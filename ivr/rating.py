"""Rating a service by keypad: office, service, the catalogue's survey, an optional comment,
and an anonymous reference. Each answer is stored the moment it is given."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from twilio.twiml.voice_response import VoiceResponse

from ivr.flow import Action, Menu, Outcome, Position
from ivr.offices import office_menu
from ivr.store import recording_duration

if TYPE_CHECKING:
    from ivr.flow import CallFlow

COMMENT_SECONDS = 60
SKIP = "9"


def menus(flow: CallFlow) -> dict[str, Callable[[Position, str], Menu | Action | None]]:
    return {"rate": lambda pos, rest: rate_menu(flow, pos, rest)}


def rate_menu(flow: CallFlow, pos: Position, rest: str) -> Menu | Action | None:
    catalog = flow.catalog
    if rest.startswith("office"):
        return office_menu(flow, pos, rest)
    if catalog.office(pos.office) is None:
        return None
    if rest == "categories":
        items = [(f"category.{c.id}.choice", f"rate/category/{c.id}") for c in catalog.categories]
        return flow.paged(pos, "rate.service.ask", items, pos.to("rate/office", office=""))
    if rest.startswith("category/"):
        category = catalog.category(rest.removeprefix("category/"))
        if category is None:
            return None
        menu = flow.paged(pos, f"category.{category.id}.intro",
                          [(f"service.{s.id}.choice", s.id) for s in category.services],
                          pos.to("rate/categories"))
        if menu is not None:
            menu.choices = {k: pos.to("rate/q/1", service=v.node) for k, v in menu.choices.items()}
        return menu
    if catalog.service(pos.service) is None:
        return None
    if rest.startswith("q/"):
        return question_menu(flow, pos, rest.removeprefix("q/"))
    if rest == "comment":
        last = pos.to(f"rate/q/{len(catalog.survey)}")
        # "to finish, press any other key": silence finishes too (thanks and the reference)
        return Menu(["rate.comment.offer"], {"1": pos.to("rate/record")}, back=last,
                    on_digits=lambda digits: pos.to("rate/thanks"),
                    on_silence=lambda: pos.to("rate/thanks"))
    if rest == "record":
        return Action(lambda params: record(flow, pos))
    if rest == "recorded":
        return Action(lambda params: recorded(flow, pos, params))
    if rest == "thanks":
        reference = flow.store.feedback_reference(flow.call.sid, pos.office, pos.service) \
            if flow.store is not None else None
        prompts = ["rate.thanks"]
        if reference:
            prompts += [*flow.reference_prompts(reference), "reference.again"]
        # the answers are kept: "back" from here is the main menu, not the survey again
        return Menu([*prompts, "nav.main"], {"1": pos.to("rate/thanks")},
                    back=Position(pos.lang, "main"), cacheable=False)
    return None


def question_menu(flow: CallFlow, pos: Position, number: str) -> Menu | None:
    survey = flow.catalog.survey
    if not number.isdigit() or not 1 <= int(number) <= len(survey):
        return None
    index = int(number) - 1
    question = survey[index]
    prompts = []
    if question.remind:
        prompts.append(f"service.{pos.service}.{question.remind}.reminder")
    first_scale = next((q for q in survey if q.type == "scale"), None)
    if question is first_scale:
        prompts.append("survey.scale.explain")
    prompts.append(f"survey.{question.id}")
    after = pos.to(f"rate/q/{index + 2}" if index + 1 < len(survey) else "rate/comment")
    back = pos.to(f"rate/q/{index}") if index else pos.to("rate/office", office="")

    def answer(digits: str) -> Position | None:
        value = question.value_of(digits)
        if value is None and question.optional and digits == SKIP:
            value = "skipped"
        if value is None:
            return None
        flow.store.save_answer(flow.call.sid, flow.call.caller, pos.office, pos.service,
                               pos.lang, question.id, value)
        return after

    return Menu(prompts, back=back, on_digits=answer, invalid_prompt="survey.invalid")


def record(flow: CallFlow, pos: Position) -> Outcome:
    """A short comment after the tone; an empty recording goes straight to the thanks."""
    response = VoiceResponse()
    flow.play(response, "rate.record.instructions", pos.lang)
    response.record(action=flow.urls.step(pos.to("rate/recorded")), method="POST",
                    max_length=COMMENT_SECONDS, finish_on_key="#", play_beep=True, timeout=5,
                    recording_status_callback=flow.urls.recording_callback(pos, "comment"),
                    recording_status_callback_method="POST")
    response.redirect(flow.urls.step(pos.to("rate/thanks")), method="POST")
    return Outcome(response, "record", pos.node)


def recorded(flow: CallFlow, pos: Position, params: Mapping[str, str]) -> Outcome:
    save_recording(flow, pos, "comment", params)
    return Outcome(flow.present(pos.to("rate/thanks")), "recorded", pos.node)


def save_recording(flow: CallFlow, pos: Position, kind: str,
                   params: Mapping[str, str]) -> str | None:
    """Store what the carrier says was recorded (Somleng sends no RecordingSid to the
    action, only RecordingUrl and RecordingDuration); None when it was empty."""
    return flow.store.save_recording(
        sid=flow.call.sid, caller=flow.call.caller, kind=kind, lang=pos.lang,
        office=pos.office, service=pos.service, topic=pos.topic,
        recording_sid=params.get("RecordingSid", ""),
        recording_url=params.get("RecordingUrl", ""),
        duration_s=recording_duration(params.get("RecordingDuration")))
