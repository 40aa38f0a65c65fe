"""Benchmark: the line's own CPU time per webhook, in-process, without HTTP or a load generator.

Simulated calls (browsing, rating, complaint, Ombudsman) run through the Flask app on a
temporary SQLite file; only the time inside the WSGI app is counted, so the figure moves
with the code, not with whatever else the machine is doing. The load test
(scripts/loadtest.py) measures the whole line under gunicorn; this says where a change
helped.

    python scripts/bench_webhooks.py            # 300 calls per round, best of 5 rounds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from ivr.app import create_app  # noqa: E402
from ivr.config import Settings  # noqa: E402
from ivr.simulate import Simulator  # noqa: E402

TOKEN = "bench-auth-token"
SCRIPTS = [  # keys per menu, as `ivr call --keys` takes them
    "2 1 4 1 2 4",  # English: services, a category, a service, its facts, back
    "- 1 5 1",  # Khmer by silence: services, a category, a service
    "2 2 1 0105# 1 2 1 4 3 2 9 2",  # rate a service: office code, survey, no comment
    "2 4 1 1 0105# 1",  # a complaint: topic, office, recorded message
    "2 3 1 0105# 1 1",  # the Ombudsman's office
]


class Timed:
    """WSGI middleware adding up the time spent inside the app."""

    def __init__(self, app: Any):
        self.app, self.seconds, self.requests = app, 0.0, 0

    def __call__(self, environ: dict, start_response: Any) -> Any:
        began = time.perf_counter()
        try:
            return list(self.app(environ, start_response))
        finally:
            self.seconds += time.perf_counter() - began
            self.requests += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per round (300)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best counts (5)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(auth_token=TOKEN, catalog=ROOT / "catalog.yaml",
                            prompts=ROOT / "prompts", audio_dir=ROOT / "audio",
                            database=Path(tmp) / "ivr.db", caller_key=b"bench-caller-key")
        app = create_app(settings)
        timed = Timed(app.wsgi_app)
        app.wsgi_app = timed  # type: ignore[method-assign]
        sim = Simulator(app, TOKEN)
        per_request = []
        for _ in range(args.rounds):
            timed.seconds, timed.requests = 0.0, 0
            for i in range(args.calls):
                sim.caller = f"+85512{i:07d}"
                sim.call(SCRIPTS[i % len(SCRIPTS)])
            per_request.append(timed.seconds / timed.requests * 1e6)
        print(f"{timed.requests} webhooks per round; app time per webhook: best "
              f"{min(per_request):.0f} µs, median {statistics.median(per_request):.0f} µs "
              f"over {args.rounds} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
