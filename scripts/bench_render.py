"""How fast the renderer is offline: prompts per second with 1 and 4 jobs, and the cost of a
run where nothing changed (which must convert nothing).

Khmer is rendered with the placeholder engine, English with espeak-ng when it is installed
(else the placeholder too), into a temporary directory; Google is never called.

    python scripts/bench_render.py                # the bundled catalogue
    python scripts/bench_render.py --generated 60  # a generated list instead
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ivr import render as r  # noqa: E402
from ivr.utterance import Utterance  # noqa: E402


def generated(count: int) -> list[Utterance]:
    """Khmer and English prompts of varied length, like menus and service descriptions."""
    km = "សូមចុចលេខ{n} ដើម្បីស្តាប់ព័ត៌មានអំពីសេវា។ "
    en = "Press {n} to hear about this service. "
    return [Utterance(f"bench.{i:03d}", lang, (km if lang == "km" else en).format(n=i)
                      * (1 + i % 4))
            for i in range(count // 2) for lang in ("km", "en")]


def engines() -> dict[str, r.Engine]:
    placeholder = r.PlaceholderEngine()
    try:
        english: r.Engine = r.EspeakEngine()
    except r.RenderError:
        english = placeholder
    return {"km": placeholder, "en": english if "en" in (english.languages or {"en"})
            else placeholder}


def run(utterances: list[Utterance], audio: Path, by_lang: dict[str, r.Engine],
        jobs: int) -> tuple[float, int, int]:
    """One render of every language; (seconds, prompts rendered, conversions)."""
    start = time.perf_counter()
    rendered = conversions = 0
    for lang in sorted({u.lang for u in utterances}):
        engine = by_lang.get(lang, r.PlaceholderEngine())
        summary = r.render(utterances, audio, engine, langs=[lang], jobs=jobs)
        if summary.failed:
            raise SystemExit(f"failed: {summary.failed[:3]}")
        rendered += len(summary.rendered)
        conversions += summary.conversions
    return time.perf_counter() - start, rendered, conversions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=ROOT / "catalog.yaml")
    parser.add_argument("--prompts", type=Path, default=ROOT / "prompts")
    parser.add_argument("--generated", type=int, metavar="N",
                        help="render N generated prompts instead of the catalogue")
    args = parser.parse_args(argv)

    if args.generated:
        utterances, source = generated(args.generated), f"{args.generated} generated prompts"
    else:
        utterances = r.load_utterances(args.catalog, args.prompts)
        source = f"{args.catalog.name}"
    by_lang = engines()
    names = ", ".join(f"{lang}: {e.name}" for lang, e in sorted(by_lang.items()))
    print(f"{len(utterances)} prompts from {source} ({names})")

    work = Path(tempfile.mkdtemp(prefix="bench-render-"))
    try:
        for jobs in (1, 4):
            seconds, rendered, _ = run(utterances, work / f"jobs{jobs}", by_lang, jobs)
            print(f"--jobs {jobs}: {rendered} prompts in {seconds:.2f} s = "
                  f"{rendered / seconds:.1f} prompts/s")
        seconds, rendered, conversions = run(utterances, work / "jobs4", by_lang, 4)
        assert rendered == 0 and conversions == 0, (rendered, conversions)
        print(f"no-change run: {seconds * 1000:.0f} ms, {conversions} conversions")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
