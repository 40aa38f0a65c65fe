#!/usr/bin/env python3
"""Slow clients against the line, behind nginx as deploy/ sets it up, and gunicorn alone.

After one call (the workers have started up), 16 connections send the bytes of a request's
headers slowly (8 bytes/s in all), as a slowloris attack or a poor link would, while six
simulated calls go on at once (ivr.simulate, Twilio's rules, signed, one connection per
call as a carrier keeps it); it reports how long each of their webhooks took: Twilio waits
at most 15 s, then the caller hears an error.

    python scripts/slow_clients.py                  # behind nginx, then gunicorn alone
    python scripts/slow_clients.py --only nginx     # or: --only direct; --json

Behind nginx the line runs as deploy/ describes it: the site deploy/nginx/owso-ivr.conf
(with its proxy settings, deploy/nginx/owso-ivr-proxy.conf) with temporary paths, ports and
a self-signed certificate in place of the real ones; gunicorn as the ExecStart and
Environment of deploy/systemd/owso-ivr.service say, on a unix socket handed over the way
systemd's owso-ivr.socket does (LISTEN_FDS). "Gunicorn alone" is the same gunicorn listening
on 127.0.0.1 and a port, as the line ran before deploy/ existed. Needs nginx and openssl
(Debian: apt-get install nginx openssl). Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from ivr.simulate import HttpTransport, PostReply, Simulator  # noqa: E402

DEPLOY = ROOT / "deploy"
SITE = DEPLOY / "nginx" / "owso-ivr.conf"
PROXY = DEPLOY / "nginx" / "owso-ivr-proxy.conf"
SERVICE = DEPLOY / "systemd" / "owso-ivr.service"
SOCKET_UNIT = DEPLOY / "systemd" / "owso-ivr.socket"
TOKEN = "slow-clients-auth-token-0123456789"
TWILIO_TIMEOUT = 15.0
SLOW = 16
RATE = 8.0  # bytes per second, all slow connections together
CALLERS = 6  # calls at the same time
KEYS = ["2", "1", "1", "1"]  # English, services, the first category, the first service


HAND_OVER = """import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.argv[2], sys.argv[2:])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- deploy/ as files -------------------------------------------------------------------------


def unit_entries(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit file: its sections' (key, value) entries, in order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif current is not None and "=" in line:
            key, value = line.split("=", 1)
            current.append((key.strip(), value.strip()))
    return sections


def service_command(credentials: Path) -> tuple[list[str], dict[str, str]]:
    """ExecStart of owso-ivr.service (gunicorn run as a module of this Python) and the
    environment its Environment= lines set, with %d (the credentials folder) filled in."""
    service = dict(unit_entries(SERVICE)["Service"])
    environment: dict[str, str] = {}
    for key, value in unit_entries(SERVICE)["Service"]:
        if key == "Environment":
            for item in shlex.split(value):
                name, _, setting = item.partition("=")
                environment[name] = setting.replace("%d", str(credentials))
    command = shlex.split(service["ExecStart"])
    assert Path(command[0]).name == "gunicorn", command
    return [sys.executable, "-m", "gunicorn", *command[1:]], environment


def site_config(tmp: Path, https_port: int, http_port: int, sock: Path, cert: Path,
                key: Path) -> str:
    """deploy/nginx/owso-ivr.conf with its machine-specific parts replaced (each must be
    found exactly as the file has it, so that the site tested is the site shipped)."""
    text = SITE.read_text()
    changes = [
        ("unix:/run/owso-ivr.sock", f"unix:{sock}"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen [::]:443 ssl;", ""),
        ("/etc/letsencrypt/live/ivr.example.org/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/ivr.example.org/privkey.pem", str(key)),
        ("root /var/www/letsencrypt;", f"root {tmp / 'acme'};"),
        ("include /etc/nginx/snippets/owso-ivr-proxy.conf;", f"include {PROXY};"),
    ]
    for old, new in changes:
        if text.count(old) != 1:
            raise ValueError(f"{SITE}: expected {old!r} once, found it {text.count(old)} times")
        text = text.replace(old, new)
    return text


def socket_path_of_unit() -> str:
    return dict(unit_entries(SOCKET_UNIT)["Socket"])["ListenStream"]


def make_certificate(tmp: Path) -> tuple[Path, Path, Path]:
    """A throw-away certificate authority and, signed by it, a certificate for 127.0.0.1
    (openssl): (the authority's certificate, to trust; the server's certificate; its key)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=owso-ivr test authority", "-keyout", "ca-key.pem", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "key.pem", "-out", "server.csr")
    (tmp / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                    "keyUsage=digitalSignature,keyEncipherment\n"
                                    "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "cert.pem")
    return tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"


# --- the servers --------------------------------------------------------------------------------


def wait_for(check, seconds: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not start\n{tail}")


def line_env(tmp: Path) -> dict[str, str]:
    """The line's own settings for a temporary run: a fresh database, the checkout's
    catalogue, prompts and audio, a caller key in a credentials folder."""
    credentials = tmp / "credentials"
    credentials.mkdir(exist_ok=True, mode=0o700)
    (credentials / "caller-key").write_text("slow-clients-caller-key\n")
    return {"TWILIO_AUTH_TOKEN": TOKEN, "IVR_DATABASE": str(tmp / "ivr.db"),
            "IVR_CATALOG": str(ROOT / "catalog.yaml"), "IVR_PROMPTS": str(ROOT / "prompts"),
            "IVR_AUDIO_DIR": str(ROOT / "audio")}


class Gunicorn:
    """The line under gunicorn: on a unix socket handed over as systemd does (socket=True,
    the service unit's command and environment) or on 127.0.0.1 and a port."""

    def __init__(self, tmp: Path, socket_activated: bool):
        self.log_path = tmp / ("gunicorn-socket.log" if socket_activated else "gunicorn.log")
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        command, unit_env = service_command(tmp / "credentials")
        env = {**os.environ, **unit_env, **line_env(tmp)}
        self.listener: socket.socket | None = None
        if socket_activated:
            self.sock_path = tmp / Path(socket_path_of_unit()).name
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(str(self.sock_path))
            self.listener.listen(2048)
            os.set_inheritable(self.listener.fileno(), True)
            fd = self.listener.fileno()
            # systemd's protocol: the socket as fd 3, LISTEN_FDS=1, LISTEN_PID=gunicorn's pid
            # (this small program's, which exec keeps)
            command = [sys.executable, "-c", HAND_OVER, str(fd), *command]
            self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=self.log,
                                            stderr=subprocess.STDOUT, pass_fds=(fd,))
            self.url = None
        else:
            env.pop("IVR_PROXY_HOPS", None)  # nobody in front of it
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.process = subprocess.Popen(
                [*command[:-1], "-b", f"127.0.0.1:{self.port}", command[-1]], env=env,
                cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
            try:
                wait_for(lambda: urllib.request.urlopen(self.url + "/health",
                                                        timeout=2).status == 200,
                         60, "gunicorn", self.log_path)
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.listener is not None:
            self.listener.close()
        self.log.close()


class Nginx:
    """Debian's nginx with the deploy/ site, as an ordinary process in a temporary prefix."""

    def __init__(self, tmp: Path, sock: Path):
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.https_port, self.http_port = free_port(), free_port()
        self.cert, server_cert, key = make_certificate(tmp)  # self.cert: what to trust
        self.url = f"https://127.0.0.1:{self.https_port}"
        (tmp / "acme").mkdir(exist_ok=True)
        site = tmp / "owso-ivr.conf"
        site.write_text(site_config(tmp, self.https_port, self.http_port, sock, server_cert,
                                    key))
        self.error_log = tmp / "nginx-error.log"
        temp = {name: tmp / f"nginx-{name}" for name in
                ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
        conf = tmp / "nginx.conf"
        conf.write_text("\n".join([
            # as root, the workers must still reach the test's socket in its private folder
            "user root;" if os.geteuid() == 0 else "",
            "worker_processes 1;", f"pid {tmp / 'nginx.pid'};",
            f"error_log {self.error_log} warn;",
            "events { worker_connections 1024; }",
            "http {", "access_log off;",
            *(f"{name}_temp_path {path};" for name, path in temp.items()),
            f"include {site};", "}", ""]))
        self.process = subprocess.Popen([binary, "-p", str(tmp), "-c", str(conf), "-g",
                                         "daemon off;"], stdout=subprocess.DEVNULL,
                                        stderr=open(tmp / "nginx.out", "ab"))  # noqa: SIM115
        try:
            wait_for(self.listening, 20, "nginx", tmp / "nginx.out")
        except BaseException:
            self.stop()
            raise

    def listening(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError("nginx exited: " + self.error_log.read_text(errors="replace"))
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
            return True

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


# --- the clients --------------------------------------------------------------------------------


class SlowClients:
    """`count` connections that send a request's header bytes at `rate` bytes/s in all."""

    def __init__(self, url: str, count: int = SLOW, rate: float = RATE,
                 cafile: Path | None = None):
        host, port = url.split("://")[1].split(":")
        context = None
        if url.startswith("https"):
            context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        self.sockets: list[socket.socket] = []
        for _ in range(count):
            raw = socket.create_connection((host, int(port)), timeout=5)
            self.sockets.append(context.wrap_socket(raw, server_hostname=host)
                                if context else raw)
        self.request = (f"POST /voice HTTP/1.1\r\nHost: {host}:{port}\r\n"
                        "X-Slow: " + "a" * 4000).encode()
        self.rate = rate
        self.sent = 0
        self.closed_by_server = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.trickle, daemon=True)
        self.thread.start()

    def trickle(self) -> None:
        index = 0
        while not self.stop.wait(1 / self.rate):
            alive = [s for s in self.sockets if s.fileno() != -1]
            if not alive:
                return
            sock = alive[index % len(alive)]
            index += 1
            try:
                sock.send(self.request[self.sent // len(self.sockets):][:1])
                self.sent += 1
            except OSError:  # the server gave up on it (nginx: client_header_timeout)
                self.closed_by_server += 1
                sock.close()

    def open_count(self) -> int:
        return sum(1 for s in self.sockets if s.fileno() != -1)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


class TimedTransport(HttpTransport):
    """The simulator's HTTP transport, timing every request (None: no reply in 15 s)."""

    def __init__(self, times: list[float | None], cafile: Path | None = None):
        super().__init__(timeout=TWILIO_TIMEOUT)
        if cafile:
            self.session.verify = str(cafile)
            self.session.trust_env = False  # REQUESTS_CA_BUNDLE would replace it
        self.times = times

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> PostReply:
        began = time.monotonic()
        try:
            reply = super().post(url, params, headers)
        except Exception:
            self.times.append(None)
            raise
        self.times.append(time.monotonic() - began)
        return reply


def calls(url: str, callers: int = CALLERS, cafile: Path | None = None) -> dict[str, Any]:
    """`callers` simulated calls at once; each webhook's time. A call whose webhook goes
    unanswered for 15 s ends there, as a carrier ends it."""
    times: list[float | None] = []
    heard: list[bool] = []

    def one(i: int) -> None:
        sim = Simulator(TimedTransport(times, cafile), TOKEN, base_url=url,
                        caller=f"+8551{i:08d}")
        try:
            transcript = sim.call(KEYS)
        except Exception:
            heard.append(False)
            return
        heard.append("working days" in " ".join(  # the service's information, to the end
            p.text or "" for step in transcript.steps for p in step.prompts))

    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(one, range(callers)))
    answered = [t for t in times if t is not None]
    return {"webhooks": len(times), "unanswered_in_15s": len(times) - len(answered),
            "answered_in_1s": sum(1 for t in answered if t < 1.0),
            "over_1s": sum(1 for t in answered if t >= 1.0) + len(times) - len(answered),
            "max_ms": round(max(answered) * 1000, 1) if answered else None,
            "calls_whole": sum(heard), "calls": callers}


def measure(target: str, tmp: Path, slow: int = SLOW, rate: float = RATE,
            callers: int = CALLERS) -> dict[str, Any]:
    """Start the line as `target` says ('nginx' or 'direct'), open the slow connections,
    make the calls; what the callers met."""
    servers: list[Any] = []
    try:
        if target == "nginx":
            line = Gunicorn(tmp, socket_activated=True)
            servers.append(line)
            front = Nginx(tmp, line.sock_path)
            servers.append(front)
            url, cafile = front.url, front.cert
            wait_for(lambda: urllib.request.urlopen(
                url + "/health", timeout=2, context=ssl.create_default_context(
                    cafile=str(cafile))).status == 200, 60, "the line behind nginx",
                line.log_path)
        else:
            line = Gunicorn(tmp, socket_activated=False)
            servers.append(line)
            url, cafile = line.url, None
        calls(url, 1, cafile)  # one call first: every worker has started up
        clients = SlowClients(url, slow, rate, cafile)
        try:
            time.sleep(2.5)  # every slow client has begun its request
            result = calls(url, callers, cafile)
            result["slow_connections_open_at_the_end"] = clients.open_count()
        finally:
            clients.close()
        result.update(target=target, slow_connections=slow, slow_bytes_per_s=rate)
        return result
    finally:
        for server in reversed(servers):
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["nginx", "direct"])
    parser.add_argument("--slow", type=int, default=SLOW, help=f"slow connections ({SLOW})")
    parser.add_argument("--rate", type=float, default=RATE,
                        help=f"their bytes per second, in all ({RATE:g})")
    parser.add_argument("--callers", type=int, default=CALLERS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = []
    for target in [args.only] if args.only else ["nginx", "direct"]:
        with tempfile.TemporaryDirectory(prefix="ivr-slow-") as tmp:
            results.append(measure(target, Path(tmp), args.slow, args.rate, args.callers))
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for r in results:
            name = ("behind nginx (deploy/)" if r["target"] == "nginx"
                    else "gunicorn alone on 127.0.0.1")
            print(f"{name}: {r['slow_connections']} slow connections "
                  f"({r['slow_bytes_per_s']:g} bytes/s in all), {r['calls']} calls at once: "
                  f"{r['webhooks']} webhooks, {r['answered_in_1s']} answered within 1 s, "
                  f"{r['unanswered_in_15s']} unanswered after 15 s, slowest "
                  f"{r['max_ms']} ms; calls heard to the end: {r['calls_whole']} of "
                  f"{r['calls']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
