"""SQLite storage through sqlite-utils: calls and the steps each call passed through.

One connection per process and thread (gunicorn forks after the app is made), WAL so
readers never block the writer, a busy timeout, and single-statement writes. Callers are
stored only as a keyed hash: the same caller gets the same hash, and the number cannot
be recovered without the key.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import sqlite_utils
from sqlite_utils.db import Table

BUSY_TIMEOUT_MS = 5000
SCHEMA_VERSION = 3
SPOOLED = ""  # what a write returns when it went to the spool instead of the database
CASE_STATUSES = ("new", "reviewed", "closed")
T = TypeVar("T")
log = logging.getLogger(__name__)


def new_reference() -> str:
    """Six random digits: easy to read and key in, and they reveal nothing about order,
    volume or the caller (uniqueness is enforced by the database)."""
    return str(100_000 + secrets.randbelow(900_000))


def caller_hash(key: bytes, number: str) -> str:
    """A stable pseudonym for a phone number; empty or withheld numbers stay empty."""
    number = "".join(ch for ch in number if ch.isdigit() or ch == "+")
    if not number:
        return ""
    return hmac.digest(key, number.encode(), "sha256").hex()[:32]


def recording_identity(recording_sid: str, recording_url: str) -> str:
    """What names a recording in both reports of it (the Record action and the status
    callback): Twilio sends RecordingSid to both; Somleng's action has only the URL, whose
    segment after /Recordings/ is the RecordingSid its callback sends. "" when neither."""
    if recording_sid:
        return recording_sid
    if not recording_url:
        return ""
    path = urlsplit(recording_url).path
    if "/Recordings/" in path:
        segment = path.rpartition("/Recordings/")[2].split("/")[0]
        stem, dot, _ = segment.rpartition(".")  # ".../Recordings/<id>.wav"
        segment = stem if dot else segment
        if segment:
            return segment
    return recording_url  # some other URL: still one name for one recording


def recording_duration(value: str | None) -> int | None:
    """RecordingDuration in whole seconds; None when missing or not a plausible number
    (parameters come from the request: junk must not reach SQLite as a huge integer)."""
    try:
        seconds = int(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= 10**7 else None


def has_sound(duration_s: int | None, recording_url: str) -> bool:
    """A recording worth a case: it lasted a second or more, or (no usable duration) the
    carrier gave a URL for it. Somleng reports an empty recording with duration 0."""
    return duration_s > 0 if duration_s is not None else bool(recording_url)


def now() -> str:
    """UTC to the second, as ISO 8601 (what datetime.isoformat gives, without its cost)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


class Store:
    """The line's database. Create once per app; connections are made per process."""

    def __init__(self, path: Path | str, caller_key: bytes,
                 busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = Path(path)
        self.caller_key = caller_key
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # gunicorn starts its workers together: on a new file, switching to WAL and creating
        # tables from several processes at once fails with "database is locked" (SQLite does
        # not wait on those), so the processes take turns here.
        with self.migration_lock():
            self.migrate()

    @contextmanager
    def migration_lock(self) -> Iterator[None]:
        """Schema changes one process at a time (the admin pages' tables use it too)."""
        with open(self.path.with_name(self.path.name + ".migrate.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @property
    def db(self) -> sqlite_utils.Database:
        pid = os.getpid()
        if getattr(self._local, "pid", None) != pid:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.db = sqlite_utils.Database(conn)
            self._local.pid = pid
        return self._local.db

    def migrate(self) -> None:
        """Create what is missing (every statement IF NOT EXISTS: each worker runs this)."""
        db = self.db
        Table(db, "calls").create({
            "sid": str, "caller_hash": str, "language": str, "started_at": str,
            "ended_at": str, "status": str, "duration_s": int, "last_node": str,
        }, pk="sid", if_not_exists=True)
        Table(db, "events").create({
            "id": int, "call_sid": str, "at": str, "lang": str, "node": str,
            "digits": str, "event": str,
        }, pk="id", foreign_keys=[("call_sid", "calls", "sid")], if_not_exists=True)
        Table(db, "events").create_index(["node", "event"], if_not_exists=True)
        Table(db, "feedback").create({
            "id": int, "call_sid": str, "caller_hash": str, "office_id": str,
            "service_id": str, "lang": str, "created_at": str, "reference": str,
        }, pk="id", if_not_exists=True)
        Table(db, "feedback").create_index(["call_sid", "office_id", "service_id"], unique=True,
                                    if_not_exists=True)
        Table(db, "feedback").create_index(["reference"], unique=True, if_not_exists=True)
        Table(db, "feedback").create_index(["office_id", "service_id"], if_not_exists=True)
        Table(db, "answers").create({
            "feedback_id": int, "question": str, "value": str, "answered_at": str,
        }, pk=("feedback_id", "question"), if_not_exists=True,
            foreign_keys=[("feedback_id", "feedback", "id")])
        Table(db, "recordings").create({
            "id": int, "kind": str, "call_sid": str, "caller_hash": str, "office_id": str,
            "service_id": str, "topic": str, "lang": str, "duration_s": int,
            "recording_sid": str, "recording_url": str, "reference": str, "status": str,
            "note": str, "created_at": str, "updated_at": str,
        }, pk="id", defaults={"status": "new"}, if_not_exists=True)
        Table(db, "recordings").create_index(["recording_sid"], unique=True, if_not_exists=True)
        Table(db, "recordings").create_index(["reference"], unique=True, if_not_exists=True)
        Table(db, "recordings").create_index(["office_id", "kind", "status"], if_not_exists=True)
        # the admin funnel groups steps by call and menu; this index also finds a call's
        # steps, so the older one on call_sid alone was only a cost on every step written
        Table(db, "events").create_index(["call_sid", "node", "event"], if_not_exists=True)
        db.execute("DROP INDEX IF EXISTS idx_events_call_sid")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def record_step(self, sid: str, caller: str, lang: str, node: str, digits: str | None,
                    event: str) -> None:
        """Log one step of a call, creating the call row on its first step."""
        if not sid:
            return
        stamp = now()
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")  # one transaction: one lock, one commit
        try:
            conn.execute(
                "INSERT INTO calls (sid, caller_hash, language, started_at, last_node) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(sid) DO UPDATE SET "
                "language = excluded.language, last_node = excluded.last_node",
                [sid, caller_hash(self.caller_key, caller), lang, stamp, node],
            )
            conn.execute(
                "INSERT INTO events (call_sid, at, lang, node, digits, event) "
                "VALUES (?,?,?,?,?,?)", [sid, stamp, lang, node, digits, event],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close_call(self, sid: str, caller: str, status: str, duration_s: int | None) -> None:
        """Twilio's status callback: the call is over (it may never have reached a menu)."""
        stamp = now()
        self.db.execute(
            "INSERT INTO calls (sid, caller_hash, started_at, ended_at, status, duration_s) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(sid) DO UPDATE SET "
            "ended_at = excluded.ended_at, status = excluded.status, "
            "duration_s = excluded.duration_s",
            [sid, caller_hash(self.caller_key, caller), stamp, stamp, status, duration_s],
        )

    # --- a spool for when the database cannot be written -----------------------------------

    @property
    def spool_path(self) -> Path:
        return self.path.with_name(self.path.name + ".spool.jsonl")

    def _durably(self, kind: str, payload: dict, write: Callable[[], T]) -> T | None:
        """Write now; if the database is locked or unwritable, keep the record in a spool
        file beside it and write it later (every write is idempotent, so replays are safe)."""
        self.replay_spool()
        try:
            return write()
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            line = json.dumps({"_type": kind, **payload}, ensure_ascii=False)
            try:
                with open(self.spool_path, "a", encoding="utf-8") as spool:
                    spool.write(line + "\n")
                    spool.flush()
                    os.fsync(spool.fileno())
            except OSError as spool_exc:
                log.critical("could not store or spool a %s (%s; %s): %s", kind, exc,
                             spool_exc, line)
                raise exc from spool_exc
            log.error("database unavailable (%s): %s kept in %s for later", exc, kind,
                      self.spool_path)
            return SPOOLED  # type: ignore[return-value]

    def replay_spool(self) -> int:
        """Write what the spool holds; returns how many records were written."""
        if not self.spool_path.exists():
            return 0
        claimed = self.spool_path.with_name(f"{self.spool_path.name}.{os.getpid()}")
        try:
            os.replace(self.spool_path, claimed)  # one process replays each batch
        except OSError:
            return 0
        done, left = 0, []
        for line in claimed.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            kind = record.pop("_type")
            try:
                if kind == "answer":
                    self._save_answer(**record)
                else:
                    self._save_recording(**record)
                done += 1
            except sqlite3.Error:
                left.append(line)
        if left:
            with open(self.spool_path, "a", encoding="utf-8") as spool:
                spool.write("\n".join(left) + "\n")
        claimed.unlink()
        if done:
            log.info("wrote %d spooled records to the database", done)
        return done

    # --- ratings ------------------------------------------------------------------------

    def save_answer(self, sid: str, caller: str, office: str, service: str, lang: str,
                    question: str, value: str) -> str | None:
        """Store one answer as soon as it is given; a repeated webhook changes nothing
        (the feedback is one per call, office and service; an answer one per question).
        Returns the feedback's reference (SPOOLED when the answer had to wait)."""
        payload: dict[str, Any] = {"sid": sid, "caller_hash": caller_hash(self.caller_key, caller),
                   "office": office, "service": service, "lang": lang, "question": question,
                   "value": value, "stamp": now()}
        return self._durably("answer", payload, lambda: self._save_answer(**payload))

    def _save_answer(self, sid: str, caller_hash: str, office: str, service: str, lang: str,
                     question: str, value: str, stamp: str) -> str:
        feedback_id, reference = self._feedback(sid, caller_hash, office, service, lang, stamp)
        self.db.execute(
            "INSERT INTO answers (feedback_id, question, value, answered_at) VALUES (?,?,?,?) "
            "ON CONFLICT(feedback_id, question) DO UPDATE SET value = excluded.value",
            [feedback_id, question, value, stamp],
        )
        return reference

    def _feedback(self, sid: str, hashed: str, office: str, service: str, lang: str,
                  stamp: str) -> tuple[int, str]:
        for _ in range(20):
            reference = new_reference()
            try:  # one space of references: none is both a rating's and a case's
                self.db.execute(
                    "INSERT INTO feedback (call_sid, caller_hash, office_id, service_id, lang, "
                    "created_at, reference) SELECT ?,?,?,?,?,?,? WHERE NOT EXISTS "
                    "(SELECT 1 FROM recordings WHERE reference = ?) "
                    "ON CONFLICT(call_sid, office_id, service_id) DO NOTHING",
                    [sid, hashed, office, service, lang, stamp, reference, reference],
                )
            except sqlite3.IntegrityError:  # the random reference was taken: draw again
                continue
            if self.db.execute("SELECT 1 FROM feedback WHERE call_sid = ? AND office_id = ? "
                               "AND service_id = ?", [sid, office, service]).fetchone():
                break
        row = self.db.execute(
            "SELECT id, reference FROM feedback WHERE call_sid = ? AND office_id = ? "
            "AND service_id = ?", [sid, office, service]).fetchone()
        if row is None:
            raise RuntimeError("could not create a feedback record")
        return row[0], row[1]

    def feedback_reference(self, sid: str, office: str, service: str) -> str | None:
        try:
            row = self.db.execute(
                "SELECT reference FROM feedback WHERE call_sid = ? AND office_id = ? "
                "AND service_id = ?", [sid, office, service]).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row else None

    # --- recordings: complaints, Ombudsman messages, rating comments -----------------------

    def call_caller_hash(self, sid: str) -> str:
        """The caller hash of a call's own row ("" when unknown): the recording status
        callback has no From, yet its case belongs to the caller as much as the action's."""
        if not sid:
            return ""
        try:
            row = self.db.execute("SELECT caller_hash FROM calls WHERE sid = ?",
                                  [sid]).fetchone()
        except sqlite3.Error:
            return ""
        return (row[0] or "") if row else ""

    def save_recording(self, *, sid: str, caller: str, kind: str, lang: str, office: str,
                       service: str, topic: str, recording_sid: str, recording_url: str,
                       duration_s: int | None) -> str | None:
        """A recording from the Record action or the later status callback (whichever comes
        first creates the case; both name it alike, see recording_identity). Empty ones
        make no case. `caller` may be "" (the callback): the call's row gives the hash."""
        recording_sid = recording_identity(recording_sid, recording_url)
        if not recording_sid or not has_sound(duration_s, recording_url):
            log.info("empty recording (%s, call %s): no case created", kind, sid)
            return None
        payload: dict[str, Any] = {
            "sid": sid, "caller_hash": caller_hash(self.caller_key, caller), "kind": kind,
            "lang": lang, "office": office, "service": service, "topic": topic,
            "recording_sid": recording_sid, "recording_url": recording_url,
            "duration_s": duration_s, "stamp": now()}
        return self._durably("recording", payload, lambda: self._save_recording(**payload))

    def _save_recording(self, *, sid: str, caller_hash: str, kind: str, lang: str, office: str,
                        service: str, topic: str, recording_sid: str, recording_url: str,
                        duration_s: int | None, stamp: str) -> str | None:
        caller_hash = caller_hash or self.call_caller_hash(sid)
        # A rating's comment is a case under the rating's own reference: the one the caller
        # hears after it. Other cases draw a reference no rating or case has.
        rating = (self.feedback_reference(sid, office, service) if kind == "comment"
                  else None)
        # The second report of a recording fills in what the first lacked; a missing
        # duration (NULL) or an empty caller hash or URL never overwrites a known one.
        for attempt in range(20):
            reference = rating if rating and attempt == 0 else new_reference()
            try:
                self.db.execute(
                    "INSERT INTO recordings (kind, call_sid, caller_hash, office_id, service_id, "
                    "topic, lang, duration_s, recording_sid, recording_url, reference, status, "
                    "created_at, updated_at) SELECT ?,?,?,?,?,?,?,?,?,?,?,'new',?,? "
                    "WHERE NOT EXISTS (SELECT 1 FROM feedback WHERE reference = ? "
                    "AND NOT (call_sid = ? AND office_id = ? AND service_id = ? AND ? = 'comment'))"
                    " ON CONFLICT(recording_sid) DO UPDATE SET "
                    "duration_s = max(coalesce(duration_s, excluded.duration_s), "
                    "coalesce(excluded.duration_s, duration_s)), "
                    "caller_hash = coalesce(nullif(caller_hash, ''), excluded.caller_hash), "
                    "recording_url = coalesce(nullif(excluded.recording_url, ''), recording_url), "
                    "updated_at = excluded.updated_at",
                    [kind, sid, caller_hash, office, service, topic, lang, duration_s,
                     recording_sid, recording_url, reference, stamp, stamp,
                     reference, sid, office, service, kind],
                )
            except sqlite3.IntegrityError:  # the reference was taken: draw again
                continue
            if self.db.execute("SELECT 1 FROM recordings WHERE recording_sid = ?",
                               [recording_sid]).fetchone():
                break
        row = self.db.execute("SELECT reference FROM recordings WHERE recording_sid = ?",
                              [recording_sid]).fetchone()
        return row[0] if row else None

    def set_case_status(self, reference: str, status: str, note: str = "") -> bool:
        """Set a case's status and note; `closed_at` (when the admin pages' retention
        counts from, if that column exists) is set when a case is closed and cleared when
        it is opened again."""
        if status not in CASE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(CASE_STATUSES)}")
        stamp = now()
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(recordings)")}
        closed = (", closed_at = CASE WHEN ? = 'closed' THEN coalesce(closed_at, ?) END"
                  if "closed_at" in columns else "")
        cursor = self.db.execute(
            f"UPDATE recordings SET status = ?, note = ?, updated_at = ?{closed} "
            "WHERE reference = ?",
            [status, note, stamp, *([status, stamp] if closed else []), reference])
        return cursor.rowcount > 0
