"""The admin pages in a real headless Chromium, signed in through the form as each role:
what each role sees (and does not), the scorecard's chart, a case page and its player, the
printable scorecard, and the tables on a 360 px phone. Screenshots are kept in the test's
tmp_path (and in $IVR_SCREENSHOTS when set, to look at). Content is asserted, not pixels."""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ivr import create_app
from ivr.admin import accounts
from tests.browser import chromium, serve
from tests.support import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from seed_demo import seed  # noqa: E402

PASSWORD = "browser-test-password"
USERS = {"admin": ("admin", PASSWORD), "ombudsman": ("ombud", "ombudsman-password"),
         "office": ("chief", "office-chief-password"), "analyst": ("analyst", "analyst-password")}
NAV = {"admin": ["scorecard", "calls", "cases", "visitors", "users", "audit", "voice"],
       "ombudsman": ["scorecard", "cases"], "office": ["scorecard", "calls", "visitors"],
       "analyst": ["scorecard", "calls"]}


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    from ivr.config import Settings

    folder = tmp_path_factory.mktemp("browser")
    settings = Settings(auth_token="test-auth-token-0123456789", catalog=ROOT / "catalog.yaml",
                        prompts=ROOT / "prompts", audio_dir=folder / "audio",
                        database=folder / "ivr.db", caller_key=b"test-caller-key")
    app = create_app(settings, admin_password=PASSWORD, twilio_account_sid="AC" + "0" * 32)
    line = app.extensions["ivr"]
    seed(line.store, line.catalog, answers=2000, seed=11, months=5,
         end=datetime(2026, 6, 28, tzinfo=timezone.utc))
    offices = [o.id for o in line.catalog.offices]
    conn = line.store.db.conn
    for role, office in (("ombudsman", ["poipet"]), ("office", ["ou-chrov"]),
                         ("analyst", [])):
        accounts.add_user(conn, USERS[role][0], role, office, USERS[role][1], offices)
    return app


@pytest.fixture(scope="module")
def site(demo_app):
    """The demo app over HTTP and one Chromium for the whole module (pages are separate)."""
    with serve(demo_app) as base, chromium() as browser:
        yield base, browser


def keep(path: Path) -> None:
    target = os.environ.get("IVR_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def sign_in(page, base: str, role: str) -> None:
    page.goto(base + "/admin/")
    assert "/admin/login" in page.url  # signed out: the login form
    page.fill("#username", USERS[role][0])
    page.fill("#password", USERS[role][1])
    page.click("form.login button[type=submit]")
    page.wait_for_load_state()


def shoot(page, tmp_path: Path, name: str, full_page: bool = True) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=path, full_page=full_page)
    assert path.stat().st_size > 10_000
    keep(path)


@pytest.mark.parametrize("role", list(USERS))
def test_each_role_signs_in_and_sees_its_own_pages(site, tmp_path, role):
    base, browser = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, base, role)
    links = page.locator("nav.menu a").evaluate_all(
        "links => links.map(a => a.getAttribute('href').split('/').pop())")
    assert links == NAV[role]
    assert page.locator("html").get_attribute("lang") == "km"  # Khmer by default
    if role == "ombudsman":
        assert page.url.endswith("/admin/cases")  # an Ombudsman starts with the cases
        shoot(page, tmp_path, f"{role}-cases")
        rows = page.locator("table[data-table=cases] tbody tr")
        offices = set(rows.locator("td[data-col=office]").all_inner_texts())
        assert offices == {"ក្រុងប៉ោយប៉ែត"}  # only their own office
        rows.first.locator("a").click()
        page.wait_for_url(re.compile(r".*/admin/cases/\d{6}$"))
        shoot(page, tmp_path, f"{role}-case")
        assert "ករណីលេខ" in page.locator("h1").inner_text()
        page.check("input[name=status][value=reviewed]")
        page.fill("#note", "បានពិនិត្យរួចហើយ")
        page.click("form.status-form button[type=submit]")
        assert page.locator(".flash").inner_text() == "បានរក្សាទុកហើយ។"
        assert page.locator(".status").inner_text() == "បានពិនិត្យ"
        page.goto(base + "/admin/scorecard")
    assert page.url.endswith("/admin/scorecard")
    shoot(page, tmp_path, f"{role}-scorecard")
    assert page.locator("h1").inner_text() == "ប័ណ្ណដាក់ពិន្ទុសេវា"
    offices = page.locator("table[data-table=offices] tbody tr:not(.sub)")
    expected = {"ombudsman": 1, "office": 1}.get(role, 9)  # every office answered
    assert offices.count() == expected
    if role == "office":
        assert "អូរជ្រៅ" in page.locator("table[data-table=offices]").inner_text()
        assert page.goto(base + "/admin/cases").status == 403
        shoot(page, tmp_path, f"{role}-refused")
        assert "មិនអាចបើកទំព័រនេះបានទេ" in page.locator(".reason").inner_text()
    if role == "admin":
        trend = page.locator("section.trend")
        points = trend.locator("svg.chart").first.locator("circle.point")
        values = [float(v) for v in points.evaluate_all(
            "ps => ps.map(p => p.dataset.value)")]
        assert len(values) == 2 * 6 and all(1 <= v <= 5 for v in values)
        page.goto(base + "/admin/users")
        shoot(page, tmp_path, f"{role}-users")
        assert page.locator("table[data-table=users] tbody tr").count() == 4
        page.goto(base + "/admin/audit?lang=en")
        shoot(page, tmp_path, f"{role}-audit")
        assert "login.ok" in page.locator("table[data-table=log]").inner_text()


def test_the_player_says_why_it_cannot_play(site, tmp_path, monkeypatch):
    """The page could not know beforehand: the provider refuses (the network below the
    app is replaced), and the page says so where the player was."""
    import requests

    def refused(url: str, **kwargs) -> requests.Response:
        response = requests.Response()
        response.status_code, response.raw = 404, io.BytesIO(b"Not found")
        return response

    monkeypatch.setattr(requests, "get", refused)
    base, browser = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, base, "admin")
    page.goto(base + "/admin/cases?lang=en")
    page.locator("table[data-table=cases] tbody tr a").first.click()
    page.wait_for_url(re.compile(r".*/admin/cases/\d{6}$"))
    page.locator("audio").evaluate("a => { a.preload = 'auto'; a.load(); }")
    problem = page.locator(".player-problem")
    problem.wait_for(state="visible", timeout=20_000)
    shoot(page, tmp_path, "player-problem")
    text = problem.inner_text()
    assert text.startswith("The recording cannot be played:")
    assert "telephone provider" in text


def test_tables_keep_their_numbers_whole_on_a_phone(site, tmp_path):
    base, browser = site
    page = browser.new_page(viewport={"width": 360, "height": 740})
    sign_in(page, base, "analyst")
    page.goto(base + "/admin/calls")
    page.locator("table[data-table=menus]").scroll_into_view_if_needed()
    shoot(page, tmp_path, "phone-calls", full_page=False)  # what the phone's screen shows
    page.goto(base + "/admin/scorecard")
    page.locator("table[data-table=offices]").scroll_into_view_if_needed()
    shoot(page, tmp_path, "phone-scorecard", full_page=False)
    # every figure on one line and inside the screen: none cut, none behind a scroll
    numbers = page.evaluate("""() => [...document.querySelectorAll('td.num')].map(c => {
        const walker = document.createTreeWalker(c, NodeFilter.SHOW_TEXT);
        const boxes = [];
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const range = document.createRange();
            range.selectNodeContents(node);
            boxes.push(...[...range.getClientRects()].filter(r => r.width > 0));
        }
        const middles = boxes.map(r => (r.top + r.bottom) / 2);
        return {text: c.textContent.trim(),
                lines: Math.max(...middles) - Math.min(...middles) > 8 ? 2 : 1,
                left: Math.min(...boxes.map(r => r.left)),
                right: Math.max(...boxes.map(r => r.right))};
    })""")
    assert len(numbers) > 100
    cut = [n for n in numbers if n["text"] and (n["lines"] != 1 or n["left"] < 0
                                                or n["right"] > 360)]
    assert cut == []
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360  # the page itself does not scroll sideways; tables do


def test_the_printable_scorecard_starts_with_the_office_and_keeps_services_whole(site,
                                                                                 tmp_path):
    base, browser = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, base, "office")
    page.goto(base + "/admin/scorecard")
    page.click("a.button")  # an office chief's printable scorecard: their own office
    page.wait_for_url(re.compile(r".*/admin/offices/ou-chrov/print$"))
    page.emulate_media(media="print")
    shoot(page, tmp_path, "print")
    assert not page.locator("header.top").is_visible()  # no navigation on paper
    first = page.locator("main section.block").first
    assert first.locator("table").get_attribute("data-table") == "offices"
    assert first.locator("tbody tr:not(.sub)").count() == 1
    groups = page.locator("table[data-table=services] tbody")
    assert groups.count() > 5
    styles = groups.evaluate_all("gs => gs.map(g => getComputedStyle(g).breakInside)")
    assert set(styles) == {"avoid"}
    pdf = tmp_path / "print.pdf"
    page.pdf(path=str(pdf), format="A4")
    assert pdf.stat().st_size > 10_000
    keep(pdf)
