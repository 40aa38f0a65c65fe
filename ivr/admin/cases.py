"""Cases: complaints, messages for the Ombudsman and rating comments; their list (paged), a
case's page with its status and note, and its recording, streamed from the provider.

Only the roles of access.LISTENERS open these pages, and an Ombudsman only their own
offices' cases (another office's case is 404, as if it did not exist). Every case opened,
recording played and status or note changed goes to the audit log."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Response, abort, flash, redirect, request, url_for

from ivr.admin.scorecards import office_choices, office_name, service_name
from ivr.admin.web import (
    CASE_KINDS,
    Column,
    Filters,
    Table,
    audit,
    bp,
    check_page,
    context,
    deny,
    line,
    name_of,
    page_number,
    paginate,
    render,
    show_count,
    t,
    user,
    when,
)
from ivr.catalog import Catalog
from ivr.store import CASE_STATUSES

log = logging.getLogger("ivr.admin")
PAGE_SIZE = 50
CASE_COLUMNS = ("id", "reference", "kind", "topic", "office_id", "service_id", "lang",
                "duration_s", "recording_url", "status", "note", "created_at", "updated_at",
                "closed_at", "purged_at")


def case_query(filters: Filters) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for clause, value in (("created_at >= ?", filters.since), ("created_at < ?", filters.until),
                          ("service_id = ?", filters.service), ("kind = ?", filters.kind),
                          ("status = ?", filters.status)):
        if value:
            clauses.append(clause)
            args.append(value)
    offices, office_args = filters.office_clause("office_id")
    if offices:
        clauses.append(offices)
        args += office_args
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def case_rows(conn: sqlite3.Connection, filters: Filters, page: int | None = None
              ) -> tuple[list[dict[str, Any]], int]:
    """The cases in the filters, newest first: one page of them (all when `page` is None),
    and how many there are in all."""
    where, args = case_query(filters)
    total = conn.execute(f"SELECT count(*) FROM recordings{where}", args).fetchone()[0]
    check_page(page, total, PAGE_SIZE)
    limit = f" LIMIT {PAGE_SIZE} OFFSET {(page - 1) * PAGE_SIZE}" if page else ""
    cursor = conn.execute(f"SELECT {', '.join(CASE_COLUMNS)} FROM recordings{where} "
                          f"ORDER BY created_at DESC, id DESC{limit}", args)
    return [dict(zip(CASE_COLUMNS, row, strict=True)) for row in cursor], total


def case_table(catalog: Catalog, conn: sqlite3.Connection, filters: Filters,
               page: int | None = None) -> Table:
    """The cases' table: one page of it, or every row (the CSV)."""
    found, total = case_rows(conn, filters, page)
    rows = []
    for row in found:
        topic = catalog.topic(row["topic"] or "")
        rows.append({
            "reference": row["reference"], "received": when(row["created_at"]),
            "kind": row["kind"], "topic": name_of(topic.name, row["topic"]) if topic
            else row["topic"] or "", "office": office_name(catalog, row["office_id"] or ""),
            "service": service_name(catalog, row["service_id"]) if row["service_id"] else "",
            "duration_s": row["duration_s"], "status": row["status"], "note": row["note"] or "",
            "_href": url_for("admin.case", reference=row["reference"])})
    table = Table("cases", t("table.cases"), [
        Column("reference", t("col.reference")), Column("received", t("col.received")),
        Column("kind", t("col.kind"), lambda v: t(f"kind.{v}")),
        Column("topic", t("col.topic")), Column("office", t("col.office")),
        Column("service", t("col.service")),
        Column("duration_s", t("col.duration"), show_count, True),
        Column("status", t("col.status"), lambda v: t(f"status.{v}")),
        Column("note", t("col.note"), personal=True)], rows, total=total)
    if page:
        paginate(table, page, PAGE_SIZE)
    return table


def find_case(conn: sqlite3.Connection, reference: str,
              scope: tuple[str, ...] | None = None) -> dict[str, Any] | None:
    """A case by reference, only among `scope`'s offices (None: any office)."""
    if not (reference.isdigit() and len(reference) == 6):
        return None
    row = conn.execute(f"SELECT {', '.join(CASE_COLUMNS)} FROM recordings WHERE reference = ?",
                       [reference]).fetchone()
    if row is None:
        return None
    found = dict(zip(CASE_COLUMNS, row, strict=True))
    if scope is not None and found["office_id"] not in scope:
        return None
    return found


def own_case(reference: str) -> dict[str, Any]:
    """The case, if the signed-in account may open it; else 404 (as if there were none)."""
    found = find_case(line().store.patient_db.conn, reference, user().scope)
    if found is None:
        abort(404)
    return found


def recording_refusal(url: str, hosts: Iterable[str]) -> str | None:
    """Why our credentials must not be sent to `url`, or None when it is a plain https URL on
    one of `hosts` (exact names, no suffix match). The reason never repeats a user name.

    `https://attacker\\@api.twilio.com/x` is refused: urlsplit finds the host after the '@',
    but requests takes the backslash as the end of the host, connects to `attacker` and would
    send the basic-auth credentials there."""
    if not url:
        return "no recording URL was stored"
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        return "the URL has spaces, control characters or non-ASCII letters"
    if "\\" in url:
        return "the URL has a backslash"
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "the URL is not https"
    if "@" in parts.netloc:
        return "the URL has a user name before its host"
    try:
        port = parts.port
    except ValueError:
        return "the URL has an invalid port"
    if port not in (None, 443):
        return f"the URL uses port {port}, not 443"
    host = parts.hostname or ""
    trusted = {name.lower() for name in hosts}
    if host not in trusted:
        return f"host {host!r} is not a trusted recording host ({', '.join(sorted(trusted))})"
    if parts.query or parts.fragment:
        return "the URL has a query or a fragment"
    return None


def trusted_recording_url(url: str, hosts: Iterable[str]) -> str | None:
    """`url` when our credentials may be sent to it (see recording_refusal), else None."""
    return url if recording_refusal(url, hosts) is None else None


def provider_url(recording_url: str, fmt: str, hosts: Iterable[str]) -> str | None:
    """The media URL of a recording (`<url>.mp3` or `<url>.wav`: Twilio and Somleng both serve
    either), only on a trusted recording host: our credentials must never be sent anywhere
    else, whatever the database holds."""
    base = trusted_recording_url(recording_url, hosts)
    if base is None:
        return None
    for extension in (".mp3", ".wav"):
        base = base.removesuffix(extension)
    return f"{base}.{fmt}"




def player_problem(found: dict[str, Any]) -> str | None:
    """Why the page cannot play a case's recording (in the chosen language), or None."""
    settings = line().settings
    if found["purged_at"]:
        return t("recording.purged", day=when(found["purged_at"])[:10])
    if provider_url(found["recording_url"] or "", "mp3", settings.recording_hosts) is None:
        return t("recording.refused", hosts=", ".join(settings.recording_hosts))
    if not settings.twilio_account_sid:
        return t("recording.no_account")
    return None


# --- pages ----------------------------------------------------------------------------------


@bp.get("/cases")
def cases() -> str:
    catalog, conn, filters = context()
    table = case_table(catalog, conn, filters, page_number(request.args))
    return render("admin/cases.html", table=table, filters=filters, page="cases",
                  offices=office_choices(catalog, filters.scope), kinds=CASE_KINDS,
                  statuses=CASE_STATUSES)


@bp.get("/cases/<reference>")
def case(reference: str) -> str:
    catalog = line().catalog
    found = own_case(reference)
    audit("case.view", reference)
    topic = catalog.topic(found["topic"] or "")
    names = {"office": office_name(catalog, found["office_id"] or ""),
             "service": service_name(catalog, found["service_id"]) if found["service_id"]
             else "", "topic": name_of(topic.name, "") if topic else found["topic"] or ""}
    return render("admin/case.html", case=found, names=names, statuses=CASE_STATUSES,
                  when=when, problem=player_problem(found))


@bp.post("/cases/<reference>/status")
def case_status(reference: str) -> Response:
    found = own_case(reference)
    status = request.form.get("status", "")
    note = request.form.get("note", "").strip()[:2000]
    if status not in CASE_STATUSES:
        deny(400, "error.status")
    line().store.set_case_status(reference, status, note)
    changed = [f"status {found['status']} -> {status}"] if status != found["status"] else []
    if note != (found["note"] or ""):
        changed.append("note changed" if note else "note removed")
    audit("case.update", reference, "; ".join(changed) or "no change")
    log.info("case %s marked %s", reference, status)
    flash(t("case.saved"))
    return redirect(url_for("admin.case", reference=reference))


@bp.get("/cases/<reference>/recording")
def recording(reference: str) -> Response:
    """The recording, fetched from the provider with our credentials and passed through:
    the provider's URL never reaches the browser."""
    settings = line().settings
    found = own_case(reference)
    fmt = "wav" if request.args.get("format") == "wav" else "mp3"
    if found["purged_at"]:
        deny(410, "recording.purged", day=when(found["purged_at"])[:10])
    hosts = settings.recording_hosts
    recorded = found["recording_url"] or ""
    url = provider_url(recorded, fmt, hosts)
    if url is None:  # nothing is requested: our credentials go nowhere
        log.error("recording of case %s not fetched (provider %s): %s", reference,
                  settings.provider, recording_refusal(recorded, hosts))
        deny(503, "recording.refused", hosts=", ".join(hosts))
    account = settings.twilio_account_sid
    if not account:
        log.error("recording of case %s not fetched: TWILIO_ACCOUNT_SID is not set", reference)
        deny(503, "recording.no_account")
    try:
        upstream = requests.get(url, auth=(account, settings.auth_token), stream=True,
                                timeout=(5, 30))
    except requests.RequestException as exc:
        log.error("could not fetch the recording of case %s: %s", reference, exc)
        deny(502, "recording.no_answer")
    if upstream.status_code != 200:
        upstream.close()
        log.error("the provider answered %s for the recording of case %s",
                  upstream.status_code, reference)
        deny(502, "recording.provider_refused")
    download = request.args.get("download") is not None
    audit("recording.download" if download else "recording.play", reference, fmt)

    def body() -> Iterator[bytes]:
        try:
            yield from upstream.iter_content(64 * 1024)
        finally:
            upstream.close()

    headers = {"Cache-Control": "private, no-store",
               "Content-Disposition": f'{"attachment" if download else "inline"}; '
                                      f'filename="case-{reference}.{fmt}"'}
    if upstream.headers.get("Content-Length", "").isdigit():
        headers["Content-Length"] = upstream.headers["Content-Length"]
    return Response(body(), mimetype="audio/mpeg" if fmt == "mp3" else "audio/wav",
                    headers=headers)


def exports(catalog: Catalog, conn: sqlite3.Connection, filters: Filters,
            page: str) -> dict[str, Table]:
    return {"cases": case_table(catalog, conn, filters)} if page == "cases" else {}
