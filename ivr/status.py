"""Main menu 5: a caller keys the reference of a message or rating they left, and hears
what became of it: its kind, the office, the day it was received, its status and the
office's reply; then 1 hears it again, 2 leaves a follow-up message on the same case, #
goes to the main menu.

A reference must not be guessable by dialling: every reference keyed is counted in the
database (ivr.store, `case_lookups`), and after LOOKUP_WRONG_PER_CALL wrong ones in a call
or LOOKUP_WRONG_PER_DAY in a day from one number the lookup is refused for the day. A
wrong reference always gets the same sentence and the same next step, whether or not it
is some other kind of reference. Nothing about a case is said in a call that has not keyed
its reference: the case's nodes check that this call's lookup found it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from ivr import tree
from ivr.cases import CAMBODIA, Recording
from ivr.prompts import CASE_YEARS
from ivr.steps import Action, Context, Menu, Outcome, Position, Reask, Sound
from ivr.store import CaseSummary, recording_duration

REFERENCE_LENGTH = 6
CODE_TIMEOUT = 10  # seconds to key six digits
MORE_KEYS_TIMEOUT = 6  # the rest of a reference the carrier cut short (Somleng: 2 s)
HASH_TIMEOUT = 3  # after six digits keyed slowly: the '#' that ends them
FOLLOWUP_KIND = "followup"  # the recording callback's kind for a follow-up message


def _main(pos: Position) -> Position:
    return Position(pos.lang, tree.MAIN.path())


def _sorry(prompt: str, pos: Position) -> Menu:
    """The lookup is not offered (a limit reached, or the database unreadable)."""
    return Menu([prompt, "nav.main"], back=_main(pos), cacheable=False)


@tree.STATUS.builder
def ask(flow: Context, pos: Position) -> Menu | None:
    """Key the reference, then #. Keys cut short by the carrier wait for the rest."""
    store = flow.storage()
    if pos.keyed and not (pos.keyed.isdigit() and len(pos.keyed) <= REFERENCE_LENGTH):
        return None  # an edited URL: not where any caller can be
    state = store.lookup_state(flow.call.sid, flow.call.caller)
    if state != "open":
        return _sorry("status.refused" if state == "refused" else "status.unavailable", pos)

    def lookup(keyed: str) -> Position | Reask:
        found = store.lookup_case(flow.call.sid, flow.call.caller, keyed)
        if found == "found":
            return pos.to(tree.STATUS_CASE.path(), case=keyed)
        if found == "wrong":
            return Reask(("status.unknown",))
        if found == "refused":  # the same for every reference keyed: it was not looked up
            return Position(pos.lang, tree.STATUS.path())
        return Reask(("status.unavailable",))

    def by_keys(digits: str) -> Position | Reask | None:
        keyed = pos.keyed + digits.strip()
        if not keyed:
            return None
        if len(pos.keyed) == REFERENCE_LENGTH:  # waiting for its '#': more keys are a mistake
            return lookup(keyed)
        if keyed.isdigit() and len(keyed) < REFERENCE_LENGTH:
            return replace(pos, keyed=keyed)  # cut short (Somleng's 2 s): wait for the rest
        if keyed.isdigit() and pos.keyed and len(keyed) == REFERENCE_LENGTH:
            # Keyed slowly, the entry was cut short: the caller's '#' is still to come, and
            # must not reach the next menu (where it means "main menu"). Wait for it briefly.
            # (Longer entries are looked up now: this menu refuses a longer `keyed`.)
            return replace(pos, keyed=keyed)
        return lookup(keyed)

    if not pos.keyed:
        return Menu(["status.ask"], back=_main(pos), num_digits=None, on_digits=by_keys,
                    timeout=CODE_TIMEOUT, cacheable=False)
    waiting = HASH_TIMEOUT if len(pos.keyed) == REFERENCE_LENGTH else MORE_KEYS_TIMEOUT
    return Menu([], back=_main(pos), num_digits=None, on_digits=by_keys,
                on_silence=lambda: lookup(pos.keyed), timeout=waiting, cacheable=False)


def _found(flow: Context, pos: Position) -> CaseSummary | None:
    """The case this call keyed the reference of; None for anything else."""
    if not pos.case:
        return None
    store = flow.storage()
    if not store.looked_up(flow.call.sid, pos.case):
        return None
    return store.case_summary(pos.case)


def received_on(stamp: str) -> list[str]:
    """'was received on' and the day, month and year in Cambodia, as prompt keys."""
    try:
        day = datetime.fromisoformat(stamp).astimezone(CAMBODIA)
    except ValueError:
        return []
    if day.year not in CASE_YEARS:
        return []
    return ["status.received", f"date.day.{day.day}", f"date.month.{day.month}",
            f"date.year.{day.year}"]


def what_became(flow: Context, found: CaseSummary) -> list[str]:
    """Its kind, the office, when it was received, its status, the reply (or none yet)."""
    said: list[str] = [f"status.kind.{found.kind}"]
    if flow.catalog.office(found.office) is not None:
        said.append(f"office.{found.office}.about")
    said += received_on(found.created_at)
    said.append(f"status.{found.status}" if found.status else "status.rating")
    reply = found.reply
    if reply is None:
        said.append("status.no-reply")
    elif reply.kind == "standard" and reply.prompt_key:
        said += ["status.reply", reply.prompt_key]
    elif reply.file:
        from ivr.replies import audio_url  # Flask and ffmpeg: only when a reply is played

        said += ["status.reply", Sound(audio_url(reply.id))]
    return said


@tree.STATUS_CASE.builder
def case(flow: Context, pos: Position) -> Menu | None:
    found = _found(flow, pos)
    if found is None:
        return None
    said = what_became(flow, found)
    again = replace(pos, attempt=0)
    if found.status is None:  # a rating without a comment: nothing to follow up
        return Menu([*said, "status.options.rating"], {"1": again}, back=_main(pos),
                    cacheable=False)
    return Menu([*said, "status.options"],
                {"1": again, "2": pos.to(tree.STATUS_FOLLOWUP.path())}, back=_main(pos),
                cacheable=False)


# --- a follow-up message: recorded like a complaint, kept with the case ---------------------


@dataclass(frozen=True)
class FollowUp(Recording):
    """Recorded as a complaint is; kept on the case (case_followups), not as a new case."""

    def saved(self, flow: Context, pos: Position, params: Mapping[str, str]) -> Outcome:
        reference = flow.storage().save_followup(
            sid=flow.call.sid, caller=flow.call.caller, reference=pos.case, lang=pos.lang,
            recording_sid=params.get("RecordingSid", ""),
            recording_url=params.get("RecordingUrl", ""),
            duration_s=recording_duration(params.get("RecordingDuration")))
        if reference is None:
            return Outcome(flow.present(pos.to(self.empty.path())), "recorded-empty",
                           pos.node)
        return Outcome(flow.present(pos.to(tree.STATUS_FOLLOWUP_THANKS.path())), "followup",
                       pos.node)


FOLLOWUP = FollowUp(tree.STATUS_FOLLOWUP, tree.STATUS_FOLLOWUP_RECORDED,
                    tree.STATUS_FOLLOWUP_EMPTY, FOLLOWUP_KIND, "followup.notice")


def _may_follow_up(flow: Context, pos: Position) -> bool:
    found = _found(flow, pos)
    return found is not None and found.status is not None


@tree.STATUS_FOLLOWUP.builder
def followup(flow: Context, pos: Position) -> Action | None:
    if not _may_follow_up(flow, pos):
        return None
    return Action(lambda params: FOLLOWUP.record(flow, pos))


@tree.STATUS_FOLLOWUP_RECORDED.builder
def followup_recorded(flow: Context, pos: Position) -> Action | None:
    if not _may_follow_up(flow, pos):
        return None
    return Action(lambda params: FOLLOWUP.saved(flow, pos, params))


@tree.STATUS_FOLLOWUP_EMPTY.builder
def followup_empty(flow: Context, pos: Position) -> Menu | None:
    if not _may_follow_up(flow, pos):
        return None
    menu = FOLLOWUP.try_again(pos)
    menu.cacheable = False
    return menu


@tree.STATUS_FOLLOWUP_THANKS.builder
def followup_thanks(flow: Context, pos: Position) -> Menu | None:
    if not _may_follow_up(flow, pos):
        return None
    return Menu(["followup.thanks", "nav.main"], back=_main(pos), cacheable=False)
