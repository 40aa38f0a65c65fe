"""The admin pages: scorecards, the call funnel and cases, for the people who act on the
feedback (OWSO chiefs, District Ombudsmen, NGO staff running scorecard meetings).

Khmer first, English second. Every table a page shows can be downloaded as CSV with the same
rows, because the page and the export are built by the same function.

Security, in brief:
- One shared password (IVR_ADMIN_PASSWORD), kept in memory only as a salted hash and checked
  in constant time. Without it every /admin URL answers 404.
- Failed logins are limited per client address in this process's memory: MAX_FAILURES in
  FAILURE_WINDOW seconds, then 429. Each gunicorn worker counts on its own, so with 4 workers
  a client gets at most 4 x MAX_FAILURES tries per window. Behind a proxy set IVR_PROXY_HOPS so
  the address is the client's, not the proxy's.
- A signed session cookie: HttpOnly, SameSite=Lax, Secure whenever the request came over https
  (ProxyFix passes X-Forwarded-Proto through). Sessions end after SESSION_HOURS, and at once
  when the password or the secret key changes.
- A CSRF token in every form, checked on every POST.
- Recordings are streamed through the app from the provider (basic auth); never a public link.
  Our credentials go only to the configured recording hosts: https, port 443, exact names.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
import math
import secrets
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from markupsafe import Markup
from werkzeug.security import check_password_hash, generate_password_hash

from ivr import charts
from ivr.catalog import Catalog
from ivr.config import Settings, stored_secret
from ivr.report import cases as report_cases
from ivr.store import CASE_STATUSES

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin")

LANGS = ("km", "en")
MAX_FAILURES = 5
FAILURE_WINDOW = 300  # seconds
SESSION_HOURS = 12
FEW = 10  # fewer responses than this: the figures are shown, marked "read with care"
ALL = "all"
CASE_KINDS = ("complaint", "ombudsman-message", "comment")
SERVICE_NODE = "service/"
WENT_ON = ("choice", "answer", "more")
TIMED_OUT = ("noinput", "noinput-goodbye")
SCALE_COLORS = ("#1f5fbf", "#d9480f", "#2b8a3e")
PAYMENT_COLOR = "#b42318"

TEXT: dict[str, dict[str, str]] = {
    "km": {
        "app.title": "ខ្សែទូរស័ព្ទច្រកចេញចូលតែមួយ",
        "app.subtitle": "មតិរបស់ប្រជាពលរដ្ឋ",
        "nav.scorecard": "ប័ណ្ណដាក់ពិន្ទុ",
        "nav.calls": "ការហៅចូល",
        "nav.cases": "បណ្តឹង និងសារ",
        "nav.logout": "ចាកចេញ",
        "login.title": "ចូលប្រើប្រាស់",
        "login.password": "ពាក្យសម្ងាត់",
        "login.submit": "ចូល",
        "login.wrong": "ពាក្យសម្ងាត់មិនត្រឹមត្រូវទេ។",
        "login.too_many": "អ្នកបានវាយពាក្យសម្ងាត់ខុសច្រើនដងពេក។ សូមរង់ចាំ {minutes} នាទី "
                          "រួចព្យាយាមម្តងទៀត។",
        "filter.from": "ពីថ្ងៃទី",
        "filter.to": "ដល់ថ្ងៃទី",
        "filter.office": "ការិយាល័យ",
        "filter.service": "សេវា",
        "filter.kind": "ប្រភេទ",
        "filter.status": "ស្ថានភាព",
        "filter.any_office": "គ្រប់ការិយាល័យ",
        "filter.any_service": "គ្រប់សេវា",
        "filter.any": "ទាំងអស់",
        "filter.apply": "បង្ហាញ",
        "filter.clear": "សម្អាត",
        "csv": "ទាញយកជា CSV",
        "none": "មិនមានទិន្នន័យសម្រាប់ការជ្រើសរើសនេះទេ។",
        "few": "* តិចជាង {n} ចម្លើយ៖ សូមប្រុងប្រយ័ត្នពេលបកស្រាយ។",
        "scorecard.title": "ប័ណ្ណដាក់ពិន្ទុសេវា",
        "scorecard.intro": "ពិន្ទុពី 1 (មិនពេញចិត្តខ្លាំង) ដល់ 5 (ពេញចិត្តខ្លាំង)។ "
                           "គម្លាតបង្ហាញថាចម្លើយខុសគ្នាច្រើន ឬតិច។",
        "scorecard.print": "ប័ណ្ណដាក់ពិន្ទុសម្រាប់បោះពុម្ព",
        "scorecard.silent": "គ្មានចម្លើយពី៖",
        "table.offices": "តាមការិយាល័យ",
        "table.services": "តាមសេវា",
        "table.months": "ប្រចាំខែ",
        "col.office": "ការិយាល័យ",
        "col.service": "សេវា",
        "col.month": "ខែ",
        "col.group": "ក្រុម",
        "col.responses": "ចំនួនអ្នកឆ្លើយ",
        "col.mean": "{q} (មធ្យម)",
        "col.sd": "{q} (គម្លាត)",
        "col.share": "{q} (%)",
        "question.quality": "គុណភាព",
        "question.timeliness": "ភាពទាន់ពេល",
        "question.unofficial-payment": "ត្រូវគេសុំប្រាក់លើស",
        "group.all": "ទាំងអស់",
        "group.gender=woman": "ស្ត្រី",
        "group.gender=man": "បុរស",
        "trend.title": "និន្នាការប្រចាំខែ",
        "chart.satisfaction": "កម្រិតពេញចិត្តមធ្យម (1 ដល់ 5)",
        "chart.payment": "ភាគរយអ្នកដែលត្រូវគេសុំប្រាក់លើសតម្លៃផ្លូវការ",
        "chart.responses": "ចំនួនអ្នកឆ្លើយប្រចាំខែ",
        "calls.title": "ការហៅចូល៖ អ្នកហៅទៅដល់ណា ហើយឈប់នៅណា",
        "calls.intro": "ម៉ឺនុយនីមួយៗ៖ ចំនួនការហៅដែលមកដល់ ចំនួនដែលចុចលេខបន្តទៅមុខ "
                       "សុំស្តាប់ម្តងទៀត មិនបានចុចលេខ និងចំនួនការហៅដែលបញ្ចប់នៅទីនោះ។",
        "calls.total": "ចំនួនការហៅសរុប៖ {n}",
        "table.menus": "តាមម៉ឺនុយ",
        "table.top-services": "សេវាដែលមានអ្នកសួររកច្រើនជាងគេ",
        "col.menu": "ម៉ឺនុយ",
        "col.node": "កូដ",
        "col.reached": "ការហៅមកដល់",
        "col.went_on": "បន្តទៅមុខ",
        "col.went_on_share": "% បន្ត",
        "col.repeated": "សុំស្តាប់ម្តងទៀត",
        "col.timed_out": "មិនបានចុចលេខ",
        "col.ended": "បញ្ចប់នៅទីនេះ",
        "col.ended_share": "% បញ្ចប់",
        "col.calls": "ចំនួនការហៅ",
        "node.welcome": "ការស្វាគមន៍ និងជ្រើសរើសភាសា",
        "node.main": "ម៉ឺនុយដើម",
        "node.categories": "ប្រភេទសេវា",
        "node.fee": "តម្លៃសេវា",
        "node.rate-office": "វាយតម្លៃ៖ ជ្រើសរើសការិយាល័យ",
        "node.rate-service": "វាយតម្លៃ៖ ជ្រើសរើសសេវា",
        "node.rate-question": "វាយតម្លៃ៖ សំណួរទី {n}",
        "node.rate-comment": "វាយតម្លៃ៖ មតិយោបល់",
        "node.rate-thanks": "វាយតម្លៃ៖ លេខយោង",
        "node.complaint": "បណ្តឹង៖ ប្រធានបទ",
        "node.complaint-office": "បណ្តឹង៖ ជ្រើសរើសការិយាល័យ",
        "node.complaint-record": "បណ្តឹង៖ ថតសំឡេង",
        "node.ombudsman-office": "ការិយាល័យប្រជាពលរដ្ឋ៖ ជ្រើសរើសការិយាល័យ",
        "node.ombudsman": "ការិយាល័យប្រជាពលរដ្ឋ៖ ហៅ ឬទុកសារ",
        "node.case": "លេខយោងករណី",
        "cases.title": "បណ្តឹង សារ និងមតិយោបល់",
        "table.cases": "ករណី",
        "col.reference": "លេខយោង",
        "col.received": "ថ្ងៃទទួល",
        "col.kind": "ប្រភេទ",
        "col.topic": "ប្រធានបទ",
        "col.duration": "រយៈពេល (វិនាទី)",
        "col.status": "ស្ថានភាព",
        "col.note": "កំណត់សម្គាល់",
        "col.lang": "ភាសា",
        "kind.complaint": "បណ្តឹង",
        "kind.ombudsman-message": "សារទៅការិយាល័យប្រជាពលរដ្ឋ",
        "kind.comment": "មតិយោបល់ពេលវាយតម្លៃ",
        "status.new": "ថ្មី",
        "status.reviewed": "បានពិនិត្យ",
        "status.closed": "បានបិទ",
        "case.title": "ករណីលេខ {reference}",
        "case.listen": "ស្តាប់សារ",
        "case.audio_note": "សំឡេងត្រូវបានទាញពីក្រុមហ៊ុនទូរស័ព្ទតាមរយៈកម្មវិធីនេះ "
                           "សម្រាប់តែអ្នកដែលបានចូលប្រើប្រាស់ប៉ុណ្ណោះ។",
        "case.update": "កែប្រែស្ថានភាព",
        "case.save": "រក្សាទុក",
        "case.saved": "បានរក្សាទុកហើយ។",
        "case.updated": "កែប្រែចុងក្រោយ",
        "case.back": "ត្រឡប់ទៅបញ្ជីវិញ",
        "recording.refused": "មិនអាចចាក់សំឡេងថតនេះបានទេ៖ អាសយដ្ឋានរបស់វាមិននៅលើម៉ាស៊ីន "
                             "ដែលទុកចិត្តរបស់ក្រុមហ៊ុនទូរស័ព្ទ ({hosts}) ទេ "
                             "ដូច្នេះកម្មវិធីមិនបានទាញយកវាទេ។",
        "recording.no_account": "មិនអាចចាក់សំឡេងថតនេះបានទេ៖ "
                                "មិនទាន់កំណត់លេខសម្គាល់គណនី (TWILIO_ACCOUNT_SID)។",
        "recording.no_answer": "ក្រុមហ៊ុនទូរស័ព្ទមិនបានឆ្លើយតបទេ។",
        "recording.provider_refused": "ក្រុមហ៊ុនទូរស័ព្ទមិនបានផ្តល់សំឡេងថតនេះទេ។",
        "print.title": "ប័ណ្ណដាក់ពិន្ទុ",
        "print.period": "រយៈពេល",
        "print.all_time": "គ្រប់ពេល",
        "print.printed": "បោះពុម្ពថ្ងៃទី",
        "print.hint": "ដើម្បីបោះពុម្ព សូមប្រើមុខងារបោះពុម្ពរបស់កម្មវិធីរុករក (Ctrl+P)។",
        "months": "មករា កុម្ភៈ មីនា មេសា ឧសភា មិថុនា កក្កដា សីហា កញ្ញា តុលា វិច្ឆិកា ធ្នូ",
        "lang.name": "ខ្មែរ",
    },
    "en": {
        "app.title": "One Window Service phone line",
        "app.subtitle": "What citizens say",
        "nav.scorecard": "Scorecard",
        "nav.calls": "Calls",
        "nav.cases": "Complaints and messages",
        "nav.logout": "Log out",
        "login.title": "Sign in",
        "login.password": "Password",
        "login.submit": "Sign in",
        "login.wrong": "Wrong password.",
        "login.too_many": "Too many wrong passwords. Please wait {minutes} minutes and try "
                          "again.",
        "filter.from": "From",
        "filter.to": "To",
        "filter.office": "Office",
        "filter.service": "Service",
        "filter.kind": "Kind",
        "filter.status": "Status",
        "filter.any_office": "All offices",
        "filter.any_service": "All services",
        "filter.any": "All",
        "filter.apply": "Show",
        "filter.clear": "Clear",
        "csv": "Download CSV",
        "none": "No data for this selection.",
        "few": "* Fewer than {n} responses: read with care.",
        "scorecard.title": "Service scorecard",
        "scorecard.intro": "Scores run from 1 (very dissatisfied) to 5 (very satisfied). The "
                           "spread (standard deviation) shows how much the answers differ.",
        "scorecard.print": "Printable scorecard",
        "scorecard.silent": "No responses from:",
        "table.offices": "By office",
        "table.services": "By service",
        "table.months": "Month by month",
        "col.office": "Office",
        "col.service": "Service",
        "col.month": "Month",
        "col.group": "Group",
        "col.responses": "Responses",
        "col.mean": "{q} (mean)",
        "col.sd": "{q} (spread)",
        "col.share": "{q} (%)",
        "question.quality": "Quality",
        "question.timeliness": "Timeliness",
        "question.unofficial-payment": "Asked to pay more",
        "group.all": "Everyone",
        "group.gender=woman": "Women",
        "group.gender=man": "Men",
        "trend.title": "Month by month",
        "chart.satisfaction": "Average satisfaction (1 to 5)",
        "chart.payment": "Share asked to pay more than the official fee",
        "chart.responses": "Responses per month",
        "calls.title": "Calls: where callers go, and where they stop",
        "calls.intro": "For each menu: the calls that reached it, and of those how many "
                       "pressed a key to go on, asked to hear it again, pressed nothing, and "
                       "ended there.",
        "calls.total": "Calls in this period: {n}",
        "table.menus": "By menu",
        "table.top-services": "Most requested services",
        "col.menu": "Menu",
        "col.node": "Node",
        "col.reached": "Reached",
        "col.went_on": "Went on",
        "col.went_on_share": "% went on",
        "col.repeated": "Repeated",
        "col.timed_out": "Timed out",
        "col.ended": "Ended here",
        "col.ended_share": "% ended here",
        "col.calls": "Calls",
        "node.welcome": "Greeting and language",
        "node.main": "Main menu",
        "node.categories": "Service categories",
        "node.fee": "fee",
        "node.rate-office": "Rating: choose the office",
        "node.rate-service": "Rating: choose the service",
        "node.rate-question": "Rating: question {n}",
        "node.rate-comment": "Rating: comment",
        "node.rate-thanks": "Rating: reference number",
        "node.complaint": "Complaint: topic",
        "node.complaint-office": "Complaint: choose the office",
        "node.complaint-record": "Complaint: recording",
        "node.ombudsman-office": "Ombudsman: choose the office",
        "node.ombudsman": "Ombudsman: call or message",
        "node.case": "Case reference",
        "cases.title": "Complaints, messages and comments",
        "table.cases": "Cases",
        "col.reference": "Reference",
        "col.received": "Received",
        "col.kind": "Kind",
        "col.topic": "Topic",
        "col.duration": "Length (s)",
        "col.status": "Status",
        "col.note": "Note",
        "col.lang": "Language",
        "kind.complaint": "Complaint",
        "kind.ombudsman-message": "Message for the Ombudsman",
        "kind.comment": "Rating comment",
        "status.new": "New",
        "status.reviewed": "Reviewed",
        "status.closed": "Closed",
        "case.title": "Case {reference}",
        "case.listen": "Listen",
        "case.audio_note": "The recording is fetched from the telephone provider through "
                           "this app, for signed-in staff only.",
        "case.update": "Update the status",
        "case.save": "Save",
        "case.saved": "Saved.",
        "case.updated": "Last updated",
        "case.back": "Back to the list",
        "recording.refused": "The recording cannot be played: its address is not on the "
                             "telephone provider's trusted host ({hosts}), so it was not "
                             "fetched.",
        "recording.no_account": "The recording cannot be played: set the account SID "
                                "(TWILIO_ACCOUNT_SID).",
        "recording.no_answer": "The telephone provider did not answer.",
        "recording.provider_refused": "The telephone provider refused the recording.",
        "print.title": "Scorecard",
        "print.period": "Period",
        "print.all_time": "All time",
        "print.printed": "Printed on",
        "print.hint": "To print, use your browser's Print command (Ctrl+P).",
        "months": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
        "lang.name": "English",
    },
}


# --- start-up: the secret key, the password hash, the cookie -------------------------------


def secret_key(settings: Settings) -> str | None:
    """IVR_SECRET_KEY, or a random key made once beside the database, so sessions survive
    restarts and every gunicorn worker signs alike. None while the admin pages are off."""
    if settings.secret_key:
        return settings.secret_key
    if not settings.admin_password:
        return None
    return stored_secret(Path(settings.database).parent / "secret.key")


class FailedLogins:
    """Failed logins per client address in a sliding window, in this process's memory."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW,
                 clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._times: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it may try now."""
        with self._lock:
            recent = self._recent(client)
            if len(recent) < self.limit:
                return 0.0
            return recent[-self.limit] + self.window - self.clock()

    def fail(self, client: str) -> None:
        with self._lock:
            self._times[client] = [*self._recent(client), self.clock()]
            if len(self._times) > 10_000:  # keep memory bounded under a spray of addresses
                for other in list(self._times):
                    if not self._recent(other):
                        del self._times[other]

    def forget(self, client: str) -> None:
        with self._lock:
            self._times.pop(client, None)

    def _recent(self, client: str) -> list[float]:
        cutoff = self.clock() - self.window
        return [t for t in self._times.get(client, []) if t > cutoff]


@dataclass
class AdminState:
    password_hash: str
    session_mark: str  # proves a session was opened with this password and secret key
    failures: FailedLogins


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request itself came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


@bp.record_once
def _set_up(state: Any) -> None:
    app: Flask = state.app
    settings: Settings = app.extensions["ivr"].settings
    if not settings.admin_password:
        return
    if not app.secret_key:
        raise RuntimeError("the admin pages need app.secret_key (admin.secret_key(settings))")
    password = settings.admin_password.encode()
    mark = hmac.new(str(app.secret_key).encode(), b"admin:" + password, hashlib.sha256)
    app.extensions["ivr_admin"] = AdminState(
        generate_password_hash(settings.admin_password), mark.hexdigest(), FailedLogins())
    app.session_interface = AdminSessionInterface()
    app.config.update(SESSION_COOKIE_NAME="ivr_admin", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax")


# --- every request: admin on?, language, signed in?, CSRF ------------------------------------


def admin_state() -> AdminState:
    state = current_app.extensions.get("ivr_admin")
    if state is None:
        abort(404)
    return state


def signed_in() -> bool:
    mark = session.get("admin")
    since = session.get("since", 0)
    return (isinstance(mark, str) and hmac.compare_digest(mark, admin_state().session_mark)
            and isinstance(since, (int, float)) and time.time() - since < SESSION_HOURS * 3600)


def is_admin() -> bool:
    """Is an administrator signed in? False (not 404) when the admin pages are off, so other
    pages (the browser phone) can ask."""
    if current_app.extensions.get("ivr_admin") is None:
        return False
    return signed_in()


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok() -> bool:
    sent = request.form.get("csrf", "").encode()
    expected = str(session.get("csrf", "")).encode()
    return bool(expected) and hmac.compare_digest(sent, expected)


@bp.before_request
def guard() -> Response | None:
    """404 when the admin pages are off; else sign-in first, and a CSRF token on every POST."""
    admin_state()
    if request.args.get("lang") in LANGS:
        session["lang"] = request.args["lang"]
    if request.endpoint != "admin.login" and not signed_in():
        if request.method == "GET":
            return redirect(url_for("admin.login", next=_here()))
        abort(403)
    if request.method == "POST" and not csrf_ok():
        log.warning("admin POST to %s refused: missing or wrong CSRF token", request.path)
        abort(400, description="The form has expired or was not sent by this site. Reload the "
                               "page and try again.")
    return None


@bp.after_request
def headers(response: Response) -> Response:
    """Admin pages hold personal data: never cached, never framed, nothing from elsewhere."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    return response


def _here() -> str:
    return request.full_path.rstrip("?")


def _safe_next(target: str | None) -> str:
    """Only back to an admin page of this site (no open redirect)."""
    if target and (target == "/admin" or target.startswith("/admin/")) and "\\" not in target:
        return request.script_root + target
    return url_for("admin.scorecard")


# --- language --------------------------------------------------------------------------------


def lang() -> str:
    chosen = session.get("lang")
    return chosen if chosen in LANGS else LANGS[0]


def t(key: str, **values: Any) -> str:
    """The label in the chosen language (English, then the key itself, when missing)."""
    text = TEXT[lang()].get(key) or TEXT["en"].get(key) or key
    return text.format(**values) if values else text


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


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    other = LANGS[1] if lang() == LANGS[0] else LANGS[0]
    switch = None
    if request.endpoint:
        switch = url_for(request.endpoint, **(request.view_args or {}),
                         **{**request.args.to_dict(), "lang": other})
    return {"t": t, "lang": lang(), "other_lang_name": TEXT[other]["lang.name"],
            "switch_url": switch, "csrf_token": csrf_token, "signed_in": signed_in}


# --- what the pages show ------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The date range (both days included), office, service, kind and status chosen."""

    start: date | None = None
    end: date | None = None
    office: str = ""
    service: str = ""
    kind: str = ""
    status: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str], catalog: Catalog) -> Filters:
        """Anything unknown is ignored rather than an error: these come from editable URLs."""
        office = args.get("office", "")
        service = args.get("service", "")
        return cls(start=_date(args.get("from")), end=_date(args.get("to")),
                   office=office if catalog.office(office) else "",
                   service=service if catalog.service(service) else "",
                   kind=args.get("kind", "") if args.get("kind") in CASE_KINDS else "",
                   status=args.get("status", "") if args.get("status") in CASE_STATUSES
                   else "")

    @property
    def since(self) -> str | None:
        return self.start.isoformat() if self.start else None

    @property
    def until(self) -> str | None:
        """Exclusive upper bound on stored UTC timestamps: the day after `end`."""
        return (self.end + timedelta(days=1)).isoformat() if self.end else None

    def query(self) -> dict[str, str]:
        """The filters as URL query arguments (for CSV links and the language switch)."""
        values = {"from": self.since or "", "to": self.end.isoformat() if self.end else "",
                  "office": self.office, "service": self.service, "kind": self.kind,
                  "status": self.status}
        return {k: v for k, v in values.items() if v}


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _mean(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}"


def _share(value: Any) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _count(value: Any) -> str:
    return "–" if value is None else f"{value:,}"


@dataclass
class Column:
    key: str
    label: str
    show: Callable[[Any], str] = _text  # how a value is written on the page
    numeric: bool = False


@dataclass
class Table:
    """One table of a page. Its rows hold raw values: the page formats them, the CSV export
    writes them as they are."""

    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    note: str = ""

    def cells(self, row: Mapping[str, Any]) -> list[tuple[Column, str, str]]:
        """(column, raw value as in the CSV, value as shown) for each column of a row."""
        return [(c, _text(row.get(c.key)), c.show(row.get(c.key))) for c in self.columns]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([c.label for c in self.columns])
        for row in self.rows:
            writer.writerow([_text(row.get(c.key)) for c in self.columns])
        return out.getvalue()


# --- scorecards: additive tallies from one SQL query ---------------------------------------


@dataclass
class Tally:
    """The figures of one group (an office, a service, a month; everyone or women or men),
    with the same definitions and rounding as ivr.report.Score."""

    responses: int = 0
    count: dict[str, int] = field(default_factory=dict)  # answers (scale: numeric ones)
    total: dict[str, int] = field(default_factory=dict)  # sum of values, or of "yes"
    squares: dict[str, int] = field(default_factory=dict)  # sum of squared scale values

    @classmethod
    def from_sums(cls, catalog: Catalog, sums: list[int]) -> Tally:
        """From the numbers in the order tally_cells reads them (see `sum_layout`)."""
        tally = cls(responses=sums[0])
        numbers = iter(sums[1:])
        for question in catalog.survey:
            if question.type == "scale":
                tally.count[question.id] = next(numbers)
                tally.total[question.id] = next(numbers)
                tally.squares[question.id] = next(numbers)
            elif question.type == "yes-no":
                tally.count[question.id] = next(numbers)
                tally.total[question.id] = next(numbers)
        return tally

    def mean(self, question: str) -> float | None:
        n = self.count.get(question, 0)
        return round(self.total[question] / n, 2) if n else None

    def spread(self, question: str) -> float | None:
        """Population standard deviation, as statistics.pstdev."""
        n = self.count.get(question, 0)
        if not n:
            return None
        total, squares = self.total[question], self.squares[question]
        return round(math.sqrt(Fraction(n * squares - total * total, n * n)), 2)

    def share_yes(self, question: str) -> float | None:
        n = self.count.get(question, 0)
        return round(self.total[question] / n, 3) if n else None


@dataclass
class Cell:
    """The sums for one office, service, month and answer to each choice question. Sums
    add up, so any grouping (by office, by service, by month) is a cheap addition."""

    office: str
    service: str
    month: str
    groups: list[str]  # ALL and e.g. "gender=woman"
    sums: tuple[int, ...]  # responses, then per question: count, total(, squares)


DIGITS = "(value <> '' AND value NOT GLOB '*[^0-9]*')"


def tally_cells(conn: sqlite3.Connection, catalog: Catalog, filters: Filters) -> list[Cell]:
    """Every answer in the filters, summed per office, service, month and split (e.g. gender)
    by SQLite: first one row per feedback (its answers side by side, read in primary-key
    order), then sums per cell. 100,000 answers become a few thousand rows."""
    pivot, sums, args = [], [], []
    for i, question in enumerate(catalog.survey):  # the order Tally.from_sums reads
        if question.type == "scale":
            pivot.append(f"max(CASE WHEN question = ? AND {DIGITS} "
                         f"THEN CAST(value AS INTEGER) END) AS q{i}")
            sums += [f"count(p.q{i})", f"coalesce(sum(p.q{i}), 0)",
                     f"coalesce(sum(p.q{i} * p.q{i}), 0)"]
        elif question.type == "yes-no":
            pivot.append(f"max(CASE WHEN question = ? THEN value = 'yes' END) AS q{i}")
            sums += [f"count(p.q{i})", f"coalesce(sum(p.q{i}), 0)"]
        else:
            continue
        args.append(question.id)
    splits = [q.id for q in catalog.survey if q.type == "choice"]
    for i, question in enumerate(splits):
        pivot.append(f"max(CASE WHEN question = ? THEN value END) AS c{i}")
        args.append(question)
    where, where_args = [], []
    for clause, value in (("f.created_at >= ?", filters.since),
                          ("f.created_at < ?", filters.until),
                          ("f.office_id = ?", filters.office),
                          ("f.service_id = ?", filters.service)):
        if value:
            where.append(clause)
            where_args.append(value)
    keys = ["f.office_id", "f.service_id", "substr(f.created_at, 1, 7)",
            *(f"p.c{i}" for i in range(len(splits)))]
    sql = (f"SELECT {', '.join(keys)}, count(*), {', '.join(sums)} "
           f"FROM (SELECT feedback_id, {', '.join(pivot)} FROM answers GROUP BY feedback_id) p "
           "JOIN feedback f ON f.id = p.feedback_id"
           + (f" WHERE {' AND '.join(where)}" if where else "")
           + f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}")
    cells = []
    for row in conn.execute(sql, [*args, *where_args]):
        split_values = row[3:3 + len(splits)]
        groups = [ALL] + [f"{q}={v}" for q, v in zip(splits, split_values, strict=True)
                          if v not in (None, "skipped")]
        cells.append(Cell(row[0], row[1], row[2], groups, row[3 + len(splits):]))
    return cells


def group_cells(catalog: Catalog, cells: list[Cell], key: Callable[[Cell], str],
                splits: bool = True) -> dict[str, dict[str, Tally]]:
    """Add the cells up by `key` (office, service, month), overall and per split group."""
    sums: dict[tuple[str, str], list[int]] = {}
    for cell in cells:
        for group in cell.groups if splits else [ALL]:
            acc = sums.get((key(cell), group))
            if acc is None:
                sums[(key(cell), group)] = list(cell.sums)
            else:
                for i, value in enumerate(cell.sums):
                    acc[i] += value
    groups: dict[str, dict[str, Tally]] = defaultdict(dict)
    for (name, group), numbers in sums.items():
        groups[name][group] = Tally.from_sums(catalog, numbers)
    return groups


def _group_order(catalog: Catalog) -> list[str]:
    order = [ALL]
    for question in catalog.survey:
        if question.type == "choice":
            order += [f"{question.id}={option.id}" for option in question.options]
    return order


def _group_label(catalog: Catalog, group: str) -> str:
    if f"group.{group}" in TEXT["en"]:
        return t(f"group.{group}")
    question_id, _, option_id = group.partition("=")
    question = catalog.question(question_id)
    option = next((o for o in question.options if o.id == option_id), None) if question else None
    return name_of(option.label if option else None, group)


def _question_label(question_id: str) -> str:
    return t(f"question.{question_id}") if f"question.{question_id}" in TEXT["en"] \
        else question_id


def score_columns(catalog: Catalog, first: Column) -> list[Column]:
    columns = [first, Column("group", t("col.group")),
               Column("responses", t("col.responses"), _count, True)]
    for question in catalog.survey:
        label = _question_label(question.id)
        if question.type == "scale":
            columns += [Column(f"{question.id}_mean", t("col.mean", q=label), _mean, True),
                        Column(f"{question.id}_sd", t("col.sd", q=label), _mean, True)]
        elif question.type == "yes-no":
            columns.append(Column(f"{question.id}_share", t("col.share", q=label), _share, True))
    return columns


def score_rows(catalog: Catalog, groups: Mapping[str, Mapping[str, Tally]],
               order: list[str], label: Callable[[str], str]) -> list[dict[str, Any]]:
    """One row per key and group ('all' first, then women, men...), in catalogue order."""
    rows = []
    for key in order:
        for group in _group_order(catalog):
            tally = groups.get(key, {}).get(group)
            if tally is None or not tally.responses:
                continue
            row: dict[str, Any] = {"name": label(key), "group": _group_label(catalog, group),
                                   "responses": tally.responses, "_group": group,
                                   "_few": tally.responses < FEW}
            for question in catalog.survey:
                if question.type == "scale":
                    row[f"{question.id}_mean"] = tally.mean(question.id)
                    row[f"{question.id}_sd"] = tally.spread(question.id)
                elif question.type == "yes-no":
                    row[f"{question.id}_share"] = tally.share_yes(question.id)
            rows.append(row)
    return rows


def _ordered(keys: Iterator[str] | list[str], known: list[str]) -> list[str]:
    """Catalogue order first, then ids the catalogue no longer has."""
    present = set(keys)
    return [k for k in known if k in present] + sorted(present - set(known))


def office_name(catalog: Catalog, office_id: str) -> str:
    """The short name (the district) for tables: every office is a One Window Service Office."""
    office = catalog.office(office_id)
    return name_of(office.district, office_id) if office else office_id


def service_name(catalog: Catalog, service_id: str) -> str:
    """The catalogue's name, written for speech ("a car licence"): capitalised for a table."""
    service = catalog.service(service_id)
    name = name_of(service.name, service_id) if service else service_id
    return name[:1].upper() + name[1:]


def months_between(first: str, last: str) -> list[str]:
    """Every 'YYYY-MM' from first to last, so a month without answers shows as a gap."""
    year, month = int(first[:4]), int(first[5:7])
    months = []
    while f"{year:04d}-{month:02d}" <= last and len(months) < 240:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@dataclass
class Scorecard:
    tables: dict[str, Table]
    charts: list[Markup]
    silent_offices: list[str]


def scorecard_tables(catalog: Catalog, conn: sqlite3.Connection, filters: Filters,
                     pages: tuple[str, ...] = ("offices", "services", "months")) -> Scorecard:
    """The scorecard: by office, by service, by month (with gender split), and the trend
    charts; the printable page for one office is the same without the office table."""
    cells = tally_cells(conn, catalog, filters)
    tables: dict[str, Table] = {}
    office_ids = [o.id for o in catalog.offices]
    service_ids = [s.id for s in catalog.services()]
    per = (("offices", "col.office", lambda c: c.office, office_ids, office_name),
           ("services", "col.service", lambda c: c.service, service_ids, service_name))
    for name, column, key, known, label in per:
        if name in pages:
            grouped = group_cells(catalog, cells, key)
            tables[name] = Table(
                name, t(f"table.{name}"), score_columns(catalog, Column("name", t(column))),
                score_rows(catalog, grouped, _ordered(iter(grouped), known),
                           lambda k, label=label: label(catalog, k)))
    by_month = group_cells(catalog, cells, lambda c: c.month)
    months = months_between(min(by_month), max(by_month)) if by_month else []
    tables["months"] = Table(
        "months", t("table.months"),
        score_columns(catalog, Column("name", t("col.month"),
                                      lambda k: month_label(k).replace("\n", " "))),
        score_rows(catalog, by_month, months, lambda k: k))
    answered = {c.office for c in cells}
    silent = [office_name(catalog, o.id) for o in catalog.offices
              if o.id not in answered and not filters.office]
    return Scorecard(tables, trend_charts(catalog, by_month, months), silent)


def trend_charts(catalog: Catalog, by_month: Mapping[str, Mapping[str, Tally]],
                 months: list[str]) -> list[Markup]:
    """Month by month: satisfaction (each scale question), unofficial payments, responses."""
    if not months:
        return []
    labels = [month_label(m) for m in months]
    everyone = [by_month.get(m, {}).get(ALL) for m in months]
    scale = [q.id for q in catalog.survey if q.type == "scale"]
    yes_no = [q.id for q in catalog.survey if q.type == "yes-no"]
    drawn = [charts.line_chart(
        labels, [charts.Series(_question_label(q), [x.mean(q) if x else None for x in everyone],
                               SCALE_COLORS[i % len(SCALE_COLORS)])
                 for i, q in enumerate(scale)],
        low=1, high=5, ticks=[1, 2, 3, 4, 5], title=t("chart.satisfaction"))]
    for question in yes_no:
        shares = [x.share_yes(question) if x else None for x in everyone]
        values = [round(v * 100, 1) if v is not None else None for v in shares]
        high = 50.0 if max((v for v in values if v is not None), default=0) <= 50 else 100.0
        drawn.append(charts.line_chart(
            labels, [charts.Series(_question_label(question), values, PAYMENT_COLOR)],
            low=0, high=high, ticks=[high * i / 5 for i in range(6)],
            title=t("chart.payment"), fmt=lambda v: f"{v:.0f}%"))
    drawn.append(charts.bar_chart(labels, [x.responses if x else 0 for x in everyone],
                                  title=t("chart.responses")))
    return drawn


# --- the call funnel ----------------------------------------------------------------------


def node_label(catalog: Catalog, node: str) -> str:
    """A menu's name for people: 'category/commerce' -> the category's name, and so on."""
    head, _, rest = node.partition("/")
    if node in ("welcome", "main", "categories"):
        return t(f"node.{node}")
    if head == "category":
        category = catalog.category(rest)
        return name_of(category.name, node) if category else node
    if head == "service":
        service_id, _, fee = rest.partition("/fee")
        name = service_name(catalog, service_id)
        return f"{name} – {t('node.fee')}" if fee else name
    if head == "rate":
        if rest.startswith("office"):
            return t("node.rate-office")
        if rest.startswith("categor"):
            return t("node.rate-service")
        if rest.startswith("q/"):
            return t("node.rate-question", n=rest.removeprefix("q/"))
        if rest in ("comment", "record", "recorded"):
            return t("node.rate-comment")
        if rest == "thanks":
            return t("node.rate-thanks")
    if head == "complaint":
        if rest == "":
            return t("node.complaint")
        return t("node.complaint-office" if rest.startswith("office") else "node.complaint-record")
    if head == "ombudsman":
        return t("node.ombudsman-office" if rest.startswith("office") else "node.ombudsman")
    if head == "case":
        return t("node.case")
    return node


def _where(filters: Filters, column: str) -> tuple[str, list[str]]:
    """The date range as a WHERE clause on a stored UTC timestamp column."""
    clauses, args = [], []
    for clause, value in ((f"{column} >= ?", filters.since), (f"{column} < ?", filters.until)):
        if value:
            clauses.append(clause)
            args.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def call_tables(catalog: Catalog, conn: sqlite3.Connection, filters: Filters) -> dict[str, Table]:
    """Of the calls that reached each menu: how many went on (a key that chose, answered or
    paged), repeated it (0), timed out (silence), and ended there (the call's last logged
    step, whoever hung up). A caller who hangs up while a menu is still playing has sent no
    step from it, so that call ends at the menu before."""
    where, args = _where(filters, "at")
    went_on, timed_out = ", ".join("?" * len(WENT_ON)), ", ".join("?" * len(TIMED_OUT))
    rows = conn.execute(
        "SELECT node, count(*), sum(went_on), sum(repeated), sum(timed_out) FROM ("
        f"SELECT call_sid, node, max(event IN ({went_on})) AS went_on, "
        "max(event = 'repeat') AS repeated, "
        f"max(event IN ({timed_out})) AS timed_out FROM events{where} GROUP BY call_sid, node"
        ") GROUP BY node ORDER BY 2 DESC, node", [*WENT_ON, *TIMED_OUT, *args]).fetchall()
    calls_where, calls_args = _where(filters, "started_at")
    ended = dict(conn.execute(  # the line keeps each call's last node: no need to search
        f"SELECT last_node, count(*) FROM calls{calls_where} GROUP BY last_node",
        calls_args).fetchall())
    menus = [{"menu": node_label(catalog, node), "node": node, "reached": reached,
              "went_on": went, "went_on_share": round(went / reached, 3),
              "repeated": repeated, "timed_out": timed, "ended": ended.get(node, 0),
              "ended_share": round(ended.get(node, 0) / reached, 3)}
             for node, reached, went, repeated, timed in rows]
    service_rows = conn.execute(
        "SELECT CASE WHEN instr(rest, '/') > 0 THEN substr(rest, 1, instr(rest, '/') - 1) "
        "ELSE rest END AS service, count(DISTINCT call_sid) FROM (SELECT call_sid, "
        f"substr(node, {len(SERVICE_NODE) + 1}) AS rest FROM events{where}"
        f"{' AND' if where else ' WHERE'} node GLOB ?) GROUP BY service ORDER BY 2 DESC, 1",
        [*args, SERVICE_NODE + "*"]).fetchall()
    services = [{"service": service_name(catalog, service), "calls": calls}
                for service, calls in service_rows]
    return {
        "menus": Table("menus", t("table.menus"), [
            Column("menu", t("col.menu")), Column("node", t("col.node")),
            Column("reached", t("col.reached"), _count, True),
            Column("went_on", t("col.went_on"), _count, True),
            Column("went_on_share", t("col.went_on_share"), _share, True),
            Column("repeated", t("col.repeated"), _count, True),
            Column("timed_out", t("col.timed_out"), _count, True),
            Column("ended", t("col.ended"), _count, True),
            Column("ended_share", t("col.ended_share"), _share, True)], menus),
        "top-services": Table("top-services", t("table.top-services"), [
            Column("service", t("col.service")),
            Column("calls", t("col.calls"), _count, True)], services),
    }


def total_calls(conn: sqlite3.Connection, filters: Filters) -> int:
    where, args = _where(filters, "started_at")
    return conn.execute(f"SELECT count(*) FROM calls{where}", args).fetchone()[0]


# --- cases ---------------------------------------------------------------------------------


def case_rows(catalog: Catalog, conn: sqlite3.Connection, filters: Filters) -> list[dict]:
    rows = report_cases(conn, office=filters.office or None, status=filters.status or None,
                        kind=filters.kind or None)
    return [row for row in rows
            if (not filters.since or row["created_at"] >= filters.since)
            and (not filters.until or row["created_at"] < filters.until)
            and (not filters.service or row["service"] == filters.service)]


def _when(value: Any) -> str:
    """A stored UTC timestamp, shown to the minute."""
    return str(value)[:16].replace("T", " ") if value else ""


def case_tables(catalog: Catalog, conn: sqlite3.Connection, filters: Filters) -> dict[str, Table]:
    rows = []
    for row in case_rows(catalog, conn, filters):
        topic = catalog.topic(row["topic"] or "")
        rows.append({
            "reference": row["reference"], "received": row["created_at"],
            "kind": row["kind"], "topic": name_of(topic.name, row["topic"]) if topic
            else row["topic"] or "", "office": office_name(catalog, row["office"] or ""),
            "service": service_name(catalog, row["service"] or "") if row["service"] else "",
            "duration_s": row["duration_s"], "status": row["status"], "note": row["note"] or "",
            "_href": url_for("admin.case", reference=row["reference"])})
    return {"cases": Table("cases", t("table.cases"), [
        Column("reference", t("col.reference")), Column("received", t("col.received"), _when),
        Column("kind", t("col.kind"), lambda v: t(f"kind.{v}")),
        Column("topic", t("col.topic")), Column("office", t("col.office")),
        Column("service", t("col.service")),
        Column("duration_s", t("col.duration"), _count, True),
        Column("status", t("col.status"), lambda v: t(f"status.{v}")),
        Column("note", t("col.note"))], rows)}


def find_case(conn: sqlite3.Connection, reference: str) -> dict[str, Any] | None:
    if not (reference.isdigit() and len(reference) == 6):
        return None
    cursor = conn.execute("SELECT * FROM recordings WHERE reference = ?", [reference])
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def recording_refusal(url: str, hosts: Iterable[str]) -> str | None:
    """Why our credentials must not be sent to `url`, or None when it is a plain https URL on
    one of `hosts` (exact names, no suffix match). The reason never repeats a user name.

    `https://attacker\\@api.twilio.com/x` is refused: urlsplit finds the host after the '@',
    but requests takes the backslash as the end of the host, connects to `attacker` and would
    send the basic-auth credentials there."""
    if not url:
        return "no recording URL was stored"
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        return "the URL has spaces, control characters or non-ASCII letters"
    if "\\" in url:
        return "the URL has a backslash"
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "the URL is not https"
    if "@" in parts.netloc:
        return "the URL has a user name before its host"
    try:
        port = parts.port
    except ValueError:
        return "the URL has an invalid port"
    if port not in (None, 443):
        return f"the URL uses port {port}, not 443"
    host = parts.hostname or ""
    trusted = {name.lower() for name in hosts}
    if host not in trusted:
        return f"host {host!r} is not a trusted recording host ({', '.join(sorted(trusted))})"
    if parts.query or parts.fragment:
        return "the URL has a query or a fragment"
    return None


def trusted_recording_url(url: str, hosts: Iterable[str]) -> str | None:
    """`url` when our credentials may be sent to it (see recording_refusal), else None."""
    return url if recording_refusal(url, hosts) is None else None


def provider_url(recording_url: str, fmt: str, hosts: Iterable[str]) -> str | None:
    """The media URL of a recording (`<url>.mp3` or `<url>.wav`: Twilio and Somleng both serve
    either), only on a trusted recording host: our credentials must never be sent anywhere
    else, whatever the database holds."""
    base = trusted_recording_url(recording_url, hosts)
    if base is None:
        return None
    for extension in (".mp3", ".wav"):
        base = base.removesuffix(extension)
    return f"{base}.{fmt}"


# --- views ------------------------------------------------------------------------------------


def _line() -> Any:
    return current_app.extensions["ivr"]


def _context() -> tuple[Catalog, sqlite3.Connection, Filters]:
    line = _line()
    catalog = line.catalog
    return catalog, line.store.db.conn, Filters.from_args(request.args, catalog)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int, dict[str, str]]:
    state = admin_state()
    if request.method == "GET":
        return render_template("admin/login.html", error=None, next=request.args.get("next"))
    client = request.remote_addr or "unknown"
    wait = state.failures.wait(client)
    if wait > 0:
        minutes = max(1, math.ceil(wait / 60))
        return (render_template("admin/login.html", error=t("login.too_many", minutes=minutes),
                                next=request.form.get("next")),
                429, {"Retry-After": str(math.ceil(wait))})
    if not check_password_hash(state.password_hash, request.form.get("password", "")):
        state.failures.fail(client)
        log.warning("admin login failed from %s", client)
        return render_template("admin/login.html", error=t("login.wrong"),
                               next=request.form.get("next")), 401, {}
    state.failures.forget(client)
    chosen = session.get("lang")
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    session.update(admin=state.session_mark, since=time.time(),
                   csrf=secrets.token_urlsafe(32), **({"lang": chosen} if chosen else {}))
    log.info("admin signed in from %s", client)
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> Response:
    chosen = session.get("lang")
    session.clear()
    if chosen:
        session["lang"] = chosen
    return redirect(url_for("admin.login"))


@bp.get("/")
def index() -> Response:
    return redirect(url_for("admin.scorecard"))


@bp.get("/scorecard")
def scorecard() -> str:
    catalog, conn, filters = _context()
    card = scorecard_tables(catalog, conn, filters)
    return render_template("admin/scorecard.html", card=card, filters=filters,
                           catalog=catalog, page="scorecard", few=FEW,
                           offices=_choices(catalog), services=_services(catalog))


@bp.get("/offices/<office_id>/print")
def print_office(office_id: str) -> str:
    catalog, conn, filters = _context()
    office = catalog.office(office_id)
    if office is None:
        abort(404)
    filters = Filters(filters.start, filters.end, office=office.id)
    card = scorecard_tables(catalog, conn, filters, pages=("services",))
    return render_template("admin/print.html", card=card, filters=filters,
                           office=name_of(office.name, office.id), few=FEW,
                           printed=datetime.now(timezone.utc).date().isoformat())


@bp.get("/calls")
def calls() -> str:
    catalog, conn, filters = _context()
    return render_template("admin/calls.html", tables=call_tables(catalog, conn, filters),
                           total=total_calls(conn, filters), filters=filters, page="calls")


@bp.get("/cases")
def cases() -> str:
    catalog, conn, filters = _context()
    return render_template("admin/cases.html", tables=case_tables(catalog, conn, filters),
                           filters=filters, page="cases", offices=_choices(catalog),
                           kinds=CASE_KINDS, statuses=CASE_STATUSES)


@bp.get("/cases/<reference>")
def case(reference: str) -> str:
    catalog, conn, _ = _context()
    found = find_case(conn, reference)
    if found is None:
        abort(404)
    topic = catalog.topic(found["topic"] or "")
    names = {"office": office_name(catalog, found["office_id"] or ""),
             "service": service_name(catalog, found["service_id"]) if found["service_id"]
             else "", "topic": name_of(topic.name, "") if topic else found["topic"] or ""}
    return render_template("admin/case.html", case=found, names=names, statuses=CASE_STATUSES,
                           when=_when)


@bp.post("/cases/<reference>/status")
def case_status(reference: str) -> Response:
    status = request.form.get("status", "")
    note = request.form.get("note", "").strip()[:2000]
    if status not in CASE_STATUSES:
        abort(400, description="Unknown status.")
    if not _line().store.set_case_status(reference, status, note):
        abort(404)
    log.info("case %s marked %s", reference, status)
    flash(t("case.saved"))
    return redirect(url_for("admin.case", reference=reference))


@bp.get("/cases/<reference>/recording")
def recording(reference: str) -> Response:
    """The recording, fetched from the provider with our credentials and passed through:
    the provider's URL never reaches the browser."""
    line = _line()
    found = find_case(line.store.db.conn, reference)
    if found is None:
        abort(404)
    fmt = "wav" if request.args.get("format") == "wav" else "mp3"
    hosts = line.settings.recording_hosts
    recorded = found["recording_url"] or ""
    url = provider_url(recorded, fmt, hosts)
    if url is None:  # nothing is requested: our credentials go nowhere
        log.error("recording of case %s not fetched (provider %s): %s", reference,
                  line.settings.provider, recording_refusal(recorded, hosts))
        abort(503, description=t("recording.refused", hosts=", ".join(hosts)))
    account = line.settings.twilio_account_sid
    if not account:
        log.error("recording of case %s not fetched: TWILIO_ACCOUNT_SID is not set", reference)
        abort(503, description=t("recording.no_account"))
    try:
        upstream = requests.get(url, auth=(account, line.settings.auth_token), stream=True,
                                timeout=(5, 30))
    except requests.RequestException as exc:
        log.error("could not fetch the recording of case %s: %s", reference, exc)
        abort(502, description=t("recording.no_answer"))
    if upstream.status_code != 200:
        upstream.close()
        log.error("the provider answered %s for the recording of case %s",
                  upstream.status_code, reference)
        abort(502, description=t("recording.provider_refused"))

    def body() -> Iterator[bytes]:
        try:
            yield from upstream.iter_content(64 * 1024)
        finally:
            upstream.close()

    headers = {"Cache-Control": "private, no-store",
               "Content-Disposition": f'inline; filename="case-{reference}.{fmt}"'}
    if upstream.headers.get("Content-Length", "").isdigit():
        headers["Content-Length"] = upstream.headers["Content-Length"]
    return Response(body(), mimetype="audio/mpeg" if fmt == "mp3" else "audio/wav",
                    headers=headers)


EXPORTS: dict[str, Callable[[Catalog, sqlite3.Connection, Filters], dict[str, Table]]] = {
    "scorecard": lambda catalog, conn, filters: scorecard_tables(catalog, conn, filters).tables,
    "office": lambda catalog, conn, filters: scorecard_tables(
        catalog, conn, filters, pages=("services",)).tables if filters.office else {},
    "calls": call_tables,
    "cases": case_tables,
}


@bp.get("/export/<page>/<name>.csv")
def export(page: str, name: str) -> Response:
    """A table of a page as CSV: the same function built the page, so the rows are the same."""
    catalog, conn, filters = _context()
    build = EXPORTS.get(page)
    table = build(catalog, conn, filters).get(name) if build else None
    if table is None:
        abort(404)
    filename = f"{page}-{name}-{datetime.now(timezone.utc):%Y%m%d}.csv"
    return Response("\ufeff" + table.to_csv(), mimetype="text/csv",  # BOM: Excel reads Khmer
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _choices(catalog: Catalog) -> list[tuple[str, str]]:
    return [(o.id, f"{office_name(catalog, o.id)} ({name_of(o.province.name, '')})")
            for o in catalog.offices]


def _services(catalog: Catalog) -> list[tuple[str, str]]:
    return [(s.id, service_name(catalog, s.id)) for s in catalog.services()]
