"""The funnel page's numbers on scripts/seed_demo.py data add up, checked against the
database: each menu's columns partition the calls that reached it, the menus follow the call
flow, Women + Men + "did not say" = Everyone, a month only partly in the period is marked,
and the CSV's "%" columns hold percentages. Also: query arguments named like url_for's
own (`endpoint`) or a route's part no longer make a 500."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

import pytest
from lxml import html

from ivr import create_app, tree
from tests.support import PASSWORD, ROOT, log_in

sys.path.insert(0, str(ROOT / "scripts"))
from seed_demo import seed  # noqa: E402

CAMBODIA = timezone(timedelta(hours=7))
# How a call left a menu, from the last step it logged there (the events ivr.flow writes),
# written out here again so that the page is checked against the data, not against itself.
EXIT_OF = {"back": "went_back", "main": "went_back", "noinput-goodbye": "line_ended",
           "invalid-goodbye": "line_ended", "call": "hung_up", "present": "hung_up",
           "repeat": "hung_up", "noinput": "hung_up", "invalid": "hung_up"}
EXITS = ("went_on", "went_back", "line_ended", "hung_up")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A line with six months of demo calls, ratings and cases, up to now."""
    from ivr.config import Settings
    from tests.support import TOKEN

    tmp = tmp_path_factory.mktemp("funnel")
    settings = Settings(auth_token=TOKEN, catalog=ROOT / "catalog.yaml",
                        prompts=ROOT / "prompts", audio_dir=tmp / "audio",
                        database=tmp / "ivr.db", caller_key=b"test-caller-key")
    app = create_app(settings, admin_password=PASSWORD)
    line = app.extensions["ivr"]
    counts = seed(line.store, line.catalog, answers=2400, seed=12, months=6)
    assert counts["calls"] > 1000
    client = app.test_client()
    assert log_in(client, username="admin").status_code == 302
    return app, client


def table_rows(page: str, name: str) -> list[dict[str, str]]:
    """A data table's rows as {column key: raw value}."""
    rows = []
    for tr in html.fromstring(page).xpath(f"//table[@data-table='{name}']/tbody/tr"):
        rows.append({td.get("data-col"): td.get("data-value") for td in tr.xpath("./td")})
    return rows


def csv_rows(client, url: str) -> list[list[str]]:
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def database(app) -> sqlite3.Connection:
    return sqlite3.connect(app.extensions["ivr"].settings.database)


def expected_exits(app) -> dict[str, dict[str, int]]:
    """Per menu, from the raw events in Python: the calls that reached it and how each
    left it (its last step there)."""
    last: dict[tuple[str, str], str] = {}
    with database(app) as conn:
        for sid, node, event in conn.execute(
                "SELECT call_sid, node, event FROM events ORDER BY id"):
            last[(sid, node)] = event
    menus: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(("reached", *EXITS), 0))
    for (_, node), event in last.items():
        menus[node]["reached"] += 1
        menus[node][EXIT_OF.get(event, "went_on")] += 1
    return menus


def test_each_menus_columns_add_up_to_the_calls_that_reached_it(demo):
    app, client = demo
    page = client.get("/admin/calls?lang=en").get_data(as_text=True)
    rows = table_rows(page, "menus")
    expected = expected_exits(app)
    assert {row["node"] for row in rows} == set(expected)
    for row in rows:
        numbers = {key: int(row[key]) for key in ("reached", *EXITS)}
        assert sum(numbers[key] for key in EXITS) == numbers["reached"], row
        assert numbers == expected[row["node"]], row["node"]
        reached = numbers["reached"]
        assert float(row["went_on_share"]) == round(100 * numbers["went_on"] / reached, 1)
        assert float(row["ended_share"]) == round(
            100 * (numbers["line_ended"] + numbers["hung_up"]) / reached, 1)
        assert abs(float(row["went_on_share"]) + float(row["went_back_share"])
                   + float(row["ended_share"]) - 100) <= 0.15, row
        assert 0 <= int(row["repeated"]) <= reached and 0 <= int(row["silent"]) <= reached
    by_node = {row["node"]: row for row in rows}
    with database(app) as conn:
        calls = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        khmer_by_waiting = conn.execute(
            "SELECT count(*) FROM events WHERE node = ? AND event = 'default-language'",
            [tree.WELCOME.path()]).fetchone()[0]
        services = dict(conn.execute(
            "SELECT substr(node, 9), count(DISTINCT call_sid) FROM events "
            "WHERE node LIKE 'service/%' AND node NOT LIKE '%/fee/%' GROUP BY 1"))
    welcome = by_node[tree.WELCOME.path()]
    # every call was greeted; those who waited for Khmer went on (they were in no column)
    assert int(welcome["reached"]) == calls
    assert re.search(rf"Calls in this period: {calls:,}\b", page)
    assert int(welcome["went_on"]) >= khmer_by_waiting > 0.8 * calls
    assert float(welcome["went_on_share"]) > 80
    main = by_node[tree.MAIN.path()]
    assert int(main["line_ended"]) > 0 and int(main["hung_up"]) > 0  # silent, and repeated
    assert any(int(row["went_back"]) for row in rows)  # * has a column now
    top = {row["service"]: int(row["calls"]) for row in table_rows(page, "top-services")}
    catalog = app.extensions["ivr"].catalog
    for service_id, n in services.items():
        name = catalog.service(service_id).name["en"]
        assert top[name[:1].upper() + name[1:]] == n


def test_the_menus_follow_the_call_flow(demo):
    app, client = demo
    catalog = app.extensions["ivr"].catalog
    nodes = [row["node"] for row in table_rows(
        client.get("/admin/calls?lang=en").get_data(as_text=True), "menus")]
    assert nodes == sorted(nodes, key=lambda node: tree.order(catalog, node))
    first = {head: next(i for i, n in enumerate(nodes) if n.startswith(head))
             for head in ("welcome", "main", "categories", "category/", "service/", "rate/",
                          "ombudsman/", "complaint")}
    assert list(first) == sorted(first, key=first.__getitem__)  # greeting, menu, browse, ...
    categories = [n.partition("/")[2] for n in nodes if n.startswith("category/")]
    assert categories == [c.id for c in catalog.categories if c.id in categories]
    assert nodes.index("rate/q/1") < nodes.index("rate/q/2") < nodes.index("rate/comment")
    labels = {row["node"]: row["menu"] for row in table_rows(
        client.get("/admin/calls?lang=en").get_data(as_text=True), "menus")}
    assert labels["rate/q/2"] == tree.label(catalog, "rate/q/2", "en") == "Rating: question 2"
    category = catalog.categories[0]
    name = category.name["en"]  # written for speech: capitalised in the table
    assert labels[f"category/{category.id}"] == name[:1].upper() + name[1:]
    khmer = {row["node"]: row["menu"] for row in table_rows(
        client.get("/admin/calls?lang=km").get_data(as_text=True), "menus")}
    assert khmer["main"] == tree.MAIN.label["km"]


def test_the_csv_holds_the_pages_numbers_and_percentages(demo):
    app, client = demo
    page_rows = table_rows(client.get("/admin/calls?lang=en").get_data(as_text=True), "menus")
    header, *rows = csv_rows(client, "/admin/export/calls/menus.csv?lang=en")
    assert header[:3] == ["Menu", "Node", "Reached"] and "% went on" in header
    assert len(rows) == len(page_rows)
    for row, shown in zip(rows, page_rows, strict=True):
        values = dict(zip(header, row, strict=True))
        reached, went_on = int(values["Reached"]), int(values["Went on"])
        assert values["Node"] == shown["node"]
        assert float(values["% went on"]) == round(100 * went_on / reached, 1)  # 7.6, not .076
    shares = [float(dict(zip(header, row, strict=True))["% went on"]) for row in rows]
    assert max(shares) == 100.0 and any(1 < share < 100 for share in shares)
    # the scorecard's share of "asked to pay more" is a percentage too, page and CSV
    header, *rows = csv_rows(client, "/admin/export/scorecard/offices.csv?lang=en")
    column = header.index("Asked to pay more (%)")
    assert any(float(row[column]) > 1 for row in rows if row[column])


def test_women_men_and_those_who_did_not_say_are_everyone(demo):
    app, client = demo
    page = client.get("/admin/scorecard?lang=en").get_data(as_text=True)
    catalog = app.extensions["ivr"].catalog
    with database(app) as conn:
        said = {(office, value or "skipped"): n for office, value, n in conn.execute(
            "SELECT f.office_id, a.value, count(*) FROM feedback f LEFT JOIN answers a "
            "ON a.feedback_id = f.id AND a.question = 'gender' GROUP BY 1, 2")}
    checked = 0
    for table in ("offices", "services", "months"):
        groups: dict[str, dict[str, int]] = defaultdict(dict)
        for row in table_rows(page, table):
            groups[row["name"]][row["group"]] = int(row["responses"])
        for name, split in groups.items():
            assert set(split) <= {"Everyone", "Women", "Men", "Did not say"}, split
            assert split["Everyone"] == sum(n for g, n in split.items() if g != "Everyone"), \
                (table, name, split)
            checked += 1
    assert checked > 20
    offices = defaultdict(dict)
    for row in table_rows(page, "offices"):
        offices[row["name"]][row["group"]] = int(row["responses"])
    for office in catalog.offices:
        name = office.district["en"]
        if name not in offices:
            continue
        assert offices[name].get("Women", 0) == said.get((office.id, "woman"), 0)
        assert offices[name].get("Men", 0) == said.get((office.id, "man"), 0)
        assert offices[name].get("Did not say", 0) == said.get((office.id, "skipped"), 0)
    assert any("Did not say" in split for split in offices.values())


def months_marked(page: str) -> dict[str, list[bool]]:
    """Per chart, each bar's label and whether it is marked partial."""
    charts = {}
    for svg in html.fromstring(page).xpath("//svg[@class='chart']"):
        title = svg.xpath("./title")[0].text
        marks = [bar.get("data-partial") == "true"
                 for bar in svg.xpath(".//*[contains(@class, 'bar')]")]
        if marks:
            charts[title] = marks
    return charts


def utc_start(day: date) -> str:
    """The stored (UTC) timestamp at which a day begins in Cambodia."""
    begins = datetime(day.year, day.month, day.day, tzinfo=CAMBODIA)
    return begins.astimezone(timezone.utc).isoformat(timespec="seconds")


def test_a_month_only_partly_in_the_period_is_marked(demo):
    app, client = demo
    now = datetime.now(CAMBODIA).date()
    with database(app) as conn:
        calls = conn.execute("SELECT min(started_at), max(started_at) FROM calls").fetchone()
        ratings = conn.execute("SELECT min(created_at), max(created_at) FROM feedback").fetchone()
    for url, chart, (first, last) in (("/admin/calls?lang=en", "Calls per month", calls),
                                      ("/admin/scorecard?lang=en", "Responses per month",
                                       ratings)):
        page = client.get(url).get_data(as_text=True)
        marks = months_marked(page)[chart]
        started, ended = (datetime.fromisoformat(moment).astimezone(CAMBODIA).date()
                          for moment in (first, last))
        assert len(marks) in (6, 7, 8)  # 180 days back from today
        # this month is not over (unless today, its first day, has had no call yet)
        assert marks[-1] is ((ended.year, ended.month) == (now.year, now.month))
        assert marks[0] is (started.day > 1)  # the line started within its first month
        assert marks[1:-1] == [False] * (len(marks) - 2)
        assert "Only part of this month is in the period" in page
        assert "*" in html.fromstring(page).xpath(
            f"//svg[title='{chart}']//text/tspan")[-2].text  # the label says it too
    # a chosen period that starts and ends within months: both ends marked, whole ones not
    this_month = date(now.year, now.month, 1)
    start = (this_month - timedelta(days=80)).replace(day=10)  # the 10th, three months ago
    end = (this_month - timedelta(days=1)).replace(day=20)  # the 20th of last month
    page = client.get(f"/admin/calls?lang=en&from={start}&to={end}").get_data(as_text=True)
    marks = months_marked(page)["Calls per month"]
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    assert marks == [True] + [False] * (months - 2) + [True]
    with database(app) as conn:
        whole_months = conn.execute(
            "SELECT substr(datetime(started_at, '+7 hours'), 1, 7), count(*) FROM calls "
            "WHERE started_at >= ? AND started_at < ? GROUP BY 1",
            [utc_start(start), utc_start(end + timedelta(days=1))]).fetchall()
    bars = html.fromstring(page).xpath("//svg[title='Calls per month']//*[contains(@class, "
                                       "'bar')]/@data-value")
    assert [int(b) for b in bars] == [n for _, n in sorted(whole_months)]


@pytest.mark.parametrize("url", [
    "/admin/login?endpoint=x", "/admin/login?endpoint=x&_external=1&_anchor=y&lang=en",
])
def test_a_query_named_like_url_fors_arguments_is_no_500_before_sign_in(demo, url):
    app, _ = demo
    response = app.test_client().get(url)
    assert response.status_code == 200
    assert 'name="password"' in response.get_data(as_text=True)


def test_a_query_named_like_a_routes_part_is_no_500(demo):
    app, client = demo
    with database(app) as conn:
        reference = conn.execute("SELECT reference FROM recordings LIMIT 1").fetchone()[0]
    page = client.get(f"/admin/cases/{reference}?reference=1&lang=en")
    assert page.status_code == 200 and reference in page.get_data(as_text=True)
    switch = html.fromstring(page.get_data(as_text=True)).xpath(
        "//a[contains(@href, 'lang=km')]/@href")
    assert switch and all(f"/admin/cases/{reference}?" in href for href in switch)
    printed = client.get("/admin/offices/ou-chrov/print?office_id=x&lang=en")
    assert printed.status_code == 200 and "Ou Chrov" in printed.get_data(as_text=True)
    assert client.get("/admin/audit?page=1&endpoint=x&lang=en").status_code == 200
    assert client.get("/admin/cases?endpoint=x&page=1").status_code == 200
