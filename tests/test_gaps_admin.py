"""The admin dashboard's gaps of TEST-GAPS.md (gap 10, admin.py; gap 7, the funnel), seen as
an administrator sees them: signed in, on the page itself (its table cells, its headers, its
charts, what a filter leaves), on a real SQLite file.

- "read with care": a row with fewer than 10 responses is marked, one with 10 is not;
- the scorecard's service filter keeps the chosen (valid) service and only it;
- the cases' kind filter and date filter (days in Cambodia, both ends included);
- the trend charts: satisfaction, the payment share and responses, each drawn;
- the cases' status column says each case's status;
- X-Frame-Options and Referrer-Policy (and the other security headers) on admin pages;
- the sign-in lock-out says the time *left* to wait, not the whole back-off again;
- the wording: labels come from the translations, in English and in Khmer, never raw keys;
- the call funnel counts a caller who pages with 9 as having gone on, and its columns are
  labelled as the translations say.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from lxml import html

from ivr import create_app
from ivr.admin import accounts
from ivr.config import Settings
from tests.caller import Caller
from tests.support import (
    ACCOUNT,
    MINIMAL,
    PASSWORD,
    RECORDING_URL,
    ROOT,
    TOKEN,
    Twilio,
    log_in,
    page_tables,
    rate,
)

TRANSLATIONS = ROOT / "ivr" / "translations"
BARBER = "barber-2-4-chairs"
EXAM = "licence-a-exam"


# --- fixtures (this file's own) ----------------------------------------------------------


@pytest.fixture
def admin_app(settings):
    return create_app(settings, admin_password=PASSWORD, twilio_account_sid=ACCOUNT)


@pytest.fixture
def admin(admin_app):
    client = admin_app.test_client()
    assert log_in(client).status_code == 302
    return client


@pytest.fixture
def store(admin_app):
    return admin_app.extensions["ivr"].store


# --- helpers -------------------------------------------------------------------------------


_po: dict[str, dict[str, str]] = {}


def words(lang: str, key: str, **values: str) -> str:
    """What the translation file of `lang` says for `key` (as the page formats it)."""
    if lang not in _po:
        with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
            _po[lang] = {m.id: m.string for m in read_po(f) if m.id}
    text = _po[lang][key]
    assert text and text != key, (lang, key)
    return text % values if values else text


def get(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def rows_of(page: str, table: str) -> list[dict[str, object]]:
    """Each body row of a data table: {column key: (raw value, text shown)}, and the row's
    class and whether its cells carry the "read with care" mark."""
    rows = []
    for tr in html.fromstring(page).xpath(f"//table[@data-table='{table}']/tbody/tr"):
        row: dict[str, object] = {td.get("data-col"): (td.get("data-value"),
                                                        td.text_content().strip())
                                  for td in tr.xpath("./td")}
        row["_class"] = (tr.get("class") or "").split()
        row["_marked"] = bool(tr.xpath(".//span[contains(@class, 'mark')]"))
        rows.append(row)
    return rows


def everyone(page: str, table: str) -> dict[str, dict[str, object]]:
    """The "Everyone" row of each name of a scorecard table (not the split rows)."""
    return {row["name"][0]: row for row in rows_of(page, table) if "sub" not in row["_class"]}


def charts_of(page: str) -> dict[str, html.HtmlElement]:
    """The page's charts by their title."""
    found = {}
    for svg in html.fromstring(page).xpath("//svg[@class='chart']"):
        (title,) = svg.xpath("./title/text()")
        found[title] = svg
    return found


def make_case(store, number: int, kind: str = "complaint", office: str = "poipet",
              when: str = "") -> str:
    reference = store.save_recording(
        sid=f"CA{number}", caller="+85510000000", kind=kind, lang="km", office=office,
        service="", topic="other", recording_sid=f"RE{number}",
        recording_url=f"{RECORDING_URL[:-3]}{number:03d}", duration_s=9)
    assert reference
    if when:
        store.db.execute("UPDATE recordings SET created_at = ? WHERE reference = ?",
                         [when, reference])
    return reference


def service_label(app, service_id: str, lang: str = "en") -> str:
    name = app.extensions["ivr"].catalog.service(service_id).name[lang]
    return name[:1].upper() + name[1:]


# --- "read with care" ----------------------------------------------------------------------


def test_rows_with_fewer_than_ten_responses_are_marked_read_with_care(admin, store):
    """An office with 9 responses is marked (the row's class, a * beside its number of
    responses); one with exactly 10 is not; the note under the tables says the threshold."""
    for i in range(9):
        rate(store, f"CAp{i}", "poipet", BARBER, quality="4")
    for i in range(10):
        rate(store, f"CAo{i}", "ou-chrov", BARBER, quality="3")
    page = get(admin, "/admin/scorecard?lang=en")
    offices = everyone(page, "offices")
    small, enough = offices["Paoy Paet Municipality"], offices["Ou Chrov District"]
    assert small["responses"] == ("9", "9*")
    assert "few" in small["_class"] and small["_marked"]
    assert enough["responses"] == ("10", "10")
    assert "few" not in enough["_class"] and not enough["_marked"]
    (service,) = everyone(page, "services").values()  # 19 responses: not marked
    assert service["responses"] == ("19", "19") and not service["_marked"]
    assert words("en", "few", n="10") == "* Fewer than 10 responses: read with care."
    assert words("en", "few", n="10") in page
    khmer = get(admin, "/admin/scorecard?lang=km")
    assert words("km", "few", n="10") in khmer


# --- filters ---------------------------------------------------------------------------------


def test_the_scorecards_service_filter_keeps_the_chosen_service_only(admin_app, admin, store):
    rate(store, "CA1", "poipet", BARBER, quality="2")
    rate(store, "CA2", "poipet", BARBER, quality="2")
    for i in range(3):
        rate(store, f"CA{3 + i}", "ou-chrov", EXAM, quality="5")
    everything = get(admin, "/admin/scorecard?lang=en")
    assert set(everyone(everything, "services")) == {service_label(admin_app, BARBER),
                                                     service_label(admin_app, EXAM)}
    page = get(admin, f"/admin/scorecard?lang=en&service={EXAM}")
    services = everyone(page, "services")
    assert list(services) == [service_label(admin_app, EXAM)]
    assert services[service_label(admin_app, EXAM)]["responses"][0] == "3"
    offices = everyone(page, "offices")
    assert list(offices) == ["Ou Chrov District"]
    assert offices["Ou Chrov District"]["quality_mean"] == ("5.0", "5.00")
    (month,) = everyone(page, "months").values()
    assert month["responses"][0] == "3"
    chosen = html.fromstring(page).xpath("//select[@name='service']/option[@selected]/@value")
    assert chosen == [EXAM]
    # an unknown service (an edited URL) is ignored, not a filter that empties the page
    unknown = get(admin, "/admin/scorecard?lang=en&service=no-such-service")
    assert len(everyone(unknown, "services")) == 2


def test_the_cases_kind_filter_lists_that_kind_only(admin, store):
    made = {kind: make_case(store, i, kind) for i, kind in
            enumerate(("complaint", "ombudsman-message", "comment"))}
    every = page_tables(get(admin, "/admin/cases?lang=en"))["cases"]
    assert sorted(row[0] for row in every[1:]) == sorted(made.values())
    for kind, reference in made.items():
        page = get(admin, f"/admin/cases?lang=en&kind={kind}")
        rows = rows_of(page, "cases")
        assert [row["reference"][0] for row in rows] == [reference], kind
        assert rows[0]["kind"] == (kind, words("en", f"kind.{kind}"))
        chosen = html.fromstring(page).xpath("//select[@name='kind']/option[@selected]/@value")
        assert chosen == [kind]
    assert len(rows_of(get(admin, "/admin/cases?kind=nonsense"), "cases")) == 3


def test_the_cases_date_filter_keeps_cambodias_days_both_ends_included(admin, store):
    """Cases at the first and last minute of Cambodia's 2 and 3 March, and on 1 and 4 March:
    from 2 to 3 March lists exactly the four inside, from alone and to alone cut one side."""
    stamps = {"1 Mar 23:59": "2026-03-01T16:59:00+00:00",
              "2 Mar 00:00": "2026-03-01T17:00:00+00:00",
              "2 Mar 12:00": "2026-03-02T05:00:00+00:00",
              "3 Mar 23:59": "2026-03-03T16:59:00+00:00",
              "4 Mar 00:00": "2026-03-03T17:00:00+00:00"}
    ref = {name: make_case(store, i, when=stamp) for i, (name, stamp) in enumerate(stamps.items())}

    def listed(query: str) -> set[str]:
        page = get(admin, f"/admin/cases?lang=en&{query}")
        return {row["reference"][0] for row in rows_of(page, "cases")}

    inside = {ref["2 Mar 00:00"], ref["2 Mar 12:00"], ref["3 Mar 23:59"]}
    assert listed("from=2026-03-02&to=2026-03-03") == inside
    assert listed("from=2026-03-02") == inside | {ref["4 Mar 00:00"]}
    assert listed("to=2026-03-03") == inside | {ref["1 Mar 23:59"]}
    assert listed("from=2026-03-04&to=2026-03-04") == {ref["4 Mar 00:00"]}
    assert listed("") == set(ref.values())
    page = get(admin, "/admin/cases?lang=en&from=2026-03-02&to=2026-03-03")
    received = {row["reference"][0]: row["received"][1] for row in rows_of(page, "cases")}
    assert received[ref["2 Mar 00:00"]] == "2026-03-02 00:00"
    assert received[ref["3 Mar 23:59"]] == "2026-03-03 23:59"


# --- the trend charts ------------------------------------------------------------------------


def test_the_scorecard_draws_each_trend_chart_with_its_figures(admin, store):
    for i, (quality, paid) in enumerate((("4", "yes"), ("2", "no"), ("3", "no"), ("5", "no"))):
        rate(store, f"CA{i}", "poipet", BARBER, quality=quality, unofficial_payment=paid)
    for lang in ("en", "km"):
        page = get(admin, f"/admin/scorecard?lang={lang}")
        charts = charts_of(page)
        titles = [words(lang, key) for key in
                  ("chart.satisfaction", "chart.payment", "chart.responses")]
        assert list(charts) == titles, lang
        satisfaction, payment, responses = (charts[title] for title in titles)
        quality = words(lang, "question.quality")
        assert satisfaction.xpath(f".//*[@data-series='{quality}']/@data-value") == ["3.5"]
        share = words(lang, "question.unofficial-payment")
        assert payment.xpath(f".//*[@data-series='{share}']/@data-value") == ["25.0"]
        assert responses.xpath(".//rect[contains(@class, 'bar')]/@data-value") == ["4"]
        assert words(lang, "trend.title") in page


def test_the_calls_page_draws_calls_per_month(admin, admin_app):
    for i in range(2):
        Caller(Twilio(admin_app), sid=f"CA{i:032d}").start().hangup()
    charts = charts_of(get(admin, "/admin/calls?lang=en"))
    assert list(charts) == [words("en", "chart.calls")]
    bars = charts[words("en", "chart.calls")].xpath(".//rect[contains(@class, 'bar')]")
    assert [bar.get("data-value") for bar in bars] == ["2"]


# --- the cases' status column ----------------------------------------------------------------


def test_the_cases_status_column_says_each_cases_status(admin, store):
    new = make_case(store, 1)
    reviewed = make_case(store, 2)
    closed = make_case(store, 3)
    store.set_case_status(reviewed, "reviewed", "Called the office.")
    store.set_case_status(closed, "closed", "Settled.")
    for lang in ("en", "km"):
        page = get(admin, f"/admin/cases?lang={lang}")
        header = page_tables(page)["cases"][0]
        assert words(lang, "col.status") in header
        status = {row["reference"][0]: row["status"] for row in rows_of(page, "cases")}
        assert status == {new: ("new", words(lang, "status.new")),
                          reviewed: ("reviewed", words(lang, "status.reviewed")),
                          closed: ("closed", words(lang, "status.closed"))}, lang
        assert all(shown for _, shown in status.values())


# --- headers -------------------------------------------------------------------------------


def test_admin_pages_may_not_be_framed_and_send_no_referrer(admin, admin_app, store):
    reference = make_case(store, 1)
    signed_out = admin_app.test_client()
    responses = {url: admin.get(url) for url in (
        "/admin/scorecard", "/admin/calls", "/admin/cases", f"/admin/cases/{reference}",
        "/admin/export/cases/cases.csv", "/admin/cases/999999")}
    responses["login"] = signed_out.get("/admin/login")
    responses["redirect to login"] = signed_out.get("/admin/scorecard")
    assert responses["/admin/cases/999999"].status_code == 404
    for url, response in responses.items():
        assert response.headers.get("X-Frame-Options") == "DENY", url
        assert response.headers.get("Referrer-Policy") == "no-referrer", url
        assert response.headers.get("X-Content-Type-Options") == "nosniff", url
        assert "frame-ancestors 'none'" in response.headers.get("Content-Security-Policy", "")
        assert "no-store" in response.headers.get("Cache-Control", ""), url


# --- the sign-in lock-out --------------------------------------------------------------------


def test_a_locked_out_sign_in_says_the_time_left_to_wait(admin_app, monkeypatch):
    """After 11 wrong passwords the next attempt waits 64 s (ACCOUNT: 5 free, then 1 s, 2 s,
    4 s ... after the one before). 20 s later, 44 s are left: the page says 1 min and
    Retry-After 44, not the whole back-off (64 s, 2 min) again."""
    moment = [1_000_000.0]
    monkeypatch.setattr(accounts, "clock", lambda: moment[0])
    client = admin_app.test_client()
    rule = accounts.ACCOUNT
    for attempt in range(11):
        moment[0] += rule.delay(attempt)  # exactly when this one may be made
        response = log_in(client, "wrong password")
        assert response.status_code == 401, attempt
    blocked = log_in(client, PASSWORD)
    assert blocked.status_code == 429
    wait = rule.delay(11)
    assert wait == 64
    assert blocked.headers["Retry-After"] == "64"
    assert words("en", "login.too_many", minutes="2") in blocked.get_data(as_text=True) or \
        words("km", "login.too_many", minutes="2") in blocked.get_data(as_text=True)
    moment[0] += 20
    later = log_in(client, PASSWORD, query_string={"lang": "en"})
    assert later.status_code == 429
    assert later.headers["Retry-After"] == str(math.ceil(wait - 20)) == "44"
    assert words("en", "login.too_many", minutes="1") in later.get_data(as_text=True)
    moment[0] += 44
    assert log_in(client, PASSWORD).status_code == 302  # and then it may be made


# --- wording ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "km"])
def test_the_dashboards_labels_come_from_the_translations(admin, store, lang):
    rate(store, "CA1", "poipet", BARBER, quality="4", timeliness="3", unofficial_payment="no",
         gender="woman")
    make_case(store, 2)
    card = get(admin, f"/admin/scorecard?lang={lang}")
    tree = html.fromstring(card)
    assert tree.xpath("//h1/text()") == [words(lang, "scorecard.title")]
    titles = [h.text_content().strip() for h in tree.xpath("//section//h2")]
    for key in ("table.offices", "table.services", "table.months"):
        assert words(lang, key) in titles, key
    header = page_tables(card)["offices"][0]
    quality, payment = words(lang, "question.quality"), words(lang, "question.unofficial-payment")
    assert header[:5] == [words(lang, "col.office"), words(lang, "col.group"),
                          words(lang, "col.responses"), words(lang, "col.mean", q=quality),
                          words(lang, "col.sd", q=quality)]
    assert words(lang, "col.share", q=payment) in header
    groups = [row["group"][1] for row in rows_of(card, "offices")]
    assert groups[:2] == [words(lang, "group.all"), words(lang, "group.gender=woman")]
    cases = get(admin, f"/admin/cases?lang={lang}")
    assert html.fromstring(cases).xpath("//h1/text()") == [words(lang, "cases.title")]
    header = page_tables(cases)["cases"][0]
    assert header[:3] == [words(lang, "col.reference"), words(lang, "col.received"),
                          words(lang, "col.kind")]
    (row,) = rows_of(cases, "cases")
    assert row["kind"][1] == words(lang, "kind.complaint")
    assert row["status"][1] == words(lang, "status.new")
    if lang == "km":  # Khmer words, not the English fallback
        assert words("km", "col.office") == "ការិយាល័យ" != words("en", "col.office")
    for page in (card, cases):  # no label shows as its key
        shown = html.fromstring(page).text_content().split()
        assert not [word for word in shown if word.startswith((
            "col.", "table.", "status.", "kind.", "group.", "chart.", "filter.", "question."))]


# --- the call funnel (gap 7) -------------------------------------------------------------------


@pytest.fixture
def long_list_app(tmp_path: Path):
    """A line whose one category lists 13 services: 8 on its first page, 9 for the rest."""
    service = MINIMAL[MINIMAL.index("  - id: copy"):MINIMAL.index("  - id: permit")]
    many = "".join(service.replace("id: copy", f"id: copy-{i}")
                   .replace("a copy}", f"copy {i}}}") for i in range(12))
    path = tmp_path / "catalog.yaml"
    path.write_text(MINIMAL.replace(service, many), encoding="utf-8")
    settings = Settings(auth_token=TOKEN, catalog=path, prompts=ROOT / "prompts",
                        audio_dir=tmp_path / "audio", database=tmp_path / "ivr.db",
                        caller_key=b"test-caller-key")
    return create_app(settings, admin_password=PASSWORD)


def test_the_funnel_counts_a_caller_who_pages_with_9_as_gone_on(long_list_app):
    twilio = Twilio(long_list_app)

    def caller(number: int) -> Caller:  # waits for Khmer, services, the one category
        return Caller(twilio, sid=f"CA{number:032d}").start().press("1").press("1")

    paged = caller(1).press("9")  # the second page of the list, then hangs up there
    assert "For copy 8, press 1." in paged.heard()
    paged.hangup()
    chose = caller(2).press("9").press("4")  # pages, then chooses copy 11
    assert "copy 11" in chose.heard().lower()
    chose.hangup()
    caller(3).press("0").hangup()  # hears the first page again, hangs up there
    caller(4).press("*").hangup()  # goes back
    client = long_list_app.test_client()
    assert log_in(client).status_code == 302
    conn = long_list_app.extensions["ivr"].store.db
    assert conn.execute("SELECT count(*) FROM events WHERE node = 'category/papers' AND "
                        "event = 'more'").fetchone()[0] == 2  # what the funnel reads
    page = get(client, "/admin/calls?lang=en")
    menus = {row["node"][0]: row for row in rows_of(page, "menus")}
    papers = menus["category/papers"]
    assert papers["menu"][1] == "Papers"
    figures = {key: papers[key][0] for key in ("reached", "went_on", "went_back", "line_ended",
                                               "hung_up", "went_on_share")}
    assert figures == {"reached": "4", "went_on": "2", "went_back": "1", "line_ended": "0",
                       "hung_up": "1", "went_on_share": "50.0"}
    assert papers["went_on"][1] == "2" and papers["went_on_share"][1] == "50.0%"


@pytest.mark.parametrize("lang", ["en", "km"])
def test_the_funnels_columns_are_labelled_as_the_translations_say(admin_app, admin, lang):
    Caller(Twilio(admin_app)).start().press("1").hangup()
    page = get(admin, f"/admin/calls?lang={lang}")
    tables = page_tables(page)
    keys = ("menu", "node", "reached", "went_on", "went_back", "line_ended", "hung_up",
            "went_on_share", "went_back_share", "ended_share", "repeated", "silent")
    assert tables["menus"][0] == [words(lang, f"col.{key}") for key in keys]
    tree = html.fromstring(page)
    assert tree.xpath("//h1/text()") == [words(lang, "calls.title")]
    titles = [h.text_content().strip() for h in tree.xpath("//section//h2")]
    assert words(lang, "table.menus") in titles and words(lang, "table.top-services") in titles
    assert words(lang, "calls.total", n="1") in page
    assert words(lang, "calls.columns_note") in page
    if lang == "km":
        assert words("km", "col.went_on") != words("en", "col.went_on")
    main = next(row for row in rows_of(page, "menus") if row["node"][0] == "main")
    assert main["went_on"][0] == "1"
