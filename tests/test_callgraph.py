"""Walk the whole call graph through the carrier simulator, under Twilio's and Somleng's rules:
every key of a handset at every menu, every recording and dial outcome (tests/walk.py).

No dead end, no fault, schema-valid TwiML everywhere; from every one-key menu '#' reaches the
main menu and '*' goes back one step; every service's facts within four key presses of the
greeting (fee tables add one or two); an office code keyed slowly still reaches the office.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from ivr import create_app, tree
from ivr.catalog import FeeChoice, load_catalog
from tests.support import ROOT, TOKEN, TwimlSchemas, with_ombudsman
from tests.walk import Walk, walk

MAX_PRESSES = 4
CARRIERS = ["twilio", "somleng"]
# The district menus walked: a province whose list pages (Battambang), the capital's khans
# (Phnom Penh, also two pages) and a short one-page list (Kep). Every office of every province
# is reached through the same menus by scripts/measure_keys.py (test_every_office_is_reached).
PROVINCES = {"02", "12", "23"}


def sample_codes(catalog) -> list[str]:
    """An office code of each kind (district, municipality, khan, province, capital), the
    first and the last: the codes are looked up alike, so keying all 235 shows no more."""
    picked = {o.kind: o.code for o in reversed(catalog.offices)}
    return sorted({*picked.values(), catalog.offices[0].code, catalog.offices[-1].code})


@pytest.fixture(scope="module")
def schema() -> TwimlSchemas:
    return TwimlSchemas()


def apology_heard(app):
    """The words a caller hears only after a fault in a webhook, in every language."""
    book = app.extensions["ivr"].book
    apologies = {book.text("error.apology", lang) for lang in book.catalog.languages}
    return lambda heard: [text for text in heard if text in apologies]


class Faults(logging.Handler):
    """Exceptions the webhooks logged (the caller only heard an apology): each is a failure."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}\n{record.exc_text or ''}")


@pytest.fixture
def faults():
    handler = Faults()
    logging.getLogger("ivr").addHandler(handler)
    yield handler
    logging.getLogger("ivr").removeHandler(handler)


def assert_sound(found: Walk, faults: Faults) -> None:
    """What every walk must show, whatever the catalogue."""
    assert not faults.records, faults.records[:3]
    assert not found.faults, found.faults[:3]
    assert not found.dead_ends, found.dead_ends[:3]
    one_key = [node for node, info in found.menus.items() if info.num_digits == 1]
    assert len(one_key) > 20
    wrong = []
    for node in one_key:
        lang = node.split("/")[0]
        if found.after_hash.get(node) != f"{lang}/main":
            wrong.append(f"# at {node} -> {found.after_hash.get(node)}")
        if node.split("?")[0] in (f"{lang}/main", "km/welcome"):
            continue  # nothing before them: '*' repeats
        back = found.after_star.get(node)
        if back is None or back == node or back not in found.ancestors(node):
            wrong.append(f"* at {node} -> {back}")
    assert not wrong, wrong


@pytest.mark.parametrize("carrier", CARRIERS)
def test_whole_call_graph(app, schema, faults, carrier):
    catalog = load_catalog(ROOT / "catalog.yaml")
    found = walk(app, TOKEN, carrier, sample_codes(catalog), schema,
                 apology_heard(app), paced_code=catalog.offices[-1].code, provinces=PROVINCES)
    print(found.summary())
    assert_sound(found, faults)
    reached = found.reached
    assert found.skipped_provinces == {p.code for p in catalog.provinces()} - PROVINCES
    for lang in catalog.languages:  # every page of the provinces, every district page walked
        pages = -(-len(catalog.provinces()) // 8)
        assert all(f"{lang}/rate/office/provinces" + (f"?p={p}" if p > 1 else "") in reached
                   for p in range(1, pages + 1))
        for code in PROVINCES:
            pages = -(-len(catalog.offices_in(code)) // 8)
            assert all(f"{lang}/rate/office/province/{code}" + (f"?p={p}" if p > 1 else "")
                       in found.menus for p in range(1, pages + 1)), code
    for lang in catalog.languages:
        for service in catalog.services():
            node = f"{lang}/service/{service.id}"
            assert node in reached, f"{node} cannot be reached"
            assert reached[node] <= MAX_PRESSES, (node, reached[node])
            if isinstance(service.fee, FeeChoice):  # each fee in the table: one or two more
                for i, option in enumerate(service.fee.options, start=1):
                    depth = 2 if isinstance(option.fee, FeeChoice) else 1
                    leaf = f"{node}/fee/{i}" + (".1" if depth == 2 else "")
                    assert reached[leaf] <= MAX_PRESSES + depth, (leaf, reached[leaf])
        # the other branches: rating, complaint, the Ombudsman's message and case numbers
        for branch in ("rate/q/1", "rate/thanks", "complaint/office", "ombudsman/away/unlisted"):
            assert f"{lang}/{branch}" in reached, branch
        assert any(n.startswith(f"{lang}/case/") for n in reached)
    assert found.hangups > 0 and found.records > 0
    assert found.dials == 0  # no Ombudsman number is published: the line never dials


def test_call_graph_with_an_ombudsman_on_duty(settings, schema, faults, tmp_path):
    """With a real number and open hours the line dials; every dial outcome is handled."""
    text = with_ombudsman((ROOT / "catalog.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    app = create_app(settings, catalog=path)
    # Monday 2026-11-23 10:00 in Phnom Penh
    app.extensions["ivr"].clock = lambda: datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
    catalog = load_catalog(path)
    found = walk(app, TOKEN, "somleng", [catalog.office("ou-chrov").code], schema,
                 apology_heard(app), provinces={"01"})
    assert_sound(found, faults)
    assert found.dials > 0
    for reason in ("busy", "no-answer", "failed", "canceled"):
        assert any(n.endswith(f"ombudsman/away/{reason}") for n in found.reached), reason


def test_a_broken_menu_builder_fails_the_walk(app, schema, faults, monkeypatch):
    """A fault the webhooks hide from the caller (a mistyped prompt key in the survey) is a
    failure of the walk, not a green run."""
    real = tree.RATE_QUESTION.build

    def broken(flow, pos, number):
        menu = real(flow, pos, number)
        if menu is not None and number == "2":
            menu.prompts.append("survey.no-such-prompt")
        return menu

    monkeypatch.setattr(tree.RATE_QUESTION, "build", broken)
    app.extensions["ivr"].menus.clear()
    catalog = load_catalog(ROOT / "catalog.yaml")
    found = walk(app, TOKEN, "twilio", [catalog.offices[0].code], schema, apology_heard(app),
                 provinces={"01"}, stop=lambda: bool(faults.records))
    with pytest.raises(AssertionError):
        assert_sound(found, faults)
    assert faults.records or found.faults
