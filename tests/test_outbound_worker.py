"""`ivr worker` as a real process, killed (-9) and started again: a scheduled call is placed
once, neither lost nor repeated. The carrier's REST API is a local HTTP server answering as
Twilio's Calls resource does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from cryptography.fernet import Fernet

from ivr.config import Settings
from ivr.worker import Queue
from tests.outbound_support import ACCOUNT, FORMS, NUMBER, calls_resource_reply
from tests.support import ROOT, TOKEN

CALLER_KEY = "worker-test-caller-key"


class CarrierServer:
    """POST /2010-04-01/Accounts/<sid>/Calls.json on 127.0.0.1, as the carrier answers it."""

    def __init__(self) -> None:
        self.placed: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                if self.path != f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json":
                    self.send_response(404)
                    self.end_headers()
                    return
                outer.placed.append(form)
                data = json.dumps(calls_resource_reply("twilio", form)).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def test_the_worker_survives_kill_9_without_losing_or_repeating_a_call(tmp_path: Path):
    carrier = CarrierServer()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))},
        "PYTHONPATH": str(ROOT), "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": ACCOUNT,
        "IVR_OUTBOUND_KEY": Fernet.generate_key().decode(),
        "IVR_PUBLIC_URL": "https://ivr.example.org", "IVR_CALLER_ID": "+85523999000",
        "IVR_DATABASE": str(tmp_path / "ivr.db"), "IVR_CALLER_KEY": CALLER_KEY,
        "IVR_CATALOG": str(ROOT / "catalog.yaml"), "IVR_PROMPTS": str(ROOT / "prompts"),
        "IVR_AUDIO_DIR": str(tmp_path / "audio"), "IVR_TWILIO_API_URL": carrier.url,
        "IVR_CALLING_HOURS": "00:00-24:00",
    }
    settings = Settings.from_env(env).resolved()
    queue = Queue(settings)
    due = datetime.now(timezone.utc) + timedelta(seconds=3)
    visit = queue.outbound.register_visitor(NUMBER, "ou-chrov", "rental-rooms", due=due)
    assert isinstance(visit, int)
    logs = tmp_path / "worker.log"
    workers: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        with logs.open("ab") as log:
            process = subprocess.Popen([sys.executable, "-c", "from ivr.cli import main; main()",
                                        "worker"], env=env, cwd=tmp_path, stdout=log,
                                       stderr=subprocess.STDOUT)
        workers.append(process)
        return process

    def state() -> tuple:
        return queue.outbound.store.db.execute(
            "SELECT state, attempts, call_sid IS NOT NULL FROM outbound_calls WHERE id = ?",
            [visit]).fetchone()

    try:
        first = start()  # takes the task into huey's schedule, then dies before it is due
        time.sleep(1.0)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert carrier.placed == []
        second = start()
        assert wait_until(lambda: len(carrier.placed) == 1, 20), logs.read_text()
        assert wait_until(lambda: state()[0] == "placed", 5)
        second.send_signal(signal.SIGKILL)  # right after placing it
        second.wait(10)
        third = start()
        time.sleep(2.0)  # its start-up sweep has run
        assert third.poll() is None, logs.read_text()
        third.send_signal(signal.SIGINT)
        third.wait(15)
        assert len(carrier.placed) == 1
        assert carrier.placed[0]["To"] == NUMBER
        assert state() == ("placed", 1, 1)
        text = logs.read_text()
        assert "placing outbound calls" in text
        for form in FORMS:
            assert form not in text
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        carrier.close()


def test_the_worker_refuses_to_start_without_its_settings(tmp_path: Path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))},
           "PYTHONPATH": str(ROOT), "TWILIO_AUTH_TOKEN": TOKEN,
           "IVR_DATABASE": str(tmp_path / "ivr.db"), "IVR_CALLER_KEY": CALLER_KEY}
    done = subprocess.run([sys.executable, "-c", "from ivr.cli import main; main()", "worker"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "IVR_OUTBOUND_KEY, IVR_PUBLIC_URL, TWILIO_ACCOUNT_SID not set" in done.stderr
