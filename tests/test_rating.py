"""Rating a service by keypad, stored in a real SQLite file, and the scorecard from it."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner
from lxml import etree

from ivr.catalog import load_catalog
from ivr.cli import main as cli
from ivr.report import score_table, scorecard
from ivr.simulate import Keys
from tests.caller import Caller
from tests.support import CALLER, ROOT

CARRIERS = ["twilio", "somleng"]


def db_rows(settings, sql: str, args=()) -> list[tuple]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute(sql, args).fetchall()


def answers(settings) -> dict[str, str]:
    return dict(db_rows(settings, "SELECT question, value FROM answers ORDER BY question"))


def to_survey_by_code(caller: Caller, code: str = "0105") -> Caller:
    """From the main menu: rate (2), I know the code (1), the code and #, the office said
    back (1 goes on), then business licences (2), barber shop (1)."""
    return caller.press("2").press("1").press(code).press("1").press("2").press("1")


@pytest.mark.parametrize("carrier", CARRIERS)
def test_rate_from_the_service_information(twilio, settings, carrier):
    call = Caller(twilio, carrier=carrier).start("2")  # English
    call.press("1").press("2").press("1")  # services, business licences, barber shop
    assert "20,000 riel" in call.heard()
    call.press("2")  # rate this service
    assert "district code" in call.heard()
    call.press("1").press("0105#")
    assert "You chose Ou Chrov District." in call.heard()
    call.press("1")
    assert "quality" in call.heard() and "very satisfied" in call.heard()
    call.press("4")
    assert "7 working days" in call.heard()  # the official maximum time, reminded
    call.press("3")
    assert "20,000 riel per licence" in call.heard() and "pay more" in call.heard()
    call.press("1")  # yes, asked to pay more
    assert "woman or a man" in call.heard()
    call.press("1")
    assert "short comment" in call.heard()
    call.press("5")  # no comment
    (reference,) = db_rows(settings, "SELECT reference FROM feedback")[0]
    assert "Your reference number is" in call.heard()
    assert " ".join(reference) in call.heard()  # read digit by digit
    assert answers(settings) == {"gender": "woman", "quality": "4", "timeliness": "3",
                                 "unofficial-payment": "yes"}
    assert db_rows(settings, "SELECT office_id, service_id, lang FROM feedback") == [
        ("ou-chrov", "barber-2-4-chairs", "en")]
    call.press("1")  # hear the reference again
    assert " ".join(reference) in call.heard()


def test_rate_from_the_main_menu_choosing_province_and_district(twilio, settings):
    call = Caller(twilio).start()  # silence: Khmer
    call.press("2").press("2")  # rate; choose province and district
    call.press("2").press("9").press("7")  # Battambang, its provincial unit (page 2)
    call.silence()  # said back; waiting goes on
    call.press("2").press("2")  # transport (the unit's second category), licence A re-sit
    call.press("5").press("5").press("2").press("9")  # skip the gender question
    assert db_rows(settings, "SELECT office_id, service_id, lang FROM feedback") == [
        ("battambang-province", "licence-a-retest", "km")]
    assert answers(settings) == {"gender": "skipped", "quality": "5", "timeliness": "5",
                                 "unofficial-payment": "no"}


def test_hang_up_midway_keeps_the_answers_given(twilio, settings):
    call = to_survey_by_code(Caller(twilio).start("2"))
    call.press("2").press("3")  # then the caller hangs up
    assert answers(settings) == {"quality": "2", "timeliness": "3"}


def test_repeated_webhook_stores_each_answer_once(twilio, settings):
    call = to_survey_by_code(Caller(twilio).start("2"))
    question = call.action()
    call.press("4")
    after = call.doc.find("Gather").get("action")
    # Posted directly: the carrier retrying the very request it already sent (a timeout on
    # its side) is not something a caller can press.
    again = etree.fromstring(call.repeat_last("4", question).data)
    assert again.find("Gather").get("action") == after  # the same next question
    call.press("*").press("2")  # the caller goes back and changes their mind
    assert "the time the service took" in call.heard()
    assert db_rows(settings, "SELECT count(*) FROM answers") == [(1,)]
    assert db_rows(settings, "SELECT count(*) FROM feedback") == [(1,)]
    assert answers(settings) == {"quality": "2"}


@pytest.mark.parametrize("bad", ["6", "7", "8", "9"])
def test_invalid_answers_ask_again_and_store_nothing(twilio, settings, bad):
    call = to_survey_by_code(Caller(twilio).start("2"))
    call.press(bad)
    assert "not one of the answers" in call.heard() and "quality" in call.heard()
    assert answers(settings) == {}
    call.press("9")  # 9 does not skip a question that is not optional
    call.press("9")  # third wrong answer: goodbye
    assert call.doc.find("Hangup") is not None and answers(settings) == {}
    assert call.ended and call.transcript.ended_by == "hangup"


@pytest.mark.parametrize(("keys", "then", "at", "stored"), [
    ("#", "Main menu.", "/voice/en/main?", {}),  # '#' is a key at a one-key question
    ("#1", "Choose a type of service.", "/voice/en/categories?", {}),  # then '1' there
    ("0", "Answer with a number from 1 to 5", "/voice/en/rate/q/1?o=", {}),  # hear it again
    ("12", "Were you asked to pay more", "/voice/en/rate/q/3?",  # one key per question:
     {"quality": "1", "timeliness": "2"}),  # '2' typed ahead answers the next one
])
def test_keys_at_a_question_are_taken_one_per_menu(twilio, settings, keys, then, at, stored):
    call = to_survey_by_code(Caller(twilio).start("2"))
    call.press(keys)
    assert then in call.heard() and "not one of the answers" not in call.heard()
    assert at in call.action() and "a=" not in call.action()  # not counted as a wrong key
    assert answers(settings) == stored


@pytest.mark.parametrize("carrier", CARRIERS)
def test_silence_asks_again_then_says_goodbye(twilio, settings, carrier):
    call = to_survey_by_code(Caller(twilio, carrier=carrier).start("2"))
    call.silence()
    assert "did not hear" in call.heard() and "quality" in call.heard()
    call.silence().silence()
    assert call.doc.find("Hangup") is not None
    assert call.ended and call.transcript.ended_by == "hangup"
    assert answers(settings) == {}


def test_star_goes_back_one_question(twilio, settings):
    call = to_survey_by_code(Caller(twilio).start("2"))
    call.press("1").press("*")
    assert "quality" in call.heard()
    call.press("5")
    assert answers(settings) == {"quality": "5"}


@pytest.mark.parametrize("carrier", CARRIERS)
def test_an_unknown_office_code_is_refused(twilio, settings, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1").press("9999#")
    assert "no office has that code" in call.heard()
    call.press("1706#")
    assert "You chose Kralanh District." in call.heard()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_code_cut_short_by_the_carrier_is_continued(twilio, settings, carrier):
    """A pause ends the entry (Somleng after 2 s between keys): "01", then "05", is 0105."""
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1").press("01")
    gather = call.doc.find("Gather")
    assert len(gather) == 0 and "k=01" in gather.get("action")  # no prompt: it just waits
    assert gather.get("finishOnKey") == "#"
    call.press("05")
    assert "You chose Ou Chrov District." in call.heard()
    call.press("1")
    assert "type of service" in call.heard()
    call.press("2").press("1").press("4")
    assert db_rows(settings, "SELECT office_id FROM feedback") == [("ou-chrov",)]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_an_office_code_keyed_slowly_is_one_code(twilio, settings, carrier):
    """2.5 s between keys: Twilio waits (its timeout is between keys too), Somleng sends each
    key on its own; either way the caller keyed office 0105."""
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1")
    call.press(Keys("0105", gap=2.5))
    assert [s.params["Digits"] for s in call.steps] == (["0", "1", "0", "5"]
                                                        if carrier == "somleng" else ["0105"])
    assert "You chose Ou Chrov District." in call.heard() and "no office" not in call.heard()
    call.press("1")
    assert "type of service" in call.heard()
    call.press("2").press("1").press("4")
    assert db_rows(settings, "SELECT office_id FROM feedback") == [("ou-chrov",)]


def test_silence_after_part_of_a_code_reads_it_back(twilio, settings):
    call = Caller(twilio).start("2").press("2").press("1").press("01").silence()
    assert "You keyed 0 1 A district code has 4 digits." in call.heard()
    assert "Key in the district code" in call.heard() and "a=1" in call.action()
    assert "k=" not in call.action()  # keyed afresh
    call.press("0105").press("1")
    assert "type of service" in call.heard()


def test_keys_that_begin_no_code_are_read_back(twilio, settings):
    call = Caller(twilio).start("2").press("2").press("1").press("99")
    assert "You keyed 9 9 A district code has 4 digits." in call.heard()
    assert "a=1" in call.action()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_silence_at_the_comment_offer_finishes_with_the_reference(twilio, settings, carrier):
    call = to_survey_by_code(Caller(twilio, carrier=carrier).start("2"))
    call.press("3").press("3").press("2").press("9")
    assert "short comment" in call.heard()
    call.silence()
    (reference,) = db_rows(settings, "SELECT reference FROM feedback")[0]
    assert "Thank you for your answers" in call.heard()
    assert f"Your reference number is {' '.join(reference)}" in call.heard()
    assert "did not hear" not in call.heard() and not call.ended
    assert not db_rows(settings, "SELECT * FROM recordings")  # no comment was recorded


@pytest.mark.parametrize("carrier", CARRIERS)
def test_recorded_comment_is_a_case_linked_to_the_rating(twilio, settings, carrier):
    """Reported twice (Record action, status callback); Somleng's action has no RecordingSid:
    one case either way."""
    call = to_survey_by_code(Caller(twilio, carrier=carrier).start("2"))
    call.press("3").press("3").press("2").press("2").press("1")
    call.record(12, "RE42")
    assert "Your reference number is" in call.heard()
    assert db_rows(settings, "SELECT kind, office_id, duration_s, status, recording_sid "
                             "FROM recordings") == [("comment", "ou-chrov", 12, "new", "RE42")]


def test_no_raw_phone_number_anywhere(twilio, settings):
    call = to_survey_by_code(Caller(twilio, number="+85516888777").start("2"))
    call.press("3").press("3").press("2").press("9").press("1").record(5)
    dump = "\n".join(sqlite3.connect(settings.database).iterdump())
    for form in ("+85516888777", "85516888777", "16888777", CALLER):
        assert form not in dump


# --- the scorecard ------------------------------------------------------------------------

KNOWN = [  # office, service, quality, timeliness, paid more, gender
    ("ou-chrov", "barber-2-4-chairs", "5", "4", "no", "woman"),
    ("ou-chrov", "barber-2-4-chairs", "3", "2", "yes", "man"),
    ("ou-chrov", "barber-2-4-chairs", "1", "1", "yes", "woman"),
    ("ou-chrov", "rental-rooms", "4", "4", "no", "skipped"),
    ("bavel", "barber-2-4-chairs", "2", "3", "no", "man"),
]


@pytest.fixture
def known_answers(app, settings):
    store = app.extensions["ivr"].store
    for i, (office, service, quality, timeliness, paid, gender) in enumerate(KNOWN):
        for question, value in (("quality", quality), ("timeliness", timeliness),
                                ("unofficial-payment", paid), ("gender", gender)):
            store.save_answer(f"CA{i}", f"+8551200000{i}", office, service, "km", question,
                              value)
    return settings


def test_scorecard_numbers_on_known_answers(known_answers):
    catalog = load_catalog(ROOT / "catalog.yaml")
    conn = sqlite3.connect(known_answers.database)
    rows = {(r.office, r.service, r.group): r.score for r in scorecard(conn, catalog)}
    barber = rows[("ou-chrov", "barber-2-4-chairs", "all")]
    assert barber.responses == 3
    assert barber.mean("quality") == 3.0 and barber.mean("timeliness") == 2.33
    assert barber.share_yes("unofficial-payment") == pytest.approx(0.667)
    women = rows[("ou-chrov", "barber-2-4-chairs", "gender=woman")]
    assert women.responses == 2 and women.mean("quality") == 3.0
    assert women.share_yes("unofficial-payment") == 0.5
    assert rows[("ou-chrov", "rental-rooms", "all")].responses == 1
    assert ("ou-chrov", "rental-rooms", "gender=skipped") not in rows
    by_office = {(r.office, r.group): r.score for r in scorecard(conn, catalog,
                                                                  by_service=False)}
    assert by_office[("ou-chrov", "all")].responses == 4
    only_bavel = scorecard(conn, catalog, office="bavel")
    assert {r.office for r in only_bavel} == {"bavel"}
    assert scorecard(conn, catalog, start="2999-01-01") == []
    table = score_table(scorecard(conn, catalog), catalog)
    assert table[0]["quality mean"] is not None


def test_ivr_report_terminal_csv_and_json(known_answers, monkeypatch):
    monkeypatch.setenv("IVR_DATABASE", str(known_answers.database))
    monkeypatch.setenv("IVR_CATALOG", str(ROOT / "catalog.yaml"))
    runner = CliRunner()
    table = runner.invoke(cli, ["report"])
    assert table.exit_code == 0, table.output
    assert "barber-2-4-chairs" in table.output and "gender=woman" in table.output
    exported = runner.invoke(cli, ["report", "--csv"])
    lines = exported.output.strip().splitlines()
    assert lines[0].startswith("reference,office,service") and len(lines) == 1 + 4 * len(KNOWN)
    as_json = json.loads(runner.invoke(cli, ["report", "--json", "--office", "bavel"]).output)
    assert {row["office"] for row in as_json} == {"bavel"} and len(as_json) == 4
    for output in (table.output, exported.output):
        assert "+855" not in output


def test_each_caller_hears_their_own_reference(twilio, settings):
    """Menus are kept and served again, but the thanks (with a stored reference) never is."""
    heard = []
    for sid in ("CA" + "a" * 32, "CA" + "b" * 32):
        call = to_survey_by_code(Caller(twilio, sid=sid).start("2"))
        call.press("3").press("3").press("2").press("9").press("2")
        heard.append(call.heard())
        call.press("1")  # hear it again: still their own
        heard[-1] += " | " + call.heard()
    references = [r for (r,) in db_rows(settings, "SELECT reference FROM feedback ORDER BY id")]
    assert len(set(references)) == 2
    for text, other in ((heard[0], references[1]), (heard[1], references[0])):
        assert " ".join(other) not in text
    for text, own in zip(heard, references, strict=True):
        first, again = text.split(" | ")
        assert " ".join(own) in first and " ".join(own) in again


def test_the_same_keys_from_several_callers_are_stored_for_each(twilio, settings):
    """Menu steps are kept and served again, but pressing an answer is never a kept step:
    later callers' identical answers are stored too, and a wrong key still re-asks."""
    sids = ["CA" + c * 32 for c in "cde"]
    for sid in sids:
        call = to_survey_by_code(Caller(twilio, sid=sid).start("2"))
        call.press("7")  # not on the 1-5 scale
        assert "quality" in call.heard()
        call.press("4").press("3").press("2").press("9").press("2")
    stored = db_rows(settings, "SELECT f.call_sid, a.question, a.value FROM answers a "
                               "JOIN feedback f ON f.id = a.feedback_id ORDER BY 1, 2")
    assert len(stored) == 4 * len(sids) and {sid for sid, _, _ in stored} == set(sids)
    assert {(q, v) for _, q, v in stored} == {("quality", "4"), ("timeliness", "3"),
                                               ("unofficial-payment", "no"),
                                               ("gender", "skipped")}
