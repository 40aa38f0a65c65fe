"""Time the admin scorecard page on a large database: 100,000 answers (25,000 ratings x 4
questions) in a temporary SQLite file, the page fetched signed in through the Flask test
client. The target is under 0.5 s per page.

    python scripts/bench_scorecard.py [--answers 100000] [--runs 7]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from seed_demo import seed  # noqa: E402

from ivr import create_app  # noqa: E402
from ivr.config import Settings  # noqa: E402

PASSWORD = "bench-password"
PAGES = ("/admin/scorecard", "/admin/scorecard?office=battambang",
         "/admin/export/scorecard/services.csv", "/admin/calls")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(auth_token="bench", catalog=ROOT / "catalog.yaml",
                            prompts=ROOT / "prompts", audio_dir=Path(tmp) / "audio",
                            database=Path(tmp) / "bench.db", caller_key=b"bench",
                            admin_password=PASSWORD)
        app = create_app(settings)
        line = app.extensions["ivr"]
        started = time.perf_counter()
        counts = seed(line.store, line.catalog, answers=args.answers, seed=1, months=12)
        print(f"seeded {counts['answers']:,} answers, {counts['events']:,} call steps in "
              f"{time.perf_counter() - started:.1f} s")
        client = app.test_client()
        form = client.get("/admin/login").get_data(as_text=True)
        token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore
        assert client.post("/admin/login", data={"csrf": token, "username": "admin",
                                                  "password": PASSWORD}
                           ).status_code == 302
        for page in PAGES:
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                response = client.get(page)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, (page, response.status_code)
            print(f"{page:40} median {statistics.median(times) * 1000:6.0f} ms   "
                  f"max {max(times) * 1000:6.0f} ms   ({args.runs} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
