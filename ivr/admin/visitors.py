"""Registering visitors for a post-visit feedback call (with their consent at the counter),
one by one or as a CSV upload, and how those calls went per office (the response rate).

A number typed here goes straight to ivr.outbound, which keeps it encrypted only until its
call is done; the page, the audit log and the logs never show or keep it. An office account
registers visitors of its own offices only.
"""

from __future__ import annotations

import csv
import io

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response as Reply  # what redirect() makes

from ivr.admin.scorecards import office_choices, office_name, service_choices
from ivr.admin.web import audit, bp, conn, line, render, t, user
from ivr.outbound import DISPOSITIONS, Refusal, response_rates

MAX_UPLOAD_ROWS = 2000
LANGS = ("km", "en")


def _page(error: str | None = None, code: int = 200, done: list[str] | None = None
          ) -> tuple[str, int]:
    catalog = line().catalog
    scope = user().scope
    rates = [dict(r, name=office_name(catalog, r["office"]))
             for r in response_rates(conn()) if scope is None or r["office"] in scope]
    return render("admin/visitors.html", page="visitors", error=error, done=done or [],
                  offices=office_choices(catalog, scope), services=service_choices(catalog),
                  rates=rates, dispositions=DISPOSITIONS, langs=LANGS), code


@bp.get("/visitors")
def visitors() -> tuple[str, int]:
    return _page()


def _register(number: str, office: str, service: str, lang: str) -> str | None:
    """None when scheduled, else the key of what is wrong."""
    from ivr.callback import outbound

    catalog = line().catalog
    scope = user().scope
    if catalog.office(office) is None or (scope is not None and office not in scope):
        return "visitors.error.office"
    if catalog.service(service) is None or not catalog.offers(office, service):
        return "visitors.error.service"
    if lang not in LANGS:
        lang = "km"
    found = outbound().register_visitor(number, office, service, lang)
    if isinstance(found, Refusal):
        return {"opted out": "visitors.error.opted_out",
                "not a phone number": "visitors.error.number"}.get(
                    found.reason, "visitors.error.off")
    audit("visitor.add", office, service)  # never the number
    return None


@bp.post("/visitors")
def visitor_add() -> Reply | tuple[str, int]:
    form = request.form
    upload = request.files.get("csv")
    if upload is not None and upload.filename:
        return _upload(upload.read())
    if form.get("consent") != "yes":
        return _page(t("visitors.error.consent"), 400)
    problem = _register(form.get("number", ""), form.get("office", ""),
                        form.get("service", ""), form.get("lang", "km"))
    if problem:
        return _page(t(problem), 400)
    flash(t("visitors.added"))
    return redirect(url_for("admin.visitors"))


def _upload(data: bytes) -> tuple[str, int]:
    """number,office,service[,lang] per line (a header line is skipped); every row whose
    visitor consented. Each refused row is reported by its line number, never its number."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _page(t("visitors.error.csv"), 400)
    rows: list[list[str]] = list(csv.reader(io.StringIO(text)))
    if rows and rows[0] and rows[0][0].strip().lower() in ("number", "phone"):
        rows = rows[1:]
    if not rows or len(rows) > MAX_UPLOAD_ROWS:
        return _page(t("visitors.error.csv"), 400)
    added = 0
    refused: list[str] = []
    for index, cells in enumerate(rows, start=1):
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        if len(cells) < 3:
            refused.append(t("visitors.row", row=index, why=t("visitors.error.csv")))
            continue
        problem = _register(cells[0], cells[1], cells[2], cells[3] if len(cells) > 3 else "km")
        if problem:
            refused.append(t("visitors.row", row=index, why=t(problem)))
        else:
            added += 1
    done: list[str] = [t("visitors.uploaded", count=added), *refused]
    return _page(None, 200 if added or not refused else 400, done)

