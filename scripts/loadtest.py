#!/usr/bin/env python3
"""Load test for the phone line: many simultaneous simulated calls against gunicorn.

It starts gunicorn (or targets --url) with several workers on one temporary SQLite file and
keeps N calls going for a fixed time through the browse, rating and complaint paths (a call
that ends is followed at once by a new one on the same "line"). Each call is the carrier
model the tests use, ivr.simulate.CallEngine, with the profile of --carrier (twilio or
somleng): it signs every request, runs the TwiML of every reply (finishOnKey,
actionOnEmptyResult, inter-digit timeouts, Redirects, Record actions and recording callbacks,
the status callback at the end) and asks for keys at each Gather; this script only sends its
requests, times them and presses the call's planned keys, after a think time. Waits the
carrier would make (Somleng's 1 s before a Redirect) pass on the engine's simulated clock,
not in real time. The client is asynchronous (aiohttp, one connection pool, uvloop when
installed) so the generator is not the bottleneck.

In the same run it measures a bare Flask "hello" app (scripts/hello_app.py) under the same
gunicorn settings, with the same client and concurrency, and reports the line's throughput
as a share of that baseline. The two take turns in --rounds slices, so that whatever else
the machine does weighs on both alike.

Afterwards it reads the database: every answer that got a successful reply must be stored,
exactly as sent, so must every recording reported with a successful reply (by the Record
action or the recording status callback), and no caller's phone number may appear anywhere
in the database files (iterdump, the raw file and its WAL) or in the server log.

    python scripts/loadtest.py --calls 64 --think 0 --duration 30                  # saturation
    python scripts/loadtest.py --calls 500 --think 1 --duration 60 --no-baseline   # capacity
    python scripts/loadtest.py --find-capacity 200,300,400,500 --think 1 --duration 60 \
        --no-baseline            # the largest count whose webhook p99 stays under 100 ms
    python scripts/loadtest.py --calls 20 --duration 5 --workers 2 --json          # quick check
    python scripts/loadtest.py --calls 200 --think 1 --duration 60 --no-baseline \
        --lock 20:20    # the database write-locked by another process from 20 s to 40 s

With --lock START:SECONDS another connection holds an exclusive write lock on the database
(BEGIN EXCLUSIVE) for SECONDS, START seconds into the run: callers go on, their answers wait
in the spool and are written after it. The report then also has the webhook latencies of
requests sent during the lock and in the 10 s after it (the replay), and before the check
the script waits for the spool to be written.

gunicorn defaults: 4 workers, gthread, 2 threads each, keep-alive 75 s, backlog 2048.
All traffic goes to 127.0.0.1 (or the --url given). Exit status 0 when there were no errors,
every answer sent was stored and no phone number was found; 1 otherwise. Timings are
reported, never judged in the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import re
import resource
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import aiohttp
import yarl

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from ivr import tree  # noqa: E402
from ivr.catalog import Catalog, load_catalog  # noqa: E402
from ivr.simulate import (  # noqa: E402
    CARRIERS,
    HANGUP,
    CallEngine,
    GatherInfo,
    Reply,
    Request,
    Simulator,
    SimulatorError,
)

TOKEN = "loadtest-auth-token-0123456789"
CALLER_KEY = "loadtest-caller-key"
TWILIO_TIMEOUT = 15.0  # Twilio gives up on a webhook after 15 s
MAX_STEPS = 40  # documents per call: a loop in the flow cannot run away
FORM = "application/x-www-form-urlencoded"
DRAIN_SECONDS = 20.0  # after the deadline, how long in-flight requests may take
KINDS = ("browse", "rating", "complaint")
P99_LIMIT_MS = 100.0


# --- gunicorn ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerOptions:
    workers: int = 4
    worker_class: str = "gthread"
    threads: int = 2
    backlog: int = 2048
    keepalive: int = 75

    def args(self) -> list[str]:
        args = ["-c", "python:ivr.gunicorn_conf",  # the production settings, then ours
                "-w", str(self.workers), "-k", self.worker_class, "--backlog", str(self.backlog),
                "--keep-alive", str(self.keepalive)]
        if self.worker_class == "gthread":
            args += ["--threads", str(self.threads)]
        return args


class Server:
    """gunicorn on 127.0.0.1 and a free port; its log goes to a file (searched afterwards)."""

    def __init__(self, app: str, options: ServerOptions, env: dict[str, str], log_path: Path,
                 pythonpath: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [sys.executable, "-m", "gunicorn", *options.args(), "-b",
                   f"127.0.0.1:{self.port}", "--log-level", "warning"]
        if pythonpath:
            command += ["--pythonpath", pythonpath]
        self.command = [*command, app]
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.command, env={**os.environ, **env}, cwd=ROOT,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start: {' '.join(self.command)}\n"
                           + self.log_path.read_text(errors="replace")[-2000:])

    def pids(self) -> list[int]:
        """The master and its workers (children of the master)."""
        pid = self.process.pid
        found = [pid]
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                found += [int(c) for c in children.read_text().split()]
            except OSError:
                pass
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU of the master and its current workers."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                pass
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


# --- calls ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)  # the same URLs come back call after call
def node_kind(url: str) -> str:
    """Group webhook URLs by the kind of node: /voice, main, category, rate/q, status, ...
    (a node's name in the table without its varying parts)."""
    path = urlsplit(url).path.rstrip("/")
    if path in ("", "/voice"):
        return "/voice"
    if path == "/voice/status":
        return "status"
    if path == "/voice/recording":
        return "recording"
    return tree.kind("/".join(path.split("/")[3:]))  # ['', 'voice', lang, node...]


@dataclass
class Plan:
    """One scripted call: the Digits it posts, in order, and the answers it gives."""

    kind: str
    digits: list[str]
    answers: dict[int, tuple[str, str]] = field(default_factory=dict)  # q number -> (id, value)


def plan_call(kind: str, catalog: Catalog, rng: random.Random) -> Plan:
    lang = rng.choice(["1", "2"])  # Khmer or English at the greeting
    category_no = rng.randrange(min(8, len(catalog.categories)))
    category = catalog.categories[category_no]
    service_no = rng.randrange(min(8, len(category.services)))
    office = rng.choice(catalog.offices)
    if kind == "browse":
        return Plan(kind, [lang, "1", str(category_no + 1), str(service_no + 1), "1", "#"])
    if kind == "complaint":
        topic = rng.randrange(min(8, len(catalog.topics)))
        return Plan(kind, [lang, "4", str(topic + 1), "1", office.code, "1"])
    # the office said back (1 goes on); then only the services it gives are listed
    given = catalog.categories_at(office.id)
    category_no = rng.randrange(min(8, len(given)))
    service_no = rng.randrange(min(8, len(given[category_no].services)))
    digits = [lang, "2", "1", office.code, "1", str(category_no + 1), str(service_no + 1)]
    answers: dict[int, tuple[str, str]] = {}
    for number, question in enumerate(catalog.survey, start=1):
        if question.optional and rng.random() < 0.3:
            key, value = "9", "skipped"
        else:  # any answer its type accepts
            key, value = rng.choice(sorted(question.kind.answers(question).items()))
        digits.append(key)
        answers[number] = (question.id, value)
    digits.append("1" if rng.random() < 0.25 else "2")  # a recorded comment, or none
    return Plan(kind, digits, answers)


@dataclass
class Phase:
    """What one timed run measured."""

    name: str
    calls: int
    think: float
    duration: float
    jitter: float = 0.0  # each pause is think x (1 ± jitter), uniformly
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    in_window: int = 0
    requests: int = 0
    calls_started: int = 0
    calls_completed: int = 0
    answers_sent: set = field(default_factory=set)  # (sid, question, value), 2xx replies
    answers_unsure: set = field(default_factory=set)  # the reply was lost: maybe stored
    recordings_sent: set = field(default_factory=set)
    numbers: list[str] = field(default_factory=list)
    sids: set = field(default_factory=set)
    workers_replaced: int = 0  # workers that died (or were killed) during the run
    slices: int = 0  # timed runs added up in this phase (alternating with the baseline)
    wall: float = 0.0
    generator_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    loop_lag_ms: list[float] = field(default_factory=list)  # how late the generator's timer ran
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (sent at, ms)
    lock_window: tuple[float, float] | None = None  # monotonic start and end of --lock

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{kind}: {detail[:300]}")

    def summary(self) -> dict[str, Any]:
        every = [x for values in self.latencies.values() for x in values]
        extra: dict[str, Any] = {}
        if self.lock_window is not None and self.lock_window[0] != float("inf"):
            start, end = self.lock_window
            extra = {
                "lock_s": round(end - start, 1),
                "latency_under_lock_ms": percentiles(
                    [ms for at, ms in self.timeline if start <= at < end]),
                "latency_after_lock_ms": percentiles(  # while the spool is written
                    [ms for at, ms in self.timeline if end <= at < end + 10]),
                # the slowest webhook of each 5 s of the run (sent then), from its start
                "max_ms_per_5s": slowest_per_window(self.timeline, 5.0),
            }
        return {
            "name": self.name, "calls": self.calls, "think_s": self.think,
            "think_jitter": self.jitter,
            "duration_s": self.duration, "slices": self.slices, "requests": self.requests,
            "requests_per_s": round(self.in_window / self.duration, 1),
            "calls_started": self.calls_started, "calls_completed": self.calls_completed,
            "errors": dict(self.errors), "error_count": sum(self.errors.values()),
            "error_samples": self.error_samples,
            "latency_ms": {"all": percentiles(every),
                           **{k: percentiles(v) for k, v in sorted(self.latencies.items())}},
            "workers_replaced": self.workers_replaced,
            "generator_cpu_cores": round(self.generator_cpu_s / self.wall, 2),
            "generator_lag_ms": percentiles(self.loop_lag_ms),
            "server_cpu_cores": (None if self.server_cpu_s is None
                                 else round(self.server_cpu_s / self.wall, 2)),
            "webhooks_over_1s": sum(1 for x in every if x > 1000),
            **extra,
        }


def slowest_per_window(timeline: list[tuple[float, float]], seconds: float) -> list[float]:
    if not timeline:
        return []
    first = min(at for at, _ in timeline)
    slowest: dict[int, float] = {}
    for at, ms in timeline:
        window = int((at - first) // seconds)
        slowest[window] = max(slowest.get(window, 0.0), ms)
    return [round(slowest.get(w, 0.0), 1) for w in range(max(slowest) + 1)]


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(p * len(ordered) + 0.5) - 1))], 1)

    return {"count": len(ordered), "p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99),
            "max": round(ordered[-1], 1)}


class Generator:
    """Runs the calls of one phase against one base URL."""

    def __init__(self, base: str, catalog: Catalog, phase: Phase, duration: float, seed: int,
                 carrier: str = "twilio"):
        self.base = base.rstrip("/")
        self.carrier = CARRIERS[carrier]
        self.account_sid = self.carrier.new_account_sid()  # one account for the whole run
        self.catalog = catalog
        self.phase = phase
        self.rng = random.Random(seed)
        self.number_base = self.rng.randrange(10_000_000, 80_000_000)
        self.count = 0
        self.session: aiohttp.ClientSession | None = None
        self.start = self.deadline = 0.0
        self.duration = duration

    async def run(self) -> None:
        phase = self.phase
        connector = aiohttp.TCPConnector(limit=phase.calls + 8, limit_per_host=0,
                                         force_close=False, enable_cleanup_closed=True)
        timeout = aiohttp.ClientTimeout(total=TWILIO_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self.session = session
            self.start = time.monotonic()
            self.deadline = self.start + self.duration
            slots = [asyncio.create_task(self.slot(i)) for i in range(phase.calls)]
            monitor = asyncio.create_task(self.watch_loop())
            done, pending = await asyncio.wait(slots, timeout=self.duration + DRAIN_SECONDS)
            monitor.cancel()
            for task in pending:
                task.cancel()
                phase.error("hung", "a call was still waiting after the drain time")
            for task in done:
                if task.exception() is not None:
                    phase.error("generator", repr(task.exception()))

    async def watch_loop(self) -> None:
        """How late a 10 ms timer fires: time a reply waits for the generator itself, which
        the latencies include (so a busy generator shows here, not as a slow line)."""
        while time.monotonic() < self.deadline:
            began = time.monotonic()
            await asyncio.sleep(0.01)
            self.phase.loop_lag_ms.append(max(0.0, (time.monotonic() - began - 0.01) * 1000))

    async def slot(self, index: int) -> None:
        """One caller after another on this line, until the time is up."""
        if self.phase.think > 0:  # callers do not all ring in the same millisecond
            await asyncio.sleep(self.rng.uniform(0, self.phase.think))
        n = 0
        while time.monotonic() < self.deadline:
            kind = KINDS[(index + n) % len(KINDS)]
            n += 1
            await self.call(plan_call(kind, self.catalog, self.rng))

    async def call(self, plan: Plan) -> None:
        """One call: the carrier's engine (ivr.simulate.CallEngine) plays the carrier, this
        sends the requests it makes and presses the plan's keys at the Gathers it reaches."""
        phase = self.phase
        phase.calls_started += 1
        self.count += 1
        number = f"+8551{self.number_base + self.count:08d}"
        phase.numbers.append(number)
        # the Simulator is only the configuration here: this driver does the sending
        sim = Simulator(None, TOKEN, carrier=self.carrier, caller=number,
                        base_url=self.base + "/", account_sid=self.account_sid,
                        max_documents=MAX_STEPS, status_callback="voice/status")
        engine = CallEngine(sim, start=(self.base + "/voice", "POST", None))
        sid = engine.params["CallSid"]
        phase.sids.add(sid)
        script = list(plan.digits)
        run = engine.run()
        value: Any = None
        try:
            while True:
                try:
                    event = run.send(value)
                except StopIteration:
                    return
                except SimulatorError as exc:  # what a carrier would reject ends the call
                    message = str(exc)
                    kind = ("flow" if message.startswith("redirect loop") else
                            "non-twiml" if message.startswith("not TwiML") else "bad-twiml")
                    phase.error(kind, message)
                    return
                if isinstance(event, GatherInfo):
                    if not script:
                        value = HANGUP  # the caller hangs up at a menu
                    else:
                        await self.think()
                        value = script.pop(0)
                    continue
                if not isinstance(event, Request):
                    phase.error("generator", f"unexpected {type(event).__name__} from the "
                                "engine")
                    return
                if time.monotonic() >= self.deadline:
                    return  # the caller is cut off: no more requests, no status callback
                value = await self.send(event)
                self.note(plan, sid, event, value)
                if value is None:
                    return  # the error is counted; the call ends without a status callback
        finally:
            run.close()

    def note(self, plan: Plan, sid: str, request: Request, reply: Reply | None) -> None:
        """What a request carried that the database check looks for: answers and recordings
        sent (on a 2xx reply; an answer whose reply was lost may be stored or not)."""
        phase = self.phase
        ok = reply is not None
        if request.kind == "document":
            answer = self.answer_in(plan, request)
            if answer:
                (phase.answers_sent if ok else phase.answers_unsure).add((sid, *answer))
            params = request.params
            if ok and params.get("RecordingUrl") and recording_seconds(params) > 0:
                phase.recordings_sent.add(recording_id(params))  # the Record action
        elif request.kind == "recording":
            if ok and recording_seconds(request.params) > 0:
                phase.recordings_sent.add(recording_id(request.params))
        elif request.kind == "status" and ok:
            phase.calls_completed += 1

    def answer_in(self, plan: Plan, request: Request) -> tuple[str, str] | None:
        """The survey answer this request carries, if it is one: keys posted to a question."""
        if plan.kind != "rating" or "/rate/q/" not in request.url:
            return None
        parts = urlsplit(request.url)
        match = re.search(r"/rate/q/(\d+)$", parts.path)
        if not match:
            return None
        params = request.params if request.method == "POST" else dict(parse_qsl(parts.query))
        if not params.get("Digits"):  # no key came (Twilio posts Digits empty then)
            return None
        return plan.answers.get(int(match.group(1)))

    async def think(self) -> None:
        think, jitter = self.phase.think, self.phase.jitter
        if think > 0:
            pause = think * self.rng.uniform(1 - jitter, 1 + jitter)
            await asyncio.sleep(max(0.0, min(pause, self.deadline - time.monotonic())))
        else:
            await asyncio.sleep(0)

    async def send(self, request: Request) -> Reply | None:
        """One request of the engine's, signed by it; its reply, or None after an error
        (counted): the engine only ever sees 2xx TwiML."""
        assert self.session is not None
        phase = self.phase
        url = request.url
        kind = node_kind(url)
        began = time.monotonic()
        try:
            if request.method == "POST":
                form = encode_form(request.params)
                headers = {**request.headers, "Content-Type": FORM}
                sending = self.session.post(yarl.URL(url, encoded=True), data=form,
                                            headers=headers, allow_redirects=False)
            else:
                sending = self.session.get(yarl.URL(url, encoded=True), headers=request.headers,
                                           allow_redirects=False)
            async with sending as reply:
                body = await reply.read()
                status, content_type = reply.status, reply.headers.get("Content-Type", "")
        except asyncio.TimeoutError:
            phase.error("timeout", url)
            return None
        except aiohttp.ClientError as exc:
            phase.error("connection", f"{url}: {exc!r}")
            return None
        finished = time.monotonic()
        phase.requests += 1
        if finished <= self.deadline:
            phase.in_window += 1
        phase.latencies[kind].append((finished - began) * 1000)
        if phase.lock_window is not None:
            phase.timeline.append((began, (finished - began) * 1000))
        if not 200 <= status < 300:
            phase.error(f"http {status}", f"{url}: {body[:200]!r}")
            return None
        if request.kind == "media":
            return Reply(status, "", content_type, (finished - began) * 1000)
        if "xml" not in content_type.lower():
            phase.error("non-twiml", f"{url}: {content_type}")
            return None
        return Reply(status, body.decode("utf-8", errors="replace"), content_type,
                     (finished - began) * 1000)


_quote = functools.lru_cache(maxsize=16384)(quote_plus)  # a call's values repeat at every step


def encode_form(params: dict[str, str]) -> bytes:
    """The form as carriers post it: urlencode(params), but with the quoting of each key and
    value remembered (this is most of the generator's own work per request; aiohttp's
    FormData is slower still)."""
    return "&".join([_quote(k) + "=" + _quote(v) for k, v in params.items()]).encode()


def recording_seconds(params: dict[str, str]) -> int:
    try:
        return int(params.get("RecordingDuration") or 0)
    except ValueError:
        return 0


def recording_id(params: dict[str, str]) -> str:
    """How the store names a recording: its RecordingSid, or (Somleng's Record action sends
    none) the last segment of RecordingUrl, which its status callback sends as the sid."""
    return (params.get("RecordingSid")
            or urlsplit(params.get("RecordingUrl", "")).path.rstrip("/").rpartition("/")[2])


class DatabaseLock:
    """Another process's exclusive write transaction on the database, `start` seconds from
    now, for `seconds` (a thread of this script, outside the generator's event loop)."""

    def __init__(self, database: Path, start: float, seconds: float, phase: Phase):
        self.database, self.start, self.seconds, self.phase = database, start, seconds, phase
        self.error: str | None = None
        self.thread = threading.Thread(target=self.hold, daemon=True)
        self.thread.start()

    def hold(self) -> None:
        time.sleep(self.start)
        try:
            conn = sqlite3.connect(self.database, isolation_level=None, timeout=10)
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.Error as exc:
            self.error = repr(exc)
            return
        began = time.monotonic()
        time.sleep(self.seconds)
        conn.execute("ROLLBACK")
        conn.close()
        self.phase.lock_window = (began, time.monotonic())


def run_phase(phase: Phase, base: str, catalog: Catalog, duration: float, seed: int,
              server: Server | None, carrier: str = "twilio",
              lock: tuple[Path, float, float] | None = None) -> Phase:
    """Run the phase's calls for `duration` seconds (added to what the phase has measured)."""
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    server_before = server.cpu_seconds() if server else None
    workers_before = set(server.pids()[1:]) if server else set()
    wall = time.monotonic()
    holder = None
    if lock is not None:
        phase.lock_window = (float("inf"), float("inf"))  # the timeline is kept from now
        holder = DatabaseLock(lock[0], lock[1], lock[2], phase)
    generator = Generator(base, catalog, phase, duration, seed, carrier).run()
    try:
        import uvloop  # a faster event loop, if installed: the generator costs less CPU
    except ImportError:
        asyncio.run(generator)
    else:
        uvloop.run(generator)
    if holder is not None:
        holder.thread.join()
        if holder.error:
            phase.error("lock", f"could not lock the database: {holder.error}")
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    phase.wall += time.monotonic() - wall
    phase.slices += 1
    phase.generator_cpu_s += ((cpu_after.ru_utime - cpu_before.ru_utime)
                              + (cpu_after.ru_stime - cpu_before.ru_stime))
    if server is not None and server_before is not None:
        phase.server_cpu_s = (phase.server_cpu_s or 0.0) + server.cpu_seconds() - server_before
        if server.process.poll() is not None:
            phase.error("server-exited", f"gunicorn exited with {server.process.returncode}")
        phase.workers_replaced += len(workers_before - set(server.pids()[1:]))
    return phase


# --- the database afterwards ----------------------------------------------------------------


def check_database(database: Path, phases: list[Phase], extra_files: list[Path]
                   ) -> dict[str, Any]:
    """Answers sent vs stored, recordings sent vs stored, and no raw phone number anywhere."""
    sids = set().union(*(p.sids for p in phases))
    sent = set().union(*(p.answers_sent for p in phases))
    unsure = set().union(*(p.answers_unsure for p in phases))
    recordings_sent = set().union(*(p.recordings_sent for p in phases))
    with sqlite3.connect(database) as conn:
        stored = {row for row in conn.execute(
            "SELECT f.call_sid, a.question, a.value FROM answers a "
            "JOIN feedback f ON f.id = a.feedback_id") if row[0] in sids}
        recordings = {row[0] for row in conn.execute(
            "SELECT recording_sid FROM recordings") if row[0] in recordings_sent}
        try:  # records that waited in the spool (the line marks each when it writes it)
            via_spool = conn.execute("SELECT count(*) FROM spool_applied").fetchone()[0]
        except sqlite3.Error:
            via_spool = 0
        dump = "\n".join(conn.iterdump())
    missing = sent - stored
    unexpected = stored - sent - unsure
    texts = [dump]
    for path in [*extra_files, *spool_files(database, rejected=True)]:
        if path.exists():
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    raw = [path.read_bytes() for path in (database, Path(f"{database}-wal")) if path.exists()]
    numbers = [n for p in phases for n in p.numbers]
    found = find_numbers(texts, numbers, raw)
    return {
        "answers_sent": len(sent), "answers_stored": len(stored),
        "answers_missing": len(missing), "answers_unexpected": len(unexpected),
        "answers_reply_lost": len(unsure),
        "missing_samples": sorted(missing)[:5],
        "recordings_sent": len(recordings_sent), "recordings_stored": len(recordings),
        "feedback_rows": len({s for s, _, _ in stored}),
        "caller_numbers_used": len(numbers), "raw_numbers_found": found[:10],
        "database_dump_bytes": len(dump),
        "records_written_from_spool": via_spool,
        "spool_records_left": spool_records(database),
        "spool_rejected_lines": sum(
            len(p.read_bytes().splitlines()) for p in spool_files(database, rejected=True)
            if "rejected" in p.name),
    }


def spool_files(database: Path, rejected: bool = False) -> list[Path]:
    """The line's spool files beside the database (answers waiting to be written)."""
    return [p for p in database.parent.glob(database.name + ".spool*.jsonl")
            if rejected or "rejected" not in p.name]


def spool_records(database: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in spool_files(database) if p.exists())


def wait_for_spool(database: Path, seconds: float = 60.0) -> float:
    """Until the line has written its spool (or `seconds`): how long that took."""
    began = time.monotonic()
    while spool_files(database) and time.monotonic() - began < seconds:
        time.sleep(0.1)
    return round(time.monotonic() - began, 1)


def find_numbers(texts: list[str], numbers: list[str], raw: list[bytes] = ()) -> list[str]:
    """Which of the callers' numbers occur anywhere.

    In `texts` (the SQL dump, logs, the spool: values are delimited) a number counts in any
    form (+855..., 855..., 0..., or the bare subscriber digits) as a whole token: digits
    inside a longer hexadecimal string (a caller hash, a CallSid) are noise, and among
    millions of hex characters some nine-digit run matches a caller by chance. In `raw`
    (the database and WAL files, where stored values touch each other) it counts with its
    country code, twelve digits, which hex noise does not produce.
    """
    wanted = {n.removeprefix("+855"): n for n in numbers}  # the subscriber digits
    width = len(next(iter(wanted))) if wanted else 9
    found = set()
    token = re.compile(rf"(?<![0-9A-Fa-f+])(?:\+?855|0)?(\d{{{width}}})(?![0-9A-Fa-f])")
    for text in texts:
        found.update(wanted[m] for m in token.findall(text) if m in wanted)
    international = re.compile(rb"855(\d{%d})" % width)
    for data in raw:
        found.update(wanted[m.decode()] for m in international.findall(data)
                     if m.decode() in wanted)
    return sorted(found)


# --- reporting ------------------------------------------------------------------------------


def print_phase(summary: dict[str, Any]) -> None:
    jitter = (f" ± {summary['think_jitter']:.0%}"
              if summary["think_s"] and summary["think_jitter"] else "")
    print(f"\n== {summary['name']}: {summary['calls']} calls, "
          f"think {summary['think_s']} s{jitter}, {summary['duration_s']} s ==")
    print(f"  requests {summary['requests']}  ({summary['requests_per_s']} req/s)   "
          f"calls started {summary['calls_started']}, completed {summary['calls_completed']}")
    print(f"  errors {summary['error_count']}  {summary['errors'] or ''}"
          + (f"  workers replaced: {summary['workers_replaced']}"
             if summary["workers_replaced"] else ""))
    for sample in summary["error_samples"][:5]:
        print(f"    {sample}")
    cpu = summary["server_cpu_cores"]
    lag = summary["generator_lag_ms"]
    print(f"  generator CPU {summary['generator_cpu_cores']} cores"
          + (f", server CPU {cpu} cores" if cpu is not None else "")
          + (f"; generator loop late by p50/p99/max {lag['p50']}/{lag['p99']}/{lag['max']} ms"
             if lag.get("count") else ""))
    print(f"  {'webhook':22} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8}")
    rows = list(summary["latency_ms"].items())
    if "lock_s" in summary:
        rows += [(f"(during the {summary['lock_s']} s lock)", summary["latency_under_lock_ms"]),
                 ("(10 s after the lock)", summary["latency_after_lock_ms"])]
    for kind, stats in rows:
        if stats.get("count"):
            print(f"  {kind:22} {stats['count']:7} {stats['p50']:8} {stats['p95']:8} "
                  f"{stats['p99']:8} {stats['max']:8}")
    print(f"  webhooks over 1 s: {summary['webhooks_over_1s']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=64, help="simultaneous calls (64)")
    parser.add_argument("--think", type=float, default=0.0,
                        help="seconds each caller pauses between steps (0: saturation)")
    parser.add_argument("--jitter", type=float, default=0.5,
                        help="each pause is think x (1 ± jitter), uniformly (0.5): real callers "
                        "do not all pause exactly as long, and equal pauses keep the callers "
                        "that a slow moment bunched together bunched at every later step")
    parser.add_argument("--duration", type=float, default=25.0, help="seconds per run (25)")
    parser.add_argument("--find-capacity", metavar="N,N,...",
                        help="try these call counts in turn; report the largest whose webhook "
                             f"p99 stays under --p99-limit ({P99_LIMIT_MS:g} ms) with no error")
    parser.add_argument("--p99-limit", type=float, default=P99_LIMIT_MS)
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the bare Flask baseline (scripts/hello_app.py)")
    parser.add_argument("--url", help="target a running line instead of starting gunicorn "
                        "(it must use the token in --token; no baseline)")
    parser.add_argument("--carrier", default="twilio", choices=sorted(CARRIERS),
                        help="which carrier the simulated calls come through: its rules for "
                        "Gather, Record, Redirect and callbacks (ivr.simulate; twilio)")
    parser.add_argument("--token", default=TOKEN, help="TWILIO_AUTH_TOKEN of the target")
    parser.add_argument("--database", type=Path,
                        help="the target's SQLite file, to check answers (with --url)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker (2)")
    parser.add_argument("--backlog", type=int, default=2048)
    parser.add_argument("--keepalive", type=int, default=75,
                        help="seconds an idle keep-alive connection is held (gthread)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="the baseline and the line take turns in this many slices (3)")
    parser.add_argument("--lock", metavar="START:SECONDS",
                        help="another process holds an exclusive write lock on the database "
                        "for SECONDS, START seconds into the run (with --no-baseline)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.url and not args.no_baseline:
        args.no_baseline = True
    if args.url:
        args.url = args.url.rstrip("/")
    if args.lock:
        try:
            start, seconds = (float(x) for x in args.lock.split(":"))
        except ValueError:
            parser.error("--lock is START:SECONDS, e.g. 20:20")
        if not args.no_baseline:
            parser.error("--lock needs --no-baseline (the lock is timed from the line's run)")
        if args.url and not args.database:
            parser.error("--lock with --url needs --database")
        args.lock = (start, seconds)
    return args


def main(argv: list[str] | None = None) -> int:
    global TOKEN
    args = parse_args(argv)
    TOKEN = args.token
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    catalog = load_catalog(ROOT / "catalog.yaml")
    options = ServerOptions(args.workers, args.worker_class, args.threads, args.backlog,
                            args.keepalive)
    workdir = Path(tempfile.mkdtemp(prefix="ivr-loadtest-"))
    database = args.database if args.url else workdir / "ivr.db"
    env = {"TWILIO_AUTH_TOKEN": TOKEN, "IVR_DATABASE": str(database),
           "IVR_CATALOG": str(ROOT / "catalog.yaml"), "IVR_PROMPTS": str(ROOT / "prompts"),
           "IVR_AUDIO_DIR": str(ROOT / "audio"), "IVR_CALLER_KEY": CALLER_KEY}
    counts = ([int(n) for n in args.find_capacity.split(",")] if args.find_capacity
              else [args.calls])
    report: dict[str, Any] = {
        "seed": seed, "cpus": os.cpu_count(),
        "gunicorn": None if args.url else " ".join(["gunicorn", *options.args()]),
        "target": args.url or "gunicorn on 127.0.0.1", "carrier": args.carrier,
        "think_s": args.think,
        "think_jitter": args.jitter,
        "duration_s": args.duration,
    }
    say = (lambda *a: None) if args.json else print
    logs: list[Path] = []
    servers: list[Server] = []
    phases: list[Phase] = []
    runs: list[dict[str, Any]] = []
    baseline: Phase | None = None
    try:
        hello = None
        if not args.no_baseline:
            logs.append(workdir / "hello.log")
            hello = Server("hello_app:app", options, {}, logs[-1],
                           pythonpath=str(ROOT / "scripts"))
            servers.append(hello)
        line_server = None
        if not args.url:
            logs.append(workdir / "line.log")
            line_server = Server("ivr:create_app()", options, env, logs[-1])
            servers.append(line_server)
        base = args.url or line_server.url  # type: ignore[union-attr]
        for i, count in enumerate(counts):
            phase = Phase(f"the line ({count} calls)", count, args.think, args.duration,
                          args.jitter)
            phases.append(phase)
            if hello is not None and i == 0:
                # The baseline and the line take turns, in short slices, so that whatever
                # else the machine is doing weighs on both alike.
                baseline = Phase("baseline (bare Flask hello)", count, args.think,
                                 args.duration, args.jitter)
                rounds = max(1, args.rounds)
                for r in range(rounds):
                    say(f"slice {r + 1}/{rounds}: bare Flask hello, then the line, "
                        f"{count} calls, {args.duration / rounds:g} s each ...")
                    run_phase(baseline, hello.url, catalog, args.duration / rounds, seed + r,
                              hello, args.carrier)
                    run_phase(phase, base, catalog, args.duration / rounds,
                              seed + 1000 + r, line_server, args.carrier)
            else:
                say(f"the line: {count} calls, think {args.think:g} s, {args.duration:g} s ...")
                lock = (Path(database), *args.lock) if args.lock else None
                run_phase(phase, base, catalog, args.duration, seed + 1000 + i, line_server,
                          args.carrier, lock)
            summary = phase.summary()
            summary["p99_ok"] = summary["latency_ms"]["all"].get("p99", 0) < args.p99_limit
            runs.append(summary)
            if args.find_capacity and (summary["error_count"] or not summary["p99_ok"]):
                break
        if database and Path(database).exists() and spool_files(Path(database)):
            say("waiting for the line to write its spool ...")
            report["spool_wait_s"] = wait_for_spool(Path(database))
    finally:
        for server in servers:
            server.stop()
    if baseline is not None:
        report["baseline"] = baseline.summary()
    report["runs"] = runs
    line = runs[0]
    if baseline is not None and report["baseline"]["requests_per_s"]:
        report["ratio_to_baseline"] = round(line["requests_per_s"]
                                            / report["baseline"]["requests_per_s"], 3)
    if args.find_capacity:
        good = [r["calls"] for r in runs if not r["error_count"] and r["p99_ok"]]
        report["capacity_calls"] = max(good) if good else 0
    try:
        if database and Path(database).exists():
            report["database"] = check_database(Path(database), phases, logs)
    finally:
        if not args.keep:
            for path in sorted(workdir.glob("*")):
                path.unlink()
            workdir.rmdir()
    errors = sum(r["error_count"] for r in runs) + (
        report["baseline"]["error_count"] if baseline is not None else 0)
    db = report.get("database", {})
    report["ok"] = bool(
        errors == 0 and (not db or (db["answers_missing"] == 0
                                    and db["answers_unexpected"] == 0
                                    and db["recordings_sent"] == db["recordings_stored"]
                                    and db["spool_records_left"] == 0
                                    and not db["raw_numbers_found"])))
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for summary in ([report["baseline"]] if baseline is not None else []) + runs:
            print_phase(summary)
        print()
        if "ratio_to_baseline" in report:
            print(f"throughput: {line['requests_per_s']} req/s = "
                  f"{report['ratio_to_baseline']:.2f} x the bare Flask baseline "
                  f"({report['baseline']['requests_per_s']} req/s)")
        if "capacity_calls" in report:
            print(f"capacity: {report['capacity_calls']} simultaneous calls with webhook p99 "
                  f"< {args.p99_limit:g} ms and no error")
        if "database" in report:
            print(f"answers sent {db['answers_sent']}, stored {db['answers_stored']} "
                  f"(missing {db['answers_missing']}, unexpected {db['answers_unexpected']}); "
                  f"recordings sent {db['recordings_sent']}, stored {db['recordings_stored']}; "
                  f"raw phone numbers found: {len(db['raw_numbers_found'])} of "
                  f"{db['caller_numbers_used']} used; spool records left "
                  f"{db['spool_records_left']}")
        if report["gunicorn"]:
            print(f"gunicorn: {report['gunicorn']}")
        print(f"carrier: {args.carrier}")
        print("OK" if report["ok"] else "FAILED")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
