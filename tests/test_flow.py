"""The call flow as plain functions: keypad conventions, limits, paging, fee tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from ivr.audio import AudioLibrary
from ivr.catalog import load_catalog
from ivr.flow import MAX_REPROMPTS, CallFlow, Position
from ivr.prompts import PromptBook, load_wording
from tests.support import MINIMAL, ROOT


class Urls:
    def step(self, pos: Position, noinput: bool = False, gather: bool = False) -> str:
        return (f"/{pos.lang}/{pos.node}?p={pos.page}&a={pos.attempt}"
                + (f"&k={pos.keyed}" if pos.keyed else "") + ("&g=1" if gather else "")
                + ("&x" if noinput else ""))

    def audio(self, file: str) -> str:
        return f"/audio/{file}"

    def recording_callback(self, pos: Position, kind: str) -> str:
        return f"/recording?kind={kind}"


def make_flow(catalog_path: Path, tmp_path: Path) -> CallFlow:
    catalog = load_catalog(catalog_path)
    book = PromptBook(catalog, load_wording(ROOT / "prompts", catalog.languages))
    return CallFlow(catalog, book, AudioLibrary(tmp_path / "audio"), Urls())


@pytest.fixture
def flow(tmp_path) -> CallFlow:
    return make_flow(ROOT / "catalog.yaml", tmp_path)


def said(response) -> list[str]:
    return [e.text for e in etree.fromstring(str(response).encode()).iter("Say")]


def action(response) -> str:
    return etree.fromstring(str(response).encode()).find("Gather").get("action")


def test_main_menu_offers_the_five_branches(flow):
    outcome = flow.answer(Position("en", "main"), None)
    text = " ".join(said(outcome.response))
    for digit in "12345":
        assert f"press {digit}." in text
    assert "press 6" not in text
    assert action(flow.answer(Position("en", "main"), "2").response).startswith("/en/rate/office")
    assert action(flow.answer(Position("en", "main"), "3").response).startswith(
        "/en/ombudsman/office")
    assert action(flow.answer(Position("en", "main"), "4").response).startswith("/en/complaint")


def test_browse_to_a_service_and_hear_its_facts(flow):
    step = flow.answer(Position("en", "main"), "1")
    assert action(step.response).startswith("/en/categories")
    step = flow.answer(Position("en", "categories"), "3")  # rooms for rent
    step = flow.answer(Position("en", "category/accommodation"), "1")
    text = " ".join(said(step.response))
    assert "identity card or passport" in text
    assert "5,000 riel per room" in text and "28 working days" in text
    assert action(step.response).startswith("/en/service/rental-rooms")


def test_khmer_fee_and_days_are_words(flow):
    text = flow.book.text("service.rental-rooms.info", "km")
    assert "ប្រាំពាន់រៀល" in text and "ម្ភៃប្រាំបីថ្ងៃធ្វើការ" in text
    assert "5000" not in text and "28" not in text


def test_fee_table_is_a_short_menu(flow):
    pos = Position("en", "service/construction-permit-villa")
    first = " ".join(said(flow.answer(pos, None).response))
    assert "Where will you build?" in first and "420,000" not in first
    where = flow.answer(pos, "2")  # in a built-up area
    assert action(where.response).startswith("/en/service/construction-permit-villa/fee/2?")
    size = flow.answer(Position("en", "service/construction-permit-villa/fee/2"), "4")
    assert any("1,400,000 riel" in t for t in said(size.response))
    unpublished = flow.answer(Position("en", "service/construction-permit-villa/fee/2"), "5")
    assert any("not published" in t for t in said(unpublished.response))
    back = flow.answer(Position("en", "service/construction-permit-villa/fee/2.4"), "*")
    assert action(back.response).startswith("/en/service/construction-permit-villa/fee/2?")


def test_keypad_conventions(flow):
    pos = Position("en", "category/transport")
    assert flow.answer(pos, "0").event == "repeat"
    assert action(flow.answer(pos, "0").response).startswith("/en/category/transport")
    assert action(flow.answer(pos, "*").response).startswith("/en/categories")
    assert action(flow.answer(pos, "#").response).startswith("/en/main")
    service = Position("en", "service/licence-b-exam")
    assert action(flow.answer(service, "*").response).startswith("/en/category/transport")
    assert flow.answer(service, "1").event == "choice"  # hear it again


@pytest.mark.parametrize("kind, digits, noinput", [("invalid", "7", False),
                                                    ("noinput", None, True)])
def test_two_reprompts_then_goodbye(flow, kind, digits, noinput):
    pos = Position("en", "categories")
    for attempt in range(MAX_REPROMPTS):
        outcome = flow.answer(Position("en", "categories", attempt=attempt), digits, noinput)
        assert outcome.event == kind
        assert f"a={attempt + 1}" in action(outcome.response)
        assert ("Sorry, that key is not on this menu." if kind == "invalid"
                else "Sorry, we did not hear a key.") in said(outcome.response)
    last = flow.answer(Position("en", "categories", attempt=MAX_REPROMPTS), digits, noinput)
    doc = etree.fromstring(str(last.response).encode())
    assert last.event == f"{kind}-goodbye" and doc.find("Hangup") is not None
    assert "Thank you for calling. Goodbye." in said(last.response)
    assert pos.attempt == 0


def test_an_office_code_is_read_back_and_its_length_said_in_khmer_words(flow):
    outcome = flow.answer(Position("en", "rate/office/code"), "99")
    assert outcome.event == "invalid" and "a=1" in action(outcome.response)
    assert said(outcome.response)[:6] == [
        "Sorry, no office has that code.", "You keyed", "9", "9",
        "A district code has 4 digits.", "Key in the district code, then press hash."]
    assert flow.book.text("office.code.keyed", "km") == "អ្នកបានចុច"
    assert flow.book.text("office.code.length", "km") == "លេខកូដក្រុង ស្រុក ឬខណ្ឌ មាន បួន ខ្ទង់។"
    assert "wall" not in flow.book.text("office.how", "en")


def test_a_valid_key_resets_the_attempts(flow):
    outcome = flow.answer(Position("en", "categories", attempt=2), "1")
    assert "a=" not in action(outcome.response).replace("a=0", "")


def test_silence_at_the_greeting_means_khmer(flow):
    outcome = flow.answer(Position("km", "welcome"), None, noinput=True)
    assert action(outcome.response).startswith("/km/main")


@pytest.mark.parametrize("digits", ["12", "abc", "ញ", "1#", " ", "99999999999"])
def test_junk_digits_are_invalid_keys(flow, digits):
    assert flow.answer(Position("en", "main"), digits).event == "invalid"


@pytest.mark.parametrize("node", ["service/nope", "category/nope", "nowhere", "main/extra",
                                  "service/construction-permit-villa/fee/9",
                                  "service/construction-permit-villa/fee/x.1",
                                  "service/licence-a-exam/fee/1", "categories/x"])
def test_unknown_positions_lead_back_to_the_main_menu(flow, node):
    outcome = flow.answer(Position("en", node), "1")
    assert outcome.event == "unknown" and action(outcome.response).startswith("/en/main")


def test_unknown_language_falls_back_to_khmer(flow):
    assert action(flow.answer(Position("xx", "main"), None).response).startswith("/km/main")


def test_long_lists_page_with_9(tmp_path):
    service = MINIMAL[MINIMAL.index("  - id: copy"):MINIMAL.index("  - id: permit")]
    many = "".join(service.replace("id: copy", f"id: copy-{i}")
                   .replace("a copy}", f"copy {i}}}") for i in range(12))
    text = MINIMAL.replace(service, many)
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    flow = make_flow(path, tmp_path)
    first = flow.answer(Position("en", "category/papers"), None)
    texts = said(first.response)
    assert "For copy 7, press 8." in texts and "For more choices, press 9." in texts
    assert not any("copy 8," in t for t in texts)
    second = flow.answer(Position("en", "category/papers"), "9")
    texts = said(second.response)
    assert "For copy 8, press 1." in texts and "For copy 11, press 4." in texts
    assert "For more choices, press 9." not in texts
    page2 = Position("en", "category/papers", page=2)
    chosen = flow.answer(page2, "4")
    assert action(chosen.response).startswith("/en/service/copy-11")
    assert flow.answer(page2, "9").event == "invalid"  # no third page
    assert action(flow.answer(page2, "*").response).startswith("/en/category/papers?p=1")


def test_kept_menus_and_steps_match_fresh_ones_and_stay_bounded(tmp_path, monkeypatch):
    """A worker keeps rendered menus and menu steps; what it serves again is what it would
    render anew, and the store never grows past its bound (junk positions included)."""
    import ivr.flow

    fresh = make_flow(ROOT / "catalog.yaml", tmp_path)
    kept = make_flow(ROOT / "catalog.yaml", tmp_path)
    kept.urls.key = "test"
    kept.cache = {}
    steps = [(Position("en", "main"), d) for d in ("1", "2", "3", "4", "0", "*", "#", "7")]
    steps += [(Position("km", "categories"), "2"), (Position("en", "category/business"), "1")]
    for _ in range(3):  # the first render, then served from what was kept
        for pos, digits in steps:
            assert str(kept.answer(pos, digits).response) == str(fresh.answer(pos, digits).response)
    assert kept.cache

    monkeypatch.setattr(ivr.flow, "CACHE_SIZE", 50)
    for i in range(300):
        for _ in range(2):
            kept.answer(Position("en", f"category/nothing-{i}"), "1")
        assert len(kept.cache) <= 50
