"""Scorecards: additive tallies from one SQL query, by office, by service and by month
(Cambodia's months), with the gender split; the scorecard page and the printable one."""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from flask import abort
from markupsafe import Markup

from ivr import charts
from ivr.admin.web import (
    ALL,
    FEW,
    SQL_CAMBODIA,
    Column,
    Filters,
    Table,
    bp,
    context,
    month_label,
    name_of,
    render,
    show_count,
    show_mean,
    show_share,
    t,
    today,
    user,
)
from ivr.catalog import Catalog

SCALE_COLORS = ("#1f5fbf", "#d9480f", "#2b8a3e")
PAYMENT_COLOR = "#b42318"
KNOWN_QUESTIONS = ("quality", "timeliness", "unofficial-payment")
KNOWN_GROUPS = ("all", "gender=woman", "gender=man", "origin=inbound", "origin=survey")
# how the rating's call started (calls.origin): rang in (a callback is the caller's own call
# too), or a post-visit feedback call the line placed (ivr/outbound.py)
ORIGIN_GROUPS = ("origin=inbound", "origin=survey")


@dataclass
class Tally:
    """The figures of one group (an office, a service, a month; everyone or women or men),
    with the same definitions and rounding as ivr.report.Score."""

    responses: int = 0
    count: dict[str, int] = field(default_factory=dict)  # answers (scale: numeric ones)
    total: dict[str, int] = field(default_factory=dict)  # sum of values, or of "yes"
    squares: dict[str, int] = field(default_factory=dict)  # sum of squared scale values

    @classmethod
    def from_sums(cls, catalog: Catalog, sums: list[int]) -> Tally:
        """From the numbers in the order tally_cells reads them (see `sum_layout`)."""
        tally = cls(responses=sums[0])
        numbers = iter(sums[1:])
        for question in catalog.survey:
            if question.type == "scale":
                tally.count[question.id] = next(numbers)
                tally.total[question.id] = next(numbers)
                tally.squares[question.id] = next(numbers)
            elif question.type == "yes-no":
                tally.count[question.id] = next(numbers)
                tally.total[question.id] = next(numbers)
        return tally

    def mean(self, question: str) -> float | None:
        n = self.count.get(question, 0)
        return round(self.total[question] / n, 2) if n else None

    def spread(self, question: str) -> float | None:
        """Population standard deviation, as statistics.pstdev."""
        n = self.count.get(question, 0)
        if not n:
            return None
        total, squares = self.total[question], self.squares[question]
        return round(math.sqrt(Fraction(n * squares - total * total, n * n)), 2)

    def share_yes(self, question: str) -> float | None:
        n = self.count.get(question, 0)
        return round(self.total[question] / n, 3) if n else None


@dataclass
class Cell:
    """The sums for one office, service, month and answer to each choice question. Sums
    add up, so any grouping (by office, by service, by month) is a cheap addition."""

    office: str
    service: str
    month: str
    groups: list[str]  # ALL and e.g. "gender=woman"
    sums: tuple[int, ...]  # responses, then per question: count, total(, squares)


DIGITS = "(value <> '' AND value NOT GLOB '*[^0-9]*')"


def tally_cells(conn: sqlite3.Connection, catalog: Catalog, filters: Filters) -> list[Cell]:
    """Every answer in the filters, summed per office, service, month and split (e.g. gender)
    by SQLite: first one row per feedback (its answers side by side, read in primary-key
    order), then sums per cell. 100,000 answers become a few thousand rows."""
    pivot, sums, args = [], [], []
    for i, question in enumerate(catalog.survey):  # the order Tally.from_sums reads
        if question.type == "scale":
            pivot.append(f"max(CASE WHEN question = ? AND {DIGITS} "
                         f"THEN CAST(value AS INTEGER) END) AS q{i}")
            sums += [f"count(p.q{i})", f"coalesce(sum(p.q{i}), 0)",
                     f"coalesce(sum(p.q{i} * p.q{i}), 0)"]
        elif question.type == "yes-no":
            pivot.append(f"max(CASE WHEN question = ? THEN value = 'yes' END) AS q{i}")
            sums += [f"count(p.q{i})", f"coalesce(sum(p.q{i}), 0)"]
        else:
            continue
        args.append(question.id)
    splits = [q.id for q in catalog.survey if q.type == "choice"]
    for i, question in enumerate(splits):
        pivot.append(f"max(CASE WHEN question = ? THEN value END) AS c{i}")
        args.append(question)
    where, where_args = [], []
    for clause, value in (("f.created_at >= ?", filters.since),
                          ("f.created_at < ?", filters.until),
                          ("f.service_id = ?", filters.service)):
        if value:
            where.append(clause)
            where_args.append(value)
    offices, office_args = filters.office_clause("f.office_id")
    if offices:
        where.append(offices)
        where_args += office_args
    # the month in Cambodia (UTC+7): a rating at 20:00 UTC on the 31st is next month's
    month = f"substr(datetime(f.created_at, '{SQL_CAMBODIA}'), 1, 7)"
    keys = ["f.office_id", "f.service_id", month,
            *(f"p.c{i}" for i in range(len(splits))),
            "coalesce(c.origin, 'inbound') = 'survey'"]
    sql = (f"SELECT {', '.join(keys)}, count(*), {', '.join(sums)} "
           f"FROM (SELECT feedback_id, {', '.join(pivot)} FROM answers GROUP BY feedback_id) p "
           "JOIN feedback f ON f.id = p.feedback_id LEFT JOIN calls c ON c.sid = f.call_sid"
           + (f" WHERE {' AND '.join(where)}" if where else "")
           + f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}")
    cells = []
    rows = conn.execute(sql, [*args, *where_args]).fetchall()
    # ratings of post-visit calls apart from those of callers who rang in: shown only where
    # the line has placed such calls (otherwise both groups would repeat "all")
    by_origin = any(row[3 + len(splits)] for row in rows)
    for row in rows:
        split_values = row[3:3 + len(splits)]
        groups = [ALL] + [f"{q}={v}" for q, v in zip(splits, split_values, strict=True)
                          if v not in (None, "skipped")]
        if by_origin:
            groups.append(ORIGIN_GROUPS[1] if row[3 + len(splits)] else ORIGIN_GROUPS[0])
        cells.append(Cell(row[0], row[1], row[2], groups, row[4 + len(splits):]))
    return cells


def group_cells(catalog: Catalog, cells: list[Cell], key: Callable[[Cell], str],
                splits: bool = True) -> dict[str, dict[str, Tally]]:
    """Add the cells up by `key` (office, service, month), overall and per split group."""
    sums: dict[tuple[str, str], list[int]] = {}
    for cell in cells:
        for group in cell.groups if splits else [ALL]:
            acc = sums.get((key(cell), group))
            if acc is None:
                sums[(key(cell), group)] = list(cell.sums)
            else:
                for i, value in enumerate(cell.sums):
                    acc[i] += value
    groups: dict[str, dict[str, Tally]] = defaultdict(dict)
    for (name, group), numbers in sums.items():
        groups[name][group] = Tally.from_sums(catalog, numbers)
    return groups


def _group_order(catalog: Catalog) -> list[str]:
    order = [ALL, *ORIGIN_GROUPS]
    for question in catalog.survey:
        if question.type == "choice":
            order += [f"{question.id}={option.id}" for option in question.options]
    return order


def _group_label(catalog: Catalog, group: str) -> str:
    if group in KNOWN_GROUPS:
        return t(f"group.{group}")
    question_id, _, option_id = group.partition("=")
    question = catalog.question(question_id)
    option = next((o for o in question.options if o.id == option_id), None) if question else None
    return name_of(option.label if option else None, group)


def _question_label(question_id: str) -> str:
    return t(f"question.{question_id}") if question_id in KNOWN_QUESTIONS else question_id


def score_columns(catalog: Catalog, first: Column) -> list[Column]:
    columns = [first, Column("group", t("col.group")),
               Column("responses", t("col.responses"), show_count, True)]
    for question in catalog.survey:
        label = _question_label(question.id)
        if question.type == "scale":
            columns += [Column(f"{question.id}_mean", t("col.mean", q=label), show_mean, True),
                        Column(f"{question.id}_sd", t("col.sd", q=label), show_mean, True)]
        elif question.type == "yes-no":
            columns.append(Column(f"{question.id}_share", t("col.share", q=label), show_share,
                                  True))
    return columns


def score_rows(catalog: Catalog, groups: Mapping[str, Mapping[str, Tally]],
               order: list[str], label: Callable[[str], str]) -> list[dict[str, Any]]:
    """One row per key and group ('all' first, then women, men...), in catalogue order."""
    rows = []
    for key in order:
        for group in _group_order(catalog):
            tally = groups.get(key, {}).get(group)
            if tally is None or not tally.responses:
                continue
            row: dict[str, Any] = {"name": label(key), "group": _group_label(catalog, group),
                                   "responses": tally.responses, "_group": group,
                                   "_few": tally.responses < FEW}
            for question in catalog.survey:
                if question.type == "scale":
                    row[f"{question.id}_mean"] = tally.mean(question.id)
                    row[f"{question.id}_sd"] = tally.spread(question.id)
                elif question.type == "yes-no":
                    row[f"{question.id}_share"] = tally.share_yes(question.id)
            rows.append(row)
    return rows


def _ordered(keys: Iterator[str] | list[str], known: list[str]) -> list[str]:
    """Catalogue order first, then ids the catalogue no longer has."""
    present = set(keys)
    return [k for k in known if k in present] + sorted(present - set(known))


def office_name(catalog: Catalog, office_id: str) -> str:
    """The short name (the district) for tables: every office is a One Window Service Office."""
    office = catalog.office(office_id)
    return name_of(office.district, office_id) if office else office_id


def service_name(catalog: Catalog, service_id: str) -> str:
    """The catalogue's name, written for speech ("a car licence"): capitalised for a table."""
    service = catalog.service(service_id)
    name = name_of(service.name, service_id) if service else service_id
    return name[:1].upper() + name[1:]


def months_between(first: str, last: str) -> list[str]:
    """Every 'YYYY-MM' from first to last, so a month without answers shows as a gap."""
    year, month = int(first[:4]), int(first[5:7])
    months = []
    while f"{year:04d}-{month:02d}" <= last and len(months) < 240:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@dataclass
class Scorecard:
    tables: dict[str, Table]
    charts: list[Markup]
    silent_offices: list[str]


def scorecard_tables(catalog: Catalog, conn: sqlite3.Connection, filters: Filters,
                     pages: tuple[str, ...] = ("offices", "services", "months")) -> Scorecard:
    """The scorecard: by office, by service, by month (with gender split), and the trend
    charts; the printable page for one office is the same without the office table."""
    cells = tally_cells(conn, catalog, filters)
    tables: dict[str, Table] = {}
    office_ids = [o.id for o in catalog.offices]
    shown = filters.offices
    service_ids = [s.id for s in catalog.services()]
    per = (("offices", "col.office", lambda c: c.office, office_ids, office_name),
           ("services", "col.service", lambda c: c.service, service_ids, service_name))
    for name, column, key, known, label in per:
        if name in pages:
            grouped = group_cells(catalog, cells, key)
            tables[name] = Table(
                name, t(f"table.{name}"), score_columns(catalog, Column("name", t(column))),
                score_rows(catalog, grouped, _ordered(iter(grouped), known),
                           lambda k, label=label: label(catalog, k)))
    by_month = group_cells(catalog, cells, lambda c: c.month)
    months = months_between(min(by_month), max(by_month)) if by_month else []
    tables["months"] = Table(
        "months", t("table.months"),
        score_columns(catalog, Column("name", t("col.month"),
                                      lambda k: month_label(k).replace("\n", " "))),
        score_rows(catalog, by_month, months, lambda k: k))
    answered = {c.office for c in cells}
    silent = [office_name(catalog, o.id) for o in catalog.offices
              if o.id not in answered and not filters.office
              and (shown is None or o.id in shown)]
    return Scorecard(tables, trend_charts(catalog, by_month, months), silent)


def trend_charts(catalog: Catalog, by_month: Mapping[str, Mapping[str, Tally]],
                 months: list[str]) -> list[Markup]:
    """Month by month: satisfaction (each scale question), unofficial payments, responses."""
    if not months:
        return []
    labels = [month_label(m) for m in months]
    everyone = [by_month.get(m, {}).get(ALL) for m in months]
    scale = [q.id for q in catalog.survey if q.type == "scale"]
    yes_no = [q.id for q in catalog.survey if q.type == "yes-no"]
    drawn = [charts.line_chart(
        labels, [charts.Series(_question_label(q), [x.mean(q) if x else None for x in everyone],
                               SCALE_COLORS[i % len(SCALE_COLORS)])
                 for i, q in enumerate(scale)],
        low=1, high=5, ticks=[1, 2, 3, 4, 5], title=t("chart.satisfaction"))]
    for question in yes_no:
        shares = [x.share_yes(question) if x else None for x in everyone]
        values = [round(v * 100, 1) if v is not None else None for v in shares]
        high = 50.0 if max((v for v in values if v is not None), default=0) <= 50 else 100.0
        drawn.append(charts.line_chart(
            labels, [charts.Series(_question_label(question), values, PAYMENT_COLOR)],
            low=0, high=high, ticks=[high * i / 5 for i in range(6)],
            title=t("chart.payment"), fmt=lambda v: f"{v:.0f}%"))
    drawn.append(charts.bar_chart(labels, [x.responses if x else 0 for x in everyone],
                                  title=t("chart.responses")))
    return drawn



# --- pages ------------------------------------------------------------------------------


def office_choices(catalog: Catalog, scope: tuple[str, ...] | None) -> list[tuple[str, str]]:
    """The offices an account may choose in a filter (its own, or all)."""
    return [(o.id, f"{office_name(catalog, o.id)} ({name_of(o.province.name, '')})")
            for o in catalog.offices if scope is None or o.id in scope]


def service_choices(catalog: Catalog) -> list[tuple[str, str]]:
    return [(s.id, service_name(catalog, s.id)) for s in catalog.services()]


@bp.get("/scorecard")
def scorecard() -> str:
    catalog, conn, filters = context()
    card = scorecard_tables(catalog, conn, filters)
    scope = filters.scope
    printable = filters.office or (scope[0] if scope and len(scope) == 1 else "")
    return render("admin/scorecard.html", card=card, filters=filters, catalog=catalog,
                  page="scorecard", offices=office_choices(catalog, scope),
                  services=service_choices(catalog), printable=printable)


def office_card(catalog: Catalog, conn: sqlite3.Connection, filters: Filters) -> Scorecard:
    """One office's printable scorecard: its summary, its services, its months."""
    card = scorecard_tables(catalog, conn, filters, pages=("offices", "services"))
    card.tables["offices"].title = t("print.summary")
    return card


@bp.get("/offices/<office_id>/print")
def print_office(office_id: str) -> str:
    catalog, conn, filters = context()
    office = catalog.office(office_id)
    scope = user().scope
    if office is None or (scope is not None and office.id not in scope):
        abort(404)
    filters = Filters(filters.start, filters.end, office=office.id, scope=scope)
    card = office_card(catalog, conn, filters)
    return render("admin/print.html", card=card, filters=filters,
                  office=name_of(office.name, office.id), printed=today().isoformat())


def exports(catalog: Catalog, conn: sqlite3.Connection, filters: Filters,
            page: str) -> dict[str, Table]:
    if page == "scorecard":
        return scorecard_tables(catalog, conn, filters).tables
    if page == "office" and filters.office:
        return office_card(catalog, conn, filters).tables
    return {}

