"""owso-ivr: the One Window Service Office phone line (Khmer first)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(settings: Any = None, **overrides: Any) -> Flask:
    """Build the Flask app (gunicorn: `gunicorn 'ivr:create_app()'`)."""
    from ivr.app import create_app as build

    return build(settings, **overrides)


__all__ = ["create_app"]
