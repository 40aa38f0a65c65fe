"""create_app(): the only way an app is made. Configuration is read here, not at import."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from ivr.audio import AudioLibrary
from ivr.catalog import Catalog, load_catalog
from ivr.config import Settings
from ivr.flow import CallFlow, CallInfo, Urls
from ivr.prompts import PromptBook, load_wording
from ivr.store import Store

log = logging.getLogger(__name__)


@dataclass
class Line:
    """Everything a request needs, loaded and validated once at start-up."""

    settings: Settings
    catalog: Catalog
    book: PromptBook
    audio: AudioLibrary
    store: Store
    clock: Callable[[], datetime] | None = None  # tests fix the time; None: the real clock

    def flow(self, urls: Urls, call: CallInfo | None = None) -> CallFlow:
        extra = {"now": self.clock} if self.clock else {}
        return CallFlow(self.catalog, self.book, self.audio, urls, store=self.store,
                        call=call or CallInfo(),
                        caller_id=self.settings.caller_id, **extra)


def load_line(settings: Settings) -> Line:
    catalog = load_catalog(settings.catalog)
    book = PromptBook(catalog, load_wording(settings.prompts, catalog.languages))
    assert settings.caller_key is not None
    return Line(settings, catalog, book, AudioLibrary(settings.audio_dir),
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

    from ivr import audio_views, voice

    app.register_blueprint(voice.bp)
    app.register_blueprint(audio_views.bp)

    @app.get("/health")
    def health() -> dict[str, Any]:
        line: Line = app.extensions["ivr"]
        return {"status": "ok", "services": sum(1 for _ in line.catalog.services())}

    return app
