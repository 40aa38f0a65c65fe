"""SQLite storage through sqlite-utils: calls and the steps each call passed through.

One connection per process and thread (gunicorn forks after the app is made), WAL so
readers never block the writer, a busy timeout, and single-statement writes. Callers are
stored only as a keyed hash: the same caller gets the same hash, and the number cannot
be recovered without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

BUSY_TIMEOUT_MS = 5000
SCHEMA_VERSION = 1


def caller_hash(key: bytes, number: str) -> str:
    """A stable pseudonym for a phone number; empty or withheld numbers stay empty."""
    number = "".join(ch for ch in number if ch.isdigit() or ch == "+")
    if not number:
        return ""
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()[:32]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """The line's database. Create once per app; connections are made per process."""

    def __init__(self, path: Path | str, caller_key: bytes):
        self.path = Path(path)
        self.caller_key = caller_key
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.migrate()

    @property
    def db(self) -> sqlite_utils.Database:
        pid = os.getpid()
        if getattr(self._local, "pid", None) != pid:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.db = sqlite_utils.Database(conn)
            self._local.pid = pid
        return self._local.db

    def migrate(self) -> None:
        db = self.db
        if "calls" not in db.table_names():
            db["calls"].create({
                "sid": str, "caller_hash": str, "language": str, "started_at": str,
                "ended_at": str, "status": str, "duration_s": int, "last_node": str,
            }, pk="sid")
        if "events" not in db.table_names():
            db["events"].create({
                "id": int, "call_sid": str, "at": str, "lang": str, "node": str,
                "digits": str, "event": str,
            }, pk="id", foreign_keys=[("call_sid", "calls", "sid")])
            db["events"].create_index(["call_sid"])
            db["events"].create_index(["node", "event"])
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def record_step(self, sid: str, caller: str, lang: str, node: str, digits: str | None,
                    event: str) -> None:
        """Log one step of a call, creating the call row on its first step."""
        if not sid:
            return
        stamp = now()
        db = self.db
        db.execute(
            "INSERT INTO calls (sid, caller_hash, language, started_at, last_node) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(sid) DO UPDATE SET "
            "language = excluded.language, last_node = excluded.last_node",
            [sid, caller_hash(self.caller_key, caller), lang, stamp, node],
        )
        db.execute(
            "INSERT INTO events (call_sid, at, lang, node, digits, event) VALUES (?,?,?,?,?,?)",
            [sid, stamp, lang, node, digits, event],
        )

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
