"""What mutation testing of ivr/rating.py and ivr/cases.py showed no test protected: rating a
service (its way back, the survey's reminders and refusals, the comment's recording, each
caller's own reference) and complaints and the Ombudsman (the caller id of the dial, the
closed message with its next opening, a message kept while the database is down), and what
the line does with a request for a step that does not exist (a service the office does not
give, a question or case reference that cannot be): the main menu, nothing stored.

A call is driven through the carrier simulator, as on a handset. A request no handset can
make, but a carrier can send (an old Gather action replayed after the catalogue changed, or
an edited URL), is posted signed as the carrier signs it."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest
from lxml import etree

from ivr import create_app
from tests.caller import Caller
from tests.support import MINIMAL, ROOT, Twilio, with_ombudsman

CARRIERS = ["twilio", "somleng"]
INVALID = "Sorry, that key is not on this menu."
APOLOGY = "something went wrong"
MAIN = "Main menu."
BARBER = "barber-2-4-chairs"
MONDAY_10AM = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)  # 10:00 in Phnom Penh
MONDAY_6PM = datetime(2026, 11, 23, 11, 0, tzinfo=timezone.utc)  # 18:00: closed till tomorrow
SATURDAY_10AM = datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc)  # closed till Monday


def rows(settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute(sql).fetchall()


def answers(settings) -> dict[str, str]:
    return dict(rows(settings, "SELECT question, value FROM answers ORDER BY question"))


def said(reply) -> str:
    """What a TwiML reply says (no audio is rendered in the tests: every prompt is a Say)."""
    assert reply.status_code == 200
    doc = etree.fromstring(reply.data)
    return " ".join(say.text or "" for say in doc.iter("Say"))


def gather_action(reply) -> str:
    doc = etree.fromstring(reply.data)
    gather = doc.find("Gather")
    assert gather is not None, reply.data
    return gather.get("action")


def refused_to_main_menu(reply) -> None:
    """The line's answer to a step that does not exist: "not on this menu", the main menu
    (not an apology for a fault, not the step)."""
    text = said(reply)
    assert text.startswith(INVALID) and MAIN in text and APOLOGY not in text, text
    assert "/voice/en/main?" in gather_action(reply)


def to_survey_by_code(call: Caller) -> Caller:
    """Rate (2), by code (1), Ou Chrov (0105#), go on (1), business licences (2), barber (1)."""
    return call.press("2").press("1").press("0105#").press("1").press("2").press("1")


def with_settings(settings, **changes):
    return settings.__class__(**{**settings.__dict__, **changes})


# --- rating: the way back, the survey ------------------------------------------------------


@pytest.mark.parametrize("carrier", CARRIERS)
def test_star_at_the_office_choice_of_a_rating_from_the_main_menu_goes_back_to_it(
        twilio, carrier):
    """Rating chosen from the main menu (not from a service's facts): back is the main menu."""
    call = Caller(twilio, carrier=carrier).start("2").press("2")
    assert "district code" in call.heard()
    call.press("*")
    assert call.heard().startswith(MAIN) and INVALID not in call.heard()
    assert "/voice/en/main?" in call.action()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_the_survey_reminds_the_official_time_and_fee_of_the_service(twilio, carrier):
    call = to_survey_by_code(Caller(twilio, carrier=carrier).start("2"))
    assert "official" not in call.heard()  # the quality question has no reminder
    call.press("4")
    assert "The official maximum time for this service is 7 working days." in call.heard()
    call.press("3")
    assert "20,000 riel per licence" in call.heard() and "pay more" in call.heard()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_wrong_key_at_a_required_question_is_refused_and_an_optional_one_stores_the_answer(
        twilio, settings, carrier):
    call = to_survey_by_code(Caller(twilio, carrier=carrier).start("2"))
    call.press("7")  # not on the 1-5 scale
    assert call.heard().startswith("Sorry, the key you pressed is not one of the answers.")
    assert "quality" in call.heard() and answers(settings) == {}
    call.press("4").press("3").press("2")
    call.press("8")  # the gender question is optional, but 8 is neither an answer nor 9
    assert "not one of the answers" in call.heard() and "woman or a man" in call.heard()
    assert answers(settings) == {"quality": "4", "timeliness": "3",
                                 "unofficial-payment": "no"}
    call.press("2")  # a man: stored as given, not as "skipped"
    assert "short comment" in call.heard()
    assert answers(settings) == {"gender": "man", "quality": "4", "timeliness": "3",
                                 "unofficial-payment": "no"}


@pytest.mark.parametrize("number", ["0", "5", "9"])
def test_a_question_the_survey_does_not_have_is_the_main_menu(twilio, settings, number):
    """Question 0 or past the last (4): an edited or stale URL, never a fault or a question."""
    reply = twilio.post(f"/voice/en/rate/q/{number}?o=ou-chrov&s={BARBER}&g=1",
                        {"Digits": "1"})
    refused_to_main_menu(reply)
    assert answers(settings) == {}


def test_a_service_the_office_does_not_give_is_not_rated_there(twilio, settings):
    """A Gather action for a driving licence at Ou Chrov (a district office that does not give
    it, e.g. replayed after the catalogue changed): refused, no answer stored."""
    for node in ("rate/q/1", "rate/comment", "rate/thanks"):
        reply = twilio.post(f"/voice/en/{node}?o=ou-chrov&s=licence-a-exam&g=1",
                            {"Digits": "4"})
        refused_to_main_menu(reply)
    assert answers(settings) == {} and rows(settings, "SELECT * FROM feedback") == []


def test_a_category_the_office_does_not_give_is_the_main_menu(twilio):
    """Transport is a category of the catalogue, but Ou Chrov gives none of its services."""
    refused_to_main_menu(twilio.post("/voice/en/rate/category/transport?o=ou-chrov"))


def many_categories(tmp_path):
    """The minimal catalogue with 9 types of service at the town office (kind 0 to kind 7
    after papers): the ninth is on page 2 of the rating's list."""
    service = MINIMAL[MINIMAL.index("  - id: copy"):MINIMAL.index("  - id: permit")]
    category = "  - id: papers\n    name: {km: ឯកសារ, en: papers}\n"
    kinds = "".join(category.replace("id: papers", f"id: kind-{i}")
                    .replace("en: papers", f"en: kind {i}") for i in range(8))
    services = "".join(service.replace("id: copy", f"id: copy-{i}")
                       .replace("category: papers", f"category: kind-{i}")
                       .replace("a copy}", f"copy {i}}}") for i in range(8))
    text = MINIMAL.replace(category, category + kinds).replace(service, service + services)
    path = tmp_path / "many.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("carrier", CARRIERS)
def test_back_from_a_type_of_service_on_page_2_is_page_2(settings, tmp_path, carrier):
    app = create_app(with_settings(settings, catalog=many_categories(tmp_path)))
    call = Caller(Twilio(app), carrier=carrier).start("2")
    call.press("2").press("1").press("0105#").press("1")
    assert "Which type of service" in call.heard() and "For more choices" in call.heard()
    call.press("9")
    assert "kind 7" in call.heard() and "kind 6" not in call.heard()
    call.press("1")
    assert "copy 7" in call.heard()
    call.press("*")  # back to the page that lists it
    assert "kind 7" in call.heard() and "kind 6" not in call.heard()
    assert "p=2" in call.action()
    call.press("1").press("1").press("5")  # kind 7, copy 7, rated: it is that service
    assert rows(app.extensions["ivr"].settings, "SELECT office_id, service_id FROM feedback"
                ) == [("town", "copy-7")]


# --- rating: the comment, the reference -------------------------------------------------


@pytest.mark.parametrize("carrier", CARRIERS)
def test_the_comment_recording_ends_with_hash(twilio, carrier):
    call = to_survey_by_code(Caller(twilio, carrier=carrier).start("2"))
    call.press("3").press("3").press("2").press("9").press("1")
    assert "say your comment, then press hash" in call.heard()
    record = call.doc.find("Record")
    assert record.get("finishOnKey") == "#" and record.get("maxLength") == "60"
    assert call.waiting.finish_on_key == "#"


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_comment_is_stored_when_the_record_action_comes_before_its_callback(
        twilio, settings, carrier):
    """The recording status callback may come long after the call (Twilio sends it when
    the file is ready): the Record action stores the comment the moment it arrives."""
    call = to_survey_by_code(Caller(twilio, carrier=carrier,
                                    recording_callback="late").start("2"))
    call.press("3").press("3").press("2").press("9").press("1")
    call.record(12, "RE42")
    assert "Your reference number is" in call.heard() and not call.ended
    assert rows(settings, "SELECT kind, office_id, service_id, lang, duration_s FROM "
                          "recordings") == [("comment", "ou-chrov", BARBER, "en", 12)]


# --- complaints --------------------------------------------------------------------------


def test_a_complaint_needs_both_a_known_topic_and_a_known_office(twilio, settings):
    """Record actions and notices with one of the two unknown: no recording asked, no case."""
    recorded = {"RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/"
                                "RE" + "b" * 32, "RecordingDuration": "9",
                "RecordingSid": "RE" + "b" * 32}
    for query in ("t=unofficial-fee&o=nowhere", "t=nothing&o=ou-chrov"):
        notice = twilio.post(f"/voice/en/complaint/notice?{query}")
        assert etree.fromstring(notice.data).find("Record") is None
        refused_to_main_menu(notice)
        refused_to_main_menu(twilio.post(f"/voice/en/complaint/recorded?{query}", recorded))
    assert rows(settings, "SELECT * FROM recordings") == []


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_complaint_kept_while_the_database_is_down_is_thanked_without_a_number(
        twilio, app, settings, carrier, monkeypatch):
    """The store spools the recording (no reference yet): the caller hears it is recorded,
    and may go to the main menu; not "that key is not on this menu"."""
    call = Caller(twilio, carrier=carrier).start("2")
    call.press("4").press("1").press("1").press("0105#").press("1")
    monkeypatch.setattr(app.extensions["ivr"].store, "blocked", lambda: True)
    call.record(20, "RE7")
    assert "Thank you. Your message has been recorded." in call.heard()
    assert "reference number" not in call.heard() and INVALID not in call.heard()
    assert "/voice/en/case/kept?" in call.action()
    call.press("#")
    assert call.heard().startswith(MAIN)
    monkeypatch.undo()  # the database is back: the spooled message is written, once
    assert app.extensions["ivr"].store.wait_for_spool()
    assert rows(settings, "SELECT kind, office_id, topic, duration_s FROM recordings") == [
        ("complaint", "ou-chrov", "unofficial-fee", 20)]


@pytest.mark.parametrize("reference", ["12345", "1234567", "abcdef"])
def test_a_case_reference_that_cannot_be_is_not_read_out(twilio, reference):
    reply = twilio.post(f"/voice/en/case/{reference}")
    refused_to_main_menu(reply)
    assert "reference number" not in said(reply)


# --- the Ombudsman -------------------------------------------------------------------------


def staffed(settings, tmp_path, **changes):
    """The bundled catalogue with Ou Chrov's Ombudsman number and weekday hours."""
    path = tmp_path / "staffed.yaml"
    path.write_text(with_ombudsman((ROOT / "catalog.yaml").read_text(encoding="utf-8")),
                    encoding="utf-8")
    return with_settings(settings, catalog=path, **changes)


@pytest.mark.parametrize("carrier", CARRIERS)
def test_the_ombudsman_is_dialled_from_the_line_s_own_number(settings, tmp_path, carrier):
    app = create_app(staffed(settings, tmp_path, caller_id="+85523000000"))
    app.extensions["ivr"].clock = lambda: MONDAY_10AM
    call = Caller(Twilio(app), carrier=carrier, dial_outcome="busy").start("2")
    call.press("3").press("1").press("0105#").press("1")
    (step,) = [step for step in call.steps if step.dial is not None]
    dial = etree.fromstring(step.twiml.encode()).find("Dial")
    assert dial.get("callerId") == "+85523000000" and step.dial.caller_id == "+85523000000"
    assert step.dial.numbers == ["+85512000999"]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_each_caller_hears_when_the_closed_ombudsman_opens_at_their_time(
        settings, tmp_path, carrier):
    """The closed message depends on the time: one caller's is never served to the next."""
    app = create_app(staffed(settings, tmp_path))
    now = [MONDAY_6PM]
    app.extensions["ivr"].clock = lambda: now[0]
    heard = []
    for moment in (MONDAY_6PM, SATURDAY_10AM, MONDAY_6PM):
        now[0] = moment
        call = Caller(Twilio(app), carrier=carrier).start("2")
        call.press("3").press("1").press("0105#").press("1")
        assert "closed now" in call.heard() and "leave a voice message" in call.heard()
        assert not any(step.dial is not None for step in call.steps)
        heard.append(call.heard())
    assert "opens again tomorrow" in heard[0] and "Monday" not in heard[0]
    assert "opens again on Monday" in heard[1] and "tomorrow" not in heard[1]
    assert "opens again tomorrow" in heard[2]


def test_an_ombudsman_away_reason_that_does_not_exist_is_the_main_menu(twilio):
    refused_to_main_menu(twilio.post("/voice/en/ombudsman/away/holiday?o=ou-chrov"))
    refused_to_main_menu(twilio.post("/voice/en/ombudsman/away/closed?o=nowhere"))
