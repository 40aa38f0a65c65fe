"""Scorecards: additive tallies from one SQL query, by office, by service and by month
(Cambodia's months), with the gender split; the scorecard page and the printable one."""

from __future__ import annotations

import functools
import sqlite3
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
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
    local,
    month_label,
    name_of,
    render,
    show_count,
    show_mean,
    show_percent,
    t,
    today,
    user,
)
from ivr.catalog import Catalog
from ivr.survey import Question

SCALE_COLORS = ("#1f5fbf", "#d9480f", "#2b8a3e")
PAYMENT_COLOR = "#b42318"
KNOWN_QUESTIONS = ("quality", "timeliness", "unofficial-payment")
KNOWN_GROUPS = ("all", "gender=woman", "gender=man", "origin=inbound", "origin=survey")
# how the rating's call started (calls.origin): rang in (a callback is the caller's own call
# too), or a post-visit feedback call the line placed (ivr/outbound.py)
ORIGIN_GROUPS = ("origin=inbound", "origin=survey")
SKIPPED = "skipped"  # what the line stores for an optional question the caller skipped
NOT_SAID = ""  # the group of a split question's callers who did not say ("gender=")
# who sees the cases' follow-ups and reply times: an office chief sees no case, not even
# counted (README, Roles); scoped roles see their own offices only, as on every table
REPLY_ROLES = frozenset({"admin", "ombudsman", "analyst"})


def summed(catalog: Catalog) -> list[Question]:
    """The questions whose answers are added up (their type has a number for an answer)."""
    return [q for q in catalog.survey if q.kind.number_sql is not None]


def splits_of(catalog: Catalog) -> list[Question]:
    """The questions whose answers split the figures into groups (gender)."""
    return [q for q in catalog.survey if q.kind.splits]


def figure_key(column: str) -> str:
    """A figure's short name in column keys and wording: 'yes share' -> 'share'."""
    return column.split()[-1]


@dataclass
class Tally:
    """The figures of one group (an office, a service, a month; everyone or women or men),
    with the same definitions and rounding as ivr.report.Score (the question types say
    them: `QuestionType.summary`)."""

    responses: int = 0
    sums: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # question -> sums

    @classmethod
    def from_sums(cls, catalog: Catalog, sums: Sequence[int]) -> Tally:
        """From the numbers in the order tally_cells reads them: the responses, then for
        each summed question its count, total and total of squares."""
        tally = cls(responses=sums[0])
        for i, question in enumerate(summed(catalog)):
            count, total, squares = sums[1 + 3 * i:4 + 3 * i]
            tally.sums[question.id] = (count, total, squares)
        return tally

    def figure(self, question: Question, column: str) -> float | None:
        """One of the question type's figures ('mean', 'sd', 'yes share')."""
        count, total, squares = self.sums.get(question.id, (0, 0, 0))
        return question.kind.summary(count, total, squares).get(column)


@dataclass
class Cell:
    """The sums for one office, service, month and answer to each choice question. Sums
    add up, so any grouping (by office, by service, by month) is a cheap addition."""

    office: str
    service: str
    month: str
    groups: list[str]  # ALL and e.g. "gender=woman"
    sums: tuple[int, ...]  # responses, then per question: count, total(, squares)



def feedback_where(filters: Filters, table: str = "f") -> tuple[list[str], list[str]]:
    """The filters (days, service, offices) as conditions on a table of ratings or cases
    (`feedback f`, `recordings r`), and their arguments."""
    where, args = [], []
    for clause, value in ((f"{table}.created_at >= ?", filters.since),
                          (f"{table}.created_at < ?", filters.until),
                          (f"{table}.service_id = ?", filters.service)):
        if value:
            where.append(clause)
            args.append(value)
    offices, office_args = filters.office_clause(f"{table}.office_id")
    if offices:
        where.append(offices)
        args += office_args
    return where, args


def first_rating(conn: sqlite3.Connection, filters: Filters) -> datetime | None:
    """When the first rating in the filters was given (in Cambodia)."""
    where, args = feedback_where(filters)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return local(conn.execute(f"SELECT min(f.created_at) FROM feedback f{clause}",
                              args).fetchone()[0])


def tally_cells(conn: sqlite3.Connection, catalog: Catalog, filters: Filters) -> list[Cell]:
    """Every answer in the filters, summed per office, service, month and split (e.g. gender)
    by SQLite: first one row per feedback (its answers side by side, read in primary-key
    order), then sums per cell. 100,000 answers become a few thousand rows."""
    pivot: list[str] = []
    sums: list[str] = []
    args: list[str] = []
    for i, question in enumerate(summed(catalog)):  # the order Tally.from_sums reads
        pivot.append(f"max(CASE WHEN question = ? THEN {question.kind.number_sql} END) AS q{i}")
        sums += [f"count(p.q{i})", f"coalesce(sum(p.q{i}), 0)",
                 f"coalesce(sum(p.q{i} * p.q{i}), 0)"]
        args.append(question.id)
    splits = [q.id for q in splits_of(catalog)]
    for i, split in enumerate(splits):
        pivot.append(f"max(CASE WHEN question = ? THEN value END) AS c{i}")
        args.append(split)
    where, where_args = feedback_where(filters)
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
        groups = [ALL] + [f"{q}={NOT_SAID if v in (None, SKIPPED) else v}"
                          for q, v in zip(splits, split_values, strict=True)]
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
    """Everyone, rang in / called after a visit (when the line placed such calls), then for
    each split question its options and those who did not say: the groups under a split
    question add up to everyone."""
    order = [ALL, *ORIGIN_GROUPS]
    for question in splits_of(catalog):
        order += [f"{question.id}={option.id}" for option in question.options]
        order.append(f"{question.id}={NOT_SAID}")
    return order


def _group_label(catalog: Catalog, group: str) -> str:
    if group in KNOWN_GROUPS:
        return t(f"group.{group}")
    question_id, _, option_id = group.partition("=")
    if option_id == NOT_SAID:
        return t("group.not_said")
    question = catalog.question(question_id)
    option = next((o for o in question.options if o.id == option_id), None) if question else None
    return name_of(option.label if option else None, group)


def _question_label(question_id: str) -> str:
    return t(f"question.{question_id}") if question_id in KNOWN_QUESTIONS else question_id


def _figure_value(column: str, value: float | None) -> float | None:
    """A figure as the page and the CSV hold it: a share as a percentage (33.3, not 0.333)."""
    if value is not None and figure_key(column) == "share":
        return round(value * 100, 1)
    return value


def score_columns(catalog: Catalog, first: Column) -> list[Column]:
    columns = [first, Column("group", t("col.group")),
               Column("responses", t("col.responses"), show_count, True)]
    for question in catalog.survey:
        label = _question_label(question.id)
        for column, _ in question.kind.figures():
            key = figure_key(column)
            columns.append(Column(f"{question.id}_{key}", t(f"col.{key}", q=label),
                                  show_percent if key == "share" else show_mean, True))
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
                for column, _ in question.kind.figures():
                    row[f"{question.id}_{figure_key(column)}"] = _figure_value(
                        column, tally.figure(question, column))
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


def period_months(first: str, last: str, filters: Filters, first_record: datetime | None
                  ) -> list[tuple[str, bool]]:
    """Every 'YYYY-MM' from first to last (a month without answers shows as a gap), each
    with whether the period holds only part of it: the period starts after the month's
    first day (the chosen start, else the day of the first record: the line started within
    it), or ends before the month is over (the chosen end, else today, which is not over)."""
    starts = filters.start or (first_record.date() if first_record else None)
    ends = filters.end if filters.end and filters.end < today() else None
    months: list[tuple[str, bool]] = []
    year, number = int(first[:4]), int(first[5:7])
    while f"{year:04d}-{number:02d}" <= last and len(months) < 240:
        following = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
        last_day = following - timedelta(days=1)
        partial = bool(starts and starts > date(year, number, 1)) or (
            ends < last_day if ends is not None else today() <= last_day)
        months.append((f"{year:04d}-{number:02d}", partial))
        year, number = following.year, following.month
    return months


def partial_label(month: str, partial: bool) -> str:
    """A month under a chart's axis ('Jun\n2026'), with a * when only part of it is in the
    period ('Jun*\n2026')."""
    label = month_label(month)
    if not partial:
        return label
    name, _, year = label.partition("\n")
    return f"{name}*\n{year}" if year else f"{label}*"


@dataclass
class Scorecard:
    tables: dict[str, Table]
    charts: list[Markup]
    silent_offices: list[str]
    partial: bool = False  # a month of the charts is only partly in the period


def scorecard_tables(catalog: Catalog, conn: sqlite3.Connection, filters: Filters,
                     pages: tuple[str, ...] = ("offices", "services", "months", "replies")
                     ) -> Scorecard:
    """The scorecard: by office, by service, by month (with gender split), and the trend
    charts; the printable page for one office is the same without the office table."""
    cells = tally_cells(conn, catalog, filters)
    tables: dict[str, Table] = {}
    office_ids = [o.id for o in catalog.offices]
    shown = filters.offices
    service_ids = [s.id for s in catalog.services()]
    per: list[tuple[str, Callable[[Cell], str], list[str], Callable[[Catalog, str], str]]] = [
        ("office", lambda c: c.office, office_ids, office_name),
        ("service", lambda c: c.service, service_ids, service_name)]
    for kind, key, known, label in per:
        name = f"{kind}s"
        if name in pages:
            grouped = group_cells(catalog, cells, key)
            tables[name] = Table(
                name, t(f"table.{name}"), score_columns(catalog, Column("name", t(f"col.{kind}"))),
                score_rows(catalog, grouped, _ordered(iter(grouped), known),
                           functools.partial(label, catalog)))
    by_month = group_cells(catalog, cells, lambda c: c.month)
    months = period_months(min(by_month), max(by_month), filters,
                           first_rating(conn, filters)) if by_month else []
    tables["months"] = Table(
        "months", t("table.months"),
        score_columns(catalog, Column("name", t("col.month"),
                                      lambda k: month_label(k).replace("\n", " "))),
        score_rows(catalog, by_month, [m for m, _ in months], lambda k: k))
    if "replies" in pages and user().role in REPLY_ROLES:
        tables["replies"] = reply_table(catalog, conn, filters)
    answered = {c.office for c in cells}
    silent = [office_name(catalog, o.id) for o in catalog.offices
              if o.id not in answered and not filters.office
              and (shown is None or o.id in shown)]
    return Scorecard(tables, trend_charts(catalog, by_month, months), silent,
                     any(partial for _, partial in months))


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _days_between(start: str, end: str) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 86400
    except (TypeError, ValueError):
        return None


def reply_rows(conn: sqlite3.Connection, filters: Filters) -> dict[str, dict[str, Any]]:
    """Per office: its cases received in the filters' days, their follow-up messages, how
    many got a reply, and the median days from a case's receipt to its first reply."""
    clauses, args = feedback_where(filters, "r")
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    found: dict[str, dict[str, Any]] = {}
    days: dict[str, list[float]] = defaultdict(list)
    for office, received, first_reply, followups in conn.execute(
            "SELECT r.office_id, r.created_at, (SELECT min(created_at) FROM case_replies "
            "WHERE reference = r.reference), (SELECT count(*) FROM case_followups WHERE "
            f"reference = r.reference) FROM recordings r{where}", args):
        row = found.setdefault(office or "", {"cases": 0, "followups": 0, "replied": 0})
        row["cases"] += 1
        row["followups"] += followups
        if first_reply:
            row["replied"] += 1
            waited = _days_between(received, first_reply)
            if waited is not None:
                days[office or ""].append(max(0.0, waited))
    for office, row in found.items():
        row["median_reply"] = median(days[office])
    return found


def show_days(value: Any) -> str:
    return "–" if value is None else f"{value:.1f}"


def reply_table(catalog: Catalog, conn: sqlite3.Connection, filters: Filters) -> Table:
    found = reply_rows(conn, filters)
    known = [o.id for o in catalog.offices]
    rows = [{"name": office_name(catalog, office), **found[office]}
            for office in _ordered(iter(found), known)]
    return Table("replies", t("table.replies"), [
        Column("name", t("col.office")), Column("cases", t("col.cases"), show_count, True),
        Column("followups", t("col.followups"), show_count, True),
        Column("replied", t("col.replied"), show_count, True),
        Column("median_reply", t("col.median_reply"), show_days, True)], rows)


def trend_charts(catalog: Catalog, by_month: Mapping[str, Mapping[str, Tally]],
                 months: list[tuple[str, bool]]) -> list[Markup]:
    """Month by month: the mean of each question that has one (satisfaction), each share of
    yes (unofficial payments), responses; a month only partly in the period is marked."""
    if not months:
        return []
    labels = [partial_label(m, partial) for m, partial in months]
    marked = [p for _, p in months]
    everyone = [by_month.get(m, {}).get(ALL) for m, _ in months]

    def figure(question: Question, column: str) -> list[float | None]:
        return [_figure_value(column, x.figure(question, column)) if x else None
                for x in everyone]

    means = [q for q in catalog.survey if "mean" in dict(q.kind.figures())]
    shares = [q for q in catalog.survey if "yes share" in dict(q.kind.figures())]
    drawn = [charts.line_chart(
        labels, [charts.Series(_question_label(q.id), figure(q, "mean"),
                               SCALE_COLORS[i % len(SCALE_COLORS)])
                 for i, q in enumerate(means)],
        low=1, high=5, ticks=[1, 2, 3, 4, 5], title=t("chart.satisfaction"),
        partial=marked)] if means else []
    for question in shares:
        values = figure(question, "yes share")
        high = 50.0 if max((v for v in values if v is not None), default=0) <= 50 else 100.0
        drawn.append(charts.line_chart(
            labels, [charts.Series(_question_label(question.id), values, PAYMENT_COLOR)],
            low=0, high=high, ticks=[high * i / 5 for i in range(6)],
            title=t("chart.payment"), fmt=lambda v: f"{v:.0f}%", partial=marked))
    drawn.append(charts.bar_chart(labels, [x.responses if x else 0 for x in everyone],
                                  title=t("chart.responses"), partial=marked))
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

