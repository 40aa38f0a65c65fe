"""What every admin page shares: the blueprint, the signed-in account and its role, the
language (Flask-Babel), CSRF, dates in Cambodia's time, filters, tables and their CSV.

Page wording is in `ivr/translations/<lang>/LC_MESSAGES/messages.po`, by key ("col.office");
Python and templates name keys only.
"""

from __future__ import annotations

import csv
import hmac
import io
import logging
import secrets
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.support import Translations
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_babel import Babel, gettext
from werkzeug.exceptions import HTTPException

from ivr.admin import accounts
from ivr.admin.access import PUBLIC, may
from ivr.admin.accounts import User
from ivr.catalog import Catalog
from ivr.config import Settings, stored_secret
from ivr.store import CASE_STATUSES

log = logging.getLogger("ivr.admin")
bp = Blueprint("admin", __name__, url_prefix="/admin")

LANGS = ("km", "en")
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
CAMBODIA = ZoneInfo("Asia/Phnom_Penh")  # UTC+7 all year (no daylight saving)
SQL_CAMBODIA = "+7 hours"  # the same offset for SQLite's date functions
FEW = 10  # fewer responses than this: the figures are shown, marked "read with care"
ALL = "all"
CASE_KINDS = ("complaint", "ombudsman-message", "comment")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- start-up ------------------------------------------------------------------------------


def secret_key(settings: Settings) -> str:
    """IVR_SECRET_KEY, or a random key made once beside the database, so cookies survive
    restarts and every gunicorn worker signs alike."""
    if settings.secret_key:
        return settings.secret_key
    return stored_secret(Path(settings.database).parent / "secret.key")


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request itself came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


@bp.record_once
def _set_up(state: Any) -> None:
    from ivr.admin import schema

    app: Flask = state.app
    line = app.extensions["ivr"]
    if not app.secret_key:
        raise RuntimeError("the admin pages need app.secret_key (admin.secret_key(settings))")
    schema.migrate(line.store)
    bootstrap(line.store.patient_db.conn, line.settings)
    app.session_interface = AdminSessionInterface()
    app.config.update(SESSION_COOKIE_NAME="ivr_admin", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax")
    Babel(app, locale_selector=lang, default_translation_directories=str(TRANSLATIONS))


def bootstrap(conn: sqlite3.Connection, settings: Settings) -> None:
    """IVR_ADMIN_PASSWORD makes the first administrator, `admin`, while no account exists;
    once one does, it is ignored (and a warning says to unset it)."""
    if not settings.admin_password:
        return
    if accounts.any_user(conn):
        log.warning("IVR_ADMIN_PASSWORD is ignored: accounts exist (ivr users list); unset it")
        return
    try:
        accounts.add_user(conn, "admin", "admin", (), settings.admin_password, ())
    except accounts.AccountError as exc:
        if exc.key != "account.error.exists":  # another worker made it first
            raise RuntimeError(f"IVR_ADMIN_PASSWORD: {english(exc.key, **exc.values)}") from exc
        return
    accounts.audit(conn, "IVR_ADMIN_PASSWORD", "", "user.add", "admin", "role admin (bootstrap)")
    log.info("created the first administrator account, admin, from IVR_ADMIN_PASSWORD")


# --- language ---------------------------------------------------------------------------


def lang() -> str:
    chosen = session.get("lang")
    return chosen if chosen in LANGS else LANGS[0]


_english: list[Translations] = []


def english(key: str, **values: Any) -> str:
    """A message in English outside a request (the `ivr` command's errors)."""
    if not _english:
        _english.append(Translations.load(str(TRANSLATIONS), ["en"]))
    text = _english[0].gettext(key)
    return text % values if values else text


def t(key: str, **values: Any) -> str:
    """The text of `key` in the chosen language (English when the key is missing there)."""
    text = gettext(key, **values)
    return english(key, **values) if text == key else text


def name_of(names: Mapping[str, str] | None, fallback: str) -> str:
    """A catalogue name in the chosen language."""
    if not names:
        return fallback
    return names.get(lang()) or names.get("en") or next(iter(names.values()), fallback)


def month_label(month: str) -> str:
    """'2026-01' -> 'មករា\\n2026' (two lines under a chart's x axis)."""
    year, _, number = month.partition("-")
    names = t("months").split()
    return f"{names[int(number) - 1]}\n{year}" if number.isdigit() else month


# --- Cambodia's time -------------------------------------------------------------------------


def local(stamp: Any) -> datetime | None:
    """A stored UTC timestamp as a time in Cambodia."""
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(CAMBODIA)


def when(stamp: Any) -> str:
    """A stored UTC timestamp shown to the minute in Cambodia's time ('' when none)."""
    moment = local(stamp)
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def today() -> date:
    return datetime.now(CAMBODIA).date()


def day_start(day: date) -> str:
    """The UTC timestamp (as stored) at which `day` begins in Cambodia."""
    start = datetime.combine(day, time(0), CAMBODIA).astimezone(timezone.utc)
    return start.isoformat(timespec="seconds")


# --- who is signed in --------------------------------------------------------------------


def line() -> Any:
    return current_app.extensions["ivr"]


def conn() -> sqlite3.Connection:
    return line().store.patient_db.conn


def client_address() -> str:
    """The client's address: the socket's peer, unless that peer is a trusted proxy
    (IVR_TRUSTED_PROXIES), when it is what the proxy said (ProxyFix's X-Forwarded-For).
    Someone reaching gunicorn directly cannot choose their address with a header."""
    original = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR")
    peer = original or request.remote_addr or "unknown"
    if original is not None and peer in line().settings.trusted_proxies:
        return request.remote_addr or peer
    return peer


def current_user() -> User | None:
    if "user" not in g:
        token = session.get("sid")
        g.user = accounts.session_user(conn(), token, line().settings.admin_idle_minutes) \
            if isinstance(token, str) else None
    return g.user


def user() -> User:
    """The signed-in account (the guard has checked there is one)."""
    found = current_user()
    assert found is not None
    return found


def audit(action: str, target: str = "", detail: str = "") -> None:
    who = current_user()
    accounts.audit(conn(), who.name if who else "", who.role if who else "", action, target,
                   detail, client_address())


def is_admin() -> bool:
    """Is an administrator signed in? (The browser phone asks, outside /admin.)"""
    try:
        found = current_user()
    except sqlite3.Error:
        return False
    return found is not None and found.role == "admin"


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok() -> bool:
    sent = request.form.get("csrf", "").encode()
    expected = str(session.get("csrf", "")).encode()
    return bool(expected) and hmac.compare_digest(sent, expected)


def admin_on() -> bool:
    """The admin pages answer once an account exists (404 before, so a line without admin
    pages shows none)."""
    return accounts.any_user(conn())


@bp.before_request
def guard() -> Response | None:
    """404 while no account exists; else sign-in first, the role's right to the page, and a
    CSRF token on every POST."""
    if not admin_on():
        abort(404)
    if request.args.get("lang") in LANGS:
        session["lang"] = request.args["lang"]
    endpoint = (request.endpoint or "").removeprefix("admin.")
    if endpoint not in PUBLIC:
        found = current_user()
        if found is None:
            session.pop("sid", None)
            if request.method == "GET":
                return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
            abort(403, description=t("error.signed_out"))
        if not may(found.role, endpoint):
            abort(403, description=t("error.role", role=t(f"role.{found.role}")))
    if request.method == "POST" and not csrf_ok():
        log.warning("admin POST to %s refused: missing or wrong CSRF token", request.path)
        abort(400, description=t("error.csrf"))
    return None


@bp.after_request
def headers(response: Response) -> Response:
    """Admin pages hold personal data: never cached, never framed, nothing from elsewhere."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'")
    return response


@bp.errorhandler(HTTPException)
def error_page(error: HTTPException) -> tuple[str, int, dict[str, str]]:
    """Every refusal as a page in the chosen language that says why."""
    code = error.code or 500
    given = error.description
    reason = given if given and given != type(error).description else t(f"error.{code}")
    extra = dict(getattr(error, "headers", None) or {})
    return render_template("admin/error.html", code=code, reason=reason), code, extra


def deny(code: int, key: str, **values: Any) -> None:
    abort(code, description=t(key, **values))


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    other = LANGS[1] if lang() == LANGS[0] else LANGS[0]
    switch = None
    if request.endpoint and request.method == "GET":
        switch = url_for(request.endpoint, **{**request.args.to_dict(),
                                               **(request.view_args or {}), "lang": other})
    found = current_user() if request.endpoint not in (None, "admin.login") else None
    return {"t": t, "lang": lang(), "other_lang": other, "other_lang_name": t(f"lang.{other}"),
            "switch_url": switch, "csrf_token": csrf_token, "user": found,
            "may": (lambda endpoint: bool(found) and may(found.role, endpoint))}


# --- filters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The days chosen (both included, days in Cambodia), office, service, kind and status;
    `scope`, the offices the account may see (None: all), is applied to every query."""

    start: date | None = None
    end: date | None = None
    office: str = ""
    service: str = ""
    kind: str = ""
    status: str = ""
    scope: tuple[str, ...] | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str], catalog: Catalog,
                  scope: tuple[str, ...] | None = None) -> Filters:
        """Unknown values are ignored (they come from editable URLs), but an office the
        account may not see is refused (404), never quietly shown."""
        office = args.get("office", "")
        service = args.get("service", "")
        if office and scope is not None and office not in scope:
            deny(404, "error.office")
        return cls(start=_date(args.get("from")), end=_date(args.get("to")),
                   office=office if catalog.office(office) else "",
                   service=service if catalog.service(service) else "",
                   kind=args.get("kind", "") if args.get("kind") in CASE_KINDS else "",
                   status=args.get("status", "") if args.get("status") in CASE_STATUSES
                   else "", scope=scope)

    @property
    def since(self) -> str | None:
        """Inclusive lower bound on stored UTC timestamps: `start` begins in Cambodia."""
        return day_start(self.start) if self.start else None

    @property
    def until(self) -> str | None:
        """Exclusive upper bound: the day after `end` begins in Cambodia."""
        return day_start(self.end + timedelta(days=1)) if self.end else None

    @property
    def offices(self) -> tuple[str, ...] | None:
        """The offices to show: the one chosen, else the account's, else None (all)."""
        if self.office:
            return (self.office,)
        return self.scope

    def office_clause(self, column: str) -> tuple[str, list[str]]:
        """`column IN (...)` for `offices`, or nothing."""
        offices = self.offices
        if offices is None:
            return "", []
        return f"{column} IN ({', '.join('?' * len(offices))})", list(offices)

    def query(self) -> dict[str, str]:
        """The filters as URL query arguments (for CSV links and the language switch)."""
        values = {"from": self.start.isoformat() if self.start else "",
                  "to": self.end.isoformat() if self.end else "",
                  "office": self.office, "service": self.service, "kind": self.kind,
                  "status": self.status}
        return {k: v for k, v in values.items() if v}


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def context() -> tuple[Catalog, sqlite3.Connection, Filters]:
    catalog = line().catalog
    return catalog, conn(), Filters.from_args(request.args, catalog, user().scope)


# --- tables and CSV ------------------------------------------------------------------------


def text(value: Any) -> str:
    return "" if value is None else str(value)


def show_mean(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}"


def show_share(value: Any) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def show_count(value: Any) -> str:
    return "–" if value is None else f"{value:,}"


def csv_cell(value: Any) -> str:
    """A cell a spreadsheet cannot take for a formula: text that begins with = + - @, a tab
    or a carriage return gets a leading apostrophe (OWASP's advice). Numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    cell = str(value)
    return "'" + cell if cell.startswith(FORMULA_START) else cell


@dataclass
class Column:
    key: str
    label: str
    show: Callable[[Any], str] = text  # how a value is written on the page
    numeric: bool = False
    personal: bool = False  # free text a caller or staff wrote: marked in the export


@dataclass
class Table:
    """One table of a page. Its rows hold raw values: the page formats them, the CSV export
    writes them as they are (neutralised against formulas)."""

    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    note: str = ""
    total: int | None = None  # all the rows of a paged table (its CSV has them all)
    pages: dict[str, Any] = field(default_factory=dict)

    def cells(self, row: Mapping[str, Any]) -> list[tuple[Column, str, str]]:
        """(column, raw value as in the CSV, value as shown) for each column of a row."""
        return [(c, text(row.get(c.key)), c.show(row.get(c.key))) for c in self.columns]

    def groups(self) -> list[list[dict[str, Any]]]:
        """The rows in groups: a row and the split rows (women, men) under it."""
        groups: list[list[dict[str, Any]]] = []
        for row in self.rows:
            if groups and row.get("_group") not in (None, ALL):
                groups[-1].append(row)
            else:
                groups.append([row])
        return groups

    def header(self) -> list[str]:
        return [c.label + (" " + t("csv.personal") if c.personal else "") for c in self.columns]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.header())
        for row in self.rows:
            writer.writerow([csv_cell(row.get(c.key)) for c in self.columns])
        return out.getvalue()


def page_number(args: Mapping[str, str]) -> int:
    """?page=N (1 when absent); anything but a whole number from 1 is a 400 that says so."""
    value = args.get("page", "1")
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        deny(400, "error.page")
    return int(value)


def check_page(page: int | None, total: int, size: int) -> None:
    """404, naming the last page, for a page past the end (before any query asks for it)."""
    last = max(1, -(-total // size))
    if page is not None and page > last:
        deny(404, "error.no_page", page=str(page), last=str(last))


def paginate(table: Table, page: int, size: int) -> None:
    """Page `page` of a table of `table.total` rows, `size` a page: the pager's figures and
    links (404, saying which pages exist, past the last)."""
    last = max(1, -(-(table.total or 0) // size))
    check_page(page, table.total or 0, size)

    def link(number: int) -> str:
        return url_for(request.endpoint or "admin.index", **{
            **request.args.to_dict(), **(request.view_args or {}), "page": str(number)})

    table.pages = {"page": page, "last": last, "first_row": (page - 1) * size + 1,
                   "last_row": (page - 1) * size + len(table.rows),
                   "previous": link(page - 1) if page > 1 else None,
                   "next": link(page + 1) if page < last else None}


def render(template: str, **values: Any) -> str:
    return render_template(template, few=FEW, **values)
