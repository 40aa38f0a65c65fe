"""Seed a realistic demo database for the admin pages: several months of ratings for every
office and service in the catalogue, the steps of each call (for the funnel), and complaints,
Ombudsman messages and rating comments with their statuses.

    python scripts/seed_demo.py --database /tmp/demo.db --answers 8000 --seed 7

Offices differ on purpose (some better, some improving, some where callers are often asked
to pay more), so the scorecards have something to show. Callers are stored only as keyed
hashes of made-up numbers, as the line itself does; no phone number is written.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr import tree  # noqa: E402
from ivr.catalog import Catalog, load_catalog  # noqa: E402
from ivr.store import CASE_STATUSES, Store, caller_hash  # noqa: E402

DEMO_KEY = b"demo-caller-key-not-secret"
WELCOME, MAIN = tree.WELCOME.path(), tree.MAIN.path()
ACCOUNT = "AC" + "d3" * 16  # a made-up Twilio account id for the demo recording URLs
NOTES = ("Called the office chief; the fee list is now on the wall.",
         "ការិយាល័យបានពិនិត្យ ហើយបានណែនាំមន្ត្រីរួចហើយ។",
         "Referred to the District Ombudsman.",
         "Duplicate of an earlier case.")


@dataclass
class Office:
    id: str
    code: str
    weight: float
    quality: float  # the office's average satisfaction, 1-5
    trend: float  # change per month
    payment: float  # chance a caller was asked to pay more
    gender_gap: float  # how much lower women rate


@dataclass
class Service:
    id: str
    category: str
    weight: float
    effect: float
    payment: float


class Demo:
    """Builds the rows; `seed()` writes them."""

    def __init__(self, store: Store, catalog: Catalog, rng: random.Random, start: datetime,
                 end: datetime):
        self.store, self.catalog, self.rng = store, catalog, rng
        self.start, self.end = start, end
        # A pilot: the district offices of the first province take the calls (a line is
        # launched province by province), so each of them has enough answers to read.
        pilot = catalog.offices[0].province.code
        self.offices = [Office(o.id, o.code, rng.uniform(0.6, 2.2), rng.uniform(2.9, 4.3),
                               rng.uniform(-0.04, 0.12), rng.uniform(0.04, 0.35),
                               rng.uniform(0.0, 0.4)) for o in catalog.offices
                        if o.province.code == pilot and o.kind not in ("province", "capital")]
        self.services = [Service(s.id, s.category, rng.uniform(0.4, 3.0), rng.uniform(-0.4, 0.3),
                                 rng.uniform(0.5, 1.8)) for s in catalog.services()]
        self.callers = [caller_hash(store.caller_key, f"+8551{rng.randrange(10**7):07d}")
                        for _ in range(4000)]
        self.references = iter(rng.sample(range(100_000, 1_000_000), 200_000))
        self.calls: list[dict] = []
        self.events: list[dict] = []
        self.feedback: list[dict] = []
        self.answers: list[dict] = []
        self.recordings: list[dict] = []

    def moment(self) -> datetime:
        """More calls in recent months: the line becomes known."""
        span = (self.end - self.start).total_seconds()
        return self.start + timedelta(seconds=span * self.rng.random() ** 0.7)

    def months_in(self, moment: datetime) -> float:
        return (moment - self.start).days / 30.0

    def sid(self, prefix: str) -> str:
        return prefix + "".join(self.rng.choices("0123456789abcdef", k=32))

    def call(self, moment: datetime, lang: str, steps: list[tuple[str, str | None, str]]) -> str:
        """A call and its steps (node, digits, event), a few seconds apart."""
        sid = self.sid("CA")
        at = moment
        for node, digits, event in steps:
            self.events.append({"call_sid": sid, "at": _iso(at), "lang": lang, "node": node,
                                "digits": digits, "event": event})
            at += timedelta(seconds=self.rng.randint(4, 25))
        self.calls.append({"sid": sid, "caller_hash": self.rng.choice(self.callers),
                           "language": lang, "started_at": _iso(moment), "ended_at": _iso(at),
                           "status": "completed", "duration_s": int((at - moment).seconds),
                           "last_node": steps[-1][0] if steps else WELCOME})
        return sid

    def opening(self, lang: str) -> list[tuple[str, str | None, str]]:
        return [(WELCOME, None, "call"),
                (WELCOME, "2", "choice") if lang == "en" else (WELCOME, None,
                                                               "default-language")]

    def rating(self, number: int) -> None:
        rng = self.rng
        office = rng.choices(self.offices, [o.weight for o in self.offices])[0]
        service = rng.choices(self.services, [s.weight for s in self.services])[0]
        moment = self.moment()
        lang = "en" if rng.random() < 0.08 else "km"
        gender = rng.choices(["woman", "man", "skipped"], [0.52, 0.38, 0.10])[0]
        months = self.months_in(moment)
        asked = rng.random() < min(0.9, office.payment * service.payment
                                   * max(0.3, 1 - 0.05 * months))
        level = (office.quality + service.effect + office.trend * months
                 - (office.gender_gap if gender == "woman" else 0) - (0.6 if asked else 0))
        quality = _clip(rng.gauss(level, 0.85))
        timeliness = _clip(rng.gauss(level - 0.25, 0.95))
        given = {"quality": str(quality), "timeliness": str(timeliness),
                 "unofficial-payment": "yes" if asked else "no", "gender": gender}
        code = tree.RATE_OFFICE_CODE.path()
        steps = [*self.opening(lang), (MAIN, "2", "choice"),
                 (tree.RATE_OFFICE.path(), "1", "choice"), (code, office.code, "answer")]
        if rng.random() < 0.05:
            steps.insert(-1, (code, None, "noinput"))
        steps += [(tree.RATE_CATEGORIES.path(), "1", "choice"),
                  (tree.RATE_CATEGORY.path(category=service.category), "1", "choice")]
        for index in range(1, len(self.catalog.survey) + 1):
            question = tree.RATE_QUESTION.path(number=str(index))
            if rng.random() < 0.04:
                steps.append((question, "0", "repeat"))
            steps.append((question, None, "answer"))
        comment = rng.random() < 0.1
        steps.append((tree.RATE_COMMENT.path(), "1" if comment else "5",
                      "choice" if comment else "answer"))
        if comment:
            steps.append((tree.RATE_RECORD.path(), None, "record"))
        sid = self.call(moment, lang, steps)
        feedback_id = number + 1
        self.feedback.append({"id": feedback_id, "call_sid": sid,
                              "caller_hash": self.calls[-1]["caller_hash"],
                              "office_id": office.id, "service_id": service.id, "lang": lang,
                              "created_at": _iso(moment), "reference": str(next(self.references))})
        for question in self.catalog.survey:
            self.answers.append({"feedback_id": feedback_id, "question": question.id,
                                 "value": given.get(question.id, "skipped"),
                                 "answered_at": _iso(moment)})
        if comment:
            self.recording("comment", sid, moment, lang, office.id, service.id, "")

    def browse(self) -> None:
        """A call that only listens to service information, or leaves early."""
        rng = self.rng
        moment = self.moment()
        lang = "en" if rng.random() < 0.08 else "km"
        steps = self.opening(lang)
        roll = rng.random()
        if roll < 0.06:  # hung up at the greeting
            steps = steps[:1]
        elif roll < 0.14:  # silent at the main menu
            steps += [(MAIN, None, "noinput"), (MAIN, None, "noinput"),
                      (MAIN, None, "noinput-goodbye")]
        elif roll < 0.20:
            steps += [(MAIN, "0", "repeat")]
        else:
            service = rng.choices(self.services, [s.weight for s in self.services])[0]
            steps += [(MAIN, "1", "choice"), (tree.CATEGORIES.path(), "1", "choice"),
                      (tree.CATEGORY.path(category=service.category), "1", "choice")]
            node = tree.SERVICE.path(service=service.id)
            if rng.random() < 0.25:
                steps.append((node, "0", "repeat"))
            last = rng.choices(["noinput", "back", "choice", "hangup"], [3, 1, 1, 4])[0]
            if last == "noinput":
                steps += [(node, None, "noinput"), (node, None, "noinput"),
                          (node, None, "noinput-goodbye")]
            elif last == "back":
                steps.append((node, "*", "back"))
            elif last == "choice":
                steps.append((node, "1", "choice"))
            # "hangup": hung up while hearing it, so the category is the last step logged
        self.call(moment, lang, steps)

    def message(self, kind: str) -> None:
        """A complaint or a message for the Ombudsman, recorded and given a case reference."""
        rng = self.rng
        office = rng.choices(self.offices, [o.weight for o in self.offices])[0]
        moment = self.moment()
        lang = "en" if rng.random() < 0.08 else "km"
        topic = rng.choice(self.catalog.topics).id if kind == "complaint" else ""
        if kind == "complaint":
            steps = [(MAIN, "4", "choice"), (tree.COMPLAINT.path(), "1", "choice"),
                     (tree.COMPLAINT_OFFICE.path(), "1", "choice"),
                     (tree.COMPLAINT_OFFICE_CODE.path(), office.code, "answer"),
                     (tree.COMPLAINT_NOTICE.path(), None, "record"),
                     (tree.COMPLAINT_RECORDED.path(), None, "case")]
        else:
            steps = [(MAIN, "3", "choice"), (tree.OMBUDSMAN_OFFICE.path(), "1", "choice"),
                     (tree.OMBUDSMAN_OFFICE_CODE.path(), office.code, "answer"),
                     (tree.OMBUDSMAN_CALL.path(), None, "unlisted"),
                     (tree.OMBUDSMAN_AWAY.path(reason="unlisted"), "1", "choice"),
                     (tree.OMBUDSMAN_NOTICE.path(), None, "record"),
                     (tree.OMBUDSMAN_RECORDED.path(), None, "case")]
        sid = self.call(moment, lang, [*self.opening(lang), *steps])
        self.recording(kind, sid, moment, lang, office.id, "", topic)

    def recording(self, kind: str, sid: str, moment: datetime, lang: str, office: str,
                  service: str, topic: str) -> None:
        rng = self.rng
        age = (self.end - moment).days
        status = rng.choices(CASE_STATUSES, [1, 1, 2] if age > 60 else [4, 2, 1])[0]
        recording_sid = self.sid("RE")
        self.recordings.append({
            "kind": kind, "call_sid": sid, "caller_hash": self.calls[-1]["caller_hash"],
            "office_id": office, "service_id": service, "topic": topic, "lang": lang,
            "duration_s": rng.randint(8, 110), "recording_sid": recording_sid,
            "recording_url": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/"
                             f"Recordings/{recording_sid}",
            "reference": str(next(self.references)), "status": status,
            "note": rng.choice(NOTES) if status != "new" else "",
            "created_at": _iso(moment),
            "updated_at": _iso(moment + timedelta(days=rng.randint(1, 20)))
            if status != "new" else _iso(moment)})


def _clip(value: float) -> int:
    return max(1, min(5, round(value)))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def seed(store: Store, catalog: Catalog, answers: int = 8000, seed: int = 1, months: int = 6,
         end: datetime | None = None, events: bool = True) -> dict[str, int]:
    """Write about `answers` answers (all survey questions for answers // questions ratings)
    ending at `end`, with call steps and cases unless `events` is False. Returns row counts."""
    rng = random.Random(seed)
    end = end or datetime.now(timezone.utc).replace(microsecond=0)
    demo = Demo(store, catalog, rng, end - timedelta(days=30 * months), end)
    ratings = answers // max(1, len(catalog.survey))
    for number in range(ratings):
        demo.rating(number)
    if events:
        for _ in range(int(ratings * 1.5)):
            demo.browse()
        for _ in range(max(3, ratings // 40)):
            demo.message("complaint")
        for _ in range(max(2, ratings // 80)):
            demo.message("ombudsman-message")
    else:
        demo.events.clear()
    db = store.db
    start = db["feedback"].count and db.execute("SELECT max(id) FROM feedback").fetchone()[0]
    for row in demo.feedback:  # append to a database that already has ratings
        row["id"] += start
    for row in demo.answers:
        row["feedback_id"] += start
    db.conn.execute("BEGIN IMMEDIATE")  # one transaction: seconds, not minutes
    try:
        for table, rows in (("calls", demo.calls), ("events", demo.events),
                            ("feedback", demo.feedback), ("answers", demo.answers),
                            ("recordings", demo.recordings)):
            if rows:
                columns = list(rows[0])
                db.conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})",
                    [[row[c] for c in columns] for row in rows])
        db.conn.execute("COMMIT")
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    return {"calls": len(demo.calls), "events": len(demo.events),
            "feedback": len(demo.feedback), "answers": len(demo.answers),
            "recordings": len(demo.recordings)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", type=Path, required=True, help="SQLite file to fill")
    parser.add_argument("--answers", type=int, default=8000, help="about this many answers")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same data)")
    parser.add_argument("--months", type=int, default=6, help="months of history")
    parser.add_argument("--catalog", type=Path, default=ROOT / "catalog.yaml")
    args = parser.parse_args(argv)
    store = Store(args.database, DEMO_KEY)
    counts = seed(store, load_catalog(args.catalog), args.answers, args.seed, args.months)
    print(f"{args.database}: " + ", ".join(f"{n:,} {table}" for table, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
