"""CSV exports: every table a page shows, with the same rows (the page and the export are
built by the same function), scoped like the page, neutralised against spreadsheet
formulas, free-text columns marked as personal data, and each download in the audit log."""

from __future__ import annotations

from flask import Response, abort, request

from ivr.admin import auth, cases, funnel, scorecards
from ivr.admin.access import may_export
from ivr.admin.web import Filters, audit, bp, context, today, user

BUILDERS = (scorecards.exports, funnel.exports, cases.exports, auth.exports)


@bp.get("/export/<page>/<name>.csv")
def export(page: str, name: str) -> Response:
    if not may_export(user().role, page):
        abort(403)
    catalog, conn, filters = context()
    if page == "office" and filters.office:
        filters = Filters(filters.start, filters.end, office=filters.office,
                          scope=filters.scope)
    table = None
    for build in BUILDERS:
        table = build(catalog, conn, filters, page).get(name) or table
    if table is None:
        abort(404)
    query = "&".join(f"{k}={v}" for k, v in sorted(request.args.items()) if k != "lang")
    audit("export", f"{page}/{name}.csv", f"{len(table.rows)} rows" + (f"; {query}" if query
                                                                      else ""))
    filename = f"{page}-{name}-{today():%Y%m%d}.csv"
    return Response("\ufeff" + table.to_csv(), mimetype="text/csv",  # BOM: Excel reads Khmer
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
