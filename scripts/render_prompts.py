"""Render the line's prompts to audio: the command administrators run after editing
catalog.yaml or prompts/ (`ivr render` runs the same code).

    python scripts/render_prompts.py                 # gTTS, only what changed
    python scripts/render_prompts.py --engine placeholder --lang km --dry-run
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable from a fresh clone, without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from ivr import render  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    """Options as `--help` shows; exit status 1 if any prompt failed."""
    return render.main(argv)


if __name__ == "__main__":
    sys.exit(main())
