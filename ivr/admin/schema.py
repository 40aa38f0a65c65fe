"""The admin pages' tables: accounts, their sessions, sign-in throttling, the audit log.

Created by the app itself like the line's tables (every statement IF NOT EXISTS, run by each
worker at start-up under the store's migration lock). `audit_log` **(contract)** is
append-only: triggers refuse every UPDATE and DELETE, whoever sends it.
"""

from __future__ import annotations

import re
import sqlite3

from ivr.store import Store

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        offices TEXT NOT NULL DEFAULT '',
        password_hash TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        password_changed_at TEXT NOT NULL,
        disabled_at TEXT,
        last_sign_in_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS admin_sessions (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        created_at REAL NOT NULL,
        last_seen_at REAL NOT NULL,
        ended_at REAL,
        end_reason TEXT,
        address TEXT)""",
    "CREATE INDEX IF NOT EXISTS idx_admin_sessions_user ON admin_sessions (user_id, ended_at)",
    """CREATE TABLE IF NOT EXISTS login_throttle (
        key TEXT PRIMARY KEY,
        attempts INTEGER NOT NULL,
        last_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        user TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT '',
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '',
        address TEXT NOT NULL DEFAULT '')""",
    "CREATE INDEX IF NOT EXISTS idx_audit_log_at ON audit_log (at)",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
)

# Retention needs to know when a case was closed and whether it was purged.
RECORDING_COLUMNS = {"closed_at": "TEXT", "purged_at": "TEXT"}


def _names() -> set[str]:
    """The tables, indexes and triggers the statements create."""
    return {m.group(1) for statement in STATEMENTS
            if (m := re.search(r"IF NOT EXISTS (\w+)", statement))}


def is_current(conn: sqlite3.Connection) -> bool:
    """Only reads: whether every table, index, trigger and column is there already (then a
    worker starts without the write lock, even while the database is locked)."""
    have = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    columns = {row[1] for row in conn.execute("PRAGMA table_info(recordings)")}
    return _names() <= have and set(RECORDING_COLUMNS) <= columns


def migrate(store: Store) -> None:
    """Create what is missing, under the lock the line's own migration takes; nothing is
    written when the schema is current."""
    if is_current(store.db.conn):
        return
    with store.migration_lock():
        store.wait_for(lambda: _apply(store), "the database is locked (admin tables)")


def _apply(store: Store) -> None:
    with store.patient(1000) as conn:
        if is_current(conn):  # another process did it while we waited
            return
        for statement in STATEMENTS:
            conn.execute(statement)
        have = {row[1] for row in conn.execute("PRAGMA table_info(recordings)")}
        for column, kind in RECORDING_COLUMNS.items():
            if column not in have:
                try:
                    conn.execute(f"ALTER TABLE recordings ADD COLUMN {column} {kind}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise
