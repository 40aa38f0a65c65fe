"""Fault injection: a gunicorn worker is killed (SIGKILL) while callers are rating services.

The line must keep answering (gunicorn starts a new worker; later calls go through whole),
no request may get a 5xx, the only failures are connections the dead worker held (at most
the requests in flight when it died), and every answer that got a successful reply is in
the database: nothing acknowledged is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from ivr.simulate import HttpTransport, PostReply, Simulator, SimulatorError
from tests.support import ROOT, TOKEN, free_port, line_env, workers_of

WORKERS = 4
CALLS_BEFORE = 24  # rating calls during which a worker is killed
CALLS_AFTER = 8  # calls started once the new worker is up: every one must go through
CALLERS = 12  # calls at the same time
KILL_AFTER = 60  # requests answered before the kill
CODES = ["0100", "0200", "0300", "1200", "1700"]  # provincial units: they give licences





@pytest.fixture
def line(tmp_path: Path):
    port = free_port()
    env = line_env(tmp_path)
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(WORKERS), "-k", "gthread", "--threads", "2",
         "-b", f"127.0.0.1:{port}", "--log-level", "warning", "ivr:create_app()"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if (requests.get(base + "/health", timeout=2).ok
                        and len(workers_of(server.pid)) == WORKERS):
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start: "
                        + (tmp_path / "gunicorn.log").read_text(errors="replace")[-2000:])
        yield base, server.pid, tmp_path / "ivr.db"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        log.close()


class Tally:
    """What the callers saw, shared by their threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answered = 0  # replies received
        self.in_flight = 0
        self.statuses: dict[int, int] = {}
        self.connection_errors: list[str] = []
        self.acknowledged: set[tuple[str, str, str]] = set()  # answers with a 200 reply
        self.unsure: set[tuple[str, str, str]] = set()  # answers whose reply was lost


class TalliedTransport(HttpTransport):
    """The simulator's HTTP transport, counting what the carrier sent and got back. A new
    connection per request, as Twilio's webhooks come: a killed worker takes only the
    requests it was holding."""

    def __init__(self, tally: Tally, answers: dict[str, tuple[str, str, str]]):
        super().__init__(timeout=15)
        self.tally, self.answers = tally, answers

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> PostReply:
        tally = self.tally
        answer = None
        if "/rate/q/" in url and params.get("Digits"):  # an answer to a rating question
            answer = self.answers[url.split("/rate/q/")[1].split("?")[0]]
        with tally.lock:
            tally.in_flight += 1
        try:
            reply = super().post(url, params, {**headers, "Connection": "close"})
        except requests.RequestException as exc:
            with tally.lock:
                tally.connection_errors.append(f"{url}: {exc!r}"[:300])
                if answer:
                    tally.unsure.add(answer)
            raise
        finally:
            with tally.lock:
                tally.in_flight -= 1
        with tally.lock:
            tally.answered += 1
            tally.statuses[reply.status] = tally.statuses.get(reply.status, 0) + 1
            if reply.status == 200 and answer:
                tally.acknowledged.add(answer)
        return reply


def rate(base: str, i: int, tally: Tally) -> bool:
    """One rating call over HTTP through the carrier simulator (Twilio's rules: signed
    requests, Gathers followed, keys as a handset sends them), hung up after the thanks;
    True when it went through whole."""
    sid, number = f"CA{os.getpid():08d}{i:024d}", f"+8551{i:08d}"
    quality, timeliness, paid = str(1 + i % 5), str(5 - i % 5), "1" if i % 3 == 0 else "2"
    answers = {"1": (sid, "quality", quality), "2": (sid, "timeliness", timeliness),
               "3": (sid, "unofficial-payment", "yes" if paid == "1" else "no"),
               "4": (sid, "gender", "skipped")}
    # English, rate, I know the code, the code, 1 (the unit said back: go on), transport,
    # a licence, four answers (9: skip the gender question), no comment
    keys = ["2", "2", "1", CODES[i % 5] + "#", "1", "2", str(1 + i % 6), quality, timeliness,
            paid, "9", "2"]
    sim = Simulator(TalliedTransport(tally, answers), TOKEN, base_url=base, caller=number)
    try:
        transcript = sim.call(keys, call_sid=sid)  # then the caller hangs up
    except (requests.RequestException, SimulatorError):  # a lost connection, or not 200
        return False
    thanks = " ".join(p.text or "" for p in transcript.last.prompts)
    return (not transcript.unused and transcript.status_callback_sent
            and "reference number" in thanks)  # the thanks, with the reference


def test_a_killed_worker_loses_no_acknowledged_answer_and_the_line_goes_on(line):
    base, master, database = line
    tally = Tally()
    killed: dict[str, int] = {}

    def killer() -> None:
        deadline = time.monotonic() + 30
        while tally.answered < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.005)
        with tally.lock:  # nothing starts or ends while we look and kill
            victim = min(workers_of(master))
            killed["in_flight"] = tally.in_flight
            os.kill(victim, signal.SIGKILL)
        killed["pid"] = victim

    kill = threading.Thread(target=killer)
    kill.start()
    with ThreadPoolExecutor(CALLERS) as pool:
        before = list(pool.map(lambda i: rate(base, i, tally), range(CALLS_BEFORE)))
    kill.join(timeout=35)
    assert "pid" in killed, "the worker was never killed"

    deadline = time.monotonic() + 20  # gunicorn starts a new worker in its place
    while time.monotonic() < deadline:
        now = workers_of(master)
        if len(now) == WORKERS and killed["pid"] not in now:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no new worker: {workers_of(master)}")

    errors_during = len(tally.connection_errors)
    with ThreadPoolExecutor(CALLERS) as pool:
        after = list(pool.map(lambda i: rate(base, i, tally),
                              range(CALLS_BEFORE, CALLS_BEFORE + CALLS_AFTER)))

    assert all(after), tally.connection_errors  # the line goes on: every later call whole
    assert len(tally.connection_errors) == errors_during
    assert set(tally.statuses) == {200}, tally.statuses  # no 5xx, ever
    assert errors_during <= killed["in_flight"], (killed, tally.connection_errors)
    assert sum(before) >= CALLS_BEFORE - killed["in_flight"]  # only the dead worker's calls

    with sqlite3.connect(database) as conn:
        stored = set(conn.execute(
            "SELECT f.call_sid, a.question, a.value FROM answers a "
            "JOIN feedback f ON f.id = a.feedback_id"))
    assert tally.acknowledged, "no answer was acknowledged"
    assert tally.acknowledged <= stored  # every acknowledged answer was kept
    assert stored <= tally.acknowledged | tally.unsure  # and nothing was made up
