"""Complaints and the District Ombudsman: a recorded message with a case reference, or a
call put through during the Ombudsman's hours. Nobody is left ringing or dropped silently:
every dial outcome and every empty recording leads somewhere the caller can act."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from twilio.twiml.voice_response import VoiceResponse

from ivr import tree
from ivr.catalog import WEEKDAYS, Catalog, Hours
from ivr.offices import Chooser, choose
from ivr.prompts import OPENS_WHEN, opening_key
from ivr.steps import Action, Context, Menu, Outcome, Position, paged, reference_prompts

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


def next_opening(hours: Hours | None, holidays: frozenset, moment: datetime
                 ) -> tuple[str, time] | None:
    """When a closed office opens again, in Cambodia's time: (today, tomorrow or the
    weekday, the time), within a week; None when the hours are not known or it is later."""
    if hours is None or not hours.days:
        return None
    local = moment.astimezone(CAMBODIA)
    for ahead in range(7):
        day = local.date() + timedelta(days=ahead)
        if day.weekday() not in hours.days or day in holidays:
            continue
        if ahead == 0 and local.time() >= hours.open:
            continue  # open now, or closed for the rest of today
        when = OPENS_WHEN[ahead] if ahead < 2 else WEEKDAYS[day.weekday()]
        return when, hours.open
    return None


def _main(pos: Position) -> Position:
    return Position(pos.lang, tree.MAIN.path())


# --- complaints ------------------------------------------------------------------------------


def _topic_known(catalog: Catalog, pos: Position) -> bool:
    return catalog.topic(pos.topic) is not None


def _complaint_ready(catalog: Catalog, pos: Position) -> bool:
    return _topic_known(catalog, pos) and catalog.office(pos.office) is not None


@tree.COMPLAINT.builder
def topics(flow: Context, pos: Position) -> Menu | None:
    catalog = flow.catalog
    items = [(f"complaint.topic.{t.id}.choice", tree.COMPLAINT_OFFICE.path())
             for t in catalog.topics]
    menu = paged(pos, "complaint.topics.intro", items, _main(pos))
    if menu is not None:
        menu.choices = {k: v.to(v.node, topic=catalog.topics[int(k) - 1].id)
                        for k, v in menu.choices.items()}
    return menu


COMPLAINT_OFFICE = choose(Chooser(
    tree.COMPLAINT_OFFICE, tree.COMPLAINT_OFFICE_CODE, tree.COMPLAINT_PROVINCES,
    tree.COMPLAINT_PROVINCE, tree.COMPLAINT_OFFICE_CHOSEN,
    after=lambda pos, office: pos.to(tree.COMPLAINT_NOTICE.path(), office=office),
    back=lambda pos: pos.to(tree.COMPLAINT.path()), ready=_topic_known))


# --- the Ombudsman ---------------------------------------------------------------------------


def _office_known(catalog: Catalog, pos: Position) -> bool:
    return catalog.office(pos.office) is not None


OMBUDSMAN_OFFICE = choose(Chooser(
    tree.OMBUDSMAN_OFFICE, tree.OMBUDSMAN_OFFICE_CODE, tree.OMBUDSMAN_PROVINCES,
    tree.OMBUDSMAN_PROVINCE, tree.OMBUDSMAN_OFFICE_CHOSEN,
    after=lambda pos, office: pos.to(tree.OMBUDSMAN_CALL.path(), office=office), back=_main))


@tree.OMBUDSMAN_CALL.builder
def call(flow: Context, pos: Position) -> Action | None:
    if not _office_known(flow.catalog, pos):
        return None
    return Action(lambda params: call_ombudsman(flow, pos))


@tree.OMBUDSMAN_DIALLED.builder
def dialled(flow: Context, pos: Position) -> Action | None:
    if not _office_known(flow.catalog, pos):
        return None
    return Action(lambda params: after_dial(flow, pos, params))


@tree.OMBUDSMAN_AWAY.builder
def away(flow: Context, pos: Position, reason: str) -> Menu | None:
    """Closed, no number, or the dial did not connect: 1 leaves a message instead."""
    office = flow.catalog.office(pos.office)
    if office is None or reason not in AWAY_REASONS:
        return None
    said = [f"ombudsman.{reason}"]
    opens = None
    if reason == "closed":  # and when it opens again (so the menu depends on the time)
        opens = next_opening(office.ombudsman.hours, flow.catalog.holidays, flow.now())
        if opens is not None and flow.book.has(opening_key(*opens), pos.lang):
            said.append(opening_key(*opens))
    return Menu([*said, "ombudsman.leave-message", "nav.hint"],
                {"1": pos.to(tree.OMBUDSMAN_NOTICE.path())},
                back=pos.to(tree.OMBUDSMAN_OFFICE.path()), cacheable=reason != "closed")


def call_ombudsman(flow: Context, pos: Position) -> Outcome:
    office = flow.catalog.office(pos.office)
    assert office is not None
    ombudsman = office.ombudsman
    if ombudsman.phone is None:
        return Outcome(flow.present(pos.to(tree.OMBUDSMAN_AWAY.path(reason="unlisted"))),
                       "unlisted", pos.node)
    if not is_open(ombudsman.hours, flow.catalog.holidays, flow.now()):
        return Outcome(flow.present(pos.to(tree.OMBUDSMAN_AWAY.path(reason="closed"))),
                       "closed", pos.node)
    response = VoiceResponse()
    flow.play(response, f"office.{office.id}.connecting", pos.lang)
    dial = response.dial(action=flow.urls.step(pos.to(tree.OMBUDSMAN_DIALLED.path())),
                         method="POST", timeout=DIAL_TIMEOUT, caller_id=flow.caller_id or None)
    dial.number(ombudsman.phone)
    return Outcome(response, "dial", pos.node)


def after_dial(flow: Context, pos: Position, params: Mapping[str, str]) -> Outcome:
    """Twilio reports how the Dial ended: completed, busy, no-answer, failed or canceled."""
    status = params.get("DialCallStatus", "failed")
    if status == "completed":
        return Outcome(flow.goodbye(pos.lang), "dial-completed", pos.node)
    reason = status if status in DIAL_OUTCOMES else "failed"
    return Outcome(flow.present(pos.to(tree.OMBUDSMAN_AWAY.path(reason=reason))),
                   f"dial-{reason}", pos.node)


# --- recording a message: notice (then record) -> recorded (a case) | empty (try again) ------


@dataclass(frozen=True)
class Recording:
    """The three nodes of leaving a recorded message, and what the message is."""

    notice: tree.Node
    recorded: tree.Node
    empty: tree.Node
    kind: str  # what the store calls it
    prompt: str  # said before the tone

    def record(self, flow: Context, pos: Position) -> Outcome:
        response = VoiceResponse()
        flow.play(response, self.prompt, pos.lang)
        response.record(action=flow.urls.step(pos.to(self.recorded.path())), method="POST",
                        max_length=flow.catalog.max_recording_seconds, finish_on_key="#",
                        play_beep=True, timeout=7,
                        recording_status_callback=flow.urls.recording_callback(pos, self.kind),
                        recording_status_callback_method="POST")
        # Twilio does not call the action for an empty recording: it goes on to this.
        # (Somleng calls the action, with RecordingDuration 0: `saved` leads to the same place.)
        response.redirect(flow.urls.step(pos.to(self.empty.path())), method="POST")
        return Outcome(response, "record", pos.node)

    def saved(self, flow: Context, pos: Position, params: Mapping[str, str]) -> Outcome:
        reference = flow.save_recording(pos, self.kind, params)
        if reference is None:
            return Outcome(flow.present(pos.to(self.empty.path())), "recorded-empty",
                           pos.node)
        # SPOOLED (""): kept safely, stored when the database is back; no number to read yet
        case = Position(pos.lang, tree.CASE.path(reference=reference or "kept"))
        return Outcome(flow.present(case), "case", pos.node)

    def try_again(self, pos: Position) -> Menu:
        return Menu(["recording.empty", "recording.retry", "nav.hint"],
                    {"1": pos.to(self.notice.path())}, back=_main(pos))


COMPLAINT_MESSAGE = Recording(tree.COMPLAINT_NOTICE, tree.COMPLAINT_RECORDED,
                              tree.COMPLAINT_EMPTY, "complaint", "complaint.notice")
OMBUDSMAN_MESSAGE = Recording(tree.OMBUDSMAN_NOTICE, tree.OMBUDSMAN_RECORDED,
                              tree.OMBUDSMAN_EMPTY, "ombudsman-message", "ombudsman.notice")


@tree.COMPLAINT_NOTICE.builder
def complaint_notice(flow: Context, pos: Position) -> Action | None:
    if not _complaint_ready(flow.catalog, pos):
        return None
    return Action(lambda params: COMPLAINT_MESSAGE.record(flow, pos))


@tree.COMPLAINT_RECORDED.builder
def complaint_recorded(flow: Context, pos: Position) -> Action | None:
    if not _complaint_ready(flow.catalog, pos):
        return None
    return Action(lambda params: COMPLAINT_MESSAGE.saved(flow, pos, params))


@tree.COMPLAINT_EMPTY.builder
def complaint_empty(flow: Context, pos: Position) -> Menu | None:
    if not _complaint_ready(flow.catalog, pos):
        return None
    return COMPLAINT_MESSAGE.try_again(pos)


@tree.OMBUDSMAN_NOTICE.builder
def ombudsman_notice(flow: Context, pos: Position) -> Action | None:
    if not _office_known(flow.catalog, pos):
        return None
    return Action(lambda params: OMBUDSMAN_MESSAGE.record(flow, pos))


@tree.OMBUDSMAN_RECORDED.builder
def ombudsman_recorded(flow: Context, pos: Position) -> Action | None:
    if not _office_known(flow.catalog, pos):
        return None
    return Action(lambda params: OMBUDSMAN_MESSAGE.saved(flow, pos, params))


@tree.OMBUDSMAN_EMPTY.builder
def ombudsman_empty(flow: Context, pos: Position) -> Menu | None:
    if not _office_known(flow.catalog, pos):
        return None
    return OMBUDSMAN_MESSAGE.try_again(pos)


# --- the case reference ----------------------------------------------------------------------


@tree.CASE.builder
def case(flow: Context, pos: Position, reference: str) -> Menu | None:
    """The case reference, digit by digit; 1 to hear it again."""
    if reference == "kept":
        return Menu(["case.thanks", "nav.main"], back=_main(pos))
    if not (reference.isdigit() and len(reference) == 6):
        return None
    # the message is kept: "back" from here is the main menu, not the recording again
    return Menu(["case.thanks", *reference_prompts(reference), "reference.again",
                 "nav.main"], {"1": pos.to(pos.node)}, back=_main(pos))
