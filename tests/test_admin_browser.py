"""The admin pages in a real headless Chromium: sign in through the form, then the scorecard,
its trend chart and a case page, with screenshots kept in the test's tmp_path. Content is
asserted (Khmer text, chart points, figures), not pixels."""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone

import pytest

from ivr import create_app
from tests.browser import chromium, serve
from tests.support import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from seed_demo import seed  # noqa: E402

PASSWORD = "browser-test-password"


@pytest.fixture
def demo_app(settings):
    app = create_app(settings, admin_password=PASSWORD, twilio_account_sid="AC" + "0" * 32)
    line = app.extensions["ivr"]
    seed(line.store, line.catalog, answers=2000, seed=11, months=5,
         end=datetime(2026, 6, 28, tzinfo=timezone.utc))
    return app


def test_scorecard_chart_and_case_in_chromium(demo_app, tmp_path):
    with serve(demo_app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/admin/scorecard")
        assert "/admin/login" in page.url  # signed out: the login form
        page.fill("#password", PASSWORD)
        page.click("form.login button[type=submit]")
        page.wait_for_url(re.compile(r".*/admin/scorecard$"))

        page.screenshot(path=tmp_path / "scorecard.png", full_page=True)
        assert page.locator("h1").inner_text() == "ប័ណ្ណដាក់ពិន្ទុសេវា"  # Khmer by default
        assert page.locator("html").get_attribute("lang") == "km"
        offices = page.locator("table[data-table=offices] tbody tr:not(.sub)")
        assert offices.count() == 9  # every office in the catalogue answered
        assert "អូរជ្រៅ" in page.locator("table[data-table=offices]").inner_text()
        responses = [int(v) for v in offices.locator("td[data-col=responses]").evaluate_all(
            "cells => cells.map(c => c.dataset.value)")]
        assert sum(responses) == 500  # 2,000 answers, four per rating

        trend = page.locator("section.trend")
        trend.screenshot(path=tmp_path / "trend.png")
        points = trend.locator("svg.chart").first.locator("circle.point")
        values = [float(v) for v in points.evaluate_all("ps => ps.map(p => p.dataset.value)")]
        assert len(values) == 2 * 6  # quality and timeliness, six months (Jan to Jun)
        assert all(1 <= v <= 5 for v in values)
        assert trend.locator("svg.chart rect.bar").count() == 6
        box = trend.locator("svg.chart").first.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100  # drawn, and not tiny

        page.click("nav.menu a[href$='/admin/cases']")
        page.locator("table[data-table=cases] tbody tr a").first.click()
        page.wait_for_url(re.compile(r".*/admin/cases/\d{6}$"))
        page.screenshot(path=tmp_path / "case.png", full_page=True)
        assert "ករណីលេខ" in page.locator("h1").inner_text()
        source = page.locator("audio").get_attribute("src")
        assert re.fullmatch(r"/admin/cases/\d{6}/recording", source)
        page.check("input[name=status][value=reviewed]")
        page.fill("#note", "បានពិនិត្យរួចហើយ")
        page.click("form.status-form button[type=submit]")
        assert page.locator(".flash").inner_text() == "បានរក្សាទុកហើយ។"
        assert page.locator(".status").inner_text() == "បានពិនិត្យ"

        page.click("a.lang")  # the language switch
        assert page.locator("h1").inner_text().startswith("Case ")

        page.goto(base + "/admin/offices/poipet/print")
        page.emulate_media(media="print")
        page.screenshot(path=tmp_path / "print.png", full_page=True)
        assert not page.locator("header.top").is_visible()  # no navigation on paper
        assert page.locator("table[data-table=services] tbody tr").count() > 0
    for name in ("scorecard", "trend", "case", "print"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
