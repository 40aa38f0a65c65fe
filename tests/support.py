"""What the tests share that is not a fixture: the repository's paths, requests signed as
Twilio signs them, a server's port and environment, the TwiML schema, catalogue variants,
and the admin login. Fixtures are in conftest.py."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from twilio.request_validator import RequestValidator

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
    """The first office's (Ou Chrov's) Ombudsman with a number and these hours."""
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
offices:
  - id: town
    code: "0105"
    district_code: "0105"
    province: {code: "01", km: បន្ទាយមានជ័យ, en: Banteay Meanchey}
    district: {km: អូរជ្រៅ, en: Ou Chrov}
    name: {km: ការិយាល័យ, en: Town office}
    hours: PLACEHOLDER (not published)
    ombudsman: {phone: PLACEHOLDER (not published), hours: PLACEHOLDER (not published)}
"""



# --- the admin pages -------------------------------------------------------------------------


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


def log_in(client: Any, password: str = PASSWORD, **kwargs: Any) -> Any:
    token = csrf_of(client.get("/admin/login", **kwargs).get_data(as_text=True))
    return client.post("/admin/login", data={"csrf": token, "password": password}, **kwargs)
