"""Scorecards from the stored answers: per office and per service, split by the survey's
choice questions (gender), for `ivr report` and the admin pages; CSV/JSON exports."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field

from ivr.catalog import Catalog
from ivr.survey import TYPES, Question, mean_of, share_of_yes, spread_of

ALL = "all"


@dataclass
class Score:
    """The answers of one group of feedback (an office and service, maybe one gender); each
    question's type says what figures they give."""

    responses: int = 0
    answers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def figure(self, question: Question, column: str) -> float | None:
        """One of the question type's figures ("mean", "sd", "yes share")."""
        summary = dict(question.kind.figures())[column]
        return summary(self.answers.get(question.id, []))

    def mean(self, question: str) -> float | None:
        return mean_of(self.answers.get(question, []))

    def spread(self, question: str) -> float | None:
        return spread_of(self.answers.get(question, []))

    def share_yes(self, question: str) -> float | None:
        return share_of_yes(self.answers.get(question, []))


@dataclass
class ScoreRow:
    office: str
    service: str
    group: str  # ALL, or e.g. "gender=woman"
    score: Score


def _where(start: str | None, end: str | None, office: str | None) -> tuple[str, list]:
    clauses, args = [], []
    if start:
        clauses.append("f.created_at >= ?")
        args.append(start)
    if end:
        clauses.append("f.created_at < ?")
        args.append(end)
    if office:
        clauses.append("f.office_id = ?")
        args.append(office)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def answers(conn: sqlite3.Connection, start: str | None = None, end: str | None = None,
            office: str | None = None) -> list[dict]:
    """Every answer with its feedback's office, service, language, time and reference."""
    where, args = _where(start, end, office)
    rows = conn.execute(
        "SELECT f.reference, f.office_id, f.service_id, f.lang, f.created_at, a.question, "
        "a.value, a.answered_at FROM feedback f JOIN answers a ON a.feedback_id = f.id"
        f"{where} ORDER BY f.created_at, f.id, a.question", args).fetchall()
    keys = ("reference", "office", "service", "lang", "created_at", "question", "value",
            "answered_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def scorecard(conn: sqlite3.Connection, catalog: Catalog, start: str | None = None,
              end: str | None = None, office: str | None = None,
              by_service: bool = True) -> list[ScoreRow]:
    """Responses, mean scale answers with their spread, share of 'yes' per office (and
    service), overall and split by each choice question's answers."""
    summarised = {q.id for q in catalog.survey if q.kind.figures()}
    splits = [q.id for q in catalog.survey if q.kind.splits]
    per_feedback: dict[str, dict[str, str]] = defaultdict(dict)
    where_of: dict[str, tuple[str, str]] = {}
    for row in answers(conn, start, end, office):
        per_feedback[row["reference"]][row["question"]] = row["value"]
        where_of[row["reference"]] = (row["office"], row["service"] if by_service else ALL)
    groups: dict[tuple[str, str, str], Score] = defaultdict(Score)
    for reference, given in per_feedback.items():
        office_id, service_id = where_of[reference]
        keys = [ALL] + [f"{q}={given[q]}" for q in splits if given.get(q, "skipped") != "skipped"]
        for group in keys:
            score = groups[(office_id, service_id, group)]
            score.responses += 1
            for question, value in given.items():
                if question in summarised:
                    score.answers[question].append(value)
    return [ScoreRow(o, s, g, groups[(o, s, g)]) for (o, s, g) in sorted(groups)]


def cases(conn: sqlite3.Connection, office: str | None = None, status: str | None = None,
          kind: str | None = None) -> list[dict]:
    clauses, args = [], []
    for column, value in (("office_id", office), ("status", status), ("kind", kind)):
        if value:
            clauses.append(f"{column} = ?")
            args.append(value)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = conn.execute(
        "SELECT reference, kind, topic, office_id, service_id, lang, duration_s, status, note, "
        f"created_at FROM recordings{where} ORDER BY created_at DESC, id DESC", args).fetchall()
    keys = ("reference", "kind", "topic", "office", "service", "lang", "duration_s", "status",
            "note", "created_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def score_table(rows: list[ScoreRow], catalog: Catalog) -> list[dict]:
    """Scorecard rows as plain dicts (the columns of the terminal table and CSV): each
    question's figures, the questions grouped by type in the order of the types."""
    columns = [(q, column) for kind in TYPES.values() for q in catalog.survey
               if q.kind is kind for column, _ in kind.figures()]
    table = []
    for row in rows:
        item: dict = {"office": row.office, "service": row.service, "group": row.group,
                      "responses": row.score.responses}
        for question, column in columns:
            item[f"{question.id} {column}"] = row.score.figure(question, column)
        table.append(item)
    return table


def to_csv(items: list[dict]) -> str:
    out = io.StringIO()
    if items:
        writer = csv.DictWriter(out, fieldnames=list(items[0]))
        writer.writeheader()
        writer.writerows(items)
    return out.getvalue()


def to_json(items: list[dict]) -> str:
    return json.dumps(items, ensure_ascii=False, indent=1)


def format_table(items: list[dict]) -> str:
    """A plain fixed-width table for the terminal."""
    if not items:
        return "(no responses)"
    columns = list(items[0])
    cells = [[_cell(item[c]) for c in columns] for item in items]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
