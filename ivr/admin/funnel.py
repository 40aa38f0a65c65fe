"""The call funnel: for each menu, the calls that reached it, went on, repeated it, timed
out and ended there; the most requested services. With an office (chosen, or the account's
own), only the calls that rated that office: a complaint or a message for the Ombudsman
never shows in an office's funnel, so an office cannot tell when one was made."""

from __future__ import annotations

import sqlite3

from ivr.admin.scorecards import office_choices, service_name
from ivr.admin.web import (
    Column,
    Filters,
    Table,
    bp,
    context,
    name_of,
    render,
    show_count,
    show_share,
    t,
)
from ivr.catalog import Catalog

SERVICE_NODE = "service/"
WENT_ON = ("choice", "answer", "more")
TIMED_OUT = ("noinput", "noinput-goodbye")


def node_label(catalog: Catalog, node: str) -> str:
    """A menu's name for people: 'category/commerce' -> the category's name, and so on."""
    head, _, rest = node.partition("/")
    if node in ("welcome", "main", "categories"):
        return t(f"node.{node}")
    if head == "category":
        category = catalog.category(rest)
        return name_of(category.name, node) if category else node
    if head == "service":
        service_id, _, fee = rest.partition("/fee")
        name = service_name(catalog, service_id)
        return f"{name} – {t('node.fee')}" if fee else name
    if head == "rate":
        if rest.startswith("office"):
            return t("node.rate-office")
        if rest.startswith("categor"):
            return t("node.rate-service")
        if rest.startswith("q/"):
            return t("node.rate-question", n=rest.removeprefix("q/"))
        if rest in ("comment", "record", "recorded"):
            return t("node.rate-comment")
        if rest == "thanks":
            return t("node.rate-thanks")
    if head == "complaint":
        if rest == "":
            return t("node.complaint")
        return t("node.complaint-office" if rest.startswith("office") else "node.complaint-record")
    if head == "ombudsman":
        return t("node.ombudsman-office" if rest.startswith("office") else "node.ombudsman")
    if head == "case":
        return t("node.case")
    return node


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


def call_tables(catalog: Catalog, conn: sqlite3.Connection, filters: Filters) -> dict[str, Table]:
    """Of the calls that reached each menu: how many went on (a key that chose, answered or
    paged), repeated it (0), timed out (silence), and ended there (the call's last logged
    step, whoever hung up). A caller who hangs up while a menu is still playing has sent no
    step from it, so that call ends at the menu before."""
    where, args = _where(filters, "at", "call_sid")
    went_on, timed_out = ", ".join("?" * len(WENT_ON)), ", ".join("?" * len(TIMED_OUT))
    rows = conn.execute(
        "SELECT node, count(*), sum(went_on), sum(repeated), sum(timed_out) FROM ("
        f"SELECT call_sid, node, max(event IN ({went_on})) AS went_on, "
        "max(event = 'repeat') AS repeated, "
        f"max(event IN ({timed_out})) AS timed_out FROM events{where} GROUP BY call_sid, node"
        ") GROUP BY node ORDER BY 2 DESC, node", [*WENT_ON, *TIMED_OUT, *args]).fetchall()
    calls_where, calls_args = _where(filters, "started_at", "sid")
    ended = dict(conn.execute(  # the line keeps each call's last node: no need to search
        f"SELECT last_node, count(*) FROM calls{calls_where} GROUP BY last_node",
        calls_args).fetchall())
    menus = [{"menu": node_label(catalog, node), "node": node, "reached": reached,
              "went_on": went, "went_on_share": round(went / reached, 3),
              "repeated": repeated, "timed_out": timed, "ended": ended.get(node, 0),
              "ended_share": round(ended.get(node, 0) / reached, 3)}
             for node, reached, went, repeated, timed in rows]
    service_rows = conn.execute(
        "SELECT CASE WHEN instr(rest, '/') > 0 THEN substr(rest, 1, instr(rest, '/') - 1) "
        "ELSE rest END AS service, count(DISTINCT call_sid) FROM (SELECT call_sid, "
        f"substr(node, {len(SERVICE_NODE) + 1}) AS rest FROM events{where}"
        f"{' AND' if where else ' WHERE'} node GLOB ?) GROUP BY service ORDER BY 2 DESC, 1",
        [*args, SERVICE_NODE + "*"]).fetchall()
    services = [{"service": service_name(catalog, service), "calls": calls}
                for service, calls in service_rows]
    return {
        "menus": Table("menus", t("table.menus"), [
            Column("menu", t("col.menu")), Column("node", t("col.node")),
            Column("reached", t("col.reached"), show_count, True),
            Column("went_on", t("col.went_on"), show_count, True),
            Column("went_on_share", t("col.went_on_share"), show_share, True),
            Column("repeated", t("col.repeated"), show_count, True),
            Column("timed_out", t("col.timed_out"), show_count, True),
            Column("ended", t("col.ended"), show_count, True),
            Column("ended_share", t("col.ended_share"), show_share, True)], menus),
        "top-services": Table("top-services", t("table.top-services"), [
            Column("service", t("col.service")),
            Column("calls", t("col.calls"), show_count, True)], services),
    }


def total_calls(conn: sqlite3.Connection, filters: Filters) -> int:
    where, args = _where(filters, "started_at", "sid")
    return conn.execute(f"SELECT count(*) FROM calls{where}", args).fetchone()[0]



@bp.get("/calls")
def calls() -> str:
    catalog, conn, filters = context()
    return render("admin/calls.html", tables=call_tables(catalog, conn, filters),
                  total=total_calls(conn, filters), filters=filters, page="calls",
                  offices=office_choices(catalog, filters.scope))


def exports(catalog: Catalog, conn: sqlite3.Connection, filters: Filters,
            page: str) -> dict[str, Table]:
    return call_tables(catalog, conn, filters) if page == "calls" else {}
