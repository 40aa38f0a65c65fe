"""Short, bounded runs of scripts/loadtest.py (gunicorn, two workers, twenty callers, a few
seconds; the calls come through Twilio's rules, then Somleng's): no error, every answer and
recording sent is stored, no phone number in the database. Timings are reported by the
script, never asserted here."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from tests.support import ROOT

SCRIPT = ROOT / "scripts" / "loadtest.py"


def load_script():
    spec = importlib.util.spec_from_file_location("loadtest", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["loadtest"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_loadtest(*args: str) -> tuple[dict, subprocess.CompletedProcess]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--calls", "20", "--think", "0", "--workers", "2",
         "--json", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout, done.stderr[-3000:]
    return json.loads(done.stdout), done


def assert_nothing_lost(report: dict, done: subprocess.CompletedProcess) -> dict:
    """No error; every answer and recording sent is stored; no phone number anywhere."""
    line = report["runs"][0]
    assert line["error_count"] == 0, line["error_samples"]
    assert line["requests"] > 0
    kinds = set(line["latency_ms"])
    assert {"/voice", "main", "rate/q", "status"} <= kinds  # the paths were really walked
    db = report["database"]
    assert db["answers_sent"] > 0
    assert db["answers_sent"] == db["answers_stored"]
    assert db["answers_missing"] == 0 and db["answers_unexpected"] == 0
    assert db["recordings_sent"] == db["recordings_stored"]
    assert db["caller_numbers_used"] > 0 and db["raw_numbers_found"] == []
    assert report["ok"] and done.returncode == 0
    return line


def test_a_short_load_run_loses_no_answer_and_stores_no_phone_number():
    report, done = run_loadtest("--duration", "4", "--rounds", "1")
    assert report["carrier"] == "twilio"
    baseline = report["baseline"]
    assert baseline["error_count"] == 0, baseline["error_samples"]
    assert baseline["requests"] > 0
    line = assert_nothing_lost(report, done)
    # the server ran with the production settings; the generator reported its own cost
    assert "-c python:ivr.gunicorn_conf" in report["gunicorn"]
    assert line["generator_cpu_cores"] > 0 and line["generator_lag_ms"]["count"] > 0


def test_a_short_load_run_through_somleng_loses_nothing():
    """The same calls with Somleng's rules (UUID CallSids, no Digits when nothing was pressed,
    a Record action that names its recording only by URL): nothing lost, no number stored."""
    report, done = run_loadtest("--duration", "3", "--no-baseline", "--carrier", "somleng")
    assert report["carrier"] == "somleng" and "baseline" not in report
    assert_nothing_lost(report, done)
    assert report["database"]["recordings_sent"] > 0  # the complaints were recorded


def test_a_load_run_with_the_database_locked_in_the_middle_loses_nothing():
    """Another process write-locks the database for 2 s in the middle of the run: the
    answers given meanwhile wait in the spool and are all written afterwards."""
    report, done = run_loadtest("--duration", "5", "--no-baseline", "--lock", "1.5:2")
    line = assert_nothing_lost(report, done)
    assert line["lock_s"] >= 2 and line["latency_under_lock_ms"]["count"] > 0
    db = report["database"]
    assert db["records_written_from_spool"] > 0  # the lock was felt: answers waited
    assert db["spool_records_left"] == 0 and db["spool_rejected_lines"] == 0


def test_the_number_search_finds_a_number_in_any_form():
    loadtest = load_script()
    numbers = ["+855112345678", "+855198765432"]
    assert loadtest.find_numbers(["hash 3fa9c0 and nothing else"], numbers) == []
    assert loadtest.find_numbers(["INSERT ... '+855112345678'"], numbers) == ["+855112345678"]
    assert loadtest.find_numbers(['{"From": "855198765432"}'], numbers) == ["+855198765432"]
    assert loadtest.find_numbers(["local 0112345678"], numbers) == ["+855112345678"]
    assert loadtest.find_numbers(["caller 112345678."], numbers) == ["+855112345678"]
    # in database files values touch: the number with its country code is found there
    assert loadtest.find_numbers([], numbers, [b"\x05\x17a3f855198765432en"]) == [
        "+855198765432"]


def test_hex_noise_is_not_a_phone_number():
    """A caller hash or CallSid holding nine digits in a row is not a stored number."""
    loadtest = load_script()
    numbers = ["+855112345678"]
    assert loadtest.find_numbers(["'a3112345678f0c'", "CA9112345678"], numbers) == []
    assert loadtest.find_numbers([], numbers, [b"\x00a3112345678f0c\x01"]) == []


def test_webhook_urls_are_grouped_by_kind_of_node():
    kind = load_script().node_kind
    base = "http://127.0.0.1:8000"
    assert kind(base + "/voice") == "/voice"
    assert kind(base + "/voice/status") == "status"
    assert kind(base + "/voice/km/main?a=1") == "main"
    assert kind(base + "/voice/en/category/transport?p=2") == "category"
    assert kind(base + "/voice/km/service/birth-copy/fee/1") == "service"
    assert kind(base + "/voice/km/rate/office/code?s=x") == "rate/office/code"
    assert kind(base + "/voice/km/rate/q/3?o=a&s=b") == "rate/q"
    assert kind(base + "/voice/en/complaint/office/province/01?t=x") == \
        "complaint/office/province"
    assert kind(base + "/voice/km/case/123456") == "case"
