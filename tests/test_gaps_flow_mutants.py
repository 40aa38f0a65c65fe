"""What the call-flow engine (ivr/flow.py) promises, checked where mutation testing found it
unguarded: each caller's own answers and outcomes are never served from the kept menus to
another caller; the steps that only move a caller are kept (served again without building
the menus); the funnel's event labels; an office code keyed one key at a time; the TwiML
after every Gather (actionOnEmptyResult, the no-input Redirect); prompts after a played
reply. Calls are driven through the carrier simulator, on Twilio's and Somleng's rules."""

from __future__ import annotations

import logging
import re
import sqlite3
from datetime import datetime, timezone

import pytest

from ivr import create_app, tree
from ivr.simulate import GatherInfo
from tests.caller import Caller
from tests.support import ROOT, Twilio, with_ombudsman

CARRIERS = ["twilio", "somleng"]
NOINPUT = "we did not hear a key"


def rows(settings, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute(sql, args).fetchall()


def heard_refs(call: Caller) -> list[str]:
    return [d.replace(" ", "") for d in
            re.findall(r"Your reference number is((?: \d)+)", call.heard())]


@pytest.fixture
def resolved(monkeypatch) -> list[str]:
    """Every node the engine looks up in the table (a kept reply looks up none)."""
    seen: list[str] = []
    original = tree.resolve

    def counting(node, _original=original):
        seen.append(node)
        return _original(node)

    monkeypatch.setattr(tree, "resolve", counting)
    return seen


def kept_the_third_time(resolved: list[str], step, node: str | None = None) -> None:
    """`step` twice (the menu it leads to is kept, then the step), then once more: answered
    from what was kept, without looking up (building) any menu (or the menu at `node`)."""
    step()
    step()
    resolved.clear()
    step()
    if node is None:
        assert resolved == [], resolved
    else:
        assert node not in resolved, resolved


# --- a caller's own answers and outcomes are never another caller's -------------------------


def rate_barber(twilio, carrier: str) -> Caller:
    call = Caller(twilio, carrier=carrier).start("2")
    call.press("2").press("1").press("0105#").press("1").press("2").press("1")
    call.press("3").press("3").press("2").press("2")
    return call


@pytest.mark.parametrize("carrier", CARRIERS)
def test_two_callers_giving_the_same_answers_both_have_them_stored(twilio, settings, carrier):
    sids = []
    for _ in range(3):
        call = rate_barber(twilio, carrier)
        sids.append(call.sid)
        call.hangup()
    for sid in sids:
        stored = rows(settings, "SELECT a.question, a.value FROM answers a JOIN feedback f "
                      "ON f.id = a.feedback_id WHERE f.call_sid = ?", sid)
        assert len(stored) == 4, (sid, stored)


@pytest.mark.parametrize("carrier", CARRIERS)
def test_each_caller_hears_the_reference_of_their_own_complaint(twilio, settings, carrier):
    heard = []
    for _ in range(3):
        call = Caller(twilio, carrier=carrier).start("2").press("4").press("1").press("1")
        call.press("0105#").press("1").record(12)
        heard += heard_refs(call)
        call.hangup()
    stored = [r for (r,) in rows(settings, "SELECT reference FROM recordings ORDER BY id")]
    assert len(stored) == 3 and len(set(stored)) == 3
    assert heard == stored


@pytest.mark.parametrize("carrier", CARRIERS)
def test_each_caller_hears_the_outcome_of_their_own_dial(settings, tmp_path, carrier):
    """Ou Chrov's Ombudsman on duty: busy for one caller, answered for the next, who must
    hear the goodbye (a step that acts is never kept), and the funnel has each outcome."""
    path = tmp_path / "staffed.yaml"
    path.write_text(with_ombudsman((ROOT / "catalog.yaml").read_text(encoding="utf-8")),
                    encoding="utf-8")
    app = create_app(settings.__class__(**{**settings.__dict__, "catalog": path}))
    app.extensions["ivr"].clock = lambda: datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
    outcomes = {}
    for outcome in ("busy", "busy", "completed"):
        call = Caller(Twilio(app), carrier=carrier, dial_outcome=outcome).start("2")
        call.press("3").press("1").press("0105#").press("1")
        if outcome == "busy":
            assert "line is busy" in call.heard()
        else:
            assert "Goodbye" in call.heard() and "busy" not in call.heard() and call.ended
        outcomes[call.sid] = outcome
    for sid, outcome in outcomes.items():
        assert ("ombudsman/dialled", f"dial-{outcome}") in rows(
            settings, "SELECT node, event FROM events WHERE call_sid = ?", sid)


# --- steps that only move the caller are kept -------------------------------------------------


def test_menus_and_moves_between_them_are_kept(twilio, resolved):
    kept_the_third_time(resolved, lambda: Caller(twilio).start("2").press("1").press("3")
                        .press("*").press("#").press("0"))


def test_silence_at_a_menu_is_kept(twilio, resolved):
    def step():
        call = Caller(twilio).start("2").press("1").silence()
        assert NOINPUT in call.heard()
    kept_the_third_time(resolved, step)


def test_a_refused_key_is_kept(twilio, resolved):
    def step():
        call = Caller(twilio).start("2").press("1").press("8")
        assert "that key is not on this menu" in call.heard()
    kept_the_third_time(resolved, step)


def test_an_unknown_position_is_kept_and_logged(twilio, resolved, caplog):
    params = {"CallSid": "CA" + "1" * 32}

    def step():
        reply = twilio.post("/voice/en/no/such/menu", {**params, "Digits": "1"})
        assert reply.status_code == 200 and b"/voice/en/main" in reply.data

    with caplog.at_level(logging.INFO, logger="ivr.flow"):
        kept_the_third_time(resolved, step)
    assert any("unknown position" in r.getMessage() and "no/such/menu" in r.getMessage()
               for r in caplog.records)


def test_a_redirect_to_a_menu_is_kept_and_logged_as_present(twilio, settings, resolved):
    """Twilio does not call the Record action for an empty recording: it follows the Record's
    Redirect (no keys, no Gather) to the try-again menu."""
    sids = []

    def step():
        call = Caller(twilio).start("2").press("4").press("1").press("1")
        call.press("0105#").press("1").record(0)
        assert "complaint/empty" in call.steps[-1].url
        sids.append(call.sid)
        call.hangup()

    kept_the_third_time(resolved, step, "complaint/empty")
    for sid in sids:
        assert ("complaint/empty", "present") in rows(
            settings, "SELECT node, event FROM events WHERE call_sid = ?", sid)


# --- event labels -------------------------------------------------------------------------------


@pytest.mark.parametrize("carrier", CARRIERS)
def test_silence_after_part_of_an_unknown_code_is_logged_as_noinput(twilio, settings, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1")
    call.press("01")  # cut short: the line waits for more keys
    assert isinstance(call.waiting, GatherInfo) and "k=01" in call.action()
    call.silence()  # none came: the code is read back and asked again
    assert "office/code" in call.action() and "k=" not in call.action()
    events = rows(settings, "SELECT node, event FROM events WHERE call_sid = ? ORDER BY id",
                  call.sid)
    assert events[-1] == ("rate/office/code", "noinput"), events


# --- an office code keyed one key at a time ---------------------------------------------------


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_code_begun_with_0_alone_waits_for_the_rest(twilio, settings, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1")
    call.press("0")  # the carrier sends the 0 alone: part of the code, not "repeat"
    assert "k=0" in call.action() and "office.code" not in call.heard()
    call.press("105#")
    assert "Ou Chrov" in call.heard(), call.heard()
    assert "office/chosen" in call.action()


# --- the TwiML after every Gather -------------------------------------------------------------


@pytest.mark.parametrize("carrier", CARRIERS)
def test_silence_at_a_code_is_posted_to_the_gather_action(twilio, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1")
    gather = call.doc.find("Gather")
    assert gather.get("finishOnKey") == "#" and gather.get("actionOnEmptyResult") == "true"
    call.silence()
    (step,) = call.steps
    assert not step.redirected and "g=1" in step.url


@pytest.mark.parametrize("carrier", CARRIERS)
def test_the_redirect_after_a_gather_is_the_no_input_step(twilio, settings, carrier):
    """For a carrier that ignores actionOnEmptyResult: the Redirect says no key came."""
    call = Caller(twilio, carrier=carrier).start("2").press("1")
    redirect = call.doc.find("Redirect")
    assert redirect is not None and redirect.get("method") == "POST"
    url = redirect.text
    assert url.startswith("http://localhost/voice/en/categories") and "noinput=1" in url
    reply = twilio.post(url, {"CallSid": call.sid})
    assert reply.status_code == 200
    assert "a=1" in reply.data.decode()  # the same menu, its first re-prompt
    assert ("categories", "noinput") == rows(
        settings, "SELECT node, event FROM events WHERE call_sid = ? ORDER BY id DESC",
        call.sid)[0]


def test_the_options_follow_a_played_reply(twilio, app):
    call = Caller(twilio).start("2").press("4").press("1").press("1").press("0110")
    call.press("1").record(20)
    (reference,) = heard_refs(call)
    call.hangup()
    store = app.extensions["ivr"].store
    store.add_reply(reference, "recorded", file="reply.wav", duration_ms=2000)
    call = Caller(Twilio(app)).start("2").press("5").press(f"{reference}#")
    heard = call.heard()
    assert "The office has left you this reply." in heard
    assert heard.endswith("To hear this again, press 1. To leave a follow-up message about "
                          "it, press 2. For the main menu, press hash."), heard
    plays = [p.get("url") or p.text for p in call.doc.iter("Play")]
    assert any("/reply/" in u for u in plays)
