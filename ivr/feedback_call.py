"""A post-visit feedback call, as the person called hears it: who calls and why, then
1 the catalogue's survey for the office and service they visited (ivr.rating), 2 not now,
9 never call this number again (kept for good, as a keyed hash: ivr.outbound)."""

from __future__ import annotations

from collections.abc import Mapping

from ivr import tree
from ivr.outbound import mark_call, record_opt_out
from ivr.steps import Action, Context, Menu, Outcome, Position

NEVER_AGAIN = "9"


def _known(flow: Context, pos: Position) -> bool:
    return (flow.catalog.office(pos.office) is not None
            and flow.catalog.service(pos.service) is not None)


@tree.SURVEY_CALL.builder
def offer(flow: Context, pos: Position) -> Menu | None:
    if not _known(flow, pos):
        return None
    return Menu(["outbound.survey.intro", "outbound.survey.ask"],
                {"1": pos.to(tree.RATE_QUESTION.path(number="1")),
                 "2": pos.to(tree.SURVEY_REFUSED.path()),
                 NEVER_AGAIN: pos.to(tree.SURVEY_OPT_OUT.path())})


@tree.SURVEY_REFUSED.builder
def refused(flow: Context, pos: Position) -> Action:
    def run(params: Mapping[str, str]) -> Outcome:
        mark_call(flow.storage(), flow.call.sid, "refused")
        return Outcome(flow.goodbye(pos.lang, ["outbound.refused"]), "refused", pos.node)

    return Action(run)


@tree.SURVEY_OPT_OUT.builder
def opt_out(flow: Context, pos: Position) -> Action:
    def run(params: Mapping[str, str]) -> Outcome:
        record_opt_out(flow.storage(), flow.call.caller, flow.call.sid)
        return Outcome(flow.goodbye(pos.lang, ["outbound.opted-out"]), "opted-out", pos.node)

    return Action(run)
