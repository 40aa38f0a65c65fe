"""Webhooks of the calls the line places: the missed-call ("beep me") number, and the status
callback of every outbound call. Signed like every webhook (ivr.voice.check_signature)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import VoiceResponse

from ivr.line import Line
from ivr.outbound import Outbound, Refusal
from ivr.voice import NOTHING_TO_SAY, _small_int, caller_number, check_signature, twiml

log = logging.getLogger(__name__)
bp = Blueprint("outbound", __name__)
bp.before_request(check_signature)
BUSY = VoiceResponse()
BUSY.reject(reason="busy")
REJECT_BUSY = str(BUSY)  # not answered: the caller pays nothing and hears busy


def outbound() -> Outbound:
    """This app's outbound calls, with the task queue as its trigger (made once)."""
    app = current_app
    found = app.extensions.get("ivr.outbound")
    if found is None:
        from ivr.worker import Queue

        line: Line = app.extensions["ivr"]
        queue = Queue(line.settings, store=line.store)
        found = Outbound(line.settings, line.store, enqueue=queue.enqueue)
        app.extensions["ivr.outbound"] = found
    return found


@bp.route("/voice/callback", methods=["POST", "GET"])
def missed_call() -> Response:
    """The callback number: never answered (<Reject reason="busy"/>), a call back queued."""
    try:
        result = outbound().request_callback(request.values.get("From", ""))
        if isinstance(result, Refusal):
            log.info("missed call %s: no callback (%s)",
                     request.values.get("CallSid", "")[:40], result.reason)
    except Exception:
        log.exception("missed call: the callback could not be scheduled")
    return twiml(REJECT_BUSY)


@bp.route("/voice/outbound/status", methods=["POST", "GET"])
def status() -> Response:
    """The carrier's status callback of a call the line placed: closes the call's row and
    records what came of it (a retry, or the end, the number deleted)."""
    values = request.values
    try:
        sid, state = values.get("CallSid", ""), values.get("CallStatus", "") or "unknown"
        line: Line = current_app.extensions["ivr"]
        if sid:
            duration = _small_int(values.get("CallDuration"), 0, limit=10**7)
            line.store.close_call(sid, caller_number(), state, duration)
        row_id = _small_int(request.args.get("ob"), 0, limit=2**62)
        if row_id:
            outbound().call_ended(row_id, sid, state, len(line.catalog.survey))
    except Exception:
        log.exception("fault recording an outbound call's status")
    return twiml(NOTHING_TO_SAY)
