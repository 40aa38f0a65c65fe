"""Sign-in throttling that holds: 50 wrong passwords against one account, sent at once over
gunicorn's 4 workers with a new X-Forwarded-For on every attempt while IVR_PROXY_HOPS is set,
are throttled by the counts kept in SQLite; the real person, on the browser where they signed
in before, still signs in at once; the counts survive a restart."""

from __future__ import annotations

import math
import re
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from ivr import create_app
from ivr.admin.accounts import ACCOUNT
from ivr.config import Settings
from tests.support import ROOT, TOKEN, free_port, line_env

GUESSES = 50
PASSWORD = "the real person's password"


def start(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "4", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "ivr:create_app()"],
        env={**line_env(tmp_path), "IVR_ADMIN_PASSWORD": PASSWORD, "IVR_PROXY_HOPS": "1",
             **env}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/health", timeout=5).ok:
                return server, base
        except requests.RequestException:
            time.sleep(0.2)
    server.kill()
    pytest.fail("gunicorn did not start")


def attempt(base: str, password: str, forwarded: str | None = None,
            browser: requests.Session | None = None) -> int:
    browser = browser or requests.Session()
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    form = browser.get(base + "/admin/login", headers=headers, timeout=30).text
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    return browser.post(base + "/admin/login", headers=headers, allow_redirects=False,
                        data={"csrf": token, "username": "admin", "password": password},
                        timeout=30).status_code


def spray(base: str) -> tuple[dict[int, int], float]:
    """50 wrong passwords, 8 at a time, each from a 'new address'."""
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: attempt(base, f"guess {i}",
                                                f"203.0.{i // 250}.{i % 250 + 1}"),
                              range(GUESSES)))
    return {code: codes.count(code) for code in sorted(set(codes))}, time.monotonic() - started


def test_fifty_wrong_passwords_over_four_workers_and_rotated_addresses(tmp_path, capsys):
    """gunicorn reached directly (its peer is not the trusted proxy, 127.0.0.2 here): the
    X-Forwarded-For header names nobody, and the account's count holds anyway."""
    server, base = start(tmp_path, IVR_TRUSTED_PROXIES="127.0.0.2")
    try:
        owner = requests.Session()  # the real person signed in here before
        assert attempt(base, PASSWORD, browser=owner) == 302
        codes, took = spray(base)
        checked = codes.get(401, 0)
        with capsys.disabled():
            print(f"\n{GUESSES} wrong passwords in {took:.1f} s over 4 workers: {codes} "
                  f"(401 = password checked, 429 = refused before checking)")
        assert checked + codes.get(429, 0) == GUESSES
        # the back-off (1 s, 2 s, 4 s ...) lets k more through only after 2**k - 1 seconds
        assert ACCOUNT.free <= checked <= ACCOUNT.free + min(4, int(math.log2(took + 1)))
        assert attempt(base, PASSWORD) == 429  # a stranger with the right password waits too
        assert attempt(base, PASSWORD, browser=owner) == 302  # the owner's browser does not
    finally:
        server.terminate()
        server.wait(timeout=10)
    with sqlite3.connect(tmp_path / "ivr.db") as conn:
        failed = conn.execute("SELECT address, count(*) FROM audit_log WHERE action = "
                              "'login.failed' GROUP BY 1").fetchall()
        counted = conn.execute("SELECT attempts FROM login_throttle WHERE key = "
                               "'account:admin'").fetchone()[0]
    assert failed == [("127.0.0.1", checked)]  # the address is the peer's, not the header's
    assert counted >= checked
    restarted = create_app(Settings.from_env(line_env(tmp_path)),
                           admin_password=PASSWORD).test_client()  # the counts survive
    codes_after = [sign_in(restarted, guess) for guess in ("one more guess", "and another")]
    assert codes_after[-1] == 429  # the second comes right after the first: it waits
    with sqlite3.connect(tmp_path / "ivr.db") as conn:
        assert conn.execute("SELECT attempts FROM login_throttle WHERE key = "
                            "'account:admin'").fetchone()[0] == counted + codes_after.count(401)


def sign_in(client, password: str, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    form = client.get("/admin/login", headers=headers).get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    return client.post("/admin/login", headers=headers, data={
        "csrf": token, "username": "admin", "password": password}).status_code


def test_behind_a_trusted_proxy_each_address_is_believed_and_the_account_still_holds(
        settings):
    app = create_app(settings, admin_password=PASSWORD, proxy_hops=1)  # 127.0.0.1: trusted
    client = app.test_client()
    started = time.monotonic()
    codes = [sign_in(client, f"guess {i}", f"198.51.100.{i + 1}") for i in range(GUESSES)]
    took = time.monotonic() - started
    checked = codes.count(401)
    # the back-off (1 s, 2 s, 4 s ...) lets k more through only after 2**k - 1 seconds
    assert ACCOUNT.free <= checked <= ACCOUNT.free + max(2, int(math.log2(took + 1)))
    assert codes.count(429) == GUESSES - checked
    with sqlite3.connect(settings.database) as conn:
        addresses = [a for (a,) in conn.execute(
            "SELECT address FROM audit_log WHERE action = 'login.failed'")]
    assert addresses == [f"198.51.100.{i + 1}" for i in range(checked)]
    assert TOKEN
