"""The baseline for scripts/loadtest.py: a bare Flask app that answers a small TwiML string.

It does what every web app must do and nothing the line does (no signature check, no call
flow, no database), so `loadtest.py` can report the line's throughput as a share of what
Flask under the same gunicorn settings serves on this machine. Its Gather posts back to
/voice, so the load generator runs the very same call scripts against it.

    gunicorn -c python:ivr.gunicorn_conf --pythonpath scripts hello_app:app
"""

from __future__ import annotations

from flask import Flask, Response

TWIML = ('<?xml version="1.0" encoding="UTF-8"?><Response>'
         '<Gather action="/voice" method="POST" numDigits="1" timeout="6">'
         '<Say language="en-US">Hello</Say></Gather>'
         '<Redirect method="POST">/voice</Redirect></Response>')

app = Flask(__name__)


@app.route("/voice", methods=["GET", "POST"])
@app.route("/voice/<path:rest>", methods=["GET", "POST"])
def hello(rest: str = "") -> Response:
    return Response(TWIML, mimetype="text/xml")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
