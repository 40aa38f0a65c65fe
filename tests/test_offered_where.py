"""Services where they are offered, and the office said back once chosen (issue 12), through
the carrier simulator on both carriers' rules: a service limited to one office is neither
offered nor rated at another; a provincial service is rated at its province's unit; after a
code or a district choice the line names the office and offers a way back; a closed
Ombudsman line says when it opens again."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from ivr import create_app, tree
from ivr.catalog import load_catalog
from scripts.measure_keys import flow_for, presses_from
from tests.caller import Caller
from tests.support import ROOT, Twilio, with_ombudsman

CARRIERS = ["twilio", "somleng"]
LAND = "a transfer of unregistered town land"  # Ou Chrov's card: given only there
CHOSE_OU_CHROV = "You chose Ou Chrov District. To continue, press 1, or wait. " \
                 "To choose another office, press 2."


def db_rows(settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute(sql).fetchall()


def rated_at(settings) -> list[tuple[str, str]]:
    return db_rows(settings, "SELECT office_id, service_id FROM feedback")


# --- the office said back, and the way back -----------------------------------------------


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("purpose", ["2", "3", "41"])  # rate, Ombudsman, complaint (topic 1)
def test_a_keyed_code_names_the_office_and_offers_a_way_back(twilio, carrier, purpose):
    call = Caller(twilio, carrier=carrier).start("2")
    for key in purpose:
        call.press(key)
    call.press("1").press("0105#")
    assert CHOSE_OU_CHROV in call.heard()
    call.press("2")  # another office: how to choose it, again
    assert "Which office is it about?" in call.heard()
    call.press("1").press("0110#")
    assert "You chose Paoy Paet Municipality." in call.heard()
    call.press("*")  # back one step: the code, again
    assert "Key in the district code" in call.heard()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_code_keyed_slowly_names_the_office_too(twilio, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1").press("0105@2.5")
    assert CHOSE_OU_CHROV in call.heard()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_district_chosen_by_province_is_named_and_star_goes_back_to_the_list(twilio,
                                                                              carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("2")
    call.press("2").press("4")  # Battambang, its fourth district
    assert "You chose Bavel District. To continue" in call.heard()
    call.press("*")
    assert "Choose your district." in call.heard() and "For Bavel District, press 4" \
        in call.heard()
    call.press("9").press("7")  # the second page: the provincial unit, by its name
    assert "You chose Battambang Province One Window Service Unit." in call.heard()
    call.press("2")
    assert "Which office is it about?" in call.heard()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_waiting_or_one_goes_on_to_what_the_caller_came_for(twilio, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1").press("0105#")
    call.silence()
    assert "Which type of service did you receive?" in call.heard()
    call = Caller(twilio, carrier=carrier).start("2").press("4").press("1").press("1")
    call.press("0105#").press("1")
    assert "After the tone" in call.heard()


# --- services where they are given ----------------------------------------------------------


@pytest.mark.parametrize("carrier", CARRIERS)
def test_ou_chrovs_land_card_is_offered_for_rating_only_at_ou_chrov(twilio, settings,
                                                                    carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1").press("0110#")
    call.press("1")  # Poipet: no transport, no land card
    heard = call.heard()
    assert "For building and land, press 4." in heard and "driving licences" not in heard
    call.press("4")
    assert "construction permit for a villa, press 1" in call.heard() and LAND not in call.heard()
    call.press("2")  # where the land card is at Ou Chrov: not on this menu
    assert "that key is not on this menu" in call.heard()

    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1").press("0105#")
    call.press("1").press("4")
    assert "258D, press 2." in call.heard() and LAND in call.heard()
    call.press("2").press("4").press("4").press("2").press("9").silence()
    assert rated_at(settings) == [("ou-chrov", "transfer-unregistered-land-town")]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_the_land_card_is_said_to_be_ou_chrovs_and_rated_there_without_a_choice(
        twilio, settings, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("1").press("4").press("2")
    assert "given only at the Ou Chrov District One Window Service Office" in call.heard()
    call.press("3")  # its size: 500 square metres or more (unpublished)
    call.press("2")  # rate it: there is one office only
    assert "This service is given only at the Ou Chrov District" in call.heard()
    assert "Which office" not in call.heard()
    call.silence()  # waiting goes on
    assert "How satisfied are you with the quality" in call.heard()
    call.press("5").press("5").press("2").press("9").silence()
    assert rated_at(settings) == [("ou-chrov", "transfer-unregistered-land-town")]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_provincial_service_is_rated_at_the_provincial_unit(twilio, settings, carrier):
    """From the driving licence's facts: a district code leads to its province's unit, and
    the provinces menu leads straight to the unit (no districts to choose from)."""
    call = Caller(twilio, carrier=carrier).start("2").press("1").press("5").press("1")
    assert "provincial one window unit" in call.heard()
    call.press("2").press("1").press("0204#")  # Bavel's code
    assert "You chose Battambang Province One Window Service Unit." in call.heard()
    assert "Bavel" not in call.heard()
    call.press("1").press("4").press("4").press("2").press("9").silence()
    call = Caller(twilio, carrier=carrier).start("2").press("1").press("5").press("1")
    call.press("2").press("2").press("2")  # choose by province: Battambang
    assert "Choose your district" not in call.heard() and "You chose" in call.heard()
    call.press("1").press("3").press("3").press("2").press("9").silence()
    assert rated_at(settings) == [("battambang-province", "licence-a-exam")] * 2


@pytest.mark.parametrize("carrier", CARRIERS)
def test_at_a_provincial_unit_only_provincial_services_are_listed(twilio, carrier):
    call = Caller(twilio, carrier=carrier).start("2").press("2").press("1").press("0200#")
    call.press("1")
    heard = call.heard()
    assert "For driving licences, press 2." in heard  # the menu's keys follow the list
    assert "business licences" not in heard and "building and land" not in heard
    call.press("1")
    assert "business permit" in call.heard() and "business operating certificate" \
        not in call.heard()


def test_a_code_of_an_office_that_does_not_give_the_service_is_refused(tmp_path, settings):
    """A district service limited to two offices: another district's code is refused."""
    text = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    text = text.replace("offered_at: [ou-chrov]", "offered_at: [ou-chrov, poipet]")
    path = tmp_path / "two.yaml"
    path.write_text(text, encoding="utf-8")
    line = Twilio(create_app(settings.__class__(**{**settings.__dict__, "catalog": path})))
    call = Caller(line).start("2").press("1").press("4").press("2").press("3").press("2")
    assert "Which office is it about?" in call.heard()
    call.press("1").press("0204#")
    assert "that office does not give this service" in call.heard()
    call.press("0110#")
    assert "You chose Paoy Paet Municipality." in call.heard()
    call = Caller(line).start("2").press("1").press("4").press("2").press("3").press("2")
    call.press("2").press("1")  # Banteay Meanchey: Ou Chrov and Poipet only
    assert "For Ou Chrov District, press 1. For Paoy Paet Municipality, press 2." in call.heard()


def test_complaints_and_the_ombudsman_still_reach_every_office():
    flow = flow_for(load_catalog(ROOT / "catalog.yaml"), ROOT / "prompts")
    every = {o.id for o in flow.catalog.offices}
    for provinces in (tree.COMPLAINT_PROVINCES, tree.OMBUDSMAN_PROVINCES, tree.RATE_PROVINCES):
        start = flow.menu(flow_position(provinces.path(), topic="other"))
        assert start is not None
        found = presses_from(flow, flow_position(provinces.path(), topic="other"),
                             lambda pos: (pos.office or None, bool(pos.office)))
        assert set(found) == every, provinces


def flow_position(node: str, **parts: str):
    from ivr.steps import Position
    return Position("km", node, **parts)


# --- a closed Ombudsman line: when it opens -------------------------------------------------

HOURS = '{days: [mon, tue, wed, thu, fri], open: "07:30", close: "17:00"}'


@pytest.fixture
def staffed(settings, tmp_path):
    """Ou Chrov's Ombudsman on weekdays 07:30-17:00; Tuesday 24 November 2026 a holiday."""
    text = with_ombudsman((ROOT / "catalog.yaml").read_text(encoding="utf-8"), hours=HOURS)
    text = text.replace("public_holidays: []", "public_holidays: [2026-11-24]")
    path = tmp_path / "staffed.yaml"
    path.write_text(text, encoding="utf-8")
    return settings.__class__(**{**settings.__dict__, "catalog": path})


def at(settings, moment: datetime) -> Twilio:
    app = create_app(settings)
    app.extensions["ivr"].clock = lambda: moment
    return Twilio(app)


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("moment, says", [
    # times in UTC; Phnom Penh is 7 hours ahead
    (datetime(2026, 11, 23, 11, 0, tzinfo=timezone.utc),  # Monday 18:00; Tuesday a holiday
     "It opens again on Wednesday at 7:30 in the morning."),
    (datetime(2026, 11, 22, 23, 0, tzinfo=timezone.utc),  # Monday 06:00
     "It opens again today at 7:30 in the morning."),
    (datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc),  # Wednesday 19:00
     "It opens again tomorrow at 7:30 in the morning."),
    (datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc),  # Saturday 10:00
     "It opens again on Monday at 7:30 in the morning."),
])
def test_a_closed_ombudsman_line_says_when_it_opens(staffed, carrier, moment, says):
    call = Caller(at(staffed, moment), carrier=carrier).start("2")
    call.press("3").press("1").press("0105#").press("1")
    assert call.doc.find("Dial") is None
    assert f"The Ombudsman's office is closed now. {says}" in call.heard()
    assert "leave a voice message" in call.heard()
    call.press("0")  # heard again: the same
    assert says in call.heard()


def test_no_step_rates_a_service_where_it_is_not_given():
    """Not even at an edited URL: the survey, the comment and the thanks of a service at an
    office that does not give it are no step of the line (the caller is sent to the main
    menu), while at an office that gives it they are."""
    flow = flow_for(load_catalog(ROOT / "catalog.yaml"), ROOT / "prompts")
    for node in (tree.RATE_QUESTION.path(number="1"), tree.RATE_COMMENT.path()):
        for office, service, given in (
                ("poipet", "transfer-unregistered-land-town", False),
                ("ou-chrov", "transfer-unregistered-land-town", True),
                ("bavel", "licence-a-exam", False),
                ("battambang-province", "licence-a-exam", True),
                ("battambang-province", "barber-2-4-chairs", False)):
            pos = flow_position(node, office=office, service=service)
            assert (flow.menu(pos) is not None) == given, (node, office, service)
