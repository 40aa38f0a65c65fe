"""`ivr check`: is the catalogue valid, and does every prompt have current, real audio?

Twilio cannot speak Khmer, so a Khmer prompt without audio is a defect, not a detail.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ivr.audio import MANIFEST, read_manifest
from ivr.catalog import CatalogError, load_catalog, problems_of
from ivr.config import Settings
from ivr.prompts import PromptBook, load_wording

PLACEHOLDER_ENGINE = "placeholder"
PLACEHOLDERS_LISTED = 3  # of each kind (an office's hours, ...): the rest are counted


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)  # the line is wrong or incomplete
    warnings: list[str] = field(default_factory=list)  # not production-ready (--strict)
    lines: list[str] = field(default_factory=list)  # the readable report

    def failed(self, strict: bool) -> bool:
        return bool(self.errors or (strict and self.warnings))


def check(catalog_path: Path, prompts_dir: Path, audio_dir: Path,
          settings: Settings | None = None) -> Report:
    """Check the provider setting (`settings`, default: the environment), the catalogue at
    `catalog_path`, the wording in `prompts_dir` and the audio in `audio_dir`."""
    report = Report()
    out = report.lines
    check_provider(settings if settings is not None else Settings.from_env(), report)
    try:
        catalog = load_catalog(catalog_path)
        book = PromptBook(catalog, load_wording(prompts_dir, catalog.languages))
    except CatalogError as exc:
        problems = problems_of(exc)
        report.errors.extend(str(p) for p in problems)
        out.append(f"catalogue: INVALID, {len(problems)} "
                   f"error{'s' if len(problems) != 1 else ''}:")
        out.extend(f"  {p}" for p in problems)
        return report
    services = sum(1 for _ in catalog.services())
    out.append(f"catalogue: {catalog_path}: {len(catalog.categories)} categories, "
               f"{services} services, {len(catalog.offices)} offices: valid")

    if catalog.placeholders:
        out.append(f"placeholders an administrator must fill in: {len(catalog.placeholders)}")
        kinds: dict[str, list] = defaultdict(list)  # "office 'x'.hours" -> "hours"
        for p in catalog.placeholders:
            kinds[p.where.split(".", 1)[-1]].append(p)
            report.warnings.append(f"placeholder {p.where}")
        for kind, found in kinds.items():
            for p in found[:PLACEHOLDERS_LISTED]:
                out.append(f"  {catalog_path}:{p.line}: {p.where}: {p.value}")
            if len(found) > PLACEHOLDERS_LISTED:
                out.append(f"  ... and {kind} of {len(found) - PLACEHOLDERS_LISTED} more "
                           "offices")

    entries = read_manifest(audio_dir)
    utterances = book.utterances()
    missing: dict[str, list[str]] = defaultdict(list)
    stale: dict[str, list[str]] = defaultdict(list)
    fake: dict[str, list[str]] = defaultdict(list)
    referenced: set[str] = set()
    for u in utterances:
        entry = entries.get((u.key, u.lang))
        if entry is not None:
            referenced.add(entry.file)
        if entry is None or not (audio_dir / entry.file).is_file():
            missing[u.lang].append(u.key)
        elif entry.text != u.text:
            stale[u.lang].append(u.key)
        elif entry.engine == PLACEHOLDER_ENGINE:
            fake[u.lang].append(u.key)
    orphans = sorted(
        str(path.relative_to(audio_dir)) for path in audio_dir.glob("*/*")
        if path.is_file() and str(path.relative_to(audio_dir)) not in referenced
    ) if audio_dir.is_dir() else []

    for lang in catalog.languages:
        total = sum(1 for u in utterances if u.lang == lang)
        ok = total - len(missing[lang]) - len(stale[lang]) - len(fake[lang])
        out.append(f"audio [{lang}]: {total} prompts: {ok} ready, {len(missing[lang])} missing, "
                   f"{len(stale[lang])} stale, {len(fake[lang])} placeholder audio")
        if len(missing[lang]) == total:  # nothing rendered yet: one line, not a list
            out.append(f"  no audio rendered yet for [{lang}]")
            report.errors.extend(f"missing: {key} [{lang}]" for key in missing[lang])
            missing_listed = []
        else:
            missing_listed = missing[lang]
        for label, keys, bucket in (("missing", missing_listed, report.errors),
                                    ("stale (text changed since rendering)", stale[lang],
                                     report.errors),
                                    ("placeholder audio (not real speech)", fake[lang],
                                     report.warnings)):
            for key in keys:
                out.append(f"  {label}: {key}")
                bucket.append(f"{label}: {key} [{lang}]")
    if orphans:
        out.append(f"orphan audio files (nothing refers to them): {len(orphans)}")
        out.extend(f"  {name}" for name in orphans)
        report.warnings.extend(f"orphan {name}" for name in orphans)

    if any(missing.values()) or any(stale.values()) or any(fake.values()):
        manifest = audio_dir / MANIFEST
        out.append(
            "\nTo fix the audio, render it (gTTS needs the internet):\n"
            "    python scripts/render_prompts.py\n"
            "To try the line with no internet, render placeholder audio (not for callers):\n"
            "    python scripts/render_prompts.py --engine placeholder\n"
            f"(manifest: {manifest})"
        )
    return report


def check_provider(settings: Settings, report: Report) -> None:
    """One line: the provider and the hosts recordings are fetched from; an error if wrong."""
    try:
        settings.check_provider()
    except RuntimeError as exc:
        report.errors.append(str(exc))
        report.lines.append(f"provider: INVALID\n  {exc}")
        return
    report.lines.append(f"provider: {settings.provider} "
                        f"(recordings from {', '.join(settings.recording_hosts)})")
