"""Issue 15 end to end, in a real Chromium (a fake microphone): a caller leaves a complaint
and hears its reference; the administrator records a reply in the case page; a second call
keys the reference, hears the status and the reply, and leaves a follow-up that appears in
the case page's thread."""

from __future__ import annotations

import re

from ivr import create_app
from ivr.config import Settings
from tests.browser import chromium, serve
from tests.caller import Caller
from tests.support import ROOT, TOKEN, Twilio

PASSWORD = "browser-status-password"
FAKE_MICROPHONE = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")


def test_a_reply_recorded_in_the_browser_reaches_the_next_caller(tmp_path):
    settings = Settings(auth_token=TOKEN, catalog=ROOT / "catalog.yaml", prompts=ROOT / "prompts",
                        audio_dir=tmp_path / "audio", database=tmp_path / "ivr.db",
                        caller_key=b"test-caller-key")
    app = create_app(settings, admin_password=PASSWORD, twilio_account_sid="AC" + "0" * 32)
    twilio = Twilio(app)
    first = Caller(twilio).start("2")
    first.press("4").press("1").press("1").press("0110").press("1").record(25)
    reference = re.search(r"Your reference number is((?: \d){6})", first.heard()).group(1)
    reference = reference.replace(" ", "")
    first.hangup()

    with serve(app) as base, chromium(*FAKE_MICROPHONE) as browser:
        page = browser.new_page()
        page.goto(base + "/admin/login?lang=en")
        page.fill("#username", "admin")
        page.fill("#password", PASSWORD)
        page.click("form.login button[type=submit]")
        page.wait_for_load_state()
        page.goto(f"{base}/admin/cases/{reference}")
        assert page.locator(".thread").inner_text().count("No follow-up message") == 1
        page.click(".record-start")
        page.wait_for_timeout(1200)
        page.click(".record-stop")
        page.wait_for_selector(".recorder[data-recorded]", state="attached")
        assert page.locator(".record-state").inner_text().startswith("Recorded.")
        page.click(".reply-form button[type=submit]")
        page.wait_for_load_state()
        assert "The reply is saved" in page.inner_text("body")
        assert "Reply by admin" in page.locator(".thread").inner_text()
        assert page.locator(".thread audio").count() == 1

        second = Caller(twilio, number="+85588000444").start("2").press("5")
        second.press(f"{reference}#")
        heard = second.heard()
        assert heard.startswith("Your complaint about the Paoy Paet Municipality")
        assert "It is being looked at. The office has left you this reply." in heard
        (url,) = [p.text for p in second.doc.iter("Play") if "/reply/" in (p.text or "")]
        audio = app.test_client().get(url.removeprefix("http://localhost"))
        assert audio.status_code == 200 and audio.data[20:22] == b"\x07\x00"
        assert len(audio.data) > 4000  # half a second or more of telephone audio
        second.press("2").record(12)
        assert "Your follow-up message has been added" in second.heard()

        page.goto(f"{base}/admin/cases/{reference}")
        thread = page.locator(".thread").inner_text()
        assert "Follow-up message from the caller" in thread
        sources = page.eval_on_selector_all(".thread audio", "els => els.map(e => e.src)")
        assert any(re.search(rf"/admin/cases/{reference}/followups/\d+/recording$", s)
                   for s in sources)
        page.screenshot(path=tmp_path / "case-thread.png", full_page=True)
