"""The browser phone in a real headless Chromium: a call heard and shown, Khmer rendered.

Chromium is Debian's (tests/browser.py; skipped only when it or playwright is missing); the
audio is rendered by the project's renderer with its offline placeholder engine (beeps).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr import create_app
from ivr.audio import read_manifest
from ivr.config import Settings
from ivr.phone import audio_file
from ivr.render import PlaceholderEngine, render
from ivr.simulate import Simulator
from ivr.utterance import Utterance
from tests.browser import chromium, serve

ROOT = Path(__file__).resolve().parent.parent


def rendered(u: Utterance) -> bool:
    """The Khmer greeting and the English menus get audio; the rest stays spoken text (<Say>),
    as on a half-rendered line, so the page shows both kinds."""
    return (u.key, u.lang) == ("greeting", "km") or (u.lang == "en" and u.key.startswith(
        ("language.", "menu.main.", "menu.categories.", "category.")))


def platform_fonts(page: Any, selector: str) -> dict[str, int]:
    """The fonts Chromium really used for the text of the first match: {family: glyphs}."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return {font["familyName"]: font["glyphCount"] for font in fonts}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """`ivr serve` on 127.0.0.1, a free port: development settings, temporary data."""
    tmp = tmp_path_factory.mktemp("phone")
    settings = Settings(catalog=ROOT / "catalog.yaml", prompts=ROOT / "prompts",
                        audio_dir=tmp / "audio", database=tmp / "ivr.db",
                        caller_key=b"test-caller-key", development=True)
    app = create_app(settings)
    utterances = [u for u in app.extensions["ivr"].book.utterances() if rendered(u)]
    summary = render(utterances, settings.audio_dir, PlaceholderEngine(max_ms=1500), jobs=4)
    assert summary.ok, summary.line()
    with serve(app) as base:
        yield base, app


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


def test_a_call_in_the_browser(server: tuple[str, Any], browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    base, app = server
    book = app.extensions["ivr"].book
    # what the line says after 2 (English) then 1 (services), as the simulator hears it
    settings = app.extensions["ivr"].settings
    texts = {entry.file: entry.text for entry in read_manifest(settings.audio_dir).values()}
    sim = Simulator(app, settings.auth_token, prompt_text=lambda url: texts[audio_file(url)])
    categories = sim.start().press("2").press("1").transcript.last.prompts
    category_texts = [p.text for p in categories]
    assert book.text("menu.categories.intro", "en") in category_texts

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    media: list[Any] = []
    page.on("response", lambda r: media.append(r) if "/audio/" in r.url else None)
    problems: list[str] = []  # script errors, refused resources (CSP), failed loads
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(base + "/phone")
    page.click("#call")

    greeting = page.locator('.prompt .text[lang="km"]').first
    expect(greeting).to_have_text(book.text("greeting", "km"))
    # the audio element loaded a real file: a decoded WAV with a duration
    page.wait_for_function("() => { const a = document.getElementById('audio');"
                           " return a.readyState >= 1 && a.duration > 0; }")
    manifest = read_manifest(settings.audio_dir)
    assert audio_file(page.evaluate("document.getElementById('audio').src")) in {
        entry.file for entry in manifest.values()}
    wavs = [r for r in media if r.url.endswith(".wav")]
    assert audio_file(wavs[0].url) == manifest[("greeting", "km")].file  # heard first
    assert wavs and all(r.status in (200, 206) for r in wavs)  # 206: media is read by ranges
    assert {r.headers["content-type"] for r in wavs} == {"audio/wav"}
    assert page.request.get(wavs[0].url).status == 200

    page.click('.key[data-key="2"]')
    expect(page.locator(".prompt .text", has_text="Main menu.")).to_have_count(1)
    page.click('.key[data-key="1"]')
    for text in category_texts:
        expect(page.locator(".prompt .text").filter(has_text=text).first).to_be_visible()
    expect(page.locator(".step .digits")).to_have_text(["Digits=2", "Digits=1"])
    expect(page.locator("#status")).to_have_text("Press a key.")

    shot = tmp_path / "phone.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # Khmer is drawn with a Khmer font (not as boxes): ask Chromium which fonts drew the text
    fonts = platform_fonts(page, '.prompt .text[lang="km"]')
    assert fonts and all("Khmer" in name for name in fonts), fonts

    page.click("#wait")  # no key: the menu is asked again
    expect(page.locator(".step .input").last).to_have_text("No key (the caller waited)")
    sorry = page.locator(".prompt .text", has_text=book.text("error.noinput", "en"))
    expect(sorry).to_have_count(1)

    page.click("#hangup")
    expect(page.locator("#status")).to_contain_text("You hung up.")
    expect(page.locator(".callback")).to_contain_text(["status callback"])
    expect(page.locator("#call")).to_be_enabled()
    assert problems == []
    page.close()


def test_the_keypad_fits_a_small_phone(server: tuple[str, Any], browser: Any,
                                       tmp_path: Path) -> None:
    base, _ = server
    page = browser.new_page(viewport={"width": 360, "height": 740}, device_scale_factor=2)
    page.goto(base + "/phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scroll
    for key in "123456789*0#":
        box = page.locator(f'.key[data-key="{key}"]').bounding_box()
        assert box and box["height"] >= 48 and box["width"] >= 80  # big enough for a thumb
    page.click("#call")
    page.locator('.prompt .text[lang="km"]').first.wait_for()
    page.screenshot(path=str(tmp_path / "phone-small.png"), full_page=True)
    page.click("#hangup")
    page.close()

