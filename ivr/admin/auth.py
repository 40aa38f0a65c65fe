"""Signing in and out, the accounts page (administrators) and the audit log's page.

A sign-in posts `username` and `password` **(contract)**. Before the password is checked the
attempt is counted against the account (or, on a browser where that account signed in
before, against that browser's device cookie) and against the client's address; see
accounts.reserve for the back-off.
"""

from __future__ import annotations

import math
import secrets
import sqlite3

from flask import abort, flash, redirect, request, session, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from ivr.admin import accounts
from ivr.admin.access import ROLES
from ivr.admin.accounts import ACCOUNT, ADDRESS, AccountError
from ivr.admin.scorecards import office_choices
from ivr.admin.web import (
    Column,
    Filters,
    Table,
    audit,
    bp,
    check_page,
    client_address,
    conn,
    current_app,
    line,
    log,
    page_number,
    paginate,
    render,
    t,
    user,
    when,
)
from ivr.catalog import Catalog

DEVICE_COOKIE = "ivr_device"
DEVICE_DAYS = 90
AUDIT_PAGE = 100


def _devices() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt="ivr-admin-device")


def device_of(name: str) -> str | None:
    """The id of this browser's device cookie, if `name` signed in on it before."""
    cookie = request.cookies.get(DEVICE_COOKIE)
    if not cookie:
        return None
    try:
        value = _devices().loads(cookie, max_age=DEVICE_DAYS * 86400)
    except BadSignature:
        return None
    if isinstance(value, dict) and value.get("u") == name and isinstance(value.get("d"), str):
        return value["d"]
    return None


def _safe_next(target: str | None) -> str:
    """Only back to an admin page of this site (no open redirect)."""
    if target and (target == "/admin" or target.startswith("/admin/")) and "\\" not in target \
            and not target.startswith("/admin/login"):
        return request.script_root + target
    return url_for("admin.index")


def _form(error: str | None, code: int = 200, headers: dict[str, str] | None = None
          ) -> tuple[str, int, dict[str, str]]:
    return (render("admin/login.html", error=error,
                   next=request.values.get("next"), username=request.form.get("username", "")),
            code, headers or {})


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int, dict[str, str]]:
    if request.method == "GET":
        return _form(None)
    name = request.form.get("username", "").strip().lower()[:80]
    password = request.form.get("password", "")
    if not name or not password:  # nothing to check: not an attempt, and not counted
        return _form(t("login.missing"), 400)
    address = client_address()
    db = conn()
    device = device_of(name)
    account_key = f"device:{device}" if device else f"account:{name}"
    address_key = f"address:{address}"
    wait = accounts.reserve(db, [(account_key, ACCOUNT), (address_key, ADDRESS)])
    if wait > 0:
        log.warning("admin sign-in for %r from %s throttled (%.0f s)", name, address, wait)
        minutes = max(1, math.ceil(wait / 60))
        return _form(t("login.too_many", minutes=minutes), 429,
                     {"Retry-After": str(math.ceil(wait))})
    found = accounts.find_user(db, name) if name else None
    good = accounts.check_password(found[1] if found else None, password)
    if not (good and found and found[0].active):
        accounts.audit(db, name, found[0].role if found else "", "login.failed",
                       detail="disabled account" if good and found else "", address=address)
        log.warning("admin sign-in failed for %r from %s", name, address)
        return _form(t("login.wrong"), 401)
    account = found[0]
    accounts.forget(db, account_key)
    accounts.release(db, address_key)
    chosen = session.get("lang")
    session.clear()  # a fresh session (and CSRF token) for the signed-in account
    session.update(sid=accounts.open_session(db, account, address),
                   csrf=secrets.token_urlsafe(32), **({"lang": chosen} if chosen else {}))
    accounts.audit(db, account.name, account.role, "login.ok", address=address)
    log.info("admin %s signed in from %s", account.name, address)
    response = redirect(_safe_next(request.form.get("next")))
    cookie = _devices().dumps({"u": account.name, "d": device or secrets.token_urlsafe(16)})
    response.set_cookie(DEVICE_COOKIE, cookie, max_age=DEVICE_DAYS * 86400, httponly=True,
                        samesite="Lax", secure=request.is_secure, path="/admin")
    return response


@bp.post("/logout")
def logout() -> Response:
    token = session.get("sid")
    if isinstance(token, str):
        audit("logout")
        accounts.end_session(conn(), token, "signed out")
    chosen = session.get("lang")
    session.clear()
    if chosen:
        session["lang"] = chosen
    return redirect(url_for("admin.login"))


@bp.get("/")
def index() -> Response:
    """Each role's first page."""
    role = user().role
    return redirect(url_for("admin.cases" if role == "ombudsman" else "admin.scorecard"))


# --- accounts (administrators) ---------------------------------------------------------


def _account_form() -> tuple[str, str, list[str], str]:
    return (request.form.get("username", ""), request.form.get("role", ""),
            request.form.getlist("office"), request.form.get("password", ""))


def users_page(error: str | None = None, code: int = 200) -> tuple[str, int]:
    catalog = line().catalog
    return render("admin/users.html", users=accounts.list_users(conn()), roles=ROLES,
                  offices=office_choices(catalog, None), error=error, page="users",
                  office_names=dict(office_choices(catalog, None)), when=when), code


@bp.get("/users")
def users() -> tuple[str, int]:
    return users_page()


@bp.post("/users")
def user_add() -> Response | tuple[str, int]:
    name, role, offices, password = _account_form()
    try:
        made = accounts.add_user(conn(), name, role, offices, password,
                                 [o.id for o in line().catalog.offices])
    except AccountError as exc:
        return users_page(t(exc.key, **exc.values), 400)
    audit("user.add", made.name, f"role {made.role}; offices {','.join(made.offices) or '-'}")
    flash(t("users.added", name=made.name))
    return redirect(url_for("admin.users"))


@bp.post("/users/<name>/disable")
def user_disable(name: str) -> Response | tuple[str, int]:
    if name == user().name:
        return users_page(t("account.error.self"), 400)
    try:
        gone = accounts.disable_user(conn(), name)
    except AccountError:
        abort(404)
    audit("user.disable", gone.name)
    flash(t("users.disabled", name=gone.name))
    return redirect(url_for("admin.users"))


@bp.post("/users/<name>/password")
def user_password(name: str) -> Response | tuple[str, int]:
    if accounts.find_user(conn(), name) is None:
        abort(404)
    try:
        changed = accounts.set_password(conn(), name, request.form.get("password", ""))
    except AccountError as exc:
        return users_page(t(exc.key, **exc.values), 400)
    audit("user.password", changed.name)
    flash(t("users.password_set", name=changed.name))
    if changed.name == user().name:  # their own sessions, this one too, have ended
        return redirect(url_for("admin.login"))
    return redirect(url_for("admin.users"))


# --- the audit log -------------------------------------------------------------------------


def audit_table(db: sqlite3.Connection, page: int | None) -> Table:
    who = request.args.get("user", "").strip().lower()
    where, args = (" WHERE user = ?", [who]) if who else ("", [])
    total = db.execute(f"SELECT count(*) FROM audit_log{where}", args).fetchone()[0]
    check_page(page, total, AUDIT_PAGE)
    limit = f" LIMIT {AUDIT_PAGE} OFFSET {(page - 1) * AUDIT_PAGE}" if page else ""
    rows = [{"at": when(at), "user": name, "role": role, "action": action, "target": target,
             "detail": detail, "address": address}
            for at, name, role, action, target, detail, address in db.execute(
                "SELECT at, user, role, action, target, detail, address FROM audit_log"
                f"{where} ORDER BY id DESC{limit}", args)]
    table = Table("log", t("audit.title"), [
        Column("at", t("audit.at")), Column("user", t("audit.user")),
        Column("role", t("audit.role")), Column("action", t("audit.action")),
        Column("target", t("audit.target")), Column("detail", t("audit.detail")),
        Column("address", t("audit.address"))], rows, total=total)
    if page:
        paginate(table, page, AUDIT_PAGE)
    return table


@bp.get("/audit", endpoint="audit")
def audit_page() -> str:
    table = audit_table(conn(), page_number(request.args))
    return render("admin/audit.html", table=table, page="audit", filters=Filters(),
                  who=request.args.get("user", ""))


def exports(catalog: Catalog, db: sqlite3.Connection, filters: Filters,
            page: str) -> dict[str, Table]:
    return {"log": audit_table(db, None)} if page == "audit" else {}

