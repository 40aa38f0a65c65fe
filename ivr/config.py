"""Settings from environment variables, read when an app is created (never at import)."""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEV_AUTH_TOKEN = "dev-only-token-not-for-production"
# Secrets may be given as files instead (NAME_FILE=path, e.g. a systemd credential): a file
# only root can read, outside the database's folder, is where they belong (README,
# "Settings").
SECRETS = ("TWILIO_AUTH_TOKEN", "IVR_CALLER_KEY", "IVR_ADMIN_PASSWORD", "IVR_SECRET_KEY")
PROVIDERS = ("twilio", "somleng")
log = logging.getLogger(__name__)
TWILIO_RECORDING_HOSTS = ("api.twilio.com",)
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


@dataclass(frozen=True)
class Settings:
    auth_token: str | None = None
    catalog: Path = Path("catalog.yaml")
    prompts: Path = Path("prompts")
    audio_dir: Path = Path("audio")
    database: Path = Path("instance/ivr.db")
    caller_key: bytes | None = None
    admin_password: str | None = None
    proxy_hops: int = 0
    caller_id: str | None = None  # the number the Ombudsman sees when the line dials
    development: bool = False
    secret_key: str | None = None  # signs admin sessions; generated beside the database if unset
    twilio_account_sid: str | None = None  # with auth_token: fetch recordings for admin pages
    provider: str = "twilio"  # who calls the webhooks: "twilio" or "somleng"
    somleng_api_url: str | None = None  # the Somleng deployment's API, e.g. https://api.somleng.org
    recording_hosts_override: tuple[str, ...] = ()  # IVR_RECORDING_HOSTS: exact host names
    # the addresses of the reverse proxies whose X-Forwarded-For the admin pages believe (for
    # sign-in throttling and the audit log); a request from anywhere else is its own address
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    admin_idle_minutes: int = 30  # an admin session unused this long ends
    retention_days: int = 365  # recordings and notes of cases closed this long ago: `ivr purge`

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if environ is None else environ)
        if (env.get("IVR_DEVELOPMENT", "").strip().lower() not in ("", "0", "false", "no")
                and "development" not in overrides):
            # development settings (the public development token, /phone open to anyone) come
            # only with `ivr serve` and `ivr call`, never from the environment of a server
            raise RuntimeError(
                "IVR_DEVELOPMENT is set: development mode is not a setting of the line. "
                "Unset it; run `ivr serve` for a development server.")
        env.update(secrets_from_files(env))
        key = env.get("IVR_CALLER_KEY")
        settings = cls(
            auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            catalog=Path(env.get("IVR_CATALOG", "catalog.yaml")),
            prompts=Path(env.get("IVR_PROMPTS", "prompts")),
            audio_dir=Path(env.get("IVR_AUDIO_DIR", "audio")),
            database=Path(env.get("IVR_DATABASE", "instance/ivr.db")),
            caller_key=key.encode() if key else None,
            admin_password=env.get("IVR_ADMIN_PASSWORD") or None,
            proxy_hops=int(env.get("IVR_PROXY_HOPS", "0") or 0),
            caller_id=env.get("IVR_CALLER_ID") or None,
            secret_key=env.get("IVR_SECRET_KEY") or None,
            twilio_account_sid=(env.get("TWILIO_ACCOUNT_SID") or env.get("IVR_ACCOUNT_SID")
                                or None),
            provider=(env.get("IVR_PROVIDER") or "").strip().lower() or "twilio",
            somleng_api_url=env.get("IVR_SOMLENG_API_URL") or None,
            recording_hosts_override=host_list(env.get("IVR_RECORDING_HOSTS", "")),
            trusted_proxies=host_list(env.get("IVR_TRUSTED_PROXIES", "127.0.0.1,::1")),
            admin_idle_minutes=whole_number(env, "IVR_ADMIN_IDLE_MINUTES", 30),
            retention_days=whole_number(env, "IVR_RETENTION_DAYS", 365),
        )
        return replace(settings, **overrides)

    @property
    def recording_hosts(self) -> tuple[str, ...]:
        """The exact host names recordings may be fetched from with our credentials."""
        if self.recording_hosts_override:
            return self.recording_hosts_override
        if self.provider == "somleng":
            host = urlsplit(self.somleng_api_url or "").hostname
            return (host,) if host else ()
        return TWILIO_RECORDING_HOSTS

    def check_provider(self) -> None:
        """Refuse a provider setting that is unknown, incomplete or unsafe (RuntimeError)."""
        if self.provider not in PROVIDERS:
            raise RuntimeError(
                f"IVR_PROVIDER is {self.provider!r}: it must be one of "
                f"{', '.join(PROVIDERS)} (unset means twilio)."
            )
        if self.provider == "somleng":
            if not self.somleng_api_url:
                raise RuntimeError(
                    "IVR_PROVIDER is somleng but IVR_SOMLENG_API_URL is not set: set it to the "
                    "Somleng deployment's API address, e.g. https://api.somleng.org."
                )
            problem = api_url_problem(self.somleng_api_url)
            if problem:
                raise RuntimeError(f"IVR_SOMLENG_API_URL {self.somleng_api_url!r}: {problem}.")
        for host in self.recording_hosts_override:
            if not HOST_NAME.fullmatch(host):
                raise RuntimeError(
                    f"IVR_RECORDING_HOSTS: {host!r} is not a host name: list exact host names "
                    "separated by commas, e.g. api.somleng.org (no scheme, path or port)."
                )

    def resolved(self) -> Settings:
        """Fill in what has a safe default: the caller key, and the token in development.
        Refuses a wrong provider setting first (RuntimeError)."""
        self.check_provider()
        token = self.auth_token
        if token is None:
            if not self.development:
                where = ("the Somleng account's auth token" if self.provider == "somleng"
                         else "Twilio console > Account > Auth Token")
                raise RuntimeError(
                    f"TWILIO_AUTH_TOKEN is not set: the line cannot verify that requests come "
                    f"from {self.provider.capitalize()}. Set it ({where}), or run "
                    "`ivr serve` for local development."
                )
            token = DEV_AUTH_TOKEN
        return replace(self, auth_token=token, caller_key=self.caller_key or self._stored_key())

    def _stored_key(self) -> bytes:
        path = self.database.parent / "caller.key"
        if not self.development:
            log.warning(
                "IVR_CALLER_KEY is not set: the caller key is kept in %s, beside the "
                "database; whoever has a copy of both can recover every caller's number. "
                "Keep it apart (IVR_CALLER_KEY_FILE, README \"Settings\").", path)
        return stored_secret(path).encode()


def secrets_from_files(env: dict[str, str]) -> dict[str, str]:
    """The secrets given as NAME_FILE=path, read (one trailing newline dropped)."""
    found = {}
    for name in SECRETS:
        path = env.get(f"{name}_FILE")
        if not path:
            continue
        if env.get(name):
            raise RuntimeError(f"both {name} and {name}_FILE are set: set one of them.")
        try:
            found[name] = Path(path).read_text(encoding="utf-8").removesuffix("\n")
        except OSError as exc:
            raise RuntimeError(f"{name}_FILE: cannot read {path} ({exc.strerror}).") from None
        if not found[name]:
            raise RuntimeError(f"{name}_FILE: {path} is empty.")
    return found


def whole_number(env: Any, name: str, default: int) -> int:
    """A positive whole number from the environment (RuntimeError, naming it, otherwise)."""
    value = (env.get(name) or "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise RuntimeError(f"{name} is {value!r}: it must be a whole number, 1 or more.")
    return int(value)


def host_list(value: str) -> tuple[str, ...]:
    """'api.a.org, API.b.org' -> ('api.a.org', 'api.b.org'); empty items dropped."""
    return tuple(host.strip().lower() for host in value.split(",") if host.strip())


def api_url_problem(url: str) -> str | None:
    """Why `url` is not a plain https API address (None when it is one)."""
    if "\\" in url or "@" in url or not url.isascii():
        return "it must be a plain address without user name, backslash or non-ASCII letters"
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "it must start with https:// (recordings are fetched with the account's token)"
    try:
        port = parts.port
    except ValueError:
        return "its port is not a number"
    if not parts.hostname or not HOST_NAME.fullmatch(parts.hostname):
        return "it has no valid host name"
    if port not in (None, 443):
        return "it must use the standard https port (443)"
    return None


def stored_secret(path: Path) -> str:
    """A random secret generated once into `path` (mode 0600) and read back ever after, so
    every gunicorn worker and every restart uses the same one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path.read_text().strip()
