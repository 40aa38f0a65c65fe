"""Retention: `ivr purge --dry-run` lists, and `ivr purge` deletes, exactly the recordings
and notes of cases closed longer ago than IVR_RETENTION_DAYS, at the provider (Twilio's and
Somleng's recording resources; the network below `requests` is replaced) and here, and the
audit log says so."""

from __future__ import annotations

import base64
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from ivr import create_app
from ivr.cli import main as cli
from tests.support import PASSWORD, ROOT, TOKEN, below_requests, log_in, reply_to

TWILIO = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE"
SOMLENG = "https://api.somleng.org/2010-04-01/Accounts/4f1c/Calls/0b6e/Recordings/"
ACCOUNT = "AC" + "0123456789abcdef" * 2


class Provider:
    """The provider's HTTP API, below requests: answers DELETE and GET as told, records
    every request."""

    def __init__(self, delete: int = 204, get: int = 404):
        self.delete, self.get, self.sent = delete, get, []

    def send(self, adapter, request, **kwargs):
        self.sent.append((request.method, request.url, request.headers.get("Authorization")))
        return reply_to(request, self.delete if request.method == "DELETE" else self.get)


@pytest.fixture
def provider(monkeypatch) -> Provider:
    fake = Provider()
    below_requests(monkeypatch, fake)
    return fake


def ago(days: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")


def make_cases(app, base: str) -> dict[str, str]:
    """Cases closed 400 and 366 days ago (due), 300 days ago (not yet), open for 500 days
    (never due while open), and one already purged."""
    store = app.extensions["ivr"].store
    made = {}
    for i, (name, status, closed) in enumerate([
            ("old", "closed", 400), ("just", "closed", 366), ("recent", "closed", 300),
            ("open", "reviewed", None), ("comment", "closed", 700)]):
        kind = "comment" if name == "comment" else "complaint"
        reference = store.save_recording(
            sid=f"CA{i}", caller="+85510000000", kind=kind, lang="km", office="poipet",
            service="", topic="other", recording_sid=f"id{i}", recording_url=f"{base}{i}",
            duration_s=10)
        store.set_case_status(reference, status, f"note about caller {i}")
        store.db.execute("UPDATE recordings SET closed_at = ?, updated_at = ? "
                         "WHERE reference = ?", [ago(closed) if closed else None,
                                                 ago(closed or 500), reference])
        made[name] = reference
    return made


def purge(settings, *args: str, provider_name: str = "twilio"):
    env = {"IVR_DATABASE": str(settings.database), "IVR_CATALOG": str(ROOT / "catalog.yaml"),
           "IVR_CALLER_KEY": "k", "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": ACCOUNT,
           "IVR_PROVIDER": provider_name, "IVR_SOMLENG_API_URL": "https://api.somleng.org",
           "IVR_RETENTION_DAYS": "365"}
    return CliRunner().invoke(cli, ["purge", *args], env=env)


def stored(settings) -> dict[str, tuple]:
    with sqlite3.connect(settings.database) as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT reference, recording_url, note, purged_at IS NOT NULL FROM recordings")}


def purge_audit(settings) -> list[tuple[str, str, str]]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute("SELECT action, target, detail FROM audit_log WHERE action LIKE "
                            "'purge.%' ORDER BY id").fetchall()


def test_dry_run_lists_exactly_what_is_due_and_deletes_nothing(settings, provider):
    app = create_app(settings)
    cases = make_cases(app, TWILIO)
    before = stored(settings)
    result = purge(settings, "--dry-run")
    assert result.exit_code == 0, result.output
    listed = {line.split()[0] for line in result.output.splitlines() if line.startswith("  ")}
    assert listed == {cases["old"], cases["just"], cases["comment"]}
    assert "3 case(s) due" in result.output and "nothing deleted" in result.output
    assert provider.sent == [] and stored(settings) == before and purge_audit(settings) == []


def test_purge_deletes_at_twilio_and_here_and_audits_it(settings, provider):
    app = create_app(settings)
    cases = make_cases(app, TWILIO)
    result = purge(settings)
    assert result.exit_code == 0, result.output
    due = [cases["old"], cases["just"], cases["comment"]]
    numbers = {cases[n]: i for i, n in enumerate(["old", "just", "recent", "open", "comment"])}
    auth = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert sorted(provider.sent) == sorted(
        ("DELETE", f"{TWILIO}{numbers[r]}.json", auth) for r in due)
    now = stored(settings)
    for reference in due:
        assert now[reference] == ("", None, 1)
    for name in ("recent", "open"):
        assert now[cases[name]][0].startswith(TWILIO) and now[cases[name]][1]
    logged = purge_audit(settings)
    assert [(a, t) for a, t, _ in logged] == [("purge.delete", r) for r in
                                             [cases["comment"], cases["old"], cases["just"]]]
    assert all("deleted at the provider and here" in d for _, _, d in logged)
    provider.sent.clear()
    again = purge(settings)
    assert "0 case(s) due" in again.output and provider.sent == []


def test_a_purged_case_says_why_it_cannot_play(settings, provider):
    app = create_app(settings, admin_password=PASSWORD, twilio_account_sid=ACCOUNT)
    cases = make_cases(app, TWILIO)
    purge(settings)
    admin = app.test_client()
    log_in(admin)
    page = admin.get(f"/admin/cases/{cases['old']}?lang=en").get_data(as_text=True)
    assert "The recording and the note were deleted on" in page
    assert "<audio" not in page and "note about caller" not in page
    provider.sent.clear()
    gone = admin.get(f"/admin/cases/{cases['old']}/recording")
    assert gone.status_code == 410 and provider.sent == []


def test_somleng_keeps_a_recording_it_cannot_delete_and_the_run_fails(settings, provider):
    """Somleng's API has no recording DELETE (it answers 404) and still serves the
    recording: the case keeps its URL, its note goes, and the run says so and fails."""
    provider.delete, provider.get = 404, 200
    app = create_app(settings, provider="somleng", somleng_api_url="https://api.somleng.org")
    cases = make_cases(app, SOMLENG)
    result = purge(settings, provider_name="somleng")
    assert result.exit_code == 1
    assert f"NOT DELETED {cases['old']}" in result.output and "still has it" in result.output
    methods = sorted({(m, u.rsplit("/", 1)[1]) for m, u, _ in provider.sent})
    assert methods == sorted([(m, f"{i}.json") for i in (0, 1, 4) for m in ("DELETE", "GET")])
    now = stored(settings)
    assert now[cases["old"]][0] == SOMLENG + "0" and now[cases["old"]][1] is None
    assert now[cases["old"]][2] == 0  # still due next time
    assert {a for a, _, _ in purge_audit(settings)} == {"purge.failed"}


def test_somleng_recording_already_gone_counts_as_deleted(settings, provider):
    provider.delete, provider.get = 404, 404
    app = create_app(settings, provider="somleng", somleng_api_url="https://api.somleng.org")
    cases = make_cases(app, SOMLENG)
    result = purge(settings, provider_name="somleng")
    assert result.exit_code == 0, result.output
    assert stored(settings)[cases["old"]] == ("", None, 1)


def test_credentials_go_only_to_the_trusted_host(settings, provider):
    app = create_app(settings)
    cases = make_cases(app, "https://evil.example/Recordings/")
    result = purge(settings)
    assert result.exit_code == 1 and "not sent: host 'evil.example'" in result.output
    assert provider.sent == []
    assert stored(settings)[cases["old"]][0] == "https://evil.example/Recordings/0"


def test_a_purged_case_takes_its_follow_ups_and_recorded_replies_with_it(settings, provider):
    """Issue 15: a case's follow-up messages are deleted at the provider with it, and its
    recorded replies' files here; a case not due keeps both."""
    from ivr import replies

    app = create_app(settings)
    cases = make_cases(app, TWILIO)
    store = app.extensions["ivr"].store
    folder = replies.folder_of(settings.database)
    names = {}
    for name in ("old", "recent"):
        store.save_followup(sid=f"CAF{name}", caller="+85510000000", reference=cases[name],
                            lang="km", recording_sid=f"FU{name}",
                            recording_url=f"{TWILIO}F{name}", duration_s=5)
        names[name] = replies.keep(folder, b"RIFF-telephone-audio")
        store.add_reply(cases[name], "recorded", file=names[name], duration_ms=1000)
    result = purge(settings)
    assert result.exit_code == 0, result.output
    deleted = {url for method, url, _ in provider.sent if method == "DELETE"}
    assert f"{TWILIO}Fold.json" in deleted and f"{TWILIO}Frecent.json" not in deleted
    with sqlite3.connect(settings.database) as conn:
        urls = dict(conn.execute("SELECT reference, recording_url FROM case_followups"))
        files = dict(conn.execute("SELECT reference, file FROM case_replies"))
    assert urls == {cases["old"]: "", cases["recent"]: f"{TWILIO}Frecent"}
    assert files == {cases["old"]: None, cases["recent"]: names["recent"]}
    assert not (folder / names["old"]).exists() and (folder / names["recent"]).exists()
    (detail,) = [d for _, t, d in purge_audit(settings) if t == cases["old"]]
    assert "1 follow-up(s) deleted; 1 recorded reply deleted" in detail
