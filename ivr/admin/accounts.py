"""Accounts, their sessions, sign-in throttling and the audit log, all in the line's SQLite
file (so every gunicorn worker shares them and they survive restarts).

Passwords: Argon2id through argon2-cffi (OWASP's first choice; memory-hard, so guessing on
GPUs is costly; its parameters travel in each hash, so they can be raised later and old
hashes still verify). Parameters: OWASP's 19 MiB, 2 passes, 1 lane: about 20-40 ms a check.

Sessions: the browser's cookie (signed by Flask) holds a random token; the database holds
its SHA-256 with the account, the time it was opened and last used. A session ends when its
owner signs out, when the account is disabled or its password changed, after
`admin_idle_minutes` unused and after SESSION_HOURS in all. A copied cookie is worth nothing
once its row has ended.

Throttling: see `Rule` and `reserve`.
"""

from __future__ import annotations

import getpass
import hashlib
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ivr.admin.access import ROLES, SCOPED
from ivr.store import now

SESSION_HOURS = 12
TOUCH_SECONDS = 60  # a session's last use is written at most this often
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,39}")
MIN_PASSWORD = 10
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
clock: Callable[[], float] = time.time  # tests move time forward here


class AccountError(ValueError):
    """A refused account change: `key` names the message in the translation files."""

    def __init__(self, key: str, **values: str):
        super().__init__(key)
        self.key, self.values = key, values


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    offices: tuple[str, ...]
    active: bool = True
    last_sign_in_at: str | None = None
    created_at: str = ""

    @property
    def scope(self) -> tuple[str, ...] | None:
        """The offices this account may see; None: every office."""
        return self.offices if self.role in SCOPED else None


def hash_password(password: str) -> str:
    return HASHER.hash(password)


_dummy: list[str] = []


def check_password(stored: str | None, password: str) -> bool:
    """Constant work whether or not the account exists (a dummy hash stands in)."""
    if stored is None:
        if not _dummy:
            _dummy.append(HASHER.hash(secrets.token_hex(16)))
        stored, password = _dummy[0], password + "-no-such-account"
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _user(row: sqlite3.Row | tuple) -> User:
    id_, name, role, offices, active, last, created = row
    return User(id_, name, role, tuple(o for o in offices.split(",") if o), bool(active), last,
                created)


USER_COLUMNS = "id, name, role, offices, active, last_sign_in_at, created_at"


def find_user(conn: sqlite3.Connection, name: str) -> tuple[User, str] | None:
    """(the account, its password hash) by name, active or not."""
    row = conn.execute(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE name = ?",
                       [name.strip().lower()]).fetchone()
    return (_user(row[:-1]), row[-1]) if row else None


def user_by_id(conn: sqlite3.Connection, user_id: int) -> User | None:
    row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", [user_id]).fetchone()
    return _user(row) if row else None


def list_users(conn: sqlite3.Connection) -> list[User]:
    return [_user(row) for row in conn.execute(
        f"SELECT {USER_COLUMNS} FROM users ORDER BY active DESC, name")]


def any_user(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError("account.error.short", n=str(MIN_PASSWORD))


def add_user(conn: sqlite3.Connection, name: str, role: str, offices: Iterable[str],
             password: str, known_offices: Iterable[str]) -> User:
    """Create an account (AccountError, naming what is wrong, when it cannot be made)."""
    name = name.strip().lower()
    offices = tuple(dict.fromkeys(o.strip() for o in offices if o.strip()))
    if not NAME.fullmatch(name):
        raise AccountError("account.error.name")
    if role not in ROLES:
        raise AccountError("account.error.role", role=role, roles=", ".join(ROLES))
    known = set(known_offices)
    unknown = [o for o in offices if o not in known]
    if unknown:
        raise AccountError("account.error.office", office=", ".join(unknown))
    if role in SCOPED and not offices:
        raise AccountError("account.error.needs_office", role=role)
    if role not in SCOPED and offices:
        raise AccountError("account.error.no_office", role=role)
    check_new_password(password)
    stamp = now()
    try:
        conn.execute(
            "INSERT INTO users (name, role, offices, password_hash, created_at, "
            "password_changed_at) VALUES (?, ?, ?, ?, ?, ?)",
            [name, role, ",".join(offices), hash_password(password), stamp, stamp])
    except sqlite3.IntegrityError:
        raise AccountError("account.error.exists", name=name) from None
    found = find_user(conn, name)
    assert found is not None
    return found[0]


def disable_user(conn: sqlite3.Connection, name: str) -> User:
    found = find_user(conn, name)
    if found is None:
        raise AccountError("account.error.unknown", name=name)
    conn.execute("UPDATE users SET active = 0, disabled_at = ? WHERE id = ?",
                 [now(), found[0].id])
    end_user_sessions(conn, found[0].id, "disabled")
    return found[0]


def set_password(conn: sqlite3.Connection, name: str, password: str) -> User:
    found = find_user(conn, name)
    if found is None:
        raise AccountError("account.error.unknown", name=name)
    check_new_password(password)
    conn.execute("UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
                 [hash_password(password), now(), found[0].id])
    end_user_sessions(conn, found[0].id, "password changed")
    return found[0]


# --- sessions ---------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(conn: sqlite3.Connection, user: User, address: str) -> str:
    token = secrets.token_urlsafe(32)
    moment = clock()
    conn.execute("INSERT INTO admin_sessions (token_hash, user_id, created_at, last_seen_at, "
                 "address) VALUES (?, ?, ?, ?, ?)", [_digest(token), user.id, moment, moment,
                                                     address])
    conn.execute("UPDATE users SET last_sign_in_at = ? WHERE id = ?", [now(), user.id])
    return token


def session_user(conn: sqlite3.Connection, token: str, idle_minutes: int) -> User | None:
    """The account of a live session (None when ended, idle too long, too old, or the
    account is disabled); a session found idle or too old is ended here."""
    if not token:
        return None
    digest = _digest(token)
    row = conn.execute(
        "SELECT s.created_at, s.last_seen_at, s.ended_at, u.id, u.name, u.role, u.offices, "
        "u.active, u.last_sign_in_at, u.created_at FROM admin_sessions s "
        "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?", [digest]).fetchone()
    if row is None or row[2] is not None:
        return None
    created, seen = row[0], row[1]
    user = _user(row[3:])
    moment = clock()
    if not user.active:
        end_session(conn, token, "disabled")
        return None
    if moment - seen > idle_minutes * 60:
        end_session(conn, token, "idle")
        return None
    if moment - created > SESSION_HOURS * 3600:
        end_session(conn, token, "expired")
        return None
    if moment - seen > TOUCH_SECONDS:
        conn.execute("UPDATE admin_sessions SET last_seen_at = ? WHERE token_hash = ?",
                     [moment, digest])
    return user


def end_session(conn: sqlite3.Connection, token: str, reason: str) -> None:
    conn.execute("UPDATE admin_sessions SET ended_at = ?, end_reason = ? "
                 "WHERE token_hash = ? AND ended_at IS NULL", [clock(), reason, _digest(token)])


def end_user_sessions(conn: sqlite3.Connection, user_id: int, reason: str) -> int:
    cursor = conn.execute("UPDATE admin_sessions SET ended_at = ?, end_reason = ? "
                          "WHERE user_id = ? AND ended_at IS NULL", [clock(), reason, user_id])
    return cursor.rowcount


# --- sign-in throttling ------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """`free` attempts, then each further one waits 1 s, 2 s, 4 s ... at most `cap` seconds
    after the one before; `forget` seconds without an attempt and the count starts again."""

    free: int
    cap: float
    forget: float

    def delay(self, attempts: int) -> float:
        if attempts < self.free:
            return 0.0
        return float(min(self.cap, 2 ** min(attempts - self.free, 20)))


# Per account: a stranger can slow the real person down for 5 minutes at most, and not at
# all on a browser where that person signed in before (its device cookie has its own count).
ACCOUNT = Rule(free=5, cap=300, forget=900)
# Per address (the peer, or what a trusted proxy says): many accounts from one place.
ADDRESS = Rule(free=10, cap=900, forget=3600)


def reserve(conn: sqlite3.Connection, keys: list[tuple[str, Rule]]) -> float:
    """Seconds to wait before an attempt may be made on these keys; 0 when it may be made
    now, and then it is counted at once (before the password is checked), in one
    transaction, so workers racing with guesses cannot share one free attempt."""
    moment = clock()
    conn.execute("BEGIN IMMEDIATE")
    try:
        wait, counts = 0.0, {}
        for key, rule in keys:
            row = conn.execute("SELECT attempts, last_at FROM login_throttle WHERE key = ?",
                               [key]).fetchone()
            attempts = 0 if row is None or moment - row[1] > rule.forget else row[0]
            if attempts:
                wait = max(wait, row[1] + rule.delay(attempts) - moment)
            counts[key] = attempts
        if wait <= 0:
            for key, attempts in counts.items():
                conn.execute("INSERT INTO login_throttle (key, attempts, last_at) VALUES (?,?,?) "
                             "ON CONFLICT(key) DO UPDATE SET attempts = excluded.attempts, "
                             "last_at = excluded.last_at", [key, attempts + 1, moment])
            conn.execute("DELETE FROM login_throttle WHERE last_at < ?",
                         [moment - max(ACCOUNT.forget, ADDRESS.forget)])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return max(0.0, wait)


def forget(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM login_throttle WHERE key = ?", [key])


def release(conn: sqlite3.Connection, key: str) -> None:
    """Take back the attempt a successful sign-in reserved (colleagues behind one address
    who sign in rightly never slow each other down)."""
    conn.execute("UPDATE login_throttle SET attempts = max(0, attempts - 1) WHERE key = ?",
                 [key])


# --- the audit log -------------------------------------------------------------------------


def audit(conn: sqlite3.Connection, user: str, role: str, action: str, target: str = "",
          detail: str = "", address: str = "") -> None:
    """Append one line to audit_log (the only statement the app sends to that table)."""
    conn.execute("INSERT INTO audit_log (at, user, role, action, target, detail, address) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)",
                 [datetime.now(timezone.utc).isoformat(timespec="seconds"), user[:80], role,
                  action, target[:200], detail[:500], address[:64]])


def operator() -> str:
    """Who ran an `ivr` command, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
