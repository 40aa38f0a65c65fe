"""The provider setting (Twilio or Somleng) and the recording player's host check: our
account credentials are sent only to the configured recording host, over https, on port 443.

Only the HTTP boundary is replaced: `requests.get` records what it was asked for and answers
with a real, tiny WAV file."""

from __future__ import annotations

import io
import logging
import math
import struct
import wave
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from ivr import create_app
from ivr.admin import trusted_recording_url
from ivr.cli import main as cli
from ivr.config import Settings
from tests.support import PASSWORD, ROOT, TOKEN, log_in

TWILIO_ACCOUNT = "AC" + "0123456789abcdef" * 2
SOMLENG_ACCOUNT = "4f1c7a52-9b0e-4d4e-8a51-3c2f0e6d7b19"  # Somleng account ids are UUIDs
SOMLENG_API = "https://api.somleng.org"
SOMLENG_RECORDING = (f"{SOMLENG_API}/2010-04-01/Accounts/{SOMLENG_ACCOUNT}/Calls/"
                     "0b6e1f7e-2f1a-4c55-9d0e-6a3b1c2d4e5f/Recordings/"
                     "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
TWILIO_RECORDING = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "a" * 32


def tiny_wav() -> bytes:
    """A real 8 kHz mono 16-bit WAV: 400 samples (50 ms) of a 440 Hz tone."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i
                                                                          / 8000)))
                                 for i in range(400)))
    return buffer.getvalue()


WAV = tiny_wav()


@dataclass
class FakeGet:
    """Stands in for `requests.get`: records each call and answers with recorded-looking bytes."""

    body: bytes = WAV
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append({"url": url, **kwargs})
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "audio/x-wav"
        response.headers["Content-Length"] = str(len(self.body))
        response.raw = io.BytesIO(self.body)
        response.url = url
        return response


@pytest.fixture
def fake_get(monkeypatch) -> FakeGet:
    fake = FakeGet()
    monkeypatch.setattr(requests, "get", fake)
    return fake


def admin_client(settings: Settings, **overrides: Any):
    """A signed-in admin client of an app built from `settings` with `overrides`."""
    app = create_app(settings, admin_password=PASSWORD, **overrides)
    client = app.test_client()
    assert log_in(client).status_code == 302
    return app, client


def save_case(app, recording_url: str) -> str:
    reference = app.extensions["ivr"].store.save_recording(
        sid="5d8e2c1a-7b3f-4e9d-a6c0-2f1e3d4c5b6a", caller="+85510000000", kind="complaint",
        lang="km", office="poipet", service="", topic="unofficial-fee",
        recording_sid="9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", recording_url=recording_url,
        duration_s=12)
    assert reference is not None
    return reference


SOMLENG = {"provider": "somleng", "somleng_api_url": SOMLENG_API,
           "twilio_account_sid": SOMLENG_ACCOUNT}
TWILIO = {"twilio_account_sid": TWILIO_ACCOUNT}


# --- the player fetches from the configured host ------------------------------------------


def test_a_somleng_recording_is_fetched_with_basic_auth_and_served(settings, fake_get):
    app, admin = admin_client(settings, **SOMLENG)
    reference = save_case(app, SOMLENG_RECORDING)
    response = admin.get(f"/admin/cases/{reference}/recording?format=wav")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "audio/wav" and response.data == WAV
    with wave.open(io.BytesIO(response.data)) as played:
        assert (played.getframerate(), played.getnchannels(), played.getnframes()) == (
            8000, 1, 400)
    (call,) = fake_get.calls
    assert call["url"] == SOMLENG_RECORDING + ".wav"
    assert call["auth"] == (SOMLENG_ACCOUNT, TOKEN)
    assert call["timeout"]  # never waits forever on the provider
    assert admin.get(f"/admin/cases/{reference}/recording").status_code == 200
    assert fake_get.calls[-1]["url"] == SOMLENG_RECORDING + ".mp3"  # the default format


def test_a_twilio_recording_is_fetched_from_api_twilio_com(settings, fake_get):
    app, admin = admin_client(settings, **TWILIO)
    reference = save_case(app, TWILIO_RECORDING)
    assert admin.get(f"/admin/cases/{reference}/recording?format=wav").data == WAV
    (call,) = fake_get.calls
    assert call["url"] == TWILIO_RECORDING + ".wav"
    assert call["auth"] == (TWILIO_ACCOUNT, TOKEN)


def test_recording_hosts_from_the_environment_replace_the_default(settings, fake_get):
    app, admin = admin_client(settings, **SOMLENG,
                              recording_hosts_override=("voice.example.org",))
    own = save_case(app, "https://voice.example.org/2010-04-01/Recordings/1")
    assert admin.get(f"/admin/cases/{own}/recording").status_code == 200
    assert fake_get.calls[-1]["url"] == "https://voice.example.org/2010-04-01/Recordings/1.mp3"
    default = save_case(app, SOMLENG_RECORDING)
    fake_get.calls.clear()
    assert admin.get(f"/admin/cases/{default}/recording").status_code == 503
    assert fake_get.calls == []


# --- ... and nowhere else -------------------------------------------------------------------


REFUSED = [  # provider, stored URL, why (as logged)
    ("twilio", "https://attacker@api.twilio.com/x", "a user name before its host"),
    ("twilio", "https://attacker\\@api.twilio.com/x", "a backslash"),  # requests: `attacker`
    ("twilio", "https://api.twilio.com\\x", "a backslash"),
    ("twilio", "https://attacker:secret@api.twilio.com/x", "a user name before its host"),
    ("twilio", "http://api.twilio.com/x", "not https"),
    ("twilio", "https://api.twilio.com.evil.net/x", "host 'api.twilio.com.evil.net' is not"),
    ("twilio", "https://evilapi.twilio.com/x", "host 'evilapi.twilio.com' is not"),
    ("twilio", "https://x.api.twilio.com/x", "host 'x.api.twilio.com' is not"),
    ("twilio", "https://api-twilio.com/x", "host 'api-twilio.com' is not"),
    ("twilio", "https://media.twilio.com/x", "host 'media.twilio.com' is not"),
    ("twilio", "https://api.somleng.org/x", "host 'api.somleng.org' is not"),
    ("twilio", "https://api.twilio.com:8443/x", "port 8443"),
    ("twilio", "https://api.twilio.com:notaport/x", "an invalid port"),
    ("twilio", "https://api.twilio.com/x?next=https://evil.net", "a query or a fragment"),
    ("twilio", "https://api.twilio.com/x y", "spaces"),
    ("twilio", "", "no recording URL"),
    ("somleng", "https://api.twilio.com/x", "host 'api.twilio.com' is not"),
    ("somleng", "https://attacker\\@api.somleng.org/x", "a backslash"),
    ("somleng", "https://api.somleng.org.evil.net/x", "host 'api.somleng.org.evil.net' is not"),
]


@pytest.mark.parametrize(("provider", "url", "why"), REFUSED)
def test_a_recording_elsewhere_is_refused_and_nothing_is_requested(settings, fake_get, caplog,
                                                                   provider, url, why):
    app, admin = admin_client(settings, **(SOMLENG if provider == "somleng" else TWILIO))
    reference = save_case(app, url)
    with caplog.at_level(logging.ERROR, logger="ivr.admin"):
        response = admin.get(f"/admin/cases/{reference}/recording?lang=en")
    assert response.status_code == 503
    trusted = "api.somleng.org" if provider == "somleng" else "api.twilio.com"
    page = response.get_data(as_text=True)
    assert "cannot be played" in page and f"trusted host ({trusted})" in page
    assert fake_get.calls == []  # our credentials went nowhere
    logged = caplog.text
    assert f"recording of case {reference} not fetched (provider {provider}): " in logged
    assert why in logged
    assert TOKEN not in logged and "secret" not in logged and "attacker" not in logged


def test_the_refusal_is_in_khmer_by_default(settings, fake_get):
    app, admin = admin_client(settings, **TWILIO)
    reference = save_case(app, "https://evilapi.twilio.com/x")
    response = admin.get(f"/admin/cases/{reference}/recording")
    assert response.status_code == 503
    assert "មិនអាចចាក់សំឡេងថតនេះបានទេ" in response.get_data(as_text=True)
    assert fake_get.calls == []


def test_the_host_check_is_exact_and_ignores_case():
    hosts = ("api.twilio.com",)
    assert trusted_recording_url("https://API.Twilio.com/x", hosts) == "https://API.Twilio.com/x"
    assert trusted_recording_url("https://api.twilio.com:443/x", hosts) is not None
    assert trusted_recording_url("https://api.twilio.com./x", hosts) is None
    assert trusted_recording_url("https://api.twilio.com/x#@evil.net", hosts) is None
    assert trusted_recording_url("https://api.twilio.com/x", ()) is None


# --- the settings ---------------------------------------------------------------------------


def test_the_provider_defaults_to_twilio_and_reads_the_environment():
    assert Settings.from_env({}).provider == "twilio"
    assert Settings.from_env({}).recording_hosts == ("api.twilio.com",)
    somleng = Settings.from_env({"IVR_PROVIDER": "somleng",
                                 "IVR_SOMLENG_API_URL": "https://API.Somleng.org/"})
    assert somleng.provider == "somleng" and somleng.recording_hosts == ("api.somleng.org",)
    hosts = Settings.from_env({"IVR_RECORDING_HOSTS": " a.example.org, B.example.org ,"})
    assert hosts.recording_hosts == ("a.example.org", "b.example.org")


def test_the_account_sid_keeps_its_old_name_and_has_an_alias():
    assert Settings.from_env({"TWILIO_ACCOUNT_SID": "AC1"}).twilio_account_sid == "AC1"
    assert Settings.from_env({"IVR_ACCOUNT_SID": SOMLENG_ACCOUNT}).twilio_account_sid == (
        SOMLENG_ACCOUNT)


@pytest.mark.parametrize(("env", "message"), [
    ({"IVR_PROVIDER": "plivo"}, r"IVR_PROVIDER is 'plivo': it must be one of twilio, somleng"),
    ({"IVR_PROVIDER": "somleng"}, r"IVR_SOMLENG_API_URL is not set"),
    ({"IVR_PROVIDER": "somleng", "IVR_SOMLENG_API_URL": "http://api.somleng.org"},
     r"IVR_SOMLENG_API_URL 'http://api.somleng.org': it must start with https://"),
    ({"IVR_PROVIDER": "somleng", "IVR_SOMLENG_API_URL": "https://x@api.somleng.org"},
     r"IVR_SOMLENG_API_URL .*without user name"),
    ({"IVR_PROVIDER": "somleng", "IVR_SOMLENG_API_URL": "https://api.somleng.org:8443"},
     r"IVR_SOMLENG_API_URL .*port \(443\)"),
    ({"IVR_RECORDING_HOSTS": "https://api.somleng.org"}, r"IVR_RECORDING_HOSTS: .*not a host"),
])
def test_a_wrong_provider_setting_stops_the_app_at_creation(settings, env, message):
    from_env = Settings.from_env({"TWILIO_AUTH_TOKEN": TOKEN, **env})
    with pytest.raises(RuntimeError, match=message):
        from_env.resolved()
    overrides = {"provider": from_env.provider, "somleng_api_url": from_env.somleng_api_url,
                 "recording_hosts_override": from_env.recording_hosts_override}
    with pytest.raises(RuntimeError, match=message):
        create_app(settings, **overrides)


def test_a_somleng_line_starts_with_an_https_api_url(settings):
    app = create_app(settings, provider="somleng", somleng_api_url=SOMLENG_API)
    assert app.extensions["ivr"].settings.recording_hosts == ("api.somleng.org",)


# --- ivr check ------------------------------------------------------------------------------


def run_check(monkeypatch, tmp_path, **env: str):
    monkeypatch.setenv("IVR_CATALOG", str(ROOT / "catalog.yaml"))
    monkeypatch.setenv("IVR_PROMPTS", str(ROOT / "prompts"))
    monkeypatch.setenv("IVR_AUDIO_DIR", str(tmp_path / "audio"))
    for name in ("IVR_PROVIDER", "IVR_SOMLENG_API_URL", "IVR_RECORDING_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(cli, ["check"])


def test_check_names_the_provider_and_its_recording_host(monkeypatch, tmp_path):
    twilio = run_check(monkeypatch, tmp_path)
    assert "provider: twilio (recordings from api.twilio.com)" in twilio.output
    somleng = run_check(monkeypatch, tmp_path, IVR_PROVIDER="somleng",
                        IVR_SOMLENG_API_URL=SOMLENG_API)
    assert "provider: somleng (recordings from api.somleng.org)" in somleng.output


def test_check_fails_on_a_wrong_provider(monkeypatch, tmp_path):
    result = run_check(monkeypatch, tmp_path, IVR_PROVIDER="somleng")
    assert result.exit_code == 1
    assert "provider: INVALID" in result.output and "IVR_SOMLENG_API_URL" in result.output
