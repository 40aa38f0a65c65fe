"""The admin pages: sign-in, CSRF, rate limit, cookie flags, scorecard figures from a real
SQLite file, CSV exports equal to the pages, cases, and recordings fetched with basic auth."""

from __future__ import annotations

import base64
import csv
import io
import re
import sqlite3
import statistics
import sys
from datetime import datetime, timezone

import pytest
import requests
from lxml import html

from ivr import create_app
from ivr.admin import Filters, group_cells, tally_cells
from ivr.admin.accounts import ACCOUNT as PER_ACCOUNT
from ivr.charts import Series, line_chart
from ivr.report import scorecard
from tests.caller import Caller
from tests.support import (
    ACCOUNT,
    PASSWORD,
    RECORDING_URL,
    ROOT,
    TOKEN,
    FakeProvider,
    Twilio,
    csrf_of,
    log_in,
    page_tables,
    rate,
)

sys.path.insert(0, str(ROOT / "scripts"))
from seed_demo import seed  # noqa: E402


def admin_rules(app) -> list:
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/admin")]
    assert len(rules) >= 10  # the enumeration itself works
    return rules


def url_of(rule) -> str:
    """A URL for the rule with plausible values, so only authentication can refuse it."""
    values = {"reference": "123456", "office_id": "poipet", "page": "scorecard",
              "name": "offices", "item": "1"}
    url = rule.rule
    for argument in rule.arguments:
        url = re.sub(rf"<(?:[a-z]+:)?{argument}>", values.get(argument, "x"), url)
    return url


def methods_of(rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def cell(page: str, table: str, name: str, group: str, column: str) -> tuple[str, str]:
    """(raw value, shown text) of one scorecard cell, found by row name and group."""
    tree = html.fromstring(page)
    current = None
    for tr in tree.xpath(f"//table[@data-table='{table}']/tbody/tr"):
        values = {td.get("data-col"): td for td in tr.xpath("./td")}
        current = values["name"].get("data-value")
        if current == name and values["group"].get("data-value") == group:
            td = values[column]
            return td.get("data-value"), td.text_content().strip().rstrip("*")
    raise AssertionError(f"no row {name}/{group} in {table}")


# --- authentication, CSRF, rate limit, cookies ---------------------------------------------


def test_every_admin_route_refuses_an_unauthenticated_request(admin_app):
    client = admin_app.test_client()
    checked = 0
    for rule in admin_rules(admin_app):
        if rule.endpoint == "admin.login":
            continue
        for method in methods_of(rule):
            response = client.open(url_of(rule), method=method)
            checked += 1
            assert response.status_code in (302, 401, 403), (rule.rule, method)
            if response.status_code == 302:
                assert response.location.startswith("/admin/login"), rule.rule
    assert checked >= 10


def test_every_post_refuses_a_missing_or_forged_csrf_token(admin_app, admin):
    store = admin_app.extensions["ivr"].store
    reference = store.save_recording(
        sid="CA1", caller="+85510000000", kind="complaint", lang="km", office="poipet",
        service="", topic="other", recording_sid="RE1", recording_url=RECORDING_URL,
        duration_s=12)
    posts = [r for r in admin_rules(admin_app) if "POST" in r.methods]
    assert {r.endpoint for r in posts} >= {"admin.login", "admin.logout", "admin.case_status"}
    for rule in posts:
        url = url_of(rule).replace("123456", reference)
        form = {"status": "closed", "note": "forged", "password": PASSWORD}
        assert admin.post(url, data=form).status_code in (400, 403), rule.rule
        assert admin.post(url, data={**form, "csrf": "forged"}).status_code in (400, 403)
    with sqlite3.connect(admin_app.extensions["ivr"].settings.database) as conn:
        assert conn.execute("SELECT status, note FROM recordings").fetchone() == ("new", None)
    assert admin.get("/admin/scorecard").status_code == 200  # the refused logout did nothing


def test_a_wrong_password_fails_and_is_rate_limited(admin_app):
    client = admin_app.test_client()
    for _ in range(PER_ACCOUNT.free):
        response = log_in(client, "wrong")
        assert response.status_code == 401
        assert "Wrong user name or password" in response.get_data(as_text=True) or \
            "ពាក្យសម្ងាត់មិនត្រឹមត្រូវ" in response.get_data(as_text=True)
    assert client.get("/admin/scorecard").status_code == 302  # still signed out
    blocked = log_in(client, PASSWORD)  # even the right password waits now
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "ព្យាយាមម្តងទៀត" in blocked.get_data(as_text=True)
    assert client.get("/admin/scorecard").status_code == 302


def test_admin_pages_are_off_while_no_account_exists(app, settings):
    client = app.test_client()
    for rule in admin_rules(app):
        for method in methods_of(rule):
            assert client.open(url_of(rule), method=method).status_code == 404, rule.rule


def test_session_cookie_flags(admin_app, settings):
    plain = log_in(admin_app.test_client())
    cookie = plain.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = log_in(admin_app.test_client(), base_url="https://localhost")
    assert "Secure" in secure.headers["Set-Cookie"]
    proxied = create_app(settings, admin_password=PASSWORD, proxy_hops=1)
    behind = log_in(proxied.test_client(), headers={"X-Forwarded-Proto": "https"})
    assert behind.status_code == 302 and "Secure" in behind.headers["Set-Cookie"]


def test_the_secret_key_is_kept_so_sessions_survive_a_restart(settings):
    first = create_app(settings, admin_password=PASSWORD)
    client = first.test_client()
    log_in(client)
    restarted = create_app(settings, admin_password="ignored: accounts exist")  # a restart
    assert restarted.secret_key == first.secret_key
    cookie = client.get_cookie("ivr_admin")
    other = restarted.test_client()
    other.set_cookie("ivr_admin", cookie.value)
    assert other.get("/admin/scorecard").status_code == 200
    assert log_in(restarted.test_client(), "ignored: accounts exist").status_code == 401


def test_login_goes_back_to_the_page_asked_for_and_nowhere_else(admin_app):
    client = admin_app.test_client()
    asked = client.get("/admin/cases?status=new")
    page = client.get(asked.location).get_data(as_text=True)
    token = csrf_of(page)
    nxt = html.fromstring(page).xpath("//input[@name='next']/@value")[0]
    response = client.post("/admin/login", data={"csrf": token, "username": "admin",
                                                 "password": PASSWORD, "next": nxt})
    assert response.location == "/admin/cases?status=new"
    client = admin_app.test_client()
    token = csrf_of(client.get("/admin/login").get_data(as_text=True))
    response = client.post("/admin/login", data={"csrf": token, "username": "admin",
                                                 "password": PASSWORD,
                                                 "next": "https://evil.example/admin"})
    assert response.location == "/admin/"


# --- scorecard figures ----------------------------------------------------------------------


def test_scorecard_numbers_match_known_answers(admin_app, admin):
    store = admin_app.extensions["ivr"].store
    barber = "barber-2-4-chairs"
    rate(store, "CA1", "ou-chrov", barber, quality="4", timeliness="3", unofficial_payment="yes",
         gender="woman")
    rate(store, "CA2", "ou-chrov", barber, quality="2", timeliness="5", unofficial_payment="no",
         gender="man")
    rate(store, "CA3", "ou-chrov", "licence-a-exam", quality="5", timeliness="4",
         unofficial_payment="no", gender="woman")
    rate(store, "CA4", "ou-chrov", barber, quality="3")  # hung up after the first question
    rate(store, "CA5", "poipet", barber, quality="1", timeliness="1", unofficial_payment="yes",
         gender="skipped")
    page = admin.get("/admin/scorecard?lang=en").get_data(as_text=True)
    office = "Ou Chrov District"  # the office's place, with its unit, from the catalogue
    assert cell(page, "offices", office, "Everyone", "responses") == ("4", "4")
    assert cell(page, "offices", office, "Everyone", "quality_mean") == ("3.5", "3.50")
    assert cell(page, "offices", office, "Everyone", "quality_sd") == (
        str(round(statistics.pstdev([4, 2, 5, 3]), 2)), "1.12")
    assert cell(page, "offices", office, "Everyone", "timeliness_mean") == ("4.0", "4.00")
    assert cell(page, "offices", office, "Everyone", "timeliness_sd") == ("0.82", "0.82")
    assert cell(page, "offices", office, "Everyone", "unofficial-payment_share") == (
        "33.3", "33.3%")  # a percentage, on the page as in the CSV
    assert cell(page, "offices", office, "Women", "responses") == ("2", "2")
    assert cell(page, "offices", office, "Women", "quality_mean") == ("4.5", "4.50")
    assert cell(page, "offices", office, "Women", "quality_sd") == ("0.5", "0.50")
    assert cell(page, "offices", office, "Men", "unofficial-payment_share") == ("0.0", "0.0%")
    assert cell(page, "offices", office, "Did not say", "responses") == ("1", "1")  # CA4
    poipet = "Paoy Paet Municipality"
    assert cell(page, "offices", poipet, "Everyone", "unofficial-payment_share") == (
        "100.0", "100.0%")
    with pytest.raises(AssertionError):  # a skipped gender is in no gender group
        cell(page, "offices", poipet, "Women", "responses")
    assert cell(page, "offices", poipet, "Did not say", "responses") == ("1", "1")
    barber_name = "A men's barber shop licence, for two to four chairs"
    assert cell(page, "services", barber_name, "Everyone", "responses") == ("4", "4")
    assert cell(page, "services", barber_name, "Everyone", "quality_mean") == ("2.5", "2.50")
    # the same figures as `ivr report` (ivr.report.scorecard)
    with sqlite3.connect(store.path) as conn:
        for row in scorecard(conn, admin_app.extensions["ivr"].catalog, by_service=False):
            name = {"ou-chrov": office, "poipet": poipet}[row.office]
            group = {"all": "Everyone", "gender=woman": "Women", "gender=man": "Men"}[row.group]
            assert float(cell(page, "offices", name, group, "quality_mean")[0]) == \
                row.score.mean("quality")
            spread = cell(page, "offices", name, group, "timeliness_sd")[0]
            assert (float(spread) if spread else None) == row.score.spread("timeliness")
    only = admin.get("/admin/scorecard?lang=en&office=poipet").get_data(as_text=True)
    assert {r[0] for r in page_tables(only)["offices"][1:]} == {poipet}
    later = datetime.now(timezone.utc).year + 1
    empty = admin.get(f"/admin/scorecard?lang=en&from={later}-01-01").get_data(as_text=True)
    assert "No data for this selection" in empty and "data-table" not in empty


def test_sql_tallies_equal_the_reference_scorecard(admin_app):
    """The admin's SQL sums give exactly what ivr.report.scorecard computes in Python."""
    line = admin_app.extensions["ivr"]
    seed(line.store, line.catalog, answers=1200, seed=3, events=False)
    with sqlite3.connect(line.store.path) as conn:
        reference = scorecard(conn, line.catalog)
        cells = tally_cells(conn, line.catalog, Filters())
    mine = group_cells(line.catalog, cells, lambda c: f"{c.office}/{c.service}")
    assert len(reference) > 50
    for row in reference:
        tally = mine[f"{row.office}/{row.service}"][row.group]
        assert tally.responses == row.score.responses
        for question in line.catalog.survey:  # every figure of every question's type
            for column, _ in question.kind.figures():
                assert tally.figure(question, column) == row.score.figure(question, column)
        payment = line.catalog.question("unofficial-payment")
        assert tally.figure(payment, "yes share") == row.score.share_yes("unofficial-payment")


def test_trend_chart_has_a_point_per_month(admin_app, admin):
    line = admin_app.extensions["ivr"]
    seed(line.store, line.catalog, answers=800, seed=5, months=4,
         end=datetime(2026, 5, 20, tzinfo=timezone.utc), events=False)
    page = html.fromstring(admin.get("/admin/scorecard?lang=en").get_data(as_text=True))
    months = page.xpath("//table[@data-table='months']/tbody/tr[not(@class='sub') and "
                        "not(contains(@class, 'sub'))]/td[@data-col='quality_mean']/@data-value")
    points = page.xpath("//svg[@class='chart'][1]//*[contains(@class, 'point')]"
                        "[@data-series='Quality']/@data-value")
    assert len(points) == len(months) >= 4
    assert [float(p) for p in points] == [float(m) for m in months]


def test_a_chart_leaves_a_gap_for_a_month_without_answers():
    svg = str(line_chart(["a", "b", "c"], [Series("q", [4.0, None, 3.5], "#000")], low=1,
                         high=5, ticks=[1, 5], title="t <b>"))
    assert svg.count('class="point"') == 2 and "<polyline" not in svg
    assert "t &lt;b&gt;" in svg


def test_language_switch_and_catalogue_names(admin):
    khmer = admin.get("/admin/scorecard").get_data(as_text=True)
    assert "ប័ណ្ណដាក់ពិន្ទុសេវា" in khmer and 'lang="km"' in khmer
    assert "អូរជ្រៅ" in khmer  # office names from the catalogue, in Khmer
    english = admin.get("/admin/scorecard?lang=en").get_data(as_text=True)
    assert "Service scorecard" in english and "Ou Chrov" in english
    assert "Service scorecard" in admin.get("/admin/calls").get_data(as_text=True) or \
        "Calls" in admin.get("/admin/calls").get_data(as_text=True)  # the choice is kept


# --- CSV exports --------------------------------------------------------------------------


def test_every_csv_export_has_the_rows_of_its_page(admin_app, admin):
    line = admin_app.extensions["ivr"]
    seed(line.store, line.catalog, answers=600, seed=2, months=3,
         end=datetime(2026, 3, 31, tzinfo=timezone.utc))
    with sqlite3.connect(line.store.path) as conn:  # offices with ratings in each month
        busiest = conn.execute("SELECT office_id FROM feedback GROUP BY office_id "
                               "ORDER BY count(*) DESC, office_id LIMIT 2").fetchall()
    pages = ["/admin/scorecard", f"/admin/scorecard?office={busiest[1][0]}&from=2026-02-01",
             "/admin/calls?from=2026-02-01&to=2026-03-15", "/admin/cases",
             "/admin/cases?status=new&kind=complaint", f"/admin/offices/{busiest[0][0]}/print"]
    exported = 0
    for url in pages:
        page = admin.get(url).get_data(as_text=True)
        tables = page_tables(page)
        links = html.fromstring(page).xpath("//a[contains(@href, '.csv')]/@href")
        assert len(links) == len(tables) > 0, url
        for link in links:
            name = link.split("?")[0].rsplit("/", 1)[1].removesuffix(".csv")
            response = admin.get(link)
            assert response.status_code == 200 and response.mimetype == "text/csv"
            rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
            assert rows == tables[name], (url, name)
            assert len(rows) > 1, (url, name)
            exported += 1
    assert exported >= 10


# --- the call funnel ----------------------------------------------------------------------


@pytest.mark.parametrize("carrier", ["twilio", "somleng"])
def test_call_funnel_from_the_steps_of_real_calls(admin_app, admin, carrier):
    twilio = Twilio(admin_app)

    def caller() -> Caller:  # a call through the carrier simulator, silent at the welcome
        return Caller(twilio, carrier=carrier).start()

    caller().press("1").silence().hangup()  # services, then silent
    caller().press("0").hangup()  # repeats the main menu, hangs up
    call = caller().press("1").press("2")  # business licences
    call.press("1").press("0").hangup()  # the barber shop licence, heard twice
    page = admin.get("/admin/calls?lang=en").get_data(as_text=True)
    header, *menus = page_tables(page)["menus"]
    assert header[:7] == ["Menu", "Node", "Reached", "Went on", "Went back (* or #)",
                          "Ended by the line (no key or wrong keys)", "Hung up here"]
    # reached = went on + went back + ended by the line + hung up; then repeated, asked again
    rows = {row[1]: [row[i] for i in (2, 3, 4, 5, 6, 10, 11)] for row in menus}
    assert rows["welcome"] == ["3", "3", "0", "0", "0", "0", "0"]  # waiting for Khmer goes on
    assert rows["main"] == ["3", "2", "0", "0", "1", "1", "0"]
    assert rows["categories"] == ["2", "1", "0", "0", "1", "0", "1"]  # call a hung up there
    assert rows["service/barber-2-4-chairs"] == ["1", "0", "0", "0", "1", "1", "0"]
    assert [row[1] for row in menus][:3] == ["welcome", "main", "categories"]
    assert rows["main"][:1] != [menus[1][9]] and menus[1][7] == "66.7"  # % as a percentage
    top = page_tables(page)["top-services"]
    assert top[1] == ["A men's barber shop licence, for two to four chairs", "1"]


# --- cases --------------------------------------------------------------------------------


@pytest.fixture
def case_reference(admin_app) -> str:
    return admin_app.extensions["ivr"].store.save_recording(
        sid="CA9", caller="+85510000000", kind="complaint", lang="km", office="poipet",
        service="", topic="unofficial-fee", recording_sid="RE9", recording_url=RECORDING_URL,
        duration_s=42)


def test_a_case_can_be_marked_reviewed_then_closed_with_a_note(admin_app, admin,
                                                               case_reference):
    url = f"/admin/cases/{case_reference}"
    page = admin.get(url + "?lang=en").get_data(as_text=True)
    assert "being asked to pay more than the official fee" in page and "Paoy Paet" in page
    for status, note in (("reviewed", "Called the office chief."),
                         ("closed", "ការិយាល័យបានដោះស្រាយរួចហើយ។")):
        response = admin.post(url + "/status", data={"csrf": csrf_of(page), "status": status,
                                                     "note": note})
        assert response.status_code == 302 and response.location == url
        page = admin.get(url).get_data(as_text=True)
        assert note in page
    with sqlite3.connect(admin_app.extensions["ivr"].settings.database) as conn:
        assert conn.execute("SELECT status, note FROM recordings").fetchone() == (
            "closed", "ការិយាល័យបានដោះស្រាយរួចហើយ។")
    listed = admin.get("/admin/cases?status=closed").get_data(as_text=True)
    assert case_reference in listed
    assert case_reference not in admin.get("/admin/cases?status=new").get_data(as_text=True)
    bad = admin.post(url + "/status", data={"csrf": csrf_of(page), "status": "deleted"})
    assert bad.status_code == 400
    assert admin.get("/admin/cases/999999").status_code == 404


def test_the_recording_is_fetched_with_basic_auth_and_streamed(admin_app, admin,
                                                               case_reference, monkeypatch):
    provider = FakeProvider()
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send",
                        lambda adapter, request, **kw: provider.send(adapter, request, **kw))
    response = admin.get(f"/admin/cases/{case_reference}/recording")
    assert response.status_code == 200
    assert response.data == b"ID3-fake-mp3-bytes" and response.mimetype == "audio/mpeg"
    assert "Location" not in response.headers and "private" in response.headers["Cache-Control"]
    (sent,) = provider.sent
    assert sent.url == RECORDING_URL + ".mp3"
    expected = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert sent.headers["Authorization"] == f"Basic {expected}"
    assert RECORDING_URL not in admin.get(f"/admin/cases/{case_reference}").get_data(
        as_text=True)  # the page links to the app, never to the provider
    wav = admin.get(f"/admin/cases/{case_reference}/recording?format=wav")
    assert wav.mimetype == "audio/wav" and provider.sent[-1].url == RECORDING_URL + ".wav"
    saved = admin.get(f"/admin/cases/{case_reference}/recording?download=1")
    assert saved.headers["Content-Disposition"].startswith("attachment")
    with sqlite3.connect(admin_app.extensions["ivr"].settings.database) as conn:
        heard = conn.execute("SELECT action, target, detail FROM audit_log WHERE action LIKE "
                             "'recording.%' ORDER BY id").fetchall()
    assert heard == [("recording.play", case_reference, "mp3"),
                     ("recording.play", case_reference, "wav"),
                     ("recording.download", case_reference, "mp3")]


def test_the_recording_is_refused_when_not_signed_in(admin_app, case_reference, monkeypatch):
    provider = FakeProvider()
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send",
                        lambda adapter, request, **kw: provider.send(adapter, request, **kw))
    response = admin_app.test_client().get(f"/admin/cases/{case_reference}/recording")
    assert response.status_code == 302 and response.location.startswith("/admin/login")
    assert provider.sent == []


def test_the_recording_fails_clearly_and_never_leaks_credentials(admin_app, admin, monkeypatch,
                                                                 case_reference):
    provider = FakeProvider(status=404)
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send",
                        lambda adapter, request, **kw: provider.send(adapter, request, **kw))
    assert admin.get(f"/admin/cases/{case_reference}/recording").status_code == 502
    store = admin_app.extensions["ivr"].store
    elsewhere = store.save_recording(
        sid="CA8", caller="", kind="complaint", lang="km", office="poipet", service="",
        topic="other", recording_sid="RE8", recording_url="https://evil.example/RE8",
        duration_s=5)
    provider.sent.clear()
    assert admin.get(f"/admin/cases/{elsewhere}/recording").status_code == 503
    assert provider.sent == []  # our credentials went nowhere
