"""The voice studio in a real headless Chromium with a fake microphone: a signed-in
administrator records a prompt on /admin/voice with the page's Record button
(MediaRecorder); the stored file is 8 kHz mono mu-law, and the next call through the
simulator plays it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ivr import create_app, render
from tests.browser import ARGS, CHROMIUM, serve
from tests.studio_support import greeting_played, manifest, settings_for, tone

MICROPHONE = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def test_an_admin_records_a_prompt_with_the_microphone(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium fonts-khmeros)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    (tmp_path / "voice.wav").write_bytes(tone(tmp_path, "wav", seconds=3.0))
    speech = [f"--use-file-for-fake-audio-capture={tmp_path / 'voice.wav'}"]  # what it hears
    app = create_app(settings_for(tmp_path))
    with serve(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=[*ARGS, *MICROPHONE, *speech])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/admin/voice")
            page.fill("#username", "admin")
            page.fill("#password", "correct horse battery staple")
            page.click("form.login button[type=submit]")
            page.wait_for_url("**/admin/voice")
            row = page.locator("tr[data-key=greeting]")
            assert row.get_attribute("data-source") == "missing"
            button = row.locator("button.record")
            button.click()
            page.wait_for_function(
                "b => b.textContent === b.dataset.stop", arg=button.element_handle())
            page.wait_for_timeout(1500)  # speak for 1.5 s
            with page.expect_navigation():
                button.click()  # stop: the take is sent, and the page shows the result
            assert "សារលេខ 1 ត្រូវបានថតហើយ" in page.locator(".flash").inner_text()
            assert page.locator("tr[data-key=greeting]").get_attribute(
                "data-source") == "person"
            shot = tmp_path / "voice-studio.png"
            page.screenshot(path=shot)
            if os.environ.get("IVR_SCREENSHOTS"):
                Path(os.environ["IVR_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, Path(os.environ["IVR_SCREENSHOTS"]) / shot.name)
        finally:
            browser.close()
    stored = tmp_path / "recordings" / "km" / "greeting.wav"
    info = render.wav_info(stored)
    assert (info.format_tag, info.channels, info.rate, info.bits) == (7, 1, 8000, 8)
    assert 500 <= info.duration_ms <= 2500
    entry = manifest(app)[("greeting", "km")]
    assert entry["engine"] == "recording"
    assert greeting_played(app) == entry["file"]  # the next call plays it
    conn = app.extensions["ivr"].store.db.conn
    assert conn.execute("SELECT detail FROM audit_log WHERE action = 'voice.record'"
                        ).fetchone()[0].startswith("browser, ")
