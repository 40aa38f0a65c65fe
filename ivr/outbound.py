"""Calls the line places: missed-call callbacks and post-visit feedback calls.

The database is the truth about every outbound call (table `outbound_calls`): when it is due,
how many attempts it had, what came of it. The task queue (ivr/worker.py) only says when to
look: a task per call at its due time, and a sweep every minute that places whatever is due,
so a task lost with a worker is not a call lost. A call is placed only by the process that
moves its row from 'scheduled' to 'dialing' (one UPDATE), so no call is placed twice.

A number to call is the one exception to "no raw numbers": it is kept encrypted (Fernet, a
key apart from the database, IVR_OUTBOUND_KEY) only while the call is waiting or ringing, and
deleted when it is done or given up. Opt-outs are keyed hashes. Logs name rows by id only.

States: scheduled -> dialing -> placed -> done (or back to scheduled for a retry).
Dispositions (when done): completed, partial, refused, no-answer, busy, failed, opted-out.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from ivr import tree
from ivr.config import Settings
from ivr.store import Store, caller_hash, e164

if TYPE_CHECKING:  # requests and cryptography are imported when first needed: the line's
    import requests  # workers boot without them (start-up time, PITFALLS "Deployment")

log = logging.getLogger(__name__)
CAMBODIA = ZoneInfo("Asia/Phnom_Penh")
API_VERSION = "2010-04-01"
RING_SECONDS = 30  # how long the carrier lets a citizen's phone ring
DIALING_STALE = timedelta(minutes=10)  # a claim with no carrier reply: the worker died
PLACED_STALE = timedelta(hours=3)  # placed, but no status callback ever came
DISPOSITIONS = ("completed", "partial", "refused", "no-answer", "busy", "failed", "opted-out")
UNANSWERED = {"busy": "busy", "no-answer": "no-answer", "failed": "failed",
              "canceled": "no-answer"}
KINDS = ("callback", "survey")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- calling hours ------------------------------------------------------------------------------


def in_calling_hours(moment: datetime, hours: tuple[int, int]) -> bool:
    local = moment.astimezone(CAMBODIA)
    minute = local.hour * 60 + local.minute
    return hours[0] <= minute < hours[1]


def next_calling_time(moment: datetime, hours: tuple[int, int]) -> datetime:
    """`moment` if it is within calling hours (Cambodia's time), else the next opening."""
    if in_calling_hours(moment, hours):
        return moment
    local = moment.astimezone(CAMBODIA)
    opening = local.replace(hour=hours[0] // 60, minute=hours[0] % 60, second=0, microsecond=0)
    if opening <= local:
        opening += timedelta(days=1)
    return opening.astimezone(timezone.utc)


# --- the number, sealed -------------------------------------------------------------------------


class Sealer:
    """Encrypts a number for the time it waits for its call (Fernet: AES-128-CBC + HMAC)."""

    def __init__(self, key: str):
        from cryptography.fernet import Fernet

        self._fernet = Fernet(key.encode())

    def seal(self, number: str) -> str:
        return self._fernet.encrypt(number.encode()).decode()

    def open(self, token: str) -> str | None:
        """The number, or None when the token was not sealed with this key."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None


# --- the carrier's REST API ---------------------------------------------------------------------


class CarrierError(Exception):
    """The carrier refused or could not take the call (its message is not kept: Twilio's
    names the number)."""

    def __init__(self, status: int, code: str):
        super().__init__(f"the carrier answered HTTP {status} (error code {code or 'none'})")
        self.status, self.code = status, code


class PlacesCalls(Protocol):
    """What places a call: the carrier's REST API, or the simulator's carrier (`ivr call
    --callback`)."""

    def place(self, to: str, from_: str, url: str, status_callback: str) -> str: ...


class CarrierApi:
    """Twilio's Calls resource (POST /2010-04-01/Accounts/{sid}/Calls.json), and Somleng's,
    which is the same API at the deployment's own address."""

    def __init__(self, settings: Settings, session: requests.Session | None = None,
                 timeout: float = 10.0):
        import requests

        base = (settings.somleng_api_url if settings.provider == "somleng"
                else settings.twilio_api_url)
        self.base = (base or "https://api.twilio.com").rstrip("/")
        self.account_sid = settings.twilio_account_sid or ""
        self.token = settings.auth_token or ""
        self.session = session or requests.Session()
        self.timeout = timeout

    def place(self, to: str, from_: str, url: str, status_callback: str) -> str:
        """Start a call; returns its CallSid (CarrierError when refused)."""
        import requests

        endpoint = f"{self.base}/{API_VERSION}/Accounts/{self.account_sid}/Calls.json"
        form = {"To": to, "From": from_, "Url": url, "Method": "POST",
                "StatusCallback": status_callback, "StatusCallbackMethod": "POST",
                "Timeout": str(RING_SECONDS)}
        try:
            reply = self.session.post(endpoint, data=form, auth=(self.account_sid, self.token),
                                      timeout=self.timeout)
        except requests.RequestException as exc:
            raise CarrierError(0, type(exc).__name__) from None
        try:
            body: Any = reply.json()
        except ValueError:
            body = {}
        if not 200 <= reply.status_code < 300 or not isinstance(body, dict) or not body.get(
                "sid"):
            code = str(body.get("code", "")) if isinstance(body, dict) else ""
            raise CarrierError(reply.status_code, code)
        return str(body["sid"])


# --- the outbound calls -------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why no call was scheduled (a word for the logs and the admin page)."""

    reason: str


class Outbound:
    """Scheduling, placing and closing outbound calls over the line's store."""

    def __init__(self, settings: Settings, store: Store, api: PlacesCalls | None = None,
                 enqueue: Callable[[int, datetime | None], None] | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.settings = settings
        self.store = store
        self.api = api or CarrierApi(settings)
        self.enqueue = enqueue or (lambda _id, _eta: None)
        self.clock = clock
        self.sealer = Sealer(settings.outbound_key) if settings.outbound_key else None

    @property
    def enabled(self) -> bool:
        return self.sealer is not None and bool(self.settings.public_url)

    def _hash(self, number: str) -> str:
        assert self.store.caller_key is not None
        return caller_hash(self.store.caller_key, number)

    def _conn(self) -> sqlite3.Connection:
        return self.store.patient_db.conn

    # --- scheduling -----------------------------------------------------------------------

    def request_callback(self, number: str) -> int | Refusal:
        """A missed call on the callback number: schedule a call back now, within limits."""
        if not self.enabled:
            return Refusal("outbound calls are not configured")
        number = e164(number)
        if not number:
            return Refusal("withheld number")
        countries = self.settings.callback_countries
        if "*" not in countries and not any(number[1:].startswith(c) for c in countries):
            return Refusal("number of another country")
        hashed = self._hash(number)
        now = self.clock()
        conn = self.store.db.conn  # the carrier's webhook waits at most the fast path's 200 ms
        conn.execute("BEGIN IMMEDIATE")
        try:
            pending = conn.execute(
                "SELECT 1 FROM outbound_calls WHERE kind = 'callback' AND caller_hash = ? AND "
                "state != 'done'", [hashed]).fetchone()
            gap = stamp(now - timedelta(minutes=self.settings.callback_gap_minutes))
            day = stamp(now - timedelta(days=1))
            recent, today = conn.execute(
                "SELECT count(CASE WHEN created_at > ? THEN 1 END), count(*) FROM outbound_calls"
                " WHERE kind = 'callback' AND caller_hash = ? AND created_at > ?",
                [gap, hashed, day]).fetchone()
            hour = stamp(now - timedelta(hours=1))
            (everyone,) = conn.execute(
                "SELECT count(*) FROM outbound_calls WHERE kind = 'callback' AND created_at > ?",
                [hour]).fetchone()
            refusal = None
            if pending or recent:
                refusal = Refusal("a callback for this caller is recent or pending")
            elif today >= self.settings.callbacks_per_day:
                refusal = Refusal("this caller's callbacks for the day are used up")
            elif everyone >= self.settings.callbacks_per_hour:
                refusal = Refusal("the line's callbacks for the hour are used up")
            if refusal is not None:
                conn.execute("ROLLBACK")
                return refusal
            row_id = self._insert(conn, "callback", hashed, number, "km", "", "", now, now)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("callback %d scheduled", row_id)
        self.enqueue(row_id, None)
        return row_id

    def register_visitor(self, number: str, office: str, service: str, lang: str = "km",
                         due: datetime | None = None) -> int | Refusal:
        """A visitor who agreed at the counter: a feedback call after the configured days,
        within calling hours. Refused for a number that opted out (whenever it did)."""
        if not self.enabled:
            return Refusal("outbound calls are not configured")
        number = e164(number)
        if not number or len(number) < 9:
            return Refusal("not a phone number")
        hashed = self._hash(number)
        now = self.clock()
        conn = self._conn()
        if conn.execute("SELECT 1 FROM opt_outs WHERE caller_hash = ?", [hashed]).fetchone():
            return Refusal("opted out")
        due = due or next_calling_time(now + timedelta(days=self.settings.survey_after_days),
                                       self.settings.calling_hours)
        conn.execute("BEGIN IMMEDIATE")
        try:
            row_id = self._insert(conn, "survey", hashed, number, lang, office, service, now,
                                  due)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("feedback call %d scheduled for %s", row_id, stamp(due))
        self.enqueue(row_id, due)
        return row_id

    def _insert(self, conn: sqlite3.Connection, kind: str, hashed: str, number: str, lang: str,
                office: str, service: str, now: datetime, due: datetime) -> int:
        assert self.sealer is not None
        cursor = conn.execute(
            "INSERT INTO outbound_calls (kind, caller_hash, number_enc, lang, office_id, "
            "service_id, created_at, due_at, state, attempts, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,'scheduled',0,?)",
            [kind, hashed, self.sealer.seal(number), lang, office, service, stamp(now),
             stamp(due), stamp(now)])
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    # --- placing ------------------------------------------------------------------------------

    def dispatch_due(self) -> int:
        """Place every call that is due (and tidy stale ones); returns how many were placed."""
        now = self.clock()
        self._tidy(now)
        rows = self._conn().execute(
            "SELECT id FROM outbound_calls WHERE state = 'scheduled' AND due_at <= ? "
            "ORDER BY due_at", [stamp(now)]).fetchall()
        return sum(1 for (row_id,) in rows if self.place(row_id))

    def place(self, row_id: int) -> bool:
        """Place call `row_id` if it is due and nobody else has: True when placed."""
        now = self.clock()
        conn = self._conn()
        row = conn.execute("SELECT kind, caller_hash, number_enc, lang, office_id, service_id, "
                           "due_at, attempts FROM outbound_calls WHERE id = ? AND state = "
                           "'scheduled'", [row_id]).fetchone()
        if row is None or parse_stamp(row[6]) > now:
            return False
        kind, hashed, sealed, lang, office, service, _due, attempts = row
        if kind == "survey" and not in_calling_hours(now, self.settings.calling_hours):
            later = next_calling_time(now, self.settings.calling_hours)
            conn.execute("UPDATE outbound_calls SET due_at = ?, updated_at = ? WHERE id = ? AND "
                         "state = 'scheduled'", [stamp(later), stamp(now), row_id])
            self.enqueue(row_id, later)
            return False
        if kind == "survey" and conn.execute("SELECT 1 FROM opt_outs WHERE caller_hash = ?",
                                             [hashed]).fetchone():
            self._done(row_id, "opted-out", now)
            return False
        claimed = conn.execute(
            "UPDATE outbound_calls SET state = 'dialing', attempts = attempts + 1, "
            "updated_at = ? WHERE id = ? AND state = 'scheduled'", [stamp(now), row_id])
        if claimed.rowcount != 1:
            return False  # another worker took it
        assert self.sealer is not None and self.settings.public_url
        number = self.sealer.open(sealed)
        if number is None:
            log.error("outbound call %d: its number cannot be decrypted (another "
                      "IVR_OUTBOUND_KEY?): given up", row_id)
            self._done(row_id, "failed", now)
            return False
        base = self.settings.public_url
        query = {"o": office, "s": service} if kind == "survey" else {}
        node = tree.SURVEY_CALL.path()
        url = (f"{base}/voice/{lang or 'km'}/{node}?{urlencode(query)}" if kind == "survey"
               else f"{base}/voice")
        status_url = f"{base}/voice/outbound/status?{urlencode({'ob': row_id})}"
        from_ = self.settings.outbound_from or self.settings.caller_id or ""
        try:
            sid = self.api.place(number, from_, url, status_url)
        except CarrierError as exc:
            log.warning("outbound call %d (attempt %d) not placed: %s", row_id, attempts + 1,
                        exc)
            self._unanswered(row_id, "failed", now)
            return False
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("UPDATE outbound_calls SET state = 'placed', call_sid = ?, "
                         "updated_at = ? WHERE id = ? AND state = 'dialing'",
                         [sid, stamp(now), row_id])
            conn.execute(
                "INSERT INTO calls (sid, caller_hash, started_at, origin) VALUES (?,?,?,?) "
                "ON CONFLICT(sid) DO UPDATE SET origin = excluded.origin, "
                "caller_hash = excluded.caller_hash", [sid, hashed, stamp(now), kind])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("outbound call %d placed (attempt %d)", row_id, attempts + 1)
        return True

    def _tidy(self, now: datetime) -> None:
        """Claims whose worker died before the carrier answered count as failed attempts;
        calls whose status callback never came are given up."""
        conn = self._conn()
        for (row_id,) in conn.execute(
                "SELECT id FROM outbound_calls WHERE state = 'dialing' AND updated_at < ?",
                [stamp(now - DIALING_STALE)]).fetchall():
            log.warning("outbound call %d: its worker stopped while dialing", row_id)
            self._unanswered(row_id, "failed", now, state="dialing")
        for (row_id,) in conn.execute(
                "SELECT id FROM outbound_calls WHERE state = 'placed' AND updated_at < ?",
                [stamp(now - PLACED_STALE)]).fetchall():
            log.warning("outbound call %d: no status callback came: given up", row_id)
            self._done(row_id, "failed", now)

    # --- what came of a call -----------------------------------------------------------------

    def call_ended(self, row_id: int, call_sid: str, status: str, survey_length: int = 1
                   ) -> None:
        """The carrier's status callback for an outbound call (`survey_length`: questions
        in the catalogue's survey, to tell a completed survey from a partial one)."""
        now = self.clock()
        row = self._conn().execute(
            "SELECT kind, state, disposition, call_sid FROM outbound_calls WHERE id = ?",
            [row_id]).fetchone()
        if row is None or row[1] == "done" or (row[3] and call_sid and row[3] != call_sid):
            return  # an old attempt's callback, or repeated
        kind, _state, disposition, _sid = row
        if status in UNANSWERED:
            self._unanswered(row_id, UNANSWERED[status], now)
            return
        if status != "completed":
            return  # queued, ringing, in-progress: not the end yet
        if disposition is None:
            disposition = ("completed" if kind == "callback"
                           else self._survey_result(call_sid, survey_length))
        self._done(row_id, disposition, now)

    def _survey_result(self, call_sid: str, asked: int) -> str:
        """Every question answered: completed; some: partial; none (answered the phone,
        then said nothing or hung up): refused."""
        (answered,) = self._conn().execute(
            "SELECT count(*) FROM answers JOIN feedback ON feedback.id = answers.feedback_id "
            "WHERE feedback.call_sid = ?", [call_sid]).fetchone()  # a skip is an answer
        if answered and answered >= asked:
            return "completed"
        return "partial" if answered else "refused"

    def opt_out(self, number: str, call_sid: str = "") -> None:
        record_opt_out(self.store, number, call_sid, self.clock())

    def _unanswered(self, row_id: int, disposition: str, now: datetime,
                    state: str | None = None) -> None:
        """Busy, no answer or failed: retried at the documented times (within calling hours)
        while attempts remain; a callback is not retried (the caller can ring again)."""
        row = self._conn().execute("SELECT kind, attempts FROM outbound_calls WHERE id = ?",
                                   [row_id]).fetchone()
        if row is None:
            return
        kind, attempts = row
        retries = self.settings.retry_minutes
        if kind == "survey" and attempts <= len(retries):
            due = next_calling_time(now + timedelta(minutes=retries[attempts - 1]),
                                    self.settings.calling_hours)
            moved = self._conn().execute(
                "UPDATE outbound_calls SET state = 'scheduled', due_at = ?, last_status = ?, "
                "call_sid = NULL, updated_at = ? WHERE id = ? AND state = coalesce(?, state) "
                "AND state != 'done'", [stamp(due), disposition, stamp(now), row_id, state])
            if moved.rowcount:
                log.info("outbound call %d: %s, retry at %s", row_id, disposition, stamp(due))
                self.enqueue(row_id, due)
            return
        self._done(row_id, disposition, now)

    def _done(self, row_id: int, disposition: str, now: datetime) -> None:
        """The call is over for good: its disposition kept, its number deleted."""
        self._conn().execute(
            "UPDATE outbound_calls SET state = 'done', disposition = ?, last_status = "
            "coalesce(last_status, ?), number_enc = NULL, updated_at = ? WHERE id = ?",
            [disposition, disposition, stamp(now), row_id])
        log.info("outbound call %d done: %s", row_id, disposition)


def mark_call(store: Store, call_sid: str, disposition: str,
              now: datetime | None = None) -> None:
    """During an outbound call: the person said no (refused) or pressed 9 (opted-out)."""
    if not call_sid:
        return
    try:  # a person is on the line: the fast path (a call without answers is refused anyway)
        store.db.conn.execute(
            "UPDATE outbound_calls SET disposition = ?, updated_at = ? WHERE call_sid = ? AND "
            "state != 'done'", [disposition, stamp(now or utcnow()), call_sid])
    except sqlite3.Error as exc:
        log.warning("call %s: its disposition %s was not written (%s)", call_sid[:40],
                    disposition, exc)


def record_opt_out(store: Store, number: str, call_sid: str = "",
                   now: datetime | None = None) -> None:
    """Never call this number again: its keyed hash is kept for good, and every feedback
    call still waiting for it is given up now (its number deleted)."""
    assert store.caller_key is not None
    hashed = caller_hash(store.caller_key, number)
    if not hashed:
        return
    moment = stamp(now or utcnow())
    conn = store.patient_db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT INTO opt_outs (caller_hash, created_at) VALUES (?, ?) "
                     "ON CONFLICT(caller_hash) DO NOTHING", [hashed, moment])
        if call_sid:
            conn.execute("UPDATE outbound_calls SET disposition = 'opted-out', updated_at = ? "
                         "WHERE call_sid = ? AND state != 'done'", [moment, call_sid])
        conn.execute("UPDATE outbound_calls SET state = 'done', disposition = 'opted-out', "
                     "number_enc = NULL, updated_at = ? WHERE caller_hash = ? AND kind = "
                     "'survey' AND state = 'scheduled'", [moment, hashed])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def response_rates(conn: sqlite3.Connection, offices: Mapping[str, Any] | None = None
                   ) -> list[dict[str, Any]]:
    """Post-visit calls per office: registered, done, answered (completed or partial), the
    response rate among those done, and each disposition's count."""
    rows = conn.execute(
        "SELECT office_id, disposition, state, count(*) FROM outbound_calls "
        "WHERE kind = 'survey' GROUP BY office_id, disposition, state").fetchall()
    table: dict[str, dict[str, Any]] = {}
    for office, disposition, state, count in rows:
        entry = table.setdefault(office, {"office": office, "registered": 0, "done": 0,
                                          "answered": 0, **{d: 0 for d in DISPOSITIONS}})
        entry["registered"] += count
        if state == "done":
            entry["done"] += count
            entry[disposition] = entry.get(disposition, 0) + count
            if disposition in ("completed", "partial"):
                entry["answered"] += count
    for entry in table.values():
        entry["rate"] = entry["answered"] / entry["done"] if entry["done"] else None
    return [table[k] for k in sorted(table)]

