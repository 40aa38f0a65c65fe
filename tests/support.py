"""What the tests share that is not a fixture: the repository's paths, requests signed as
Twilio signs them, a server's port and environment, the TwiML schema, catalogue variants,
and the admin login. Fixtures are in conftest.py."""

from __future__ import annotations

import io
import os
import re
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from lxml import html
from twilio.request_validator import RequestValidator

from ivr.catalog import CatalogError, load_catalog, problems_of
from ivr.simulate import sign

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-auth-token-0123456789"
CALLER = "+85512345678"
PASSWORD = "correct horse battery staple"  # the admin password of the admin tests


class Twilio:
    """Posts to the app as Twilio would: absolute URL, form params, X-Twilio-Signature
    (signed by the simulator's `sign`, the same code `ivr call` and the load test use)."""

    def __init__(self, app: Any, token: str = TOKEN, base: str = "http://localhost"):
        self.client = app.test_client() if app is not None else None
        self.token = token
        self.validator = RequestValidator(token)
        self.base = base

    def post(self, url: str, params: dict[str, str] | None = None, signed_url: str = "",
             **headers: str) -> Any:
        """POST `url`; the signature covers `signed_url` (the public URL) when given."""
        full = url if url.startswith("http") else self.base + url
        params = {"CallSid": "CA" + "0" * 32, "From": CALLER, "To": "+85523000000",
                  **(params or {})}
        signature = sign(self.token, signed_url or full, params)
        return self.send(full, params, {"X-Twilio-Signature": signature, **headers})

    def send(self, url: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        assert self.client is not None
        return self.client.post(url, data=params, headers=headers)


class HttpTwilio(Twilio):
    """The same, over real HTTP to a running server (gunicorn in the concurrency tests)."""

    def __init__(self, base: str, token: str = TOKEN):
        import requests

        super().__init__(None, token, base)
        self.session = requests.Session()

    def send(self, url: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        reply = self.session.post(url, data=params, headers=headers, timeout=30)
        return SimpleNamespace(status_code=reply.status_code, data=reply.content)


@contextmanager
def database_locked(path: Path) -> Iterator[None]:
    """Another process holds the database's write lock (and readers out) meanwhile."""
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def line_env(tmp_path: Path) -> dict[str, str]:
    """The environment for a line under gunicorn on a temporary database and audio folder."""
    return {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "IVR_CATALOG": str(ROOT / "catalog.yaml"),
            "IVR_PROMPTS": str(ROOT / "prompts"), "IVR_AUDIO_DIR": str(tmp_path / "audio"),
            "IVR_DATABASE": str(tmp_path / "ivr.db"), "IVR_CALLER_KEY": "k"}


def shared_dir() -> Path:
    """The workplace's shared/ folder: IVR_SHARED (set by .ci/run), else beside the repo."""
    return Path(os.environ.get("IVR_SHARED") or ROOT.parent / "shared")


def twiml_schema_path() -> Path:
    """TwiML.xsd from IVR_TWIML_XSD or shared/twiml."""
    candidates = [os.environ.get("IVR_TWIML_XSD", ""), str(shared_dir() / "twiml/TwiML.xsd")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("TwiML.xsd not found: set IVR_TWIML_XSD or IVR_SHARED, or put "
                            "shared/ beside the repo")


# --- catalogue variants ----------------------------------------------------------------------

Edit = tuple[str, str]  # (text of the bundled catalogue, what replaces it)
WEEKDAYS_OPEN = '{days: [mon, tue, wed, thu, fri], open: "07:30", close: "17:00"}'
ALWAYS_OPEN = '{days: [mon, tue, wed, thu, fri, sat, sun], open: "00:00", close: "23:59"}'
UNPUBLISHED_OMBUDSMAN = ("    ombudsman:\n      phone: PLACEHOLDER (not published)\n"
                         "      hours: PLACEHOLDER (not published)")


def ombudsman_on_duty(hours: str = WEEKDAYS_OPEN, phone: str = "+85512000999") -> Edit:
    """The Ombudsman of the catalogue's first office whose Ombudsman is unpublished, with a
    number and these hours."""
    return UNPUBLISHED_OMBUDSMAN, f'    ombudsman:\n      phone: "{phone}"\n      hours: {hours}'


def public_holiday(day: str) -> Edit:
    return "public_holidays: []", f"public_holidays: [{day}]"


def catalog_variant(path: Path, *edits: Edit) -> Path:
    """The bundled catalogue with each edit made once (its first occurrence), written to
    `path`. An edit whose text the catalogue no longer has fails here, not silently."""
    text = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    for old, new in edits:
        if old not in text:
            raise AssertionError(f"catalog.yaml no longer has {old!r}")
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """\
languages: [km, en]
categories:
  - id: papers
    name: {km: ឯកសារ, en: papers}
services:
  - id: copy
    category: papers
    name: {km: ការចម្លង, en: a copy}
    level: district
    documents: unpublished
    fee: {type: flat, riel: 1000}
    max_days: 3
    validity: unpublished
    legal_ref: unpublished
    source: https://example.org/copy
    confidence: high
  - id: permit
    category: papers
    name: {km: លិខិតអនុញ្ញាត, en: a permit}
    level: provincial
    documents: unpublished
    fee:
      type: maximum
      riel: 2000
      per: {km: ក្នុងមួយសន្លឹក, en: per sheet}
      discounted_riel: 500
    max_days: unpublished
    validity: unpublished
    legal_ref: unpublished
    source: https://example.org/permit
    confidence: high
survey:
  questions:
    - id: quality
      type: scale
      prompt: {km: គុណភាព, en: 'How good was it?'}
    - id: paid-more
      type: yes-no
      remind: fee
      prompt: {km: បង់លើស, en: 'Did you pay more?'}
    - id: gender
      type: choice
      optional: true
      prompt: {km: ភេទ, en: 'Woman or man?'}
      options:
        - {id: woman, label: {km: ស្ត្រី, en: a woman}}
        - {id: man, label: {km: បុរស, en: a man}}
complaints:
  max_seconds: 60
  topics:
    - {id: money, name: {km: ប្រាក់, en: money}}
    - {id: other, name: {km: ផ្សេង, en: something else}}
public_holidays: [2027-01-07]
provinces:
  - {code: "01", kind: province, name: {km: បន្ទាយមានជ័យ, en: Banteay Meanchey}}
offices:
  - id: town
    kind: district
    code: "0105"
    province: "01"
    gazetteer_code: "0105"
    district: {km: ស្រុកអូរជ្រៅ, en: Ou Chrov District}
    name: {km: ការិយាល័យ, en: Town office}
    hours: PLACEHOLDER (not published)
    ombudsman:
      phone: PLACEHOLDER (not published)
      hours: PLACEHOLDER (not published)
  - id: unit
    kind: province
    code: "0100"
    province: "01"
    gazetteer_code: "01"
    district: {km: ខេត្តបន្ទាយមានជ័យ, en: Banteay Meanchey Province}
    name: {km: អង្គភាព, en: Provincial unit}
    hours: PLACEHOLDER (not published)
    ombudsman: {phone: PLACEHOLDER (not published), hours: PLACEHOLDER (not published)}
"""



# --- a catalogue edited under the running line ------------------------------------------------


def editable_catalogue(settings: Any, tmp_path: Path, monkeypatch: Any) -> tuple[Any, Path, str]:
    """An app on a copy of the catalogue that it rechecks at every request, the copy's path
    and its text: how the tests that edit the catalogue under a running line begin."""
    from ivr import create_app
    from ivr.app import LiveCatalog

    monkeypatch.setattr(LiveCatalog, "RECHECK_SECONDS", 0.0)
    path = tmp_path / "catalog.yaml"
    original = settings.catalog.read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    return create_app(settings, catalog=path), path, original


def raise_barber_fee(path: Path, original: str) -> None:
    """The edit those tests make: the barber's licence from 20,000 to 25,000 riel."""
    path.write_text(original.replace("riel: 20000\n      per: {km: ក្នុងមួយច្បាប់, en: per "
                                     "licence}", "riel: 25000\n      per: {km: ក្នុងមួយច្បាប់, "
                                     "en: per licence}"), encoding="utf-8")


# --- the admin pages -------------------------------------------------------------------------


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


ACCOUNT = "AC" + "0123456789abcdef" * 2  # a made-up Twilio account of the admin tests
RECORDING_URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "a" * 32


def page_tables(page: str) -> dict[str, list[list[str]]]:
    """Each data table of an admin page: header labels, then each row's raw values."""
    tree = html.fromstring(page)
    tables = {}
    for table in tree.xpath("//table[@data-table]"):
        rows = [[th.text_content().strip() for th in table.xpath(".//thead//th")]]
        rows += [[td.get("data-value") for td in tr.xpath("./td")]
                 for tr in table.xpath(".//tbody/tr")]
        tables[table.get("data-table")] = rows
    return tables


def rate(store: Any, sid: str, office: str, service: str, **answers: str) -> None:
    """A rating's answers saved as the line saves them (unofficial_payment= for the
    question unofficial-payment)."""
    for question, value in answers.items():
        store.save_answer(sid, "+85510000000", office, service, "km",
                          question.replace("_", "-"), value)


def reply_to(request: Any, status: int, body: bytes = b"",
             headers: dict[str, str] | None = None) -> requests.Response:
    """The response HTTPAdapter.send would return for `request`: what the fakes below
    requests answer with."""
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    response.raw = io.BytesIO(body)
    response.url = request.url
    response.request = request
    return response


def below_requests(monkeypatch: Any, fake: Any) -> None:
    """Every request sent through requests goes to `fake.send` instead of the network."""
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send",
                        lambda adapter, request, **kw: fake.send(adapter, request, **kw))


class FakeProvider:
    """Stands in for the network below requests: records what would have been sent."""

    def __init__(self, status: int = 200, body: bytes = b"ID3-fake-mp3-bytes"):
        self.status, self.body = status, body
        self.sent: list[Any] = []

    def send(self, adapter: Any, request: Any, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        return reply_to(request, self.status, self.body,
                        {"Content-Type": "audio/mpeg", "Content-Length": str(len(self.body))})


def log_in(client: Any, password: str = PASSWORD, username: str = "admin", **kwargs: Any) -> Any:
    """Sign in through the form (the first administrator, made from IVR_ADMIN_PASSWORD)."""
    token = csrf_of(client.get("/admin/login", **kwargs).get_data(as_text=True))
    return client.post("/admin/login", data={"csrf": token, "username": username,
                                             "password": password}, **kwargs)


def admin_app_for(settings: Any) -> Any:
    """The line with the admin pages on (PASSWORD, the made-up ACCOUNT): the app of the
    admin tests' `admin_app` fixtures."""
    from ivr import create_app

    return create_app(settings, admin_password=PASSWORD, twilio_account_sid=ACCOUNT)


def signed_in_admin(app: Any) -> Any:
    """A test client of `app` signed in as the first administrator: the admin tests'
    `admin` fixtures."""
    client = app.test_client()
    assert log_in(client).status_code == 302
    return client


# --- from the catalogue work: one office's Ombudsman on duty, the TwiML schemas -----

UNSTAFFED = ("    ombudsman:\n      phone: PLACEHOLDER (not published)\n"
             "      hours: PLACEHOLDER (not published)")
OPEN_HOURS = '{days: [mon, tue, wed, thu, fri], open: "07:30", close: "17:00"}'


def with_ombudsman(text: str, office_id: str = "ou-chrov", phone: str = '"+85512000999"',
                   hours: str = OPEN_HOURS) -> str:
    """The catalogue's text with one office's Ombudsman number and hours filled in."""
    start = text.index(f"  - id: {office_id}\n")
    at = text.index(UNSTAFFED, start)
    return (text[:at] + f"    ombudsman:\n      phone: {phone}\n      hours: {hours}"
            + text[at + len(UNSTAFFED):])


OWN_TWIML_XSD = ROOT / "tests" / "twiml.xsd"


def twiml_schema_paths() -> list[Path]:
    """The project's own TwiML schema (tests/twiml.xsd, always), then the shared TwiML.xsd
    as a second check where it is present (IVR_TWIML_XSD or shared/twiml)."""
    found = [OWN_TWIML_XSD]
    for candidate in (os.environ.get("IVR_TWIML_XSD", ""), str(shared_dir() / "twiml/TwiML.xsd")):
        if candidate and Path(candidate).is_file():
            found.append(Path(candidate))
            break
    return found


class TwimlSchemas:
    """Validates a TwiML document against every schema of `twiml_schema_paths()`; after a
    refusal, `error_log.last_error` says which schema refused it and why."""

    def __init__(self, paths: list[Path] | None = None):
        from types import SimpleNamespace

        from lxml import etree

        self.paths = paths or twiml_schema_paths()
        self.schemas = [(p, etree.XMLSchema(etree.parse(str(p)))) for p in self.paths]
        self.error_log = SimpleNamespace(last_error=None)

    def validate(self, doc) -> bool:
        for path, schema in self.schemas:
            if not schema.validate(doc):
                self.error_log.last_error = f"{path.name}: {schema.error_log.last_error}"
                return False
        return True


# --- the line under gunicorn (the start-up, hardening and spool tests) ----------------


def workers_of(master: int) -> set[int]:
    """The worker processes: children of the gunicorn master."""
    found: set[int] = set()
    for children in Path(f"/proc/{master}/task").glob("*/children"):
        try:
            found |= {int(pid) for pid in children.read_text().split()}
        except OSError:
            pass
    return found


def wait_until(condition, seconds: float, step: float = 0.05) -> bool:
    """Poll `condition` until it is true (True) or `seconds` have passed (False)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


class Gunicorn:
    """The line under gunicorn with the production settings (ivr/gunicorn_conf.py), on a
    temporary database; `args` are added to (and override) them. Its log is kept."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                 bind: str | None = None, wait: bool = True, workers: int = 2):
        import subprocess
        import sys

        self.port = free_port()
        self.bind = bind or f"127.0.0.1:{self.port}"
        self.base = f"http://127.0.0.1:{self.port}"
        self.database = tmp_path / "ivr.db"
        self.log_path = tmp_path / "gunicorn.log"
        self.workers = workers
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:ivr.gunicorn_conf",
             "-w", str(workers), "-b", self.bind, "--log-level", "info", *args,
             "ivr:create_app()"],
            env={**line_env(tmp_path), **(env or {})}, cwd=ROOT, stdout=self._log,
            stderr=subprocess.STDOUT)
        if wait and not wait_until(self.ready, 60, 0.1):
            self.stop()
            pytest.fail("gunicorn did not start: " + self.log()[-3000:])

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def worker_pids(self) -> set[int]:
        return workers_of(self.pid)

    def health(self, timeout: float = 5) -> bool:
        import requests

        try:
            return requests.get(self.base + "/health", timeout=timeout).ok
        except requests.RequestException:
            return False

    def ready(self) -> bool:
        return self.alive() and len(self.worker_pids()) == self.workers and self.health(2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        import subprocess

        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


def write_catalogue(tmp_path: Path, text: str) -> Path:
    """A catalogue file of this text, as an administrator saves it."""
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def catalogue_error(tmp_path: Path, text: str) -> CatalogError:
    """What loading a broken catalogue of this text raises."""
    with pytest.raises(CatalogError) as info:
        load_catalog(write_catalogue(tmp_path, text))
    return info.value


def only_error(tmp_path: Path, text: str) -> CatalogError:
    """The one problem of a catalogue that has exactly one."""
    found = problems_of(catalogue_error(tmp_path, text))
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """The line of the nth line holding `needle`."""
    return [i for i, line in enumerate(text.splitlines(), 1) if needle in line][nth - 1]
