"""Calls the line places (issue 16): missed-call callbacks and post-visit feedback calls.

Everything a person notices goes through the carrier simulator (ivr.simulate): the missed
call is rung on the callback number, the call the line places is received as the carrier
would place it. The carrier's REST API (Twilio's Calls resource, and Somleng's, the same API
at its own address) is replaced only at its HTTP boundary (`responses`), with replies built
from Twilio's documented Calls resource JSON. The queue is huey's real SQLite storage; the
clock is a fake one where days pass.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from cryptography.fernet import Fernet

from ivr import create_app
from ivr.config import Settings
from ivr.outbound import CAMBODIA, Outbound, Refusal, response_rates
from ivr.simulate import Simulator
from ivr.store import caller_hash
from ivr.worker import Queue
from tests.outbound_support import ACCOUNT, FORMS, LINE_NUMBER, NUMBER, PUBLIC, calls_resource_reply
from tests.support import ROOT, TOKEN

SOMLENG_API = "https://api.somleng.org"
CARRIERS = ("twilio", "somleng")


class Clock:
    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def at_cambodia(self, day: int, hour: int, minute: int = 0) -> datetime:
        """Set the clock to this day of December 2026, at this time in Phnom Penh."""
        self.moment = cambodia(day, hour, minute)
        return self.moment


def cambodia(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=CAMBODIA).astimezone(timezone.utc)


class FakeCarrierApi:
    """The carrier's REST boundary: every POST to the Calls resource, and its reply."""

    def __init__(self, mock: responses.RequestsMock, carrier: str, status: int = 201):
        self.placed: list[dict[str, str]] = []
        self.sids: list[str] = []
        self.auth: list[str] = []
        self.carrier = carrier
        self.status = status
        base = SOMLENG_API if carrier == "somleng" else "https://api.twilio.com"
        mock.add_callback(responses.POST, f"{base}/2010-04-01/Accounts/{ACCOUNT}/Calls.json",
                          callback=self._reply)

    def _reply(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        self.auth.append(request.headers.get("Authorization", ""))
        if self.status != 201:  # Twilio's error document (its message names the number)
            return (self.status, {"Content-Type": "application/json"}, json.dumps({
                "code": 21215, "message": f"Account not authorized to call {form['To']}.",
                "more_info": "https://www.twilio.com/docs/errors/21215", "status": 400}))
        self.placed.append(form)
        body = calls_resource_reply(self.carrier, form)
        self.sids.append(body["sid"])
        return 201, {"Content-Type": "application/json"}, json.dumps(body)


@pytest.fixture(params=CARRIERS)
def carrier(request) -> str:
    return request.param


@pytest.fixture
def line_settings(tmp_path: Path, carrier: str) -> Settings:
    return Settings(
        auth_token=TOKEN, catalog=ROOT / "catalog.yaml", prompts=ROOT / "prompts",
        audio_dir=tmp_path / "audio", database=tmp_path / "ivr.db",
        caller_key=b"test-caller-key", twilio_account_sid=ACCOUNT, provider=carrier,
        somleng_api_url=SOMLENG_API if carrier == "somleng" else None,
        outbound_key=Fernet.generate_key().decode(), public_url=PUBLIC,
        caller_id=LINE_NUMBER)


@pytest.fixture
def api(carrier: str):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeCarrierApi(mock, carrier)


def worker_of(app, settings: Settings, clock: Clock) -> Queue:
    """The worker's queue on the fake clock; the app's status callbacks use the same clock."""
    worker = Queue(settings.resolved(), clock=clock)
    app.extensions["ivr.outbound"] = worker.outbound
    return worker


def drain(queue: Queue) -> int:
    """What a worker would do now: run every queued task that is due (huey's own storage)."""
    ran = 0
    while (task := queue.huey.dequeue()) is not None:
        if task.eta and task.eta > datetime.now(timezone.utc).replace(tzinfo=None):
            queue.huey.add_schedule(task)
            continue
        queue.huey.execute(task)
        ran += 1
    return ran


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_number_gone(folder: Path, log_text: str) -> None:
    """No form of the number in any file (database, WAL, spool, queue) or in the logs."""
    for name, data in files_of(folder).items():
        for form in FORMS:
            assert form.encode() not in data, f"{form} found in {name}"
            assert form.encode("utf-16-le") not in data, f"{form} found in {name}"
    for form in FORMS:
        assert form not in log_text


def row(app, sql: str, *args):
    return app.extensions["ivr"].store.db.execute(sql, args).fetchone()


def ring_missed_call(app, carrier: str, number: str = NUMBER):
    """A citizen rings the callback number: the carrier asks POST /voice/callback."""
    sim = Simulator(app, TOKEN, carrier=carrier, caller=number, to="+85523999111",
                    base_url=PUBLIC)
    live = sim.start(at=(sim.url("/voice/callback"), "POST", None))
    assert live.ended
    return live.transcript


# --- missed-call callback -------------------------------------------------------------------


def test_missed_call_is_rejected_busy_and_called_back_into_the_greeting(
        line_settings, api, carrier, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    app = create_app(line_settings)
    worker = Queue(line_settings.resolved())

    missed = ring_missed_call(app, carrier)
    assert missed.ended_by == "rejected"
    assert '<Reject reason="busy"' in missed.steps[0].twiml
    assert api.placed == []  # the worker places it, not the webhook

    assert drain(worker) == 1
    assert len(api.placed) == 1
    placed = api.placed[0]
    assert placed["To"] == NUMBER and placed["From"] == LINE_NUMBER
    assert placed["Url"] == f"{PUBLIC}/voice"
    assert placed["StatusCallback"].startswith(f"{PUBLIC}/voice/outbound/status?ob=")
    assert api.auth[0] == "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()

    sim = Simulator(app, TOKEN, carrier=carrier, base_url=PUBLIC)
    call = sim.receive(placed, api.sids[0], keys=[None])
    greeting = app.extensions["ivr"].book.text("greeting", "en")
    assert call.steps[0].url == f"{PUBLIC}/voice"
    assert call.steps[0].params["Direction"] == "outbound-api"
    assert greeting in call.heard()  # the normal greeting (English <Say>: no audio rendered)
    assert call.status_callback_sent

    hashed = caller_hash(b"test-caller-key", NUMBER)
    assert row(app, "SELECT origin, caller_hash, status FROM calls WHERE sid = ?",
               api.sids[0]) == ("callback", hashed, "completed")
    assert row(app, "SELECT state, disposition, number_enc FROM outbound_calls") == (
        "done", "completed", None)

    # a second missed call within the window: rejected, and no call placed
    again = ring_missed_call(app, carrier, "012 345 678")
    assert again.ended_by == "rejected"
    drain(worker)
    assert len(api.placed) == 1

    app.extensions["ivr"].store.close()
    assert_number_gone(tmp_path, caplog.text)


@pytest.mark.parametrize("carrier", ["twilio"])
def test_callback_limits(line_settings, api, carrier):
    clock = Clock(datetime(2026, 12, 2, 3, 0, tzinfo=timezone.utc))
    settings = replace(line_settings.resolved(), callbacks_per_day=2, callback_gap_minutes=10,
                       callbacks_per_hour=3)
    app = create_app(settings)
    out = Outbound(settings, app.extensions["ivr"].store, clock=clock)
    assert out.request_callback("") == Refusal("withheld number")
    assert out.request_callback("+66812345678") == Refusal("number of another country")
    first = out.request_callback(NUMBER)
    assert isinstance(first, int)
    assert isinstance(out.request_callback(NUMBER), Refusal)  # pending
    out.dispatch_due()
    out.call_ended(first, api.sids[0], "completed")
    clock.moment += timedelta(minutes=5)
    assert isinstance(out.request_callback(NUMBER), Refusal)  # within the gap
    clock.moment += timedelta(minutes=10)
    second = out.request_callback(NUMBER)
    assert isinstance(second, int)
    out.dispatch_due()
    out.call_ended(second, api.sids[1], "no-answer")  # a callback is not retried
    assert row(app, "SELECT state, disposition FROM outbound_calls WHERE id = ?", second) == (
        "done", "no-answer")
    clock.moment += timedelta(minutes=30)
    assert out.request_callback(NUMBER) == Refusal(
        "this caller's callbacks for the day are used up")
    assert isinstance(out.request_callback("+85512000002"), int)  # the line's third this hour
    assert out.request_callback("+85512000003") == Refusal(
        "the line's callbacks for the hour are used up")
    clock.moment += timedelta(days=1)
    assert isinstance(out.request_callback(NUMBER), int)
    assert isinstance(replace(settings, callback_countries=("*",)), Settings)


@pytest.mark.parametrize("carrier", ["twilio"])
def test_a_carrier_refusal_never_logs_the_number(line_settings, carrier, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    app = create_app(line_settings)
    with responses.RequestsMock() as mock:
        FakeCarrierApi(mock, carrier, status=400)
        ring_missed_call(app, carrier)
        drain(Queue(line_settings.resolved()))
    assert "error code 21215" in caplog.text
    assert row(app, "SELECT state, disposition, number_enc FROM outbound_calls") == (
        "done", "failed", None)
    app.extensions["ivr"].store.close()
    assert_number_gone(tmp_path, caplog.text)


# --- post-visit feedback calls --------------------------------------------------------------


def office_and_service(app) -> tuple[str, str]:
    catalog = app.extensions["ivr"].catalog
    office = "ou-chrov"
    service = next(s.id for s in catalog.services() if catalog.offers(office, s.id))
    return office, service


def visits_line(settings: Settings, **options: Any) -> tuple[Any, str, str, Clock, Queue]:
    """The app, an office and a service it offers, a clock on 1 December 2026 and the worker
    on that clock: how each post-visit call test begins."""
    app = create_app(settings, **options)
    office, service = office_and_service(app)
    clock = Clock(datetime(2026, 12, 1, tzinfo=timezone.utc))
    return app, office, service, clock, worker_of(app, settings, clock)


def test_a_registered_visitor_is_called_after_the_days_and_rates_that_service(
        line_settings, api, carrier, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    app, office, service, clock, worker = visits_line(line_settings)
    clock.at_cambodia(1, 11)  # Tuesday 11:00 in Phnom Penh
    visit = worker.outbound.register_visitor("012 345 678", office, service)
    assert isinstance(visit, int)

    clock.at_cambodia(4, 10, 59)  # not yet three days
    assert worker.outbound.dispatch_due() == 0 and api.placed == []
    clock.at_cambodia(4, 11)
    assert worker.outbound.dispatch_due() == 1
    assert worker.outbound.dispatch_due() == 0  # never twice
    placed = api.placed[0]
    assert placed["To"] == NUMBER
    url = urlsplit(placed["Url"])
    assert url.path == "/voice/km/visit-call"
    assert parse_qs(url.query) == {"o": [office], "s": [service]}

    sim = Simulator(app, TOKEN, carrier=carrier, base_url=PUBLIC)
    # 1: answer; quality 4, timeliness 5, asked to pay more: no (2), gender: skip (9);
    # no comment (2)
    call = sim.receive(placed, api.sids[0], keys=["1", "4", "5", "2", "9", "2"])
    book = app.extensions["ivr"].book
    assert book.text("outbound.survey.ask", "en") in call.heard()
    assert book.text("rate.thanks", "en") in call.heard()
    store = app.extensions["ivr"].store
    answers = dict(store.db.execute(
        "SELECT question, value FROM answers JOIN feedback ON feedback.id = feedback_id "
        "WHERE feedback.call_sid = ? AND office_id = ? AND service_id = ?",
        [api.sids[0], office, service]).fetchall())
    assert answers == {"quality": "4", "timeliness": "5", "unofficial-payment": "no",
                       "gender": "skipped"}
    assert row(app, "SELECT origin, caller_hash FROM calls WHERE sid = ?", api.sids[0]) == (
        "survey", caller_hash(b"test-caller-key", NUMBER))
    assert row(app, "SELECT state, disposition, number_enc FROM outbound_calls") == (
        "done", "completed", None)
    rates = response_rates(store.db.conn)
    assert rates[0]["office"] == office and rates[0]["rate"] == 1.0
    store.close()
    assert_number_gone(tmp_path, caplog.text)


def test_busy_and_unanswered_calls_are_retried_at_the_documented_times(
        line_settings, api, carrier):
    """IVR_RETRY_MINUTES 30,120,1440 after each unanswered attempt, moved to the next opening
    of the calling hours (08:00-19:00, Cambodia's time); then given up, the number deleted."""
    app, office, service, clock, worker = visits_line(line_settings)
    clock.at_cambodia(1, 20)  # registered in the evening
    visit = worker.outbound.register_visitor(NUMBER, office, service)
    due = row(app, "SELECT due_at FROM outbound_calls WHERE id = ?", visit)[0]
    assert datetime.fromisoformat(due) == clock.at_cambodia(5, 8)  # 3 days on, next opening
    sim = Simulator(app, TOKEN, carrier=carrier, base_url=PUBLIC)

    clock.at_cambodia(5, 8)
    schedule = [("busy", (5, 8, 30)), ("no-answer", (5, 10, 30)), ("failed", (6, 10, 30))]
    for attempt, (answer, (day, hour, minute)) in enumerate(schedule, start=1):
        assert worker.outbound.dispatch_due() == 1
        assert len(api.placed) == attempt
        sim.receive(api.placed[-1], api.sids[-1], answer=answer)
        due = datetime.fromisoformat(row(app, "SELECT due_at FROM outbound_calls")[0])
        assert due.astimezone(CAMBODIA).timetuple()[2:5] == (day, hour, minute), answer
        assert row(app, "SELECT state, last_status FROM outbound_calls") == ("scheduled",
                                                                              answer)
        clock.moment = due - timedelta(minutes=1)
        assert worker.outbound.dispatch_due() == 0  # not before its time
        clock.moment = due
    # the fourth attempt (the last: three retries), busy again: given up
    assert worker.outbound.dispatch_due() == 1
    sim.receive(api.placed[-1], api.sids[-1], answer="busy")
    assert len(api.placed) == 4
    assert row(app, "SELECT state, disposition, attempts, number_enc FROM outbound_calls"
               ) == ("done", "busy", 4, None)


@pytest.mark.parametrize("carrier", ["twilio"])
def test_a_retry_after_calling_hours_waits_for_the_morning(line_settings, api, carrier):
    app, office, service, clock, worker = visits_line(line_settings)
    worker.outbound.register_visitor(NUMBER, office, service,
                                     due=clock.at_cambodia(3, 17, 45))
    sim = Simulator(app, TOKEN, carrier=carrier, base_url=PUBLIC)
    assert worker.outbound.dispatch_due() == 1
    sim.receive(api.placed[-1], api.sids[-1], answer="busy")  # 17:45 + 30 = 18:15
    clock.at_cambodia(3, 18, 15)
    assert worker.outbound.dispatch_due() == 1
    sim.receive(api.placed[-1], api.sids[-1], answer="no-answer")  # + 120 = 20:15: too late
    due = datetime.fromisoformat(row(app, "SELECT due_at FROM outbound_calls")[0])
    assert due == clock.at_cambodia(4, 8)
    clock.at_cambodia(3, 23)
    assert worker.outbound.dispatch_due() == 0


def test_nine_means_never_called_again_even_if_registered_again(
        line_settings, api, carrier, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    app, office, service, clock, worker = visits_line(line_settings)
    worker.outbound.register_visitor(NUMBER, office, service, due=clock.at_cambodia(2, 9))
    later = worker.outbound.register_visitor("012345678", office, service,
                                             due=cambodia(9, 9))
    assert worker.outbound.dispatch_due() == 1
    sim = Simulator(app, TOKEN, carrier=carrier, base_url=PUBLIC)
    call = sim.receive(api.placed[0], api.sids[0], keys=["9"])
    assert call.ended_by == "hangup"
    assert app.extensions["ivr"].book.text("outbound.opted-out", "en") in call.heard()
    states = app.extensions["ivr"].store.db.execute(
        "SELECT id, state, disposition, number_enc FROM outbound_calls ORDER BY id").fetchall()
    assert [s[1:] for s in states] == [("done", "opted-out", None), ("done", "opted-out", None)]
    assert states[1][0] == later
    assert row(app, "SELECT caller_hash FROM opt_outs") == (
        caller_hash(b"test-caller-key", NUMBER),)
    assert worker.outbound.register_visitor("+855 12 345 678", office, service) == Refusal(
        "opted out")
    clock.at_cambodia(20, 9)
    assert worker.outbound.dispatch_due() == 0
    assert len(api.placed) == 1
    app.extensions["ivr"].store.close()
    assert_number_gone(tmp_path, caplog.text)


@pytest.mark.parametrize("carrier", ["twilio"])
def test_two_means_refused_this_time(line_settings, api, carrier):
    app, office, service, clock, worker = visits_line(line_settings)
    worker.outbound.register_visitor(NUMBER, office, service, due=clock.at_cambodia(2, 9))
    worker.outbound.dispatch_due()
    Simulator(app, TOKEN, carrier=carrier, base_url=PUBLIC).receive(
        api.placed[0], api.sids[0], keys=["2"])
    assert row(app, "SELECT state, disposition FROM outbound_calls") == ("done", "refused")
    assert row(app, "SELECT count(*) FROM opt_outs") == (0,)


# --- the admin page: registering visitors ----------------------------------------------------


@pytest.mark.parametrize("carrier", ["twilio"])
def test_office_staff_register_visitors_one_by_one_and_by_csv(line_settings, api, tmp_path,
                                                              caplog):
    from ivr.admin import accounts
    from tests.support import csrf_of, log_in

    caplog.set_level(logging.DEBUG)
    app = create_app(line_settings, admin_password="correct horse battery staple")
    line = app.extensions["ivr"]
    office, service = office_and_service(app)
    client = app.test_client()
    log_in(client, "correct horse battery staple")  # the first administrator, admin
    conn = line.store.patient_db.conn
    accounts.add_user(conn, "chief", "office", [office], "a long role password",
                      [o.id for o in line.catalog.offices])
    client = app.test_client()
    token = csrf_of(client.get("/admin/login").get_data(as_text=True))
    assert client.post("/admin/login", data={"csrf": token, "username": "chief",
                                             "password": "a long role password"}
                       ).status_code == 302
    page = client.get("/admin/visitors").get_data(as_text=True)
    token = csrf_of(page)
    form = {"csrf": token, "number": "012 345 678", "office": office, "service": service,
            "lang": "km"}
    assert client.post("/admin/visitors", data=form).status_code == 400  # no consent
    assert client.post("/admin/visitors", data={**form, "office": "battambang",
                                                "consent": "yes"}).status_code == 400
    done = client.post("/admin/visitors", data={**form, "consent": "yes"})
    assert done.status_code == 302
    line.store.db.execute("INSERT INTO opt_outs VALUES (?, 'x')",
                          [caller_hash(b"test-caller-key", "+85512000009")])
    upload = (f"number,office,service\n+85512000008,{office},{service}\n"
              f"012000009,{office},{service}\nnot-a-number,{office},{service}\n")
    reply = client.post("/admin/visitors", data={"csrf": token, "csv": (
        __import__("io").BytesIO(upload.encode()), "visitors.csv")},
        content_type="multipart/form-data")
    text = reply.get_data(as_text=True)
    assert reply.status_code == 200
    # the page is in Khmer (its default): "line 2: ...", "line 3: ..." refused, never a number
    assert "បន្ទាត់ទី 2៖" in text and "បន្ទាត់ទី 3៖" in text and "បន្ទាត់ទី 1៖" not in text
    assert "012000009" not in text and "not-a-number" not in text
    assert row(app, "SELECT count(*), min(office_id), max(office_id) FROM outbound_calls"
               ) == (2, office, office)
    assert '<tr data-office="' + office in client.get("/admin/visitors").get_data(as_text=True)
    audit = line.store.db.execute("SELECT * FROM audit_log WHERE action = 'visitor.add'"
                                  ).fetchall()
    assert len(audit) == 2
    for form_of in ("012 345 678", "012345678", "85512345678", "85512000008", "012000009"):
        assert form_of not in str(audit) and form_of not in caplog.text


@pytest.mark.parametrize("carrier", ["twilio"])
def test_the_scorecard_shows_post_visit_ratings_apart_from_callers_who_rang_in(
        line_settings, api, carrier):
    import csv
    import io

    from tests.support import log_in

    app, office, service, clock, worker = visits_line(
        line_settings, admin_password="correct horse battery staple")
    worker.outbound.register_visitor(NUMBER, office, service, due=clock.at_cambodia(2, 9))
    worker.outbound.dispatch_due()
    sim = Simulator(app, TOKEN, carrier=carrier, base_url=PUBLIC)
    sim.receive(api.placed[0], api.sids[0], keys=["1", "2", "2", "1", "9", "2"])  # quality 2
    # setup: a rating of 5 from a caller who rang in, stored as the rating menu stores it
    line = app.extensions["ivr"]
    line.store.save_answer("CA" + "7" * 32, "+85512000077", office, service, "km", "quality",
                           "5")
    client = app.test_client()
    log_in(client, "correct horse battery staple")
    with client.session_transaction() as session:
        session["lang"] = "en"
    reply = client.get(f"/admin/export/scorecard/offices.csv?office={office}")
    assert reply.status_code == 200
    rows = list(csv.DictReader(io.StringIO(reply.get_data(as_text=True))))
    quality = next(k for k in rows[0] if "mean" in k.lower() and "quality" in k.lower())
    by_group = {r["Group"]: (r["Responses"], r[quality]) for r in rows}
    assert by_group["Everyone"] == ("2", "3.5")
    assert by_group["Rang in"] == ("1", "5.0")
    assert by_group["Called after a visit"] == ("1", "2.0")


def test_ivr_call_shows_a_missed_call_and_its_call_back(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from ivr.cli import main as cli

    for name, value in (("IVR_DATABASE", tmp_path / "ivr.db"), ("IVR_AUDIO_DIR",
                        tmp_path / "audio"), ("IVR_CATALOG", ROOT / "catalog.yaml"),
                        ("IVR_PROMPTS", ROOT / "prompts")):
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["call", "--callback", "--keys", "2"])
    assert result.exit_code == 0, result.output
    missed, _, back = result.output.partition("--- the line calls back ---")
    assert "call ended by rejected" in missed and "POST" not in missed.replace(
        "POST http://localhost/voice/callback", "")
    assert "POST http://localhost/voice [200]" in back and "Main menu." in back
    assert "status callback http://localhost/voice/outbound/status?ob=1 completed" in back


@pytest.mark.parametrize("carrier", ["twilio"])
def test_the_outbound_webhooks_check_the_signature_and_never_fail(line_settings, api):
    from tests.support import Twilio

    app = create_app(line_settings)
    client = app.test_client()
    for path in ("/voice/callback", "/voice/outbound/status?ob=1"):
        assert client.post(path, data={"From": NUMBER, "CallSid": "CA1"}).status_code == 403
    twilio = Twilio(app, base=PUBLIC)
    for junk in ("x", "-1", "99999999999999999999999", "7"):
        reply = twilio.post(f"/voice/outbound/status?ob={junk}", {"CallStatus": "busy"})
        assert reply.status_code == 200 and reply.get_data(as_text=True).endswith(
            "<Response />")
    assert row(app, "SELECT count(*) FROM outbound_calls") == (0,)
    assert api.placed == []
