"""SQLite storage: calls, the steps each call passed through, ratings and cases.

One connection per process and thread (gunicorn forks after the app is made), WAL so readers
never block the writer, and one short transaction per write. Callers are stored only as a
keyed hash of their number in E.164 form: the same caller gets the same hash however the
carrier wrote the number, and the number cannot be recovered without the key.

Start-up never needs the write lock when the schema is current: it only reads the schema
version, so a worker (re)starting while another process holds the database boots at once. A
schema to create or upgrade waits its turn and retries for as long as the database is locked
(a worker that raised instead would make gunicorn's master exit). gunicorn does not time out
a worker that has not booted yet, so a long wait is not taken for a hung worker.

While the database cannot be written (locked, read-only, a disk fault) a caller's request
waits at most FAST_WAIT_MS for it; then its answer, recording or call end goes to the spool and
the caller hears the next question. For BLOCKED_SECONDS after such a failure this process sends
those writes straight to the spool (no wait at all) and does not record call steps (the funnel
is not worth a caller's time). A background thread writes the spool to the database as soon as
it can, in small transactions, so callers are never kept waiting by a replay.

The spool: JSON lines, one file per process (`<db>.spool.<pid>.jsonl`), each record fsynced.
An append holds an flock on its file and checks it is still the file at that path, so it never
lands in a file another process has claimed. One replayer at a time, in any process (flock on
`<db>.spool.lock`): it claims each file by renaming it while holding its flock, writes its
records, and marks each record written (table `spool_applied`) in the same transaction, so a
replay cut short (kill -9) is finished by the next replayer and nothing is written twice. A
line that cannot be read (torn by a crash) is kept aside in `<db>.spool-rejected.jsonl`,
logged, and the rest goes on.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import sqlite_utils

BUSY_TIMEOUT_MS = 5000  # background work (the replay, the schema, the admin pages) waits this
FAST_WAIT_MS = 200  # a caller's request waits at most this for the write lock, then spools
BLOCKED_SECONDS = 1.0  # after a failed write, writes go straight to the spool this long
SPOOL_BATCH = 50  # records written per replay transaction (a caller's write waits at most one)
SPOOL_PAUSE = 0.05  # seconds between replay transactions: callers' writes get their turn
SCHEMA_VERSION = 6  # 5: case_lookups, case_replies, case_followups (issue 15); 6: outbound
# calls, opt-outs, calls.origin (ivr/outbound.py)
SPOOLED = ""  # what a write returns when it went to the spool instead of the database
CASE_STATUSES = ("new", "reviewed", "closed")
COUNTRY_CODE = "855"  # Cambodia: national numbers (0...) are read as +855
FILE_MODE = 0o600  # database, WAL, spool and lock files: the line's user only
T = TypeVar("T")
log = logging.getLogger(__name__)


def new_reference() -> str:
    """Six random digits: easy to read and key in, and they reveal nothing about order,
    volume or the caller (uniqueness is enforced by the database)."""
    return str(100_000 + secrets.randbelow(900_000))


def e164(number: str) -> str:
    """A phone number as +<country><number>; "" when it has no digits (withheld, anonymous).

    Carriers write the same number differently: '+85512345678', '85512345678',
    '012 345 678', '+855 12 345 678', '00855 12 345 678' are one caller. A number with a
    trunk 0 (and no country) is Cambodian; one of 8-9 digits without a prefix too."""
    text = number.strip()
    digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    if not digits:
        return ""
    if text.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("0"):
        return f"+{COUNTRY_CODE}{digits[1:]}"
    if digits.startswith(COUNTRY_CODE) and len(digits) >= 11:
        return "+" + digits
    if len(digits) in (8, 9):
        return f"+{COUNTRY_CODE}{digits}"
    return "+" + digits


def caller_hash(key: bytes, number: str) -> str:
    """A stable pseudonym for a phone number (in E.164 form); empty or withheld numbers stay
    empty."""
    number = e164(number)
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


SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # sqlite3's constants of the same names (Python 3.11+)


def is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock (it will pass), as opposed to a broken database."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def private_file(path: Path) -> None:
    """Create `path` (empty) readable by its owner only, or take the world's access away
    from an existing one (a database created before this rule)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    except OSError:
        return  # not ours to create (a read-only folder): SQLite will say what is wrong
    try:
        mode = os.fstat(fd).st_mode & 0o777
        if mode & 0o007:
            os.fchmod(fd, mode & 0o770)
            log.warning("%s was readable by every user: now %o", path, mode & 0o770)
    except OSError:
        pass
    finally:
        os.close(fd)


SCHEMA = """
CREATE TABLE IF NOT EXISTS [calls] (
   [sid] TEXT PRIMARY KEY,
   [caller_hash] TEXT,
   [language] TEXT,
   [started_at] TEXT,
   [ended_at] TEXT,
   [status] TEXT,
   [duration_s] INTEGER,
   [last_node] TEXT
);
CREATE TABLE IF NOT EXISTS [events] (
   [id] INTEGER PRIMARY KEY,
   [call_sid] TEXT REFERENCES [calls]([sid]),
   [at] TEXT,
   [lang] TEXT,
   [node] TEXT,
   [digits] TEXT,
   [event] TEXT
);
CREATE INDEX IF NOT EXISTS [idx_events_node_event]
    ON [events] ([node], [event]);
CREATE TABLE IF NOT EXISTS [feedback] (
   [id] INTEGER PRIMARY KEY,
   [call_sid] TEXT,
   [caller_hash] TEXT,
   [office_id] TEXT,
   [service_id] TEXT,
   [lang] TEXT,
   [created_at] TEXT,
   [reference] TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS [idx_feedback_call_sid_office_id_service_id]
    ON [feedback] ([call_sid], [office_id], [service_id]);
CREATE UNIQUE INDEX IF NOT EXISTS [idx_feedback_reference]
    ON [feedback] ([reference]);
CREATE INDEX IF NOT EXISTS [idx_feedback_office_id_service_id]
    ON [feedback] ([office_id], [service_id]);
CREATE TABLE IF NOT EXISTS [answers] (
   [feedback_id] INTEGER REFERENCES [feedback]([id]),
   [question] TEXT,
   [value] TEXT,
   [answered_at] TEXT,
   PRIMARY KEY ([feedback_id], [question])
);
CREATE TABLE IF NOT EXISTS [recordings] (
   [id] INTEGER PRIMARY KEY,
   [kind] TEXT,
   [call_sid] TEXT,
   [caller_hash] TEXT,
   [office_id] TEXT,
   [service_id] TEXT,
   [topic] TEXT,
   [lang] TEXT,
   [duration_s] INTEGER,
   [recording_sid] TEXT,
   [recording_url] TEXT,
   [reference] TEXT,
   [status] TEXT DEFAULT 'new',
   [note] TEXT,
   [created_at] TEXT,
   [updated_at] TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS [idx_recordings_recording_sid]
    ON [recordings] ([recording_sid]);
CREATE UNIQUE INDEX IF NOT EXISTS [idx_recordings_reference]
    ON [recordings] ([reference]);
CREATE INDEX IF NOT EXISTS [idx_recordings_office_id_kind_status]
    ON [recordings] ([office_id], [kind], [status]);
CREATE INDEX IF NOT EXISTS [idx_events_call_sid_node_event]
    ON [events] ([call_sid], [node], [event]);
DROP INDEX IF EXISTS [idx_events_call_sid];
CREATE TABLE IF NOT EXISTS [spool_applied] (
   [id] TEXT PRIMARY KEY,
   [applied_at] TEXT
);
CREATE TABLE IF NOT EXISTS [case_lookups] (
   [id] INTEGER PRIMARY KEY,
   [call_sid] TEXT,
   [caller_hash] TEXT,
   [day] TEXT,
   [reference] TEXT,
   [found] INTEGER,
   [at] TEXT
);
CREATE INDEX IF NOT EXISTS [idx_case_lookups_caller_day]
    ON [case_lookups] ([caller_hash], [day], [found]);
CREATE INDEX IF NOT EXISTS [idx_case_lookups_call]
    ON [case_lookups] ([call_sid], [found]);
CREATE TABLE IF NOT EXISTS [case_replies] (
   [id] INTEGER PRIMARY KEY,
   [reference] TEXT NOT NULL,
   [kind] TEXT NOT NULL,
   [prompt_key] TEXT,
   [file] TEXT,
   [duration_ms] INTEGER,
   [created_by] TEXT,
   [created_at] TEXT
);
CREATE INDEX IF NOT EXISTS [idx_case_replies_reference]
    ON [case_replies] ([reference], [created_at]);
CREATE TABLE IF NOT EXISTS [case_followups] (
   [id] INTEGER PRIMARY KEY,
   [reference] TEXT NOT NULL,
   [call_sid] TEXT,
   [caller_hash] TEXT,
   [lang] TEXT,
   [duration_s] INTEGER,
   [recording_sid] TEXT,
   [recording_url] TEXT,
   [created_at] TEXT,
   [updated_at] TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS [idx_case_followups_recording_sid]
    ON [case_followups] ([recording_sid]);
CREATE INDEX IF NOT EXISTS [idx_case_followups_reference]
    ON [case_followups] ([reference], [created_at]);
"""

# --- outbound calls (ivr/outbound.py): one block, added by schema version 5 -------------------
# outbound_calls: one row per callback or post-visit call, with its attempts and disposition;
# the number to call is kept encrypted (number_enc) only until the call is done or given up.
# opt_outs: keyed hashes of the numbers that pressed 9, never a number. calls.origin says how a
# call started: 'inbound' (rang in), 'callback' or 'survey'.
OUTBOUND_SCHEMA = """
CREATE TABLE IF NOT EXISTS [outbound_calls] (
   [id] INTEGER PRIMARY KEY,
   [kind] TEXT NOT NULL,
   [caller_hash] TEXT NOT NULL,
   [number_enc] TEXT,
   [lang] TEXT,
   [office_id] TEXT,
   [service_id] TEXT,
   [created_at] TEXT,
   [due_at] TEXT,
   [state] TEXT NOT NULL DEFAULT 'scheduled',
   [attempts] INTEGER NOT NULL DEFAULT 0,
   [last_status] TEXT,
   [disposition] TEXT,
   [call_sid] TEXT,
   [updated_at] TEXT
);
CREATE INDEX IF NOT EXISTS [idx_outbound_calls_state_due_at]
    ON [outbound_calls] ([state], [due_at]);
CREATE INDEX IF NOT EXISTS [idx_outbound_calls_caller_hash_kind]
    ON [outbound_calls] ([caller_hash], [kind]);
CREATE INDEX IF NOT EXISTS [idx_outbound_calls_call_sid]
    ON [outbound_calls] ([call_sid]);
CREATE TABLE IF NOT EXISTS [opt_outs] (
   [caller_hash] TEXT PRIMARY KEY,
   [created_at] TEXT
);
"""


def _migrate_outbound(conn: sqlite3.Connection) -> None:
    for statement in OUTBOUND_SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
    if "origin" not in columns:
        conn.execute("ALTER TABLE calls ADD COLUMN origin TEXT DEFAULT 'inbound'")


class Store:
    """The line's database. Create once per app; connections are made per process."""

    def __init__(self, path: Path | str, caller_key: bytes,
                 busy_timeout_ms: int = BUSY_TIMEOUT_MS, fast_wait_ms: int = FAST_WAIT_MS):
        self.path = Path(path)
        self.caller_key = caller_key
        self.busy_timeout_ms = busy_timeout_ms
        self.fast_wait_ms = min(fast_wait_ms, busy_timeout_ms)
        self._local = threading.local()
        self._blocked_until = 0.0  # monotonic: until then, writes go straight to the spool
        self._blocked_since: float | None = None
        self._spooled = self._steps_dropped = 0  # while blocked, for the log
        self._append_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._replayer: threading.Thread | None = None
        self._replayer_pid = 0
        self._next_spool_check = 0.0
        self._closing = threading.Event()
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for suffix in ("-wal", "-shm"):  # SQLite gives them the database file's mode
            if self.path.with_name(self.path.name + suffix).exists():
                private_file(self.path.with_name(self.path.name + suffix))
        self.ensure_schema()
        if self.spool_files():
            self._start_replayer()

    # --- connections ------------------------------------------------------------------------

    def _connect(self, timeout_ms: int) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=timeout_ms / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection. A caller's request waits at most fast_wait_ms for the
        write lock on it (see `patient` for work that may wait longer)."""
        pid = os.getpid()
        if getattr(self._local, "pid", None) != pid:
            self._local.db = sqlite_utils.Database(self._connect(self.fast_wait_ms))
            self._local.pid = pid
        return self._local.db

    @property
    def patient_db(self) -> sqlite_utils.Database:
        """This thread's connection for work that may wait busy_timeout_ms for the write lock
        (the admin pages, the `ivr` command): a connection apart from the callers' one, so
        no caller's request inherits the long wait."""
        pid = os.getpid()
        if getattr(self._local, "patient_pid", None) != pid:
            self._local.patient_db = sqlite_utils.Database(self._connect(self.busy_timeout_ms))
            self._local.patient_pid = pid
        return self._local.patient_db

    @contextmanager
    def patient(self, timeout_ms: int | None = None) -> Iterator[sqlite3.Connection]:
        """This thread's connection, waiting up to busy_timeout_ms (or `timeout_ms`) for the
        write lock."""
        conn = self.db.conn
        conn.execute(f"PRAGMA busy_timeout = {timeout_ms or self.busy_timeout_ms}")
        try:
            yield conn
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self.fast_wait_ms}")

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection | None = None
                     ) -> Iterator[sqlite3.Connection]:
        """One write transaction: the lock is waited for once, at BEGIN IMMEDIATE."""
        conn = conn or self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- the schema -------------------------------------------------------------------------

    def schema_is_current(self) -> bool:
        """Only reads: the schema version and journal mode (in WAL mode a writer holding the
        lock does not stop a reader)."""
        try:
            conn = self._connect(100)
        except sqlite3.Error:
            return False
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        except sqlite3.Error:
            return False
        finally:
            conn.close()
        return version == SCHEMA_VERSION and mode == "wal"

    def ensure_schema(self) -> None:
        """Create or upgrade the schema if it is not current. gunicorn starts its workers
        together, so on a new file they take turns (an flock); a write lock held by another
        process is waited out, however long."""
        private_file(self.path)
        if self.schema_is_current():
            return
        with self.migration_lock():
            self.wait_for(self._migrate_once, "the database is locked")

    @contextmanager
    def migration_lock(self) -> Iterator[None]:
        """Schema changes one process at a time (the admin pages' tables use it too); the
        lock is waited for, however long, with a line in the log now and then."""
        lock = os.open(self.path.with_name(self.path.name + ".migrate.lock"),
                       os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            self.wait_for(lambda: fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB),
                           "another process is creating the schema")
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        finally:
            os.close(lock)

    def wait_for(self, attempt: Callable[[], None], what: str) -> None:
        """Run `attempt` until it neither finds a lock taken nor the database busy."""
        started = time.monotonic()
        told = 0.0
        tries = 0
        while True:
            try:
                attempt()
                if tries:
                    log.warning("schema step done after waiting %.1f s (%s)",
                                time.monotonic() - started, what)
                return
            except BlockingIOError:
                pass
            except sqlite3.OperationalError as exc:
                # locked or busy (another writer), or unwritable for now: the line cannot start
                # without its tables, and giving up would make gunicorn's master exit
                if not is_busy(exc):
                    what = f"the database cannot be written ({exc})"
            tries += 1
            waited = time.monotonic() - started
            if waited - told >= 10 or tries == 1:
                told = waited
                log.warning("start-up waits: %s (%.0f s so far); retrying", what, waited)
            time.sleep(min(0.5, 0.02 * tries))

    def _migrate_once(self) -> None:
        private_file(self.path)  # not creatable before a wait: SQLite would make it 0644
        if self.schema_is_current():  # another process did it while we waited
            return
        conn = self._connect(min(1000, self.busy_timeout_ms))
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            with self._transaction(conn):
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                _migrate_outbound(conn)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        finally:
            conn.close()

    # --- when the database cannot be written ------------------------------------------------

    def blocked(self) -> bool:
        """True shortly after a write failed: writes then go straight to the spool."""
        return time.monotonic() < self._blocked_until

    def _block(self, exc: sqlite3.Error) -> None:
        with self._state_lock:
            first = self._blocked_since is None
            if first:
                self._blocked_since = time.monotonic()
            self._blocked_until = time.monotonic() + BLOCKED_SECONDS
        if first:
            log.error("database unavailable (%s): answers and recordings go to the spool %s "
                      "and are written when it is back", exc, self.spool_path)
        self._start_replayer()

    def _unblock(self) -> None:
        with self._state_lock:
            since, self._blocked_since = self._blocked_since, None
            self._blocked_until = 0.0
            spooled, dropped = self._spooled, self._steps_dropped
            self._spooled = self._steps_dropped = 0
        if since is not None:
            log.warning("database writable again after %.1f s: %d records were spooled, %d "
                        "call steps were not recorded", time.monotonic() - since, spooled,
                        dropped)

    def _durably(self, kind: str, payload: dict, write: Callable[..., T]) -> T | None:
        """Write now, in one transaction; if the database is locked or unwritable, keep the
        record in the spool and write it later (every write is idempotent)."""
        if not self.blocked():
            try:
                with self._transaction():
                    result = write(**payload)
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                self._block(exc)
            else:
                self._check_spool_now_and_then()
                return result
        self._spool(kind, payload)
        return SPOOLED  # type: ignore[return-value]

    # --- the spool --------------------------------------------------------------------------

    @property
    def spool_path(self) -> Path:
        """This process's spool file."""
        return self.path.with_name(f"{self.path.name}.spool.{os.getpid()}.jsonl")

    @property
    def rejected_path(self) -> Path:
        """Spool lines that could not be read or written, kept for a person to look at."""
        return self.path.with_name(f"{self.path.name}.spool-rejected.jsonl")

    def spool_files(self) -> list[Path]:
        """Every spool file waiting to be written (any process's, and claimed ones)."""
        prefix = self.path.name + ".spool"
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return []
        return [self.path.with_name(n) for n in names
                if n.startswith(prefix) and n.endswith(".jsonl") and "rejected" not in n]

    def _spool(self, kind: str, payload: dict) -> None:
        record = {"_type": kind, "_id": uuid.uuid4().hex, **payload}
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        try:
            self._append(data)
        except OSError as exc:
            log.critical("could not store or spool a %s (%s): %s", kind, exc, data)
            raise
        with self._state_lock:
            self._spooled += 1
        self._start_replayer()

    def _append(self, data: bytes) -> None:
        """Append one record to this process's spool file, durably, never into a file that a
        replayer has just claimed (renamed): the claim holds the file's flock, and an append
        that finds another file at the path afterwards starts again."""
        path = self.spool_path
        with self._append_lock:
            while True:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                             FILE_MODE)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    mine = os.fstat(fd)
                    try:
                        current = os.stat(path)
                    except FileNotFoundError:
                        continue
                    if (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev):
                        continue  # claimed while we opened it: append to the new file
                    if mine.st_size and os.pread(fd, 1, mine.st_size - 1) != b"\n":
                        data = b"\n" + data  # a torn last line (a crash): keep ours whole
                    os.write(fd, data)
                    os.fsync(fd)
                    return
                finally:
                    os.close(fd)  # also releases the flock

    def _start_replayer(self) -> None:
        """One background thread per process writes the spool once the database is back."""
        if self._closing.is_set():
            return
        with self._state_lock:
            pid = os.getpid()
            if (self._replayer is not None and self._replayer_pid == pid
                    and self._replayer.is_alive()):
                return
            self._replayer_pid = pid
            self._replayer = threading.Thread(target=self._replay_loop, name="ivr-spool",
                                              daemon=True)
            self._replayer.start()

    def _check_spool_now_and_then(self) -> None:
        """A spool left by another process (one that died, say) is noticed within seconds."""
        moment = time.monotonic()
        if moment >= self._next_spool_check:
            self._next_spool_check = moment + 5.0
            if self.spool_files():
                self._start_replayer()

    def _replay_loop(self) -> None:
        """Wait for the database to be writable, keeping writes on the spool meanwhile (so no
        caller waits for the lock again), then write the spool (or let the process that is
        writing it finish)."""
        probe_ms = int(min(BLOCKED_SECONDS * 500, self.busy_timeout_ms))
        try:
            while not self._closing.is_set() and (self.blocked() or self.spool_files()):
                if self.blocked():
                    try:
                        # a write, undone: returns as soon as the lock is free and the file
                        # writable again
                        with self.patient(probe_ms) as conn:
                            conn.execute("BEGIN IMMEDIATE")
                            try:
                                conn.execute("DELETE FROM spool_applied WHERE 0")
                            finally:
                                conn.execute("ROLLBACK")
                    except sqlite3.Error as exc:
                        self._block(exc)  # still unavailable: callers keep not waiting
                        self._closing.wait(0.05)
                        continue
                    self._unblock()
                if not self.replay_spool():
                    self._closing.wait(0.25)  # another process is writing it, or it failed
        except Exception:
            log.exception("the spool replay stopped; it starts again with the next write")

    def replay_spool(self) -> int:
        """Write what the spool holds (every process's files); returns how many records were
        written now. Only one replayer at a time: 0 when another one holds the lock."""
        if not self.spool_files():
            return 0
        lock = os.open(self.path.with_name(self.path.name + ".spool.lock"),
                       os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            return self._replay_locked()
        finally:
            os.close(lock)

    def _replay_locked(self) -> int:
        prefix = self.path.name + ".spool-claimed."
        # claims left by a replayer that died (we hold the lock: nobody else is replaying)
        claimed: list[tuple[Path, bytes | None]] = [
            (p, None) for p in self.spool_files() if p.name.startswith(prefix)]
        for path in self.spool_files():
            if not path.name.startswith(prefix):
                claim = self._claim(path, prefix)
                if claim is not None:
                    claimed.append(claim)
        written = 0
        for path, data in sorted(claimed, key=lambda claim: _mtime(claim[0])):
            done, count = self._replay_file(path, data)
            written += count
            if not done:
                break  # the database is unavailable again: the rest waits for the next replay
        if written:
            log.info("wrote %d spooled records to the database", written)
        return written

    def _claim(self, path: Path, prefix: str) -> tuple[Path, bytes] | None:
        """Rename a spool file out of its writers' way and read it, holding its flock: an
        append in progress ends first, and one that opened the file before the rename finds
        another file at its path afterwards and starts again there."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            target = path.with_name(f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl")
            try:
                os.rename(path, target)
            except FileNotFoundError:
                return None
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return target, b"".join(chunks)
        finally:
            os.close(fd)

    def _replay_file(self, path: Path, data: bytes | None = None) -> tuple[bool, int]:
        """Write one claimed file's records; (all done, records written now)."""
        if data is None:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                return True, 0
        records: list[tuple[str, dict]] = []
        unreadable: list[bytes] = []
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                if not isinstance(record, dict) or record.get("_type") not in APPLY:
                    raise ValueError("not a spool record")
            except ValueError:
                unreadable.append(raw)
                continue
            # records spooled before record ids existed are named by their content
            rid = str(record.pop("_id", "") or hashlib.sha256(raw).hexdigest())
            records.append((rid, record))
        written = 0
        rejected: list[bytes] = []
        for start in range(0, len(records), SPOOL_BATCH):
            if start:
                time.sleep(SPOOL_PAUSE)  # callers' own writes get the lock in between
            try:
                with self.patient() as conn, self._transaction(conn):
                    count, failed = self._apply_batch(conn, records[start:start + SPOOL_BATCH])
            except sqlite3.Error as exc:
                log.warning("spool replay paused (%s); %s waits for the next try", exc, path)
                return False, written
            written += count
            rejected += failed
        if unreadable or rejected:
            for raw in unreadable:
                log.error("an unreadable spool line (a write cut short?) is kept aside in "
                          "%s: %r", self.rejected_path, raw[:200])
            self._keep_aside(unreadable + rejected)
        path.unlink()
        return True, written

    def _apply_batch(self, conn: sqlite3.Connection, batch: list[tuple[str, dict]]
                     ) -> tuple[int, list[bytes]]:
        written = 0
        failed: list[bytes] = []
        stamp = now()
        for rid, record in batch:
            if not conn.execute("INSERT INTO spool_applied (id, applied_at) VALUES (?, ?) "
                                "ON CONFLICT(id) DO NOTHING", [rid, stamp]).rowcount:
                continue  # written before (a replay cut short after its commit)
            conn.execute("SAVEPOINT record")
            try:
                fields = dict(record)
                APPLY[fields.pop("_type")](self, **fields)
            except sqlite3.OperationalError:
                raise  # the database again: the batch waits
            except Exception as exc:  # this record can never be written: kept aside
                conn.execute("ROLLBACK TO record")
                log.error("a spooled record could not be written (%r); kept aside in %s",
                          exc, self.rejected_path)
                failed.append(json.dumps({"_id": rid, **record}, ensure_ascii=False).encode())
            else:
                written += 1
            conn.execute("RELEASE record")
        return written, failed

    def _keep_aside(self, lines: list[bytes]) -> None:
        fd = os.open(self.rejected_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     FILE_MODE)
        try:
            os.write(fd, b"".join(line + b"\n" for line in lines))
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Stop the background replay (what is still spooled stays for the next replayer)."""
        self._closing.set()
        replayer = self._replayer
        if replayer is not None and self._replayer_pid == os.getpid():
            replayer.join(timeout=10)

    def wait_for_spool(self, timeout: float = 30.0) -> bool:
        """Until the spool is empty (True) or `timeout` seconds have passed (False)."""
        deadline = time.monotonic() + timeout
        while self.spool_files():
            if time.monotonic() >= deadline:
                return False
            self._start_replayer()
            time.sleep(0.05)
        return True

    # --- calls --------------------------------------------------------------------------

    def record_step(self, sid: str, caller: str, lang: str, node: str, digits: str | None,
                    event: str) -> None:
        """Log one step of a call, creating the call row on its first step. While the
        database is unavailable the step is not recorded (it never delays the caller)."""
        if not sid:
            return
        if self.blocked():
            with self._state_lock:
                self._steps_dropped += 1
            return
        stamp = now()
        try:
            with self._transaction() as conn:
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
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            self._block(exc)
            with self._state_lock:
                self._steps_dropped += 1

    def close_call(self, sid: str, caller: str, status: str, duration_s: int | None) -> None:
        """Twilio's status callback: the call is over (it may never have reached a menu)."""
        payload = {"sid": sid, "caller_hash": caller_hash(self.caller_key, caller),
                   "status": status, "duration_s": duration_s, "stamp": now()}
        self._durably("close", payload, self._close_call)

    def _close_call(self, sid: str, caller_hash: str, status: str, duration_s: int | None,
                    stamp: str) -> None:
        self.db.execute(
            "INSERT INTO calls (sid, caller_hash, started_at, ended_at, status, duration_s) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(sid) DO UPDATE SET "
            "ended_at = excluded.ended_at, status = excluded.status, "
            "duration_s = excluded.duration_s",
            [sid, caller_hash, stamp, stamp, status, duration_s],
        )

    # --- ratings ------------------------------------------------------------------------

    def save_answer(self, sid: str, caller: str, office: str, service: str, lang: str,
                    question: str, value: str) -> str | None:
        """Store one answer as soon as it is given; a repeated webhook changes nothing
        (the feedback is one per call, office and service; an answer one per question).
        Returns the feedback's reference (SPOOLED when the answer had to wait)."""
        payload: dict[str, Any] = {"sid": sid, "caller_hash": caller_hash(self.caller_key, caller),
                   "office": office, "service": service, "lang": lang, "question": question,
                   "value": value, "stamp": now()}
        return self._durably("answer", payload, self._save_answer)

    def _save_answer(self, sid: str, caller_hash: str, office: str, service: str, lang: str,
                     question: str, value: str, stamp: str) -> str:
        feedback_id, reference = self._feedback(sid, caller_hash, office, service, lang, stamp)
        # a spooled answer written late never replaces a later answer to the same question
        self.db.execute(
            "INSERT INTO answers (feedback_id, question, value, answered_at) VALUES (?,?,?,?) "
            "ON CONFLICT(feedback_id, question) DO UPDATE SET value = excluded.value, "
            "answered_at = excluded.answered_at WHERE excluded.answered_at >= answered_at",
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
        return self._durably("recording", payload, self._save_recording)

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
        with self.patient() as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(recordings)")}
            closed = (", closed_at = CASE WHEN ? = 'closed' THEN coalesce(closed_at, ?) END"
                      if "closed_at" in columns else "")
            cursor = conn.execute(
                f"UPDATE recordings SET status = ?, note = ?, updated_at = ?{closed} "
                "WHERE reference = ?",
                [status, note, stamp, *([status, stamp] if closed else []), reference])
        return cursor.rowcount > 0

    # --- hearing back about a case (main menu 5) -----------------------------------------
    # Every reference keyed is counted (case_lookups), so all workers share the limits: a
    # caller who keys LOOKUP_WRONG_PER_CALL wrong references in a call, or
    # LOOKUP_WRONG_PER_DAY in a day (Cambodia's day, by caller hash; withheld numbers share
    # one count), is not offered the lookup again that day. A limit reached is said the same
    # whatever reference is keyed, so a reference cannot be found by dialling.

    def lookup_state(self, sid: str, caller: str) -> str:
        """'open', 'refused' (a limit reached) or 'unavailable' (the database cannot be read);
        only reads."""
        try:
            return "refused" if self._over_limit(self.db.conn, sid,
                                                 caller_hash(self.caller_key, caller)) else "open"
        except sqlite3.Error as exc:
            log.warning("case lookup unavailable: %s", exc)
            return "unavailable"

    def _over_limit(self, conn: sqlite3.Connection, sid: str, hashed: str) -> bool:
        in_call = conn.execute("SELECT count(*) FROM case_lookups WHERE call_sid = ? "
                               "AND found = 0", [sid]).fetchone()[0] if sid else 0
        # today's wrong references from this number, and the most in any one call of theirs
        today, most = conn.execute(
            "SELECT coalesce(sum(n), 0), coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM "
            "case_lookups WHERE caller_hash = ? AND day = ? AND found = 0 GROUP BY call_sid)",
            [hashed, cambodia_day()]).fetchone()
        return (max(in_call, most) >= LOOKUP_WRONG_PER_CALL
                or today >= LOOKUP_WRONG_PER_DAY)

    def lookup_case(self, sid: str, caller: str, reference: str) -> str:
        """Count one reference keyed and say what became of it: 'found', 'wrong', 'refused'
        (a limit was reached before, or by this wrong reference) or 'unavailable'. One
        BEGIN IMMEDIATE transaction: two workers cannot both take the last try."""
        hashed = caller_hash(self.caller_key, caller)
        try:
            with self._transaction() as conn:
                if self._over_limit(conn, sid, hashed):
                    return "refused"
                found = (len(reference) == 6 and reference.isdigit()
                         and self._case_exists(conn, reference))
                conn.execute(
                    "INSERT INTO case_lookups (call_sid, caller_hash, day, reference, found, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [sid, hashed, cambodia_day(), reference if found else None, int(found),
                     now()])
                if found:
                    return "found"
                return "refused" if self._over_limit(conn, sid, hashed) else "wrong"
        except sqlite3.Error as exc:
            log.warning("case lookup unavailable: %s", exc)
            return "unavailable"

    @staticmethod
    def _case_exists(conn: sqlite3.Connection, reference: str) -> bool:
        return conn.execute(
            "SELECT EXISTS (SELECT 1 FROM recordings WHERE reference = ?) "
            "OR EXISTS (SELECT 1 FROM feedback WHERE reference = ?)",
            [reference, reference]).fetchone()[0] == 1

    def looked_up(self, sid: str, reference: str) -> bool:
        """Did this call key this reference (and was it found)? Nothing about a case is said
        in a call that has not keyed its reference."""
        if not sid:
            return False
        try:
            return self.db.execute("SELECT 1 FROM case_lookups WHERE call_sid = ? AND "
                                   "reference = ? AND found = 1",
                                   [sid, reference]).fetchone() is not None
        except sqlite3.Error:
            return False

    def case_summary(self, reference: str) -> CaseSummary | None:
        """What the line says about a case or a rating: kind, office, service, received,
        status (None for a rating without a comment) and its latest reply."""
        conn = self.db.conn
        row = conn.execute("SELECT kind, office_id, service_id, created_at, status FROM "
                           "recordings WHERE reference = ?", [reference]).fetchone()
        if row is None:
            rating = conn.execute("SELECT office_id, service_id, created_at FROM feedback "
                                  "WHERE reference = ?", [reference]).fetchone()
            if rating is None:
                return None
            row = ("rating", rating[0], rating[1], rating[2], None)
        reply = conn.execute("SELECT id, kind, prompt_key, file FROM case_replies WHERE "
                             "reference = ? ORDER BY created_at DESC, id DESC LIMIT 1",
                             [reference]).fetchone()
        return CaseSummary(reference, row[0] or "", row[1] or "", row[2] or "", row[3] or "",
                           row[4], Reply(*reply) if reply else None)

    def add_reply(self, reference: str, kind: str, *, prompt_key: str = "", file: str = "",
                  duration_ms: int | None = None, by: str = "") -> int:
        """A reply to a case: a recording (`file`, in the replies folder) or a standard reply
        (`prompt_key`, recorded once as a prompt). The latest one is what callers hear."""
        if kind not in REPLY_KINDS:
            raise ValueError(f"a reply is one of {', '.join(REPLY_KINDS)}")
        with self.patient() as conn, self._transaction(conn):
            cursor = conn.execute(
                "INSERT INTO case_replies (reference, kind, prompt_key, file, duration_ms, "
                "created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [reference, kind, prompt_key or None, file or None, duration_ms, by, now()])
        return int(cursor.lastrowid or 0)

    def save_followup(self, *, sid: str, caller: str, reference: str, lang: str,
                      recording_sid: str, recording_url: str,
                      duration_s: int | None) -> str | None:
        """A follow-up message on a case (from the Record action or the status callback,
        named alike as recordings are); the case's reference, or None when it was empty."""
        recording_sid = recording_identity(recording_sid, recording_url)
        if not recording_sid or not has_sound(duration_s, recording_url):
            return None
        payload: dict[str, Any] = {
            "sid": sid, "caller_hash": caller_hash(self.caller_key, caller),
            "reference": reference, "lang": lang, "recording_sid": recording_sid,
            "recording_url": recording_url, "duration_s": duration_s, "stamp": now()}
        return self._durably("followup", payload, self._save_followup)

    def _save_followup(self, *, sid: str, caller_hash: str, reference: str, lang: str,
                       recording_sid: str, recording_url: str, duration_s: int | None,
                       stamp: str) -> str:
        caller_hash = caller_hash or self.call_caller_hash(sid)
        self.db.execute(
            "INSERT INTO case_followups (reference, call_sid, caller_hash, lang, duration_s, "
            "recording_sid, recording_url, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(recording_sid) DO UPDATE SET "
            "duration_s = max(coalesce(duration_s, excluded.duration_s), "
            "coalesce(excluded.duration_s, duration_s)), "
            "caller_hash = coalesce(nullif(caller_hash, ''), excluded.caller_hash), "
            "recording_url = coalesce(nullif(excluded.recording_url, ''), recording_url), "
            "updated_at = excluded.updated_at",
            [reference, sid, caller_hash, lang, duration_s, recording_sid, recording_url,
             stamp, stamp])
        return reference


LOOKUP_WRONG_PER_CALL = 3  # wrong references in one call, then no more lookups that day
LOOKUP_WRONG_PER_DAY = 5  # wrong references per caller hash per Cambodian day
REPLY_KINDS = ("recorded", "standard")


def cambodia_day(moment: float | None = None) -> str:
    """The date in Cambodia (UTC+7, no daylight saving) as YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.gmtime((time.time() if moment is None else moment)
                                                 + 7 * 3600))


@dataclass(frozen=True)
class Reply:
    """A case's reply, as the line plays it."""

    id: int
    kind: str  # recorded | standard
    prompt_key: str | None
    file: str | None


@dataclass(frozen=True)
class CaseSummary:
    reference: str
    kind: str  # complaint | ombudsman-message | comment | rating
    office: str
    service: str
    created_at: str  # UTC, ISO 8601
    status: str | None  # new | reviewed | closed; None: a rating without a comment
    reply: Reply | None


def backup_database(database: Path, folder: Path, keep_days: int = 30) -> Path:
    """A consistent copy of the database while the line runs (SQLite's online backup, in
    one read transaction: a writer holding the lock does not stop it), as
    <folder>/<name>-<YYYY-MM-DD>.db readable by its owner only; copies older than
    `keep_days` are removed. Returns the copy's path."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    target = folder / f"{database.stem}-{stamp}.db"
    partial = folder / f".{target.name}.partial"
    partial.unlink(missing_ok=True)
    private_file(partial)
    source = sqlite3.connect(database, timeout=BUSY_TIMEOUT_MS / 1000)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, target)
    oldest = time.time() - keep_days * 86400
    for old in folder.glob(f"{database.stem}-*.db"):
        if old != target and _mtime(old) < oldest:
            old.unlink()
    return target


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


APPLY: dict[str, Callable[..., Any]] = {
    "answer": Store._save_answer,
    "recording": Store._save_recording,
    "close": Store._close_call,
    "followup": Store._save_followup,
}
