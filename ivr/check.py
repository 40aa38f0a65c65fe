"""`ivr check`: is the catalogue valid, and does every prompt have current, real audio?

Twilio cannot speak Khmer, so a Khmer prompt without audio is a defect, not a detail.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ivr.audio import MANIFEST, read_manifest
from ivr.catalog import CatalogError, load_catalog, problems_of
from ivr.config import Settings
from ivr.prompts import PromptBook, load_wording
from ivr.render import (
    MISSING,
    PERSON,
    PLACEHOLDER,
    STALE,
    STATUSES,
    Source,
    audio_sources,
    source_counts,
)

PLACEHOLDERS_LISTED = 3  # of each kind (an office's hours, ...): the rest are counted
LISTED = 10  # keys listed under a count


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
    sources = audio_sources(utterances, audio_dir, prompts_dir / "recordings")
    referenced = {e.file for e in entries.values()}
    orphans = sorted(
        str(path.relative_to(audio_dir)) for path in audio_dir.glob("*/*")
        if path.is_file() and str(path.relative_to(audio_dir)) not in referenced
    ) if audio_dir.is_dir() else []

    needed = recordings_needed(book)
    unheard = False  # some prompt would be English <Say> (or its stale audio) to a caller
    for lang in catalog.languages:
        mine = [s for s in sources if s.lang == lang]
        out.append(audio_line(lang, mine))
        played = [s for s in mine if not book.only_part(s.key, lang)]
        parts = [s for s in mine if book.only_part(s.key, lang)]
        if all(s.status == MISSING for s in mine):  # nothing rendered yet: one line, not a list
            out.append(f"  no audio rendered yet for [{lang}]")
            report.errors.extend(f"missing: {s.key} [{lang}]" for s in played)
            unheard = True
            continue
        for s in played:
            if s.status == MISSING:
                label = "missing"
            elif s.status == STALE:
                label = "stale (text changed since rendering)"
            else:
                continue
            unheard = True
            out.append(f"  {label}: {s.key}")
            report.errors.append(f"{label}: {s.key} [{lang}] (callers hear English <Say>)")
        for s in played:
            if s.status == PLACEHOLDER:
                out.append(f"  placeholder audio (not real speech): {s.key}")
                report.warnings.append(f"placeholder audio: {s.key} [{lang}]")
        composed = [s for s in played if s.composed]
        if composed:
            out.append(f"  said from their parts (own audio stale or missing): {len(composed)}")
            out.extend(f"    {s.key}" for s in composed[:LISTED])
            if len(composed) > LISTED:
                out.append(f"    ... and {len(composed) - LISTED} more")
        for label, group in (
            ("parts without current audio (a sentence whose audio goes stale cannot then be "
             "said from them)", [s for s in parts if not s.playable]),
            ("placeholder audio in parts", [s for s in parts if s.status == PLACEHOLDER]),
            ("a person's recording says an older text (said from its parts; record it again "
             "for a whole sentence's flow)", [s for s in mine if s.recording_stale])):
            if not group:
                continue
            out.append(f"  {label}: {len(group)}")
            out.extend(f"    {s.key}" for s in group[:LISTED])
            if len(group) > LISTED:
                out.append(f"    ... and {len(group) - LISTED} more")
            if not label.startswith("a person's"):  # that one is heard right: a note only
                report.warnings.extend(f"{label.split(' (')[0]}: {s.key} [{lang}]"
                                       for s in group)
        leaves, whole = needed[lang]
        recorded = sum(1 for s in mine if s.key in leaves and s.recording is not None
                       and not s.recording_stale)
        out.append(f"  a person's voice for all of [{lang}]: {len(leaves)} recordings "
                   f"({whole} if every sentence were recorded whole); {recorded} made")
    if orphans:
        out.append(f"orphan audio files (nothing refers to them): {len(orphans)}")
        out.extend(f"  {name}" for name in orphans)
        report.warnings.extend(f"orphan {name}" for name in orphans)

    if unheard or any(s.status == PLACEHOLDER for s in sources):
        manifest = audio_dir / MANIFEST
        out.append(
            "\nTo fix the audio, render it (needs the internet; Azure's neural voice with "
            "AZURE_SPEECH_KEY and AZURE_SPEECH_REGION set, see README):\n"
            "    python scripts/render_prompts.py --engine azure\n"
            "or with gTTS:\n"
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


def audio_line(lang: str, sources: Sequence[Source]) -> str:
    """The one line a deployer reads: where the audio callers hear in `lang` comes from."""
    counts = source_counts(sources).get(lang, dict.fromkeys(STATUSES, 0))
    engines: dict[str, int] = defaultdict(int)
    for s in sources:
        if s.status not in (PERSON, PLACEHOLDER, STALE, MISSING):
            for name in s.engine.split("+"):
                if name and name != "recording":
                    engines[name] += 1
    named = f" ({', '.join(sorted(engines))})" if engines else ""
    composed = sum(1 for s in sources if s.composed)
    return (f"audio [{lang}]: {len(sources)} utterances: {counts[PERSON]} a person's voice, "
            f"{counts['engine']} an engine's{named}, {counts[PLACEHOLDER]} placeholder, "
            f"{counts[STALE]} stale, {counts[MISSING]} missing"
            + (f"; {composed} said from their parts" if composed else ""))


def recordings_needed(book: PromptBook) -> dict[str, tuple[set[str], int]]:
    """Per language: the utterances a voice talent records for every prompt to be in a
    person's voice (each fixed sentence, phrase, number word and name once; a sentence made
    of parts needs no recording of its own), and how many it would take if every sentence
    were recorded whole (as before sentences could be said from their parts)."""
    result: dict[str, tuple[set[str], int]] = {}
    for lang in book.catalog.languages:
        mine = [u for u in book.utterances() if u.lang == lang]
        leaves = {u.key for u in mine if not u.parts}
        whole = sum(1 for u in mine if not book.only_part(u.key, lang))
        result[lang] = (leaves, whole)
    return result
