"""Fifty callers rating at the same moment, against gunicorn with four workers sharing one
SQLite file: every answer sent is stored exactly once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.caller import Caller
from tests.support import ROOT, HttpTwilio, free_port, line_env

CALLS = 50



@pytest.fixture
def gunicorn(tmp_path: Path):
    port = free_port()
    env = line_env(tmp_path)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "4", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "ivr:create_app()"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # a busy machine starts four workers slowly
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/health", timeout=5).ok:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail(f"gunicorn did not start: {server.stderr.read().decode()[-2000:]}")
    yield base, tmp_path / "ivr.db"
    server.terminate()
    server.wait(timeout=10)


def test_fifty_simultaneous_ratings_store_every_answer_once(gunicorn):
    base, database = gunicorn
    start = threading.Barrier(CALLS)
    codes = ["0100", "0200", "0300", "1200", "1700"]  # provincial units: they give licences

    def rate(i: int) -> tuple[str, str, str, str]:
        """One caller over HTTP, through the carrier simulator (Twilio's rules)."""
        call = Caller(HttpTwilio(base), sid=f"CA{i:032d}", number=f"+8551{i:08d}")
        call.start("2").press("2").press("1")
        start.wait(timeout=60)  # everyone answers at the same moment from here
        call.press(codes[i % 5] + "#").press("1")  # the unit, said back: 1 goes on
        call.press("2").press(str(1 + i % 6))  # transport (the unit's second), a licence
        quality, timeliness = str(1 + i % 5), str(5 - i % 5)
        call.press(quality).press(timeliness).press("1" if i % 3 == 0 else "2").press("9")
        call.press("2")  # no comment
        assert "reference number" in call.heard()
        call.hangup()  # the status callback, too, comes from 50 calls at once
        assert call.transcript.status_callback_sent
        return call.sid, quality, timeliness, "yes" if i % 3 == 0 else "no"

    with ThreadPoolExecutor(CALLS) as pool:
        sent = list(pool.map(rate, range(CALLS)))
    with sqlite3.connect(database) as conn:
        stored = conn.execute(
            "SELECT f.call_sid, a.question, a.value FROM answers a "
            "JOIN feedback f ON f.id = a.feedback_id").fetchall()
        assert conn.execute("SELECT count(*) FROM feedback").fetchone() == (CALLS,)
        assert conn.execute("SELECT count(*) FROM calls WHERE status = 'completed'"
                            ).fetchone() == (CALLS,)
    expected = sorted(
        (sid, question, value) for sid, quality, timeliness, paid in sent
        for question, value in (("quality", quality), ("timeliness", timeliness),
                                ("unofficial-payment", paid), ("gender", "skipped")))
    assert sorted(stored) == expected  # each sent answer stored, exactly once
