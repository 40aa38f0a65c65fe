"""Settings from environment variables, read when an app is created (never at import)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DEV_AUTH_TOKEN = "dev-only-token-not-for-production"


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

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
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
            development=env.get("IVR_DEVELOPMENT", "") in ("1", "true", "yes"),
            secret_key=env.get("IVR_SECRET_KEY") or None,
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
        )
        return replace(settings, **overrides)

    def resolved(self) -> Settings:
        """Fill in what has a safe default: the caller key, and the token in development."""
        token = self.auth_token
        if token is None:
            if not self.development:
                raise RuntimeError(
                    "TWILIO_AUTH_TOKEN is not set: the line cannot verify that requests come "
                    "from Twilio. Set it (Twilio console > Account > Auth Token), or run "
                    "`ivr serve` for local development."
                )
            token = DEV_AUTH_TOKEN
        return replace(self, auth_token=token, caller_key=self.caller_key or self._stored_key())

    def _stored_key(self) -> bytes:
        return stored_secret(self.database.parent / "caller.key").encode()


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
