"""Retention: the recordings and notes of cases closed more than `retention_days` ago are
deleted, at the provider and here (`ivr purge`, run daily from cron or a systemd timer).

At the provider: `DELETE <recording URL>.json` with the account's credentials, only to a
trusted recording host (the player's rule). Twilio answers 204. Somleng's API (as read from
its source, 2026-04) has no recording DELETE: it answers 404 to it, so a 404 is checked with
a GET of the same resource, and only a recording the provider no longer has counts as
deleted. Here: the recording's URL and the note are emptied and `purged_at` set; the case
row (reference, office, kind, status, dates) stays for the statistics. A recording the
provider still holds keeps its URL (so it can be deleted later) and the run fails.
Everything deleted goes to the audit log.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests

from ivr.admin import accounts
from ivr.admin.cases import provider_url, recording_refusal
from ivr.config import Settings
from ivr.store import now


@dataclass
class Due:
    reference: str
    kind: str
    office: str
    closed: str
    recording_url: str
    has_note: bool


@dataclass
class Outcome:
    deleted: list[Due] = field(default_factory=list)  # at the provider and here
    failed: list[tuple[Due, str]] = field(default_factory=list)  # kept here; why


def cutoff(settings: Settings, moment: datetime | None = None) -> str:
    moment = moment or datetime.now(timezone.utc)
    return (moment - timedelta(days=settings.retention_days)).isoformat(timespec="seconds")


def due(conn: sqlite3.Connection, before: str) -> list[Due]:
    """Closed cases whose closing is older than `before` and that still hold a recording
    or a note."""
    rows = conn.execute(
        "SELECT reference, kind, office_id, coalesce(closed_at, updated_at), "
        "coalesce(recording_url, ''), coalesce(note, '') <> '' FROM recordings "
        "WHERE status = 'closed' AND coalesce(closed_at, updated_at) < ? "
        "AND purged_at IS NULL ORDER BY coalesce(closed_at, updated_at), id", [before])
    return [Due(r[0], r[1], r[2] or "", r[3], r[4], bool(r[5])) for r in rows]


def delete_at_provider(settings: Settings, url: str) -> str | None:
    """None when the provider no longer has the recording at `url`; else why not."""
    if not url:
        return None  # nothing stored at the provider for this case
    resource = provider_url(url, "json", settings.recording_hosts)
    if resource is None:
        return f"not sent: {recording_refusal(url, settings.recording_hosts)}"
    if not settings.twilio_account_sid:
        return "not sent: TWILIO_ACCOUNT_SID is not set"
    auth = (settings.twilio_account_sid, settings.auth_token or "")
    try:
        answer = requests.delete(resource, auth=auth, timeout=(5, 30))
        if answer.status_code in (200, 202, 204):
            return None
        if answer.status_code not in (404, 405):
            return f"the provider answered {answer.status_code} to DELETE"
        check = requests.get(resource, auth=auth, timeout=(5, 30))
    except requests.RequestException as exc:
        return f"the provider did not answer: {exc.__class__.__name__}"
    if check.status_code == 404:
        return None  # already gone
    return (f"the provider answered {answer.status_code} to DELETE and still has it "
            f"(GET {check.status_code}): delete it in the provider's console")


def purge(conn: sqlite3.Connection, settings: Settings, dry_run: bool = False,
          before: str | None = None, who: str = "") -> tuple[list[Due], Outcome]:
    """What is due, and (unless `dry_run`) what was deleted and what could not be."""
    listed = due(conn, before or cutoff(settings))
    outcome = Outcome()
    if dry_run:
        return listed, outcome
    who = who or accounts.operator()
    for case in listed:
        problem = delete_at_provider(settings, case.recording_url)
        if problem is None:
            conn.execute("UPDATE recordings SET recording_url = '', note = NULL, purged_at = ? "
                         "WHERE reference = ?", [now(), case.reference])
            outcome.deleted.append(case)
            thread = purge_thread(conn, settings, case.reference)
            accounts.audit(conn, who, "", "purge.delete", case.reference,
                           _what(case, "recording and note deleted at the provider and here"
                                 + thread), "local")
        else:
            if case.has_note:
                conn.execute("UPDATE recordings SET note = NULL WHERE reference = ?",
                             [case.reference])
            outcome.failed.append((case, problem))
            accounts.audit(conn, who, "", "purge.failed", case.reference,
                           _what(case, f"recording kept: {problem}"
                                 + ("; note deleted" if case.has_note else "")), "local")
    return listed, outcome


def purge_thread(conn: sqlite3.Connection, settings: Settings, reference: str) -> str:
    """With a purged case go its follow-up messages (at the provider and here) and its
    recorded replies (their files); what was done, for the audit log."""
    kept = deleted = 0
    for row_id, url in conn.execute("SELECT id, recording_url FROM case_followups WHERE "
                                    "reference = ? AND coalesce(recording_url, '') <> ''",
                                    [reference]).fetchall():
        if delete_at_provider(settings, url) is None:
            conn.execute("UPDATE case_followups SET recording_url = '' WHERE id = ?", [row_id])
            deleted += 1
        else:
            kept += 1
    folder = Path(settings.database).parent / "replies"
    files = conn.execute("SELECT id, file FROM case_replies WHERE reference = ? AND "
                         "coalesce(file, '') <> ''", [reference]).fetchall()
    for row_id, name in files:
        if "/" not in name and not name.startswith("."):
            (folder / name).unlink(missing_ok=True)
        conn.execute("UPDATE case_replies SET file = NULL WHERE id = ?", [row_id])
    said = ""
    if deleted or kept:
        said += f"; {deleted} follow-up(s) deleted" + (f", {kept} kept at the provider"
                                                        if kept else "")
    if files:
        said += f"; {len(files)} recorded repl{'y' if len(files) == 1 else 'ies'} deleted"
    return said


def _what(case: Due, said: str) -> str:
    return f"{case.kind}, office {case.office or '-'}, closed {case.closed[:10]}: {said}"


def describe(case: Due) -> dict[str, Any]:
    return {"reference": case.reference, "kind": case.kind, "office": case.office,
            "closed": case.closed[:10], "recording": bool(case.recording_url),
            "note": case.has_note}
