"""The role matrix (README, "Roles"): every /admin route of the URL map, for every role,
about the role's own office and another, gives the documented status; and no page or CSV a
role may open holds another office's data or a field the role may not see. On the demo data
of scripts/seed_demo.py."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import sys
from datetime import datetime, timezone

import pytest
import requests
from lxml import html

from ivr import create_app
from ivr.admin import accounts
from tests.support import PASSWORD, ROOT, FakeProvider, csrf_of, log_in, page_tables

sys.path.insert(0, str(ROOT / "scripts"))
from seed_demo import NOTES, seed  # noqa: E402

ACCOUNT = "AC" + "0123456789abcdef" * 2
OTHER = "battambang"  # an office no scoped test account has
OWN = {"admin": "poipet", "ombudsman": "poipet", "office": "ou-chrov", "analyst": "poipet"}
NAMES = {"admin": "admin", "ombudsman": "ombud-poipet", "office": "chief-ouchrov",
         "analyst": "analyst"}
ROLE_PASSWORD = "a long role password"
SCOPED = ("ombudsman", "office")
RECORDING_URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE"


def expected(endpoint: str, method: str, role: str, where: str, export: str = "") -> int:
    """The documented matrix: the status a role gets at a route, about its own office's
    data (`where` = "own") or another office's ("other")."""
    hidden = 404 if role in SCOPED and where == "other" else None
    cases = ("admin", "ombudsman")
    if endpoint == "admin.export":
        endpoint = {"scorecard": "admin.scorecard", "office": "admin.print_office",
                    "calls": "admin.calls", "cases": "admin.cases",
                    "audit": "admin.audit"}[export]
    table = {
        "admin.login": 200 if method == "GET" else 400,  # POST: no user name given
        "admin.logout": 302,
        "admin.index": 302,
        "admin.scorecard": hidden or 200,
        "admin.print_office": hidden or 200,
        "admin.calls": 403 if role == "ombudsman" else hidden or 200,
        "admin.cases": 403 if role not in cases else hidden or 200,
        "admin.case": 403 if role not in cases else hidden or 200,
        "admin.case_status": 403 if role not in cases else hidden or 302,
        "admin.recording": 403 if role not in cases else hidden or 200,
        "admin.followup_recording": 403 if role not in cases else 404,  # no such follow-up
        "admin.reply_audio": 403 if role not in cases else 404,  # no such reply
        "admin.case_reply": 403 if role not in cases else hidden or 400,  # nothing chosen
        "admin.users": 200 if role == "admin" else 403,
        "admin.audit": 200 if role == "admin" else 403,
        "admin.user_add": 400 if role == "admin" else 403,  # an empty form: refused, says why
        "admin.user_disable": 404 if role == "admin" else 403,  # no such account
        "admin.user_password": 404 if role == "admin" else 403,
        "admin.visitors": 200 if role in ("admin", "office") else 403,
        "admin.visitor_add": 400 if role in ("admin", "office") else 403,  # no consent given
        # the voice studio: administrators only (an empty upload or import: 400, says why)
        "admin.voice": 200 if role == "admin" else 403,
        "admin.voice_script": 200 if role == "admin" else 403,
        "admin.voice_script_csv": 200 if role == "admin" else 403,
        "admin.voice_upload": 400 if role == "admin" else 403,
        "admin.voice_import": 400 if role == "admin" else 403,
        "admin.voice_remove": 404 if role == "admin" else 403,  # no recording to remove
    }
    return table[endpoint]


EXPORTS = {"scorecard": "offices", "office": "services", "calls": "menus", "cases": "cases",
           "audit": "log"}
FILTERED = {"admin.scorecard", "admin.calls", "admin.cases", "admin.export"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo data, an account per role, and a case of the scoped roles' offices and one
    of another office (with a note, and a recording on the trusted host)."""
    from ivr.config import Settings

    folder = tmp_path_factory.mktemp("roles")
    settings = Settings(auth_token="test-auth-token-0123456789", catalog=ROOT / "catalog.yaml",
                        prompts=ROOT / "prompts", audio_dir=folder / "audio",
                        database=folder / "ivr.db", caller_key=b"test-caller-key")
    app = create_app(settings, admin_password=PASSWORD, twilio_account_sid=ACCOUNT)
    line = app.extensions["ivr"]
    seed(line.store, line.catalog, answers=2000, seed=11, months=5,
         end=datetime(2026, 6, 28, tzinfo=timezone.utc))
    conn = line.store.db.conn
    offices = [o.id for o in line.catalog.offices]
    accounts.add_user(conn, NAMES["ombudsman"], "ombudsman", ["poipet"], ROLE_PASSWORD, offices)
    accounts.add_user(conn, NAMES["office"], "office", ["ou-chrov"], ROLE_PASSWORD, offices)
    accounts.add_user(conn, NAMES["analyst"], "analyst", [], ROLE_PASSWORD, offices)
    references = {}
    for i, office in enumerate(("poipet", "ou-chrov", OTHER)):
        references[office] = line.store.save_recording(
            sid=f"CA{i:032d}", caller="+85510000000", kind="complaint", lang="km",
            office=office, service="", topic="unofficial-fee", recording_sid=f"RE{i}",
            recording_url=RECORDING_URL + f"{i:032d}", duration_s=30)
        line.store.set_case_status(references[office], "reviewed", f"Secret note {office}")
    return app, references


def signed_in(app, role: str):
    client = app.test_client()
    password = PASSWORD if role == "admin" else ROLE_PASSWORD
    response = log_in(client, password, NAMES[role], environ_base={"REMOTE_ADDR": "10.1.1.1"})
    assert response.status_code == 302, role
    return client


def url_for_rule(rule, role: str, where: str, references: dict[str, str],
                 export: str = "") -> str:
    office = OWN[role] if where == "own" else OTHER
    values = {"office_id": office, "reference": references[office], "name": "nobody",
              "item": "999", "lang": "km", "key": "greeting"}
    if rule.endpoint == "admin.export":
        values = {"page": export, "name": EXPORTS[export]}
    url = rule.rule
    for argument in rule.arguments:
        url = re.sub(rf"<(?:[a-z]+:)?{argument}>", values[argument], url)
    if rule.endpoint in FILTERED and export != "audit":
        url += f"?office={office}"
    return url


def test_every_admin_route_for_every_role_and_office(demo, monkeypatch):
    app, references = demo
    provider = FakeProvider()
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send",
                        lambda adapter, request, **kw: provider.send(adapter, request, **kw))
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/admin")]
    endpoints = {r.endpoint for r in rules}
    assert len(endpoints) >= 15
    checked = 0
    for role in NAMES:
        client = signed_in(app, role)
        token = csrf_of(client.get("/admin/login").get_data(as_text=True))
        for rule in sorted(rules, key=lambda r: r.endpoint == "admin.logout"):  # logout last
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                for where in ("own", "other"):
                    for export in (EXPORTS if rule.endpoint == "admin.export" else [""]):
                        url = url_for_rule(rule, role, where, references, export)
                        form = {"csrf": token, "status": "reviewed", "note": "checked"}
                        if rule.endpoint == "admin.logout" and where == "other":
                            continue  # signed out by the first
                        response = client.open(url, method=method, data=form
                                               if method == "POST" else None)
                        want = expected(rule.endpoint, method, role, where, export)
                        assert response.status_code == want, (role, method, url, where)
                        checked += 1
    assert checked >= 4 * 2 * len(endpoints)


def forbidden_words(catalog, role: str) -> list[str]:
    """What a role's pages must never show: other offices' names, notes, recordings."""
    words = []
    if role in SCOPED:
        own = OWN[role]
        for office in catalog.offices:
            if office.id != own:
                words += [office.district["en"], office.district["km"]]
    if role in ("office", "analyst"):
        words += [*NOTES, "Secret note", "/recording"]
    return words


@pytest.mark.parametrize("role", list(NAMES))
def test_no_page_or_csv_shows_what_the_role_may_not_see(demo, role):
    app, references = demo
    line = app.extensions["ivr"]
    client = signed_in(app, role)
    pages = ["/admin/scorecard?lang=en", "/admin/scorecard", "/admin/calls?lang=en",
             "/admin/cases?lang=en", f"/admin/offices/{OWN[role]}/print?lang=en",
             f"/admin/cases/{references[OWN[role]]}?lang=en"]
    seen = 0
    words = [w for w in forbidden_words(line.catalog, role)
             if not (role in SCOPED and w in ("ឫស្សី",))]
    for url in pages:
        response = client.get(url)
        if response.status_code != 200:
            continue
        body = response.get_data(as_text=True)
        for link in html.fromstring(body).xpath("//a[contains(@href, '.csv')]/@href"):
            exported = client.get(link)
            assert exported.status_code == 200, link
            body += exported.get_data(as_text=True)
        own_office = line.catalog.office(OWN[role])
        for word in words:
            if role in SCOPED and word in own_office.district.values():
                continue
            assert word not in body, (role, url, word)
        if role in SCOPED:
            for office, reference in references.items():
                if office != OWN[role]:
                    assert reference not in body, (role, url, office)
        seen += 1
    assert seen >= {"admin": 6, "ombudsman": 4, "office": 3, "analyst": 3}[role]


def test_an_office_chief_sees_only_the_calls_that_rated_the_office(demo):
    app, _ = demo
    client = signed_in(app, "office")
    page = client.get("/admin/calls?lang=en").get_data(as_text=True)
    shown = int(re.search(r"Calls in this period: ([\d,]+)", page).group(1).replace(",", ""))
    with sqlite3.connect(app.extensions["ivr"].settings.database) as conn:
        rated = conn.execute("SELECT count(DISTINCT c.sid) FROM calls c JOIN feedback f ON "
                             "f.call_sid = c.sid WHERE f.office_id = 'ou-chrov'").fetchone()[0]
        everyone = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    assert 0 < shown == rated < everyone
    nodes = [row[1] for row in page_tables(page)["menus"][1:]]
    assert "rate/office/code" in nodes  # no complaint or Ombudsman step ever shows per office
    assert not [n for n in nodes if n.startswith(("complaint", "ombudsman"))]
    rows = list(csv.reader(io.StringIO(client.get(
        "/admin/export/scorecard/offices.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert {row[0] for row in rows[1:] if row[0]} == {"Ou Chrov District"}  # English: chosen above


def test_the_notices_name_exactly_who_may_listen(demo):
    """The complaint and Ombudsman notices promise what the matrix does: administrators and
    the office's Ombudsman listen; an office chief and an analyst cannot."""
    from ivr.admin.access import LISTENERS, may
    from ivr.prompts import load_wording

    assert LISTENERS == {"admin", "ombudsman"}
    assert not may("office", "recording") and not may("analyst", "recording")
    app, _ = demo
    catalog = app.extensions["ivr"].catalog
    wording = load_wording(ROOT / "prompts", catalog.languages)
    for key in ("complaint.notice", "ombudsman.notice"):
        english, khmer = wording.templates["en"][key], wording.templates["km"][key]
        assert "Only the Ombudsman of that district and the administrators of this line" \
            in english, key
        assert "staff who handle complaints" not in english
        assert "មានតែការិយាល័យប្រជាពលរដ្ឋនៃស្រុកនោះ និងអ្នកគ្រប់គ្រងខ្សែទូរស័ព្ទនេះប៉ុណ្ណោះ" \
            in khmer, key
        assert "មន្ត្រីដែលដោះស្រាយបណ្តឹង" not in khmer
