"""create_app(): the only way an app is made. Configuration is read here, not at import."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from ivr.audio import AudioLibrary
from ivr.catalog import Catalog, CatalogError, load_catalog
from ivr.config import Settings
from ivr.flow import CallFlow, CallInfo, Urls
from ivr.prompts import PromptBook, load_wording
from ivr.store import Store

log = logging.getLogger(__name__)


class LiveCatalog:
    """The catalogue and its prompts, re-read when an administrator changes the files.

    A broken edit never takes the line down: the running line keeps its last good catalogue
    and logs what is wrong (start-up, by contrast, refuses a broken catalogue). A request
    only notices the change (a stat of the files, at most once a second); the files are read
    and checked in a thread of their own, and the requests meanwhile keep the catalogue they
    had, so no caller waits while a large catalogue is parsed.
    """

    RECHECK_SECONDS = 1.0

    def __init__(self, settings: Settings):
        self.settings = settings
        self._stamp = self._files_stamp()
        # (catalogue, prompt book, generation), replaced in one assignment so a request never
        # sees a catalogue with another's prompts; the generation counts reloads, so menus
        # rendered from an older catalogue are not reused
        self._state = (*self._load(), 0)
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self.loader: threading.Thread | None = None  # the reload in progress, if any

    def _load(self) -> tuple[Catalog, PromptBook]:
        catalog = load_catalog(self.settings.catalog)
        return catalog, PromptBook(catalog, load_wording(self.settings.prompts,
                                                         catalog.languages))

    def _files_stamp(self) -> tuple:
        paths = [self.settings.catalog, *sorted(Path(self.settings.prompts).glob("*.yaml"))]
        stamp = []
        for path in paths:
            try:
                st = os.stat(path)
                stamp.append((str(path), st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append((str(path), None, None))
        return tuple(stamp)

    def current(self) -> tuple[Catalog, PromptBook, int]:
        now = time.monotonic()
        if now - self._checked >= self.RECHECK_SECONDS and self._lock.acquire(blocking=False):
            try:
                self._checked = now
                loading = self.loader is not None and self.loader.is_alive()
                if not loading and self._files_stamp() != self._stamp:
                    self.loader = threading.Thread(target=self._reload, name="ivr-catalogue",
                                                   daemon=True)
                    self.loader.start()
            finally:
                self._lock.release()
        return self._state

    def _reload(self) -> None:
        stamp = self._files_stamp()  # what is read now (a later edit is noticed afterwards)
        try:
            catalog, book = self._load()
        except CatalogError as exc:
            log.error("catalogue change NOT applied, the line keeps the last good "
                      "catalogue: %s", exc)
        except Exception:
            log.exception("catalogue change NOT applied, the line keeps the last good one")
        else:
            self._state = (catalog, book, self._state[2] + 1)
            log.info("catalogue reloaded from %s", self.settings.catalog)
        self._stamp = stamp


@dataclass
class Line:
    """Everything a request needs, loaded and validated once at start-up."""

    settings: Settings
    live: LiveCatalog
    audio: AudioLibrary
    store: Store
    clock: Callable[[], datetime] | None = None  # tests fix the time; None: the real clock
    menus: dict = field(default_factory=dict)  # rendered menus, kept per process

    @property
    def catalog(self) -> Catalog:
        return self.live.current()[0]

    @property
    def book(self) -> PromptBook:
        return self.live.current()[1]

    def flow(self, urls: Urls, call: CallInfo | None = None) -> CallFlow:
        extra = {"now": self.clock} if self.clock else {}
        catalog, book, generation = self.live.current()
        return CallFlow(catalog, book, self.audio, urls, store=self.store,
                        call=call or CallInfo(),
                        caller_id=self.settings.caller_id,
                        cache=self.menus, generation=generation, **extra)


def load_line(settings: Settings) -> Line:
    assert settings.caller_key is not None
    return Line(settings, LiveCatalog(settings), AudioLibrary(settings.audio_dir),
                Store(settings.database, settings.caller_key))


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the app from `settings` (default: the environment) with optional overrides."""
    settings = (settings or Settings.from_env())
    if overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)
    settings = settings.resolved()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # webhooks are small; refuse huge bodies
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops,  # type: ignore
                                x_proto=settings.proxy_hops, x_host=settings.proxy_hops,
                                x_port=settings.proxy_hops, x_prefix=settings.proxy_hops)
    app.extensions["ivr"] = load_line(settings)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                            "%(message)s")

    from ivr import admin, audio_views, phone, voice

    app.register_blueprint(voice.bp)
    app.register_blueprint(audio_views.bp)
    app.secret_key = admin.secret_key(settings)
    app.register_blueprint(admin.bp)
    app.register_blueprint(phone.bp)

    @app.get("/health")
    def health() -> dict[str, Any]:
        line: Line = app.extensions["ivr"]
        return {"status": "ok", "services": sum(1 for _ in line.catalog.services())}

    return app
