"""Complaints and the District Ombudsman: a recorded message with a case reference, or a
call put through during the Ombudsman's hours. Nobody is left ringing or dropped silently:
every dial outcome and every empty recording leads somewhere the caller can act."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from twilio.twiml.voice_response import VoiceResponse

from ivr.catalog import Hours
from ivr.flow import Action, Menu, Outcome, Position
from ivr.offices import office_menu
from ivr.rating import save_recording

if TYPE_CHECKING:
    from ivr.flow import CallFlow

CAMBODIA = ZoneInfo("Asia/Phnom_Penh")
DIAL_TIMEOUT = 25  # seconds of ringing before "no answer"
DIAL_OUTCOMES = ("busy", "no-answer", "failed", "canceled")
AWAY_REASONS = ("closed", "unlisted", *DIAL_OUTCOMES)


def is_open(hours: Hours | None, holidays: frozenset, moment: datetime) -> bool:
    """Is an office open at `moment` (any time zone), in Cambodia's local time?"""
    if hours is None:
        return False
    local = moment.astimezone(CAMBODIA)
    return (local.weekday() in hours.days and local.date() not in holidays
            and hours.open <= local.time() < hours.close)


def menus(flow: CallFlow) -> dict[str, Callable[[Position, str], Menu | Action | None]]:
    return {
        "complaint": lambda pos, rest: complaint_menu(flow, pos, rest),
        "ombudsman": lambda pos, rest: ombudsman_menu(flow, pos, rest),
        "case": lambda pos, rest: case_menu(flow, pos, rest),
    }


def complaint_menu(flow: CallFlow, pos: Position, rest: str) -> Menu | Action | None:
    catalog = flow.catalog
    if rest == "":
        items = [(f"complaint.topic.{t.id}.choice", "complaint/office") for t in catalog.topics]
        menu = flow.paged(pos, "complaint.topics.intro", items, Position(pos.lang, "main"))
        if menu is not None:
            menu.choices = {k: v.to(v.node, topic=catalog.topics[int(k) - 1].id)
                            for k, v in menu.choices.items()}
        return menu
    if catalog.topic(pos.topic) is None:
        return None
    if rest.startswith("office"):
        return office_menu(flow, pos, rest)
    if catalog.office(pos.office) is None:
        return None
    return recording_steps(flow, pos, rest, "complaint", "complaint.notice",
                           catalog.max_recording_seconds)


def ombudsman_menu(flow: CallFlow, pos: Position, rest: str) -> Menu | Action | None:
    if rest.startswith("office"):
        return office_menu(flow, pos, rest)
    office = flow.catalog.office(pos.office)
    if office is None:
        return None
    if rest == "call":
        return Action(lambda params: call_ombudsman(flow, pos))
    if rest == "dialled":
        return Action(lambda params: dialled(flow, pos, params))
    if rest.startswith("away/"):
        reason = rest.removeprefix("away/")
        if reason not in AWAY_REASONS:
            return None
        return Menu([f"ombudsman.{reason}", "ombudsman.leave-message", "nav.hint"],
                    {"1": pos.to("ombudsman/notice")}, back=pos.to("ombudsman/office"))
    return recording_steps(flow, pos, rest, "ombudsman", "ombudsman.notice",
                           flow.catalog.max_recording_seconds)


def call_ombudsman(flow: CallFlow, pos: Position) -> Outcome:
    office = flow.catalog.office(pos.office)
    assert office is not None
    ombudsman = office.ombudsman
    if ombudsman.phone is None:
        return Outcome(flow.present(pos.to("ombudsman/away/unlisted")), "unlisted", pos.node)
    if not is_open(ombudsman.hours, flow.catalog.holidays, flow.now()):
        return Outcome(flow.present(pos.to("ombudsman/away/closed")), "closed", pos.node)
    response = VoiceResponse()
    flow.play(response, f"office.{office.id}.connecting", pos.lang)
    dial = response.dial(action=flow.urls.step(pos.to("ombudsman/dialled")), method="POST",
                         timeout=DIAL_TIMEOUT, caller_id=flow.caller_id or None)
    dial.number(ombudsman.phone)
    return Outcome(response, "dial", pos.node)


def dialled(flow: CallFlow, pos: Position, params: Mapping[str, str]) -> Outcome:
    """Twilio reports how the Dial ended: completed, busy, no-answer, failed or canceled."""
    status = params.get("DialCallStatus", "failed")
    if status == "completed":
        return Outcome(flow.goodbye(pos.lang), "dial-completed", pos.node)
    reason = status if status in DIAL_OUTCOMES else "failed"
    return Outcome(flow.present(pos.to(f"ombudsman/away/{reason}")), f"dial-{reason}",
                   pos.node)


def recording_steps(flow: CallFlow, pos: Position, rest: str, purpose: str, notice: str,
                    max_seconds: int) -> Menu | Action | None:
    """notice (then record) -> recorded (a case and its reference) | empty (try again)."""
    if rest == "notice":
        return Action(lambda params: record(flow, pos, purpose, notice, max_seconds))
    if rest == "recorded":
        return Action(lambda params: recorded(flow, pos, purpose, params))
    if rest == "empty":
        return Menu(["recording.empty", "recording.retry", "nav.hint"],
                    {"1": pos.to(f"{purpose}/notice")}, back=Position(pos.lang, "main"))
    return None


def record(flow: CallFlow, pos: Position, purpose: str, notice: str,
           max_seconds: int) -> Outcome:
    response = VoiceResponse()
    flow.play(response, notice, pos.lang)
    kind = "complaint" if purpose == "complaint" else "ombudsman-message"
    response.record(action=flow.urls.step(pos.to(f"{purpose}/recorded")), method="POST",
                    max_length=max_seconds, finish_on_key="#", play_beep=True, timeout=7,
                    recording_status_callback=flow.urls.recording_callback(pos, kind),
                    recording_status_callback_method="POST")
    # Twilio does not call the action for an empty recording: it goes on to this. (Somleng
    # calls the action, with RecordingDuration 0: `recorded` leads to the same place.)
    response.redirect(flow.urls.step(pos.to(f"{purpose}/empty")), method="POST")
    return Outcome(response, "record", pos.node)


def recorded(flow: CallFlow, pos: Position, purpose: str, params: Mapping[str, str]) -> Outcome:
    kind = "complaint" if purpose == "complaint" else "ombudsman-message"
    reference = save_recording(flow, pos, kind, params)
    if reference is None:
        return Outcome(flow.present(pos.to(f"{purpose}/empty")), "recorded-empty", pos.node)
    # SPOOLED (""): kept safely, stored when the database is back; no number to read yet
    return Outcome(flow.present(Position(pos.lang, f"case/{reference or 'kept'}")), "case",
                   pos.node)


def case_menu(flow: CallFlow, pos: Position, reference: str) -> Menu | None:
    """The case reference, digit by digit; 1 to hear it again."""
    if reference == "kept":
        return Menu(["case.thanks", "nav.main"], back=Position(pos.lang, "main"))
    if not (reference.isdigit() and len(reference) == 6):
        return None
    # the message is kept: "back" from here is the main menu, not the recording again
    return Menu(["case.thanks", *flow.reference_prompts(reference), "reference.again",
                 "nav.main"], {"1": pos.to(pos.node)}, back=Position(pos.lang, "main"))


