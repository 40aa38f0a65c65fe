"""What an admin user notices on the pages themselves: CSV cells that cannot attack a
spreadsheet, free text marked as personal data, Cambodia's days and months, the cases list
in pages, refusals that say why, and the wording complete in both languages."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from ivr.admin.access import ROLES
from ivr.admin.scorecards import KNOWN_GROUPS, KNOWN_QUESTIONS
from ivr.admin.web import CASE_KINDS, LANGS, csv_cell
from ivr.store import CASE_STATUSES
from tests.support import ROOT, page_tables, rate

TRANSLATIONS = ROOT / "ivr" / "translations"


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


@pytest.fixture
def case_of(admin_app):
    store = admin_app.extensions["ivr"].store

    def make(note: str = "", office: str = "poipet", when: str = "") -> str:
        number = store.db.execute("SELECT count(*) FROM recordings").fetchone()[0]
        reference = store.save_recording(
            sid=f"CA{number}", caller="+85510000000", kind="complaint", lang="km",
            office=office, service="", topic="other", recording_sid=f"RE{number}",
            recording_url=f"https://api.twilio.com/x/Recordings/RE{number}", duration_s=9)
        if note:
            store.set_case_status(reference, "reviewed", note)
        if when:
            store.db.execute("UPDATE recordings SET created_at = ? WHERE reference = ?",
                             [when, reference])
        return reference
    return make


@pytest.mark.parametrize("attack", ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1",
                                    "-2+3", "@SUM(A1)", "\tcmd", "\r=1"])
def test_a_note_that_looks_like_a_formula_stays_text_in_the_csv(admin, case_of, attack):
    case_of(attack)
    (header, row) = rows_of(admin.get("/admin/export/cases/cases.csv?lang=en"))
    note = row[header.index("Note [personal data]")]
    assert note == "'" + attack
    assert admin.get("/admin/cases?lang=en").get_data(as_text=True).count(
        "[personal data]") == 1  # the page's header says it too


def test_numbers_and_plain_text_are_left_alone():
    assert [csv_cell(v) for v in (-3, 2.5, 0, None, "Ou Chrov", "ក្រឡាញ់", "a=b")] == [
        "-3", "2.5", "0", "", "Ou Chrov", "ក្រឡាញ់", "a=b"]


def test_days_and_months_are_cambodias(admin_app, admin, case_of):
    """00:30 on 1 March in Phnom Penh is 17:30 UTC on 28 February: the rating is March's,
    the case was received on 1 March, and a filter for 1 March finds both."""
    store = admin_app.extensions["ivr"].store
    rate(store, "CA1", "poipet", "barber-2-4-chairs", quality="4")
    store.db.execute("UPDATE feedback SET created_at = '2026-02-28T17:30:00+00:00'")
    reference = case_of(when="2026-02-28T17:30:00+00:00")
    card = admin.get("/admin/scorecard?lang=en").get_data(as_text=True)
    months = page_tables(card)["months"][1:]
    assert [row[:2] for row in months] == [["2026-03", "Everyone"], ["2026-03", "Did not say"]]
    listed = page_tables(admin.get("/admin/cases?lang=en").get_data(as_text=True))["cases"]
    assert listed[0][1] == "Received (Cambodia time)"
    assert listed[1][:2] == [reference, "2026-03-01 00:30"]
    march = admin.get("/admin/cases?from=2026-03-01&to=2026-03-01").get_data(as_text=True)
    assert reference in march
    february = admin.get("/admin/cases?to=2026-02-28").get_data(as_text=True)
    assert reference not in february
    assert "Asia/Phnom_Penh" in card
    only = admin.get("/admin/scorecard?lang=en&from=2026-03-01&to=2026-03-01")
    assert page_tables(only.get_data(as_text=True))["offices"][1][2] == "1"


def test_the_cases_list_comes_in_pages_and_the_csv_has_every_case(admin, case_of):
    made = [case_of() for _ in range(120)]
    first = admin.get("/admin/cases?lang=en").get_data(as_text=True)
    assert len(page_tables(first)["cases"]) == 1 + 50
    assert "Rows 1 to 50 of 120" in first and "Page 1 of 3" in first
    seen = []
    url = "/admin/cases?lang=en"
    while url:
        page = admin.get(url).get_data(as_text=True)
        seen += [row[0] for row in page_tables(page)["cases"][1:]]
        found = re.search(r'<a rel="next" href="([^"]+)"', page)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert sorted(seen) == sorted(made) and len(seen) == 120
    assert len(rows_of(admin.get("/admin/export/cases/cases.csv"))) == 121
    assert len(admin.get("/admin/cases?page=2").data) < len(admin.get("/admin/cases").data) * 2


@pytest.mark.parametrize(("url", "code", "says"), [
    ("/admin/cases?page=0&lang=en", 400, "The page number must be a whole number"),
    ("/admin/cases?page=two&lang=en", 400, "The page number must be a whole number"),
    ("/admin/cases?page=9&lang=en", 404, "There is no page 9: the last is 1."),
    ("/admin/cases?page=99999999999999999999999&lang=en", 404, "the last is 1."),
    ("/admin/audit?page=99999999999999999999999&lang=en", 404, "the last is 1."),
    ("/admin/export/cases/cases.csv?page=2&lang=en", 200, "Reference"),
    ("/admin/export/nowhere/x.csv?lang=en", 403, "You may not open this page"),
    ("/admin/cases/12345x?lang=en", 404, "nothing you may see"),
])
def test_bad_input_is_refused_with_a_clear_message(admin, url, code, says):
    response = admin.get(url)
    assert response.status_code == code
    assert says in response.get_data(as_text=True)


def catalogue(lang: str):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f)


def used_keys() -> set[str]:
    """Every key the templates and the admin code ask for by a literal name."""
    keys = set()
    for path in [*Path(ROOT / "ivr" / "templates" / "admin").glob("*.html"),
                 *Path(ROOT / "ivr" / "admin").glob("*.py")]:
        text = path.read_text()
        keys |= set(re.findall(r"""\bt\(\s*["']([a-z][\w.-]+)["']""", text))
        keys |= set(re.findall(r"""deny\(\d+, ["']([a-z][\w.-]+)["']""", text))
        keys |= set(re.findall(r"""AccountError\(["']([a-z][\w.-]+)["']""", text))
    keys = {k for k in keys if not k.endswith(".")}  # f"kind.{...}": the families below
    keys |= {f"kind.{k}" for k in CASE_KINDS} | {f"status.{s}" for s in CASE_STATUSES}
    keys |= {f"role.{r}" for r in ROLES} | {f"lang.{lang}" for lang in LANGS}
    keys |= {f"error.{code}" for code in (400, 403, 404, 405, 410, 429, 500, 502, 503)}
    keys |= {f"question.{q}" for q in KNOWN_QUESTIONS} | {f"group.{g}" for g in KNOWN_GROUPS}
    return keys


def test_every_label_is_in_both_languages_and_compiled():
    english, khmer = catalogue("en"), catalogue("km")
    ids = {m.id for m in english if m.id}
    assert ids == {m.id for m in khmer if m.id}
    assert used_keys() - ids == set()
    assert len(used_keys()) > 100
    for lang, po in (("en", english), ("km", khmer)):
        with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo", "rb") as f:
            compiled = {m.id: m.string for m in read_mo(f) if m.id}
        assert compiled == {m.id: m.string for m in po if m.id}, \
            f"{lang}: run `pybabel compile -d ivr/translations`"
        for message in po:
            if message.id:
                assert message.string, (lang, message.id)
                assert re.findall(r"%\((\w+)\)s", message.string) == re.findall(
                    r"%\((\w+)\)s", english[message.id].string), (lang, message.id)
    assert all(re.search("[\u1780-\u17ff]", m.string) for m in khmer
               if m.id and m.id not in ("lang.en", "signed_in_as", "col.share"))
