"""The call funnel: for each menu, in the order of the call flow, the calls that reached it
and how each of them left it (went on, went back, the line ended the call after silence or
wrong keys, or the caller hung up there), which add up to the calls that reached it; calls
per month; the most requested services. With an office (chosen, or the account's own),
only the calls that rated that office: a complaint or a message for the Ombudsman never
shows in an office's funnel, so an office cannot tell when one was made."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from ivr import charts, tree
from ivr.admin.scorecards import office_choices, partial_label, period_months, service_name
from ivr.admin.web import (
    SQL_CAMBODIA,
    Column,
    Filters,
    Table,
    bp,
    context,
    lang,
    local,
    render,
    show_count,
    show_percent,
    t,
)
from ivr.catalog import Catalog

# How a call left a menu: the last step it logged there (events.event, see ivr.flow).
BACK = ("back", "main")  # * (back one step) or # (the main menu)
LINE_ENDED = ("noinput-goodbye", "invalid-goodbye")  # the line said goodbye: silence, wrong keys
# Steps after which the caller is still at the menu (it is presented, or said again): when
# one is a call's last step at a menu, the caller hung up there.
STAYED = ("call", "present", "repeat", "noinput", "invalid")
# Any other last step (a key that chose, answered or paged; silence at the greeting, which
# chooses Khmer; a recording made) went on.
REPEATED = ("repeat",)
SILENT_ONCE = ("noinput", "invalid")  # asked again after silence or a wrong key
EXITS = ("went_on", "went_back", "line_ended", "hung_up")  # add up to "reached"


def _where(filters: Filters, column: str, call: str) -> tuple[str, list[str]]:
    """The days and offices as a WHERE clause on a stored UTC timestamp column and a call
    sid column."""
    clauses, args = [], []
    for clause, value in ((f"{column} >= ?", filters.since), (f"{column} < ?", filters.until)):
        if value:
            clauses.append(clause)
            args.append(value)
    offices, office_args = filters.office_clause("office_id")
    if offices:
        clauses.append(f"{call} IN (SELECT call_sid FROM feedback WHERE {offices})")
        args += office_args
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _marks(values: Sequence[str]) -> str:
    return ", ".join("?" * len(values))


def percent(part: int, whole: int) -> float | None:
    """A share as a percentage with one decimal (7.6, not 0.076): the page and the CSV."""
    return round(100 * part / whole, 1) if whole else None


def menu_rows(catalog: Catalog, conn: sqlite3.Connection, filters: Filters
              ) -> list[dict[str, Any]]:
    """One row per menu, in call-flow order (tree.order), with how the calls left it."""
    where, args = _where(filters, "at", "call_sid")
    # SQLite: beside the query's only max(), the bare column `event` is the one of the row
    # with the largest id, the call's last step at the menu (a second min() or max() in the
    # same SELECT would make it any row's: the flags are sums)
    sql = (
        "SELECT node, count(*), "
        f"sum(last IN ({_marks(BACK)})), sum(last IN ({_marks(LINE_ENDED)})), "
        f"sum(last IN ({_marks(STAYED)})), sum(repeated > 0), sum(silent > 0) FROM ("
        "SELECT node, event AS last, max(id), "
        f"sum(event IN ({_marks(REPEATED)})) AS repeated, "
        f"sum(event IN ({_marks(SILENT_ONCE)})) AS silent "
        f"FROM events{where} GROUP BY call_sid, node) GROUP BY node")
    found = conn.execute(sql, [*BACK, *LINE_ENDED, *STAYED, *REPEATED, *SILENT_ONCE, *args])
    rows = []
    for node, reached, back, ended, stayed, repeated, silent in found.fetchall():
        went_on = reached - back - ended - stayed
        label = tree.label(catalog, node, lang())  # a category's name is written for speech
        rows.append({
            "menu": label[:1].upper() + label[1:], "node": node, "reached": reached,
            "went_on": went_on, "went_back": back, "line_ended": ended, "hung_up": stayed,
            "went_on_share": percent(went_on, reached), "went_back_share": percent(back, reached),
            "ended_share": percent(ended + stayed, reached),
            "repeated": repeated, "silent": silent})
    rows.sort(key=lambda row: tree.order(catalog, row["node"]))
    return rows


def service_rows(catalog: Catalog, conn: sqlite3.Connection, filters: Filters
                 ) -> list[dict[str, Any]]:
    """The services whose facts calls heard (or a fee of which), by calls, most first."""
    where, args = _where(filters, "at", "call_sid")
    prefix = tree.SERVICE.kind + "/"
    rows = conn.execute(
        f"SELECT node, call_sid FROM events{where}{' AND' if where else ' WHERE'} node GLOB ? "
        "GROUP BY node, call_sid", [*args, prefix + "*"]).fetchall()
    calls: dict[str, set[str]] = {}
    for node, sid in rows:
        found = tree.resolve(node)
        if found is not None and "service" in found[1]:
            calls.setdefault(found[1]["service"], set()).add(sid)
    counted = sorted(((service, len(sids)) for service, sids in calls.items()),
                     key=lambda item: (-item[1], item[0]))
    return [{"service": service_name(catalog, service), "calls": n} for service, n in counted]


def call_tables(catalog: Catalog, conn: sqlite3.Connection, filters: Filters) -> dict[str, Table]:
    """The funnel's tables: by menu, and the most requested services."""
    shares = [Column(f"{key}_share", t(f"col.{key}_share"), show_percent, True)
              for key in ("went_on", "went_back", "ended")]
    return {
        "menus": Table("menus", t("table.menus"), [
            Column("menu", t("col.menu")), Column("node", t("col.node")),
            Column("reached", t("col.reached"), show_count, True),
            *(Column(key, t(f"col.{key}"), show_count, True) for key in EXITS),
            *shares,
            Column("repeated", t("col.repeated"), show_count, True),
            Column("silent", t("col.silent"), show_count, True)],
            menu_rows(catalog, conn, filters), note=t("calls.columns_note")),
        "top-services": Table("top-services", t("table.top-services"), [
            Column("service", t("col.service")),
            Column("calls", t("col.calls"), show_count, True)],
            service_rows(catalog, conn, filters)),
    }


def total_calls(conn: sqlite3.Connection, filters: Filters) -> int:
    where, args = _where(filters, "started_at", "sid")
    count: int = conn.execute(f"SELECT count(*) FROM calls{where}", args).fetchone()[0]
    return count


@dataclass
class Month:
    """A month of the chosen period (Cambodia's months): its calls, and whether the period
    holds only part of it (the line started, or the period begins or ends, within it)."""

    month: str  # 'YYYY-MM'
    calls: int
    partial: bool


def months_of(conn: sqlite3.Connection, filters: Filters) -> list[Month]:
    """Calls per month, every month from the first to the last (a month without calls is a
    0), each marked partial when the period does not cover all of it."""
    where, args = _where(filters, "started_at", "sid")
    month = f"substr(datetime(started_at, '{SQL_CAMBODIA}'), 1, 7)"
    counts = dict(conn.execute(f"SELECT {month}, count(*) FROM calls{where} GROUP BY 1",
                               args).fetchall())
    counts.pop(None, None)
    if not counts:
        return []
    first_call = conn.execute(f"SELECT min(started_at) FROM calls{where}", args).fetchone()[0]
    return [Month(m, counts.get(m, 0), partial)
            for m, partial in period_months(min(counts), max(counts), filters,
                                            local(first_call))]


def calls_chart(months: list[Month]) -> Markup | None:
    if not months:
        return None
    return charts.bar_chart([partial_label(m.month, m.partial) for m in months],
                            [m.calls for m in months], title=t("chart.calls"),
                            partial=[m.partial for m in months])


@bp.get("/calls")
def calls() -> str:
    catalog, conn, filters = context()
    months = months_of(conn, filters)
    return render("admin/calls.html", tables=call_tables(catalog, conn, filters),
                  total=total_calls(conn, filters), filters=filters, page="calls",
                  offices=office_choices(catalog, filters.scope), chart=calls_chart(months),
                  partial=any(m.partial for m in months))


def exports(catalog: Catalog, conn: sqlite3.Connection, filters: Filters,
            page: str) -> dict[str, Table]:
    return call_tables(catalog, conn, filters) if page == "calls" else {}
