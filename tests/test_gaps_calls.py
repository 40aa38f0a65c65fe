"""What a caller meets off the main path, checked so that a refused key, a broken back
target or a lost counter cannot pass for success (TEST-GAPS.md, gaps 2, 3, 4, 6 and 8).

Every call is driven as on a handset, through the carrier simulator; "refused" means the
caller heard "that key is not on this menu" (or the answer's own refusal), which these
tests look for explicitly, since a refused key replays the same menu."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timezone

import pytest

from ivr import create_app
from ivr.offices import CODE_TIMEOUT
from ivr.simulate import GatherInfo, RecordPrompt
from tests.caller import Caller
from tests.support import MINIMAL, OPEN_HOURS, ROOT, Twilio, with_ombudsman

CARRIERS = ["twilio", "somleng"]
INVALID = "that key is not on this menu"
NOINPUT = "we did not hear a key"
HINT = "To go back, press star, left of 0. For the main menu, press hash, right of 0."
GOODBYE = "Thank you for calling. Goodbye."
MONDAY_10AM = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)  # 10:00 in Phnom Penh


def rows(settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute(sql).fetchall()


def refs(call: Caller) -> list[str]:
    return [d.replace(" ", "") for d in
            re.findall(r"Your reference number is((?: \d)+)", call.heard())]


def accepted(call: Caller) -> None:
    """The last key was taken: no refusal, no silence message, no apology."""
    heard = call.heard()
    assert INVALID not in heard and "not one of the answers" not in heard, heard
    assert NOINPUT not in heard and "went wrong" not in heard, heard


def at(call: Caller, node: str) -> None:
    """The caller waits at `node` (the Gather's action names it)."""
    assert isinstance(call.waiting, GatherInfo), call.waiting
    path = call.action().split("?")[0]
    assert path.endswith("/" + node), (path, node)


def to_rating_thanks(call: Caller) -> Caller:
    """Rate the barber shop at Ou Chrov: four answers, then no comment (silence)."""
    call.press("2").press("1").press("0105#").press("1").press("2").press("1")
    call.press("3").press("3").press("2").press("2")
    return call.silence()


def to_villa_fee(call: Caller) -> Caller:
    """Services, construction and land, a villa's permit: the fee table's first question."""
    call.press("1").press("4").press("1")
    assert "Where will you build?" in call.heard()
    return call


# --- gap 2: a refused key does not pass for success ---------------------------------------


@pytest.mark.parametrize("carrier", CARRIERS)
def test_1_at_the_greeting_is_khmer_and_2_is_english(twilio, carrier):
    call = Caller(twilio, carrier=carrier).start("1")
    accepted(call)
    at(call, "main")
    assert "/voice/km/main" in call.action()
    call = Caller(twilio, carrier=carrier).start("2")
    accepted(call)
    assert "/voice/en/main" in call.action() and "Main menu." in call.heard()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_1_after_a_rating_reads_the_reference_again(twilio, settings, carrier):
    call = to_rating_thanks(Caller(twilio, carrier=carrier).start("2"))
    ((reference,),) = rows(settings, "SELECT reference FROM feedback")
    assert refs(call) == [reference]
    call.press("1")
    accepted(call)
    assert refs(call) == [reference]
    assert call.heard().endswith("To hear the number again, press 1. "
                                 "For the main menu, press hash.")
    at(call, "rate/thanks")
    call.press("*")  # the answers are kept: back is the main menu
    accepted(call)
    at(call, "main")


@pytest.mark.parametrize("carrier", CARRIERS)
def test_1_after_a_complaint_reads_the_case_number_again(twilio, settings, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("4").press("1").press("1")
    call.press("0105#").press("1").record(12)
    ((reference,),) = rows(settings, "SELECT reference FROM recordings")
    call.press("1")
    accepted(call)
    assert refs(call) == [reference]
    assert call.heard().endswith("To hear the number again, press 1. "
                                 "For the main menu, press hash.")
    call.press("*")
    accepted(call)
    at(call, "main")


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_fee_table_takes_each_option_and_refuses_one_past_the_last(twilio, carrier):
    call = to_villa_fee(Caller(twilio, carrier=carrier).start("2"))
    call.press("3")  # two places to build: 3 is not an option
    assert INVALID in call.heard() and "Where will you build?" in call.heard()
    at(call, "service/construction-permit-villa")
    call.press("2")
    accepted(call)
    assert "How large is the floor area?" in call.heard()
    call.press("6")  # five sizes
    assert INVALID in call.heard()
    at(call, "service/construction-permit-villa/fee/2")
    call.press("4")
    accepted(call)
    assert "1,400,000 riel" in call.heard()
    call.press("1")  # hear the fee again
    accepted(call)
    assert "1,400,000 riel" in call.heard()
    call.press("*")  # back to the size question
    accepted(call)
    at(call, "service/construction-permit-villa/fee/2")
    call.press("*")  # back to the first question, then the category
    accepted(call)
    assert "Where will you build?" in call.heard()
    at(call, "service/construction-permit-villa")
    call.press("2").press("4").press("2")  # rate this service: the office first
    accepted(call)
    at(call, "rate/office")
    assert "s=construction-permit-villa" in call.action()


# --- gap 3: back targets, the attempt counter, paging over HTTP, the empty comment ----------


@pytest.mark.parametrize("carrier", CARRIERS)
def test_star_goes_back_one_step_in_a_rating(twilio, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1")
    call.press("0105#").press("1")
    at(call, "rate/categories")
    call.press("*")
    accepted(call)
    at(call, "rate/office")
    call.press("1").press("0105#").press("1").press("2")  # business licences
    at(call, "rate/category/commerce")
    call.press("*")
    accepted(call)
    at(call, "rate/categories")
    call.press("2").press("1")  # the barber shop: question 1
    at(call, "rate/q/1")
    call.press("*")
    accepted(call)
    at(call, "rate/office")
    assert "s=barber-2-4-chairs" in call.action()  # the service is kept: straight to q 1
    call.press("1").press("0105#").press("1")
    at(call, "rate/q/1")
    call.press("3")
    at(call, "rate/q/2")
    call.press("*")
    accepted(call)
    at(call, "rate/q/1")
    call.press("3").press("3").press("2").press("2")
    at(call, "rate/comment")
    call.press("*")  # the comment offer: back to the last question
    accepted(call)
    at(call, "rate/q/4")


@pytest.mark.parametrize("carrier", CARRIERS)
def test_star_goes_back_from_complaints_and_the_ombudsman(twilio, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("4")
    at(call, "complaint")
    call.press("*")
    accepted(call)
    at(call, "main")
    call.press("3").press("1").press("0105#").press("1")  # Ou Chrov: no published number
    assert "cannot put you through" in call.heard()
    at(call, "ombudsman/away/unlisted")
    call.press("*")
    accepted(call)
    at(call, "ombudsman/office")
    call.press("1").press("0105#").press("1").press("1").record(0)  # an empty message
    assert "did not receive a message" in call.heard()
    at(call, "ombudsman/empty")
    call.press("*")
    accepted(call)
    at(call, "main")
    call.press("4").press("1").press("1").press("0105#").press("1").record(0)
    at(call, "complaint/empty")
    call.press("*")
    accepted(call)
    at(call, "main")


def silent_twice_then(call: Caller) -> None:
    """Two silences are allowed on a fresh menu; the third ends the call."""
    for _ in range(2):
        call.silence()
        assert NOINPUT in call.heard() and not call.ended
    call.silence()
    assert GOODBYE in call.heard() and call.ended


@pytest.mark.parametrize("key", ["0", "*", "9", "1", "back in a fee table",
                                 "* at the main menu"])
def test_a_key_that_moves_the_caller_resets_the_silence_count(tmp_path, key):
    """After two silences a caller presses a key that repeats, goes back, pages or hears
    the information again: the menu they reach allows two silences afresh."""
    service = MINIMAL[MINIMAL.index("  - id: copy"):MINIMAL.index("  - id: permit")]
    many = "".join(service.replace("id: copy", f"id: copy-{i}")
                   .replace("a copy}", f"copy {i}}}") for i in range(12))
    settings = _settings(tmp_path, MINIMAL.replace(service, many))
    call = Caller(Twilio(create_app(settings))).start("2").press("1").press("1")  # 12 copies
    if key == "1":
        call.press("1")  # the first service's facts: 1 hears them again
    if key == "* at the main menu":  # no step back from there: the menu again
        call.press("#")
        key = "*"
    if key == "back in a fee table":
        call = Caller(Twilio(create_app(_settings(tmp_path, None)))).start("2")
        to_villa_fee(call).press("2")
        key = "*"
    for _ in range(2):
        call.silence()
        assert NOINPUT in call.heard()
    call.press(key)
    accepted(call)
    assert "a=" not in call.action()
    silent_twice_then(call)


def _settings(tmp_path, catalog: str | None):
    from ivr.config import Settings
    from tests.support import TOKEN

    path = ROOT / "catalog.yaml"
    if catalog is not None:
        path = tmp_path / "catalog.yaml"
        path.write_text(catalog, encoding="utf-8")
    folder = tmp_path / f"line-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    return Settings(auth_token=TOKEN, catalog=path, prompts=ROOT / "prompts",
                    audio_dir=folder / "audio", database=folder / "ivr.db",
                    caller_key=b"test-caller-key")


@pytest.mark.parametrize("carrier", CARRIERS)
def test_page_2_of_a_long_list_over_the_phone(tmp_path, carrier):
    service = MINIMAL[MINIMAL.index("  - id: copy"):MINIMAL.index("  - id: permit")]
    many = "".join(service.replace("id: copy", f"id: copy-{i}")
                   .replace("a copy}", f"copy {i}}}") for i in range(12))
    app = create_app(_settings(tmp_path, MINIMAL.replace(service, many)))
    call = Caller(Twilio(app), carrier=carrier).start("2").press("1").press("1")  # papers
    assert "For copy 7, press 8." in call.heard() and "For more choices, press 9." in call.heard()
    call.press("9")
    accepted(call)
    assert "For copy 11, press 4." in call.heard()
    call.press("0")  # page 2 again, not page 1
    accepted(call)
    assert "For copy 11, press 4." in call.heard() and "copy 7" not in call.heard()
    call.press("4")
    accepted(call)
    assert "Information about copy 11." in call.heard()
    call.press("*")  # back to the page that lists it
    accepted(call)
    assert "For copy 11, press 4." in call.heard()
    call.press("*")  # page 2 -> page 1
    accepted(call)
    assert "For copy 7, press 8." in call.heard()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_an_empty_comment_still_gives_the_reference(twilio, settings, carrier):
    call = Caller(twilio, carrier=carrier).start("2")
    call.press("2").press("1").press("0105#").press("1").press("2").press("1")
    call.press("3").press("3").press("2").press("2").press("1")
    assert isinstance(call.waiting, RecordPrompt)
    call.record(0)
    accepted(call)
    ((reference,),) = rows(settings, "SELECT reference FROM feedback")
    assert refs(call) == [reference]
    at(call, "rate/thanks")
    assert rows(settings, "SELECT count(*) FROM recordings") == [(0,)]


def test_every_list_menu_says_how_to_repeat_go_back_and_reach_the_main_menu(twilio):
    call = Caller(twilio).start("2").press("1")
    assert HINT in call.heard()  # categories
    call.press("1")
    assert HINT in call.heard()  # a category's services
    call.press("#").press("4")
    assert HINT in call.heard()  # complaint topics


# --- gap 4: kept steps are never another caller's ------------------------------------------


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_dial_outcome_is_each_callers_own(settings, tmp_path, carrier):
    """Two callers find the Ombudsman busy; the third is put through and must hear the
    goodbye, not the second caller's "line is busy" (steps that act are never kept)."""
    app = staffed_app(settings, tmp_path, MONDAY_10AM)
    for outcome in ("busy", "busy", "completed", "no-answer"):
        call = Caller(Twilio(app), carrier=carrier, dial_outcome=outcome).start("2")
        call.press("3").press("1").press("0105#").press("1")
        if outcome == "completed":
            assert GOODBYE in call.heard() and call.ended
            assert "busy" not in call.heard()
        elif outcome == "busy":
            assert "line is busy" in call.heard()
        else:
            assert "Nobody answered" in call.heard() and "busy" not in call.heard()


def test_kept_menus_name_the_host_they_were_asked_for(app):
    """The same worker, asked under two names: each caller's next steps go to the host that
    caller's carrier used (a kept menu never sends Twilio to another host)."""
    for host in ("http://localhost", "https://line.example.org", "http://localhost"):
        call = Caller(Twilio(app, base=host)).start("2")
        assert call.action().startswith(host + "/voice/en/main")
        call.press("1")
        assert call.action().startswith(host + "/voice/en/categories")
        for step in call.transcript.steps:
            urls = re.findall(r'(?:action|recordingStatusCallback)="([^"]+)"|<Redirect[^>]*>'
                              r'([^<]+)<', step.twiml)
            assert urls and all(u.startswith(host + "/") for pair in urls for u in pair if u)


def test_a_kept_step_is_served_without_building_its_menu_again(twilio, monkeypatch):
    """A worker keeps the menus and the steps that only move the caller: a later caller
    through the same keys is answered from what was kept (the menus are not built again)."""
    from ivr import tree

    built: list[str] = []
    for row in (tree.MAIN, tree.CATEGORIES, tree.CATEGORY):
        original = row.build

        def counting(flow, pos, _original=original, **parts):
            built.append(pos.node)
            return _original(flow, pos, **parts)

        monkeypatch.setattr(row, "build", counting)
    for _ in range(2):  # a step is kept once the menu it leads to was kept
        Caller(twilio).start("2").press("1").press("3").press("*").press("#")
    first = len(built)
    assert first
    Caller(twilio).start("2").press("1").press("3").press("*").press("#")
    assert len(built) == first, repr((built, first))


# --- gap 6: the Ombudsman's hours and dial outcomes ----------------------------------------


def staffed_app(settings, tmp_path, moment: datetime, hours: str = OPEN_HOURS):
    """The bundled catalogue with Ou Chrov's Ombudsman number and `hours`, at `moment`."""
    path = tmp_path / f"staffed-{len(list(tmp_path.glob('staffed-*')))}.yaml"
    path.write_text(with_ombudsman((ROOT / "catalog.yaml").read_text(encoding="utf-8"),
                                   hours=hours), encoding="utf-8")
    app = create_app(settings.__class__(**{**settings.__dict__, "catalog": path}))
    app.extensions["ivr"].clock = lambda: moment
    return app


@pytest.mark.parametrize("moment, dials", [
    (datetime(2026, 11, 23, 9, 59, tzinfo=timezone.utc), True),  # 16:59 in Phnom Penh
    (datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc), False),  # 17:00: closed
    (datetime(2026, 11, 23, 0, 30, tzinfo=timezone.utc), True)])  # 07:30: open
def test_the_ombudsman_is_dialled_until_closing_time(settings, tmp_path, moment, dials):
    call = Caller(Twilio(staffed_app(settings, tmp_path, moment)), dial_outcome="busy")
    call.start("2").press("3").press("1").press("0105#").press("1")
    dialled = any(step.dial is not None for step in call.steps)
    assert dialled == dials
    assert ("closed now" in call.heard()) != dials


def test_a_number_without_published_hours_is_never_dialled(settings, tmp_path):
    app = staffed_app(settings, tmp_path, MONDAY_10AM, hours="PLACEHOLDER (not published)")
    call = Caller(Twilio(app)).start("2").press("3").press("1").press("0105#").press("1")
    assert not any(step.dial is not None for step in call.steps)
    assert "closed now" in call.heard() and "leave a voice message" in call.heard()


@pytest.mark.parametrize("status", ["answered", "", None])
def test_an_unexpected_dial_status_offers_a_message(settings, tmp_path, status):
    """A DialCallStatus the line does not know (or none): "could not be connected", and a
    voice message, as for a failed dial."""
    app = staffed_app(settings, tmp_path, MONDAY_10AM)
    twilio = Twilio(app)
    call = Caller(twilio, dial_outcome="busy").start("2").press("3").press("1")
    call.press("0105#").press("1")
    dial = next(step.dial for step in call.steps if step.dial is not None)
    params = {**call.call.params}
    if status is not None:
        params["DialCallStatus"] = status
    reply = twilio.post(dial.action, params)
    text = reply.get_data(as_text=True)
    assert reply.status_code == 200 and "<Gather" in text
    assert "ombudsman/away/failed" in text and INVALID not in text


def test_the_dial_rings_25_seconds_and_names_the_line(settings, tmp_path):
    call = Caller(Twilio(staffed_app(settings, tmp_path, MONDAY_10AM)), dial_outcome="busy")
    call.start("2").press("3").press("1").press("0105#").press("1")
    dial = next(step for step in call.steps if step.dial is not None)
    assert call.doc is not None
    from lxml import etree

    element = etree.fromstring(dial.twiml.encode()).find("Dial")
    assert element.get("timeout") == "25" and element.get("method") == "POST"


# --- gap 8: what the caller hears (TwiML attributes, prompts) ------------------------------


def record_element(call: Caller):
    return call.doc.find("Record")


@pytest.mark.parametrize("kind", ["complaint", "ombudsman-message", "comment"])
def test_a_recording_starts_with_a_beep_and_waits_for_silence(twilio, kind):
    call = Caller(twilio).start("2")
    if kind == "complaint":
        call.press("4").press("1").press("1").press("0105#").press("1")
        timeout, longest = "7", "120"
    elif kind == "ombudsman-message":
        call.press("3").press("1").press("0105#").press("1").press("1")
        timeout, longest = "7", "120"
    else:
        call.press("2").press("1").press("0105#").press("1").press("2").press("1")
        call.press("3").press("3").press("2").press("2").press("1")
        timeout, longest = "5", "60"
        assert "After the tone, say your comment, then press hash." in call.heard()
    record = record_element(call)
    assert record.get("playBeep") == "true" and record.get("timeout") == timeout
    assert record.get("maxLength") == longest and record.get("method") == "POST"
    assert record.get("recordingStatusCallbackMethod") == "POST"
    assert f"kind={kind}" in record.get("recordingStatusCallback")
    assert record.get("recordingStatusCallback").startswith("http://localhost/voice/recording")


def test_menus_wait_6_seconds_and_the_greeting_3(twilio):
    call = Caller(twilio).start()  # silence at the greeting: Khmer
    gather = call.doc.find("Gather")
    assert gather.get("timeout") == "6" and gather.get("numDigits") == "1"
    assert gather.get("finishOnKey") == "" and gather.get("method") == "POST"
    assert call.doc.find("Redirect").get("method") == "POST"
    first = call.transcript.steps[0]
    from lxml import etree

    greeting = etree.fromstring(first.twiml.encode()).find("Gather")
    assert greeting.get("timeout") == "3"
    call.press("2").press("1")
    code = call.doc.find("Gather")  # an office code: keys until #
    assert code.get("finishOnKey") == "#" and code.get("numDigits") is None
    assert code.get("timeout") == str(CODE_TIMEOUT)


@pytest.mark.parametrize("carrier", CARRIERS)
def test_silence_at_an_office_code_is_the_gather_s_own_no_input(twilio, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1")
    assert call.waiting.action_on_empty_result and call.waiting.finish_on_key == "#"
    call.silence()
    (step,) = call.steps  # the Gather's action: no Redirect was followed
    assert not step.redirected



@pytest.mark.parametrize("carrier", CARRIERS)
def test_star_at_the_office_of_a_rating_begun_at_a_service_goes_back_to_it(twilio, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("1").press("2").press("1")
    assert "Information about" in call.heard()  # the barber shop's facts
    call.press("2")
    at(call, "rate/office")
    call.press("*")
    accepted(call)
    at(call, "service/barber-2-4-chairs")
    assert "Information about" in call.heard()


def test_the_scale_is_explained_once_before_its_first_question(twilio):
    explain = "Answer with a number from 1 to 5."
    call = Caller(twilio).start("2").press("2").press("1").press("0105#").press("1")
    call.press("2").press("1")
    at(call, "rate/q/1")
    assert explain in call.heard()
    call.press("3")
    at(call, "rate/q/2")
    assert explain not in call.heard() and "not one of the answers" not in call.heard()
    call.press("3")
    assert explain not in call.heard()
