"""create_app(): the only way an app is made. Configuration is read here, not at import."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from ivr.config import Settings
from ivr.line import Line, LiveCatalog, load_line

__all__ = ["create_app", "Line", "LiveCatalog", "load_line"]


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

    from ivr import admin, audio_views, callback, phone, replies, studio_phone, voice

    app.register_blueprint(voice.bp)
    app.register_blueprint(callback.bp)
    app.register_blueprint(audio_views.bp)
    app.register_blueprint(replies.bp)  # office replies to cases, by signed URL
    app.secret_key = admin.secret_key(settings)
    app.register_blueprint(admin.bp)
    app.register_blueprint(phone.bp)
    app.register_blueprint(studio_phone.bp)  # the phone studio: its own number, IVR_STUDIO_PIN

    @app.get("/health")
    def health() -> dict[str, Any]:
        line: Line = app.extensions["ivr"]
        return {"status": "ok", "services": sum(1 for _ in line.catalog.services())}

    return app
