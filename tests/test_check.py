"""`ivr check`: what a new user or an administrator is told about the catalogue and audio."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ivr.catalog import load_catalog
from ivr.cli import main as cli
from ivr.prompts import PromptBook, load_wording
from tests.support import ROOT


def run_check(monkeypatch, audio_dir, *args, catalog=ROOT / "catalog.yaml"):
    monkeypatch.setenv("IVR_CATALOG", str(catalog))
    monkeypatch.setenv("IVR_PROMPTS", str(ROOT / "prompts"))
    monkeypatch.setenv("IVR_AUDIO_DIR", str(audio_dir))
    return CliRunner().invoke(cli, ["check", *args])


def write_manifest(audio_dir, entries):
    audio_dir.mkdir(parents=True, exist_ok=True)
    (audio_dir / "manifest.json").write_text(json.dumps({"version": 1, "prompts": entries}))


def full_manifest(audio_dir, engine="gtts"):
    """Every prompt rendered (files are stand-ins: check reads the manifest, not the audio)."""
    catalog = load_catalog(ROOT / "catalog.yaml")
    book = PromptBook(catalog, load_wording(ROOT / "prompts", catalog.languages))
    entries = []
    for i, u in enumerate(book.utterances()):
        (audio_dir / u.lang).mkdir(parents=True, exist_ok=True)
        (audio_dir / u.lang / f"{i}.wav").write_bytes(b"RIFF")
        entries.append({"key": u.key, "lang": u.lang, "text": u.text, "file": f"{u.lang}/{i}.wav",
                        "duration_ms": 900, "engine": engine})
    write_manifest(audio_dir, entries)
    return entries


def test_fresh_clone_says_what_is_missing_and_how_to_fix_it(monkeypatch, tmp_path):
    result = run_check(monkeypatch, tmp_path / "audio")
    assert result.exit_code == 1
    assert "no audio rendered yet for [km]" in result.output
    assert "python scripts/render_prompts.py" in result.output
    # 235 offices x 3 placeholders: a few of each kind are shown, the rest counted
    assert "placeholders an administrator must fill in: 705" in result.output
    assert "office 'mangkul-bourei'.ombudsman.phone: PLACEHOLDER" in result.output
    assert "... and ombudsman.phone of 232 more offices" in result.output
    assert len(result.output.splitlines()) < 40


def test_complete_real_audio_passes_but_strict_fails_on_placeholders(monkeypatch, tmp_path):
    entries = full_manifest(tmp_path / "audio")
    result = run_check(monkeypatch, tmp_path / "audio")
    assert result.exit_code == 0, result.output
    for lang in ("km", "en"):
        total = sum(1 for e in entries if e["lang"] == lang)
        assert (f"audio [{lang}]: {total} utterances: 0 a person's voice, {total} an engine's "
                "(gtts), 0 placeholder, 0 stale, 0 missing\n") in result.output
    strict = run_check(monkeypatch, tmp_path / "audio", "--strict")
    assert strict.exit_code == 1 and "placeholders an administrator must fill in" in strict.output


def test_stale_missing_placeholder_audio_and_orphans_are_reported(monkeypatch, tmp_path):
    audio = tmp_path / "audio"
    entries = full_manifest(audio)
    fee = next(e for e in entries if e["key"] == "service.barber-2-4-chairs.info"
               and e["lang"] == "km")
    fee["text"] = fee["text"].replace("ពីរម៉ឺន", "មួយម៉ឺន")  # rendered before the fee changed
    # and it cannot be said from its parts: the service's name has no audio
    entries.remove(next(e for e in entries if e["lang"] == "km"
                        and e["key"] == "catalog.service.barber-2-4-chairs.name"))
    gone = next(e for e in entries if e["key"] == "greeting" and e["lang"] == "km")
    entries.remove(gone)
    fake = next(e for e in entries if e["key"] == "goodbye" and e["lang"] == "en")
    fake["engine"] = "placeholder"
    write_manifest(audio, entries)
    (audio / "km" / "orphan.wav").write_bytes(b"RIFF")
    result = run_check(monkeypatch, audio)
    assert result.exit_code == 1
    assert "missing: greeting" in result.output
    assert "stale (text changed since rendering): service.barber-2-4-chairs.info" in result.output
    assert "placeholder audio (not real speech): goodbye" in result.output
    assert "km/orphan.wav" in result.output


def test_a_broken_catalogue_is_reported_with_its_line(monkeypatch, tmp_path):
    broken = tmp_path / "catalog.yaml"
    broken.write_text((ROOT / "catalog.yaml").read_text(encoding="utf-8")
                      .replace("max_days: 28", "max_days: soon"), encoding="utf-8")
    result = run_check(monkeypatch, tmp_path / "audio", catalog=broken)
    assert result.exit_code == 1
    assert "INVALID" in result.output and "service 'rental-rooms'.max_days" in result.output


def test_every_catalogue_error_is_listed_in_one_run(monkeypatch, tmp_path):
    text = (ROOT / "catalog.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "catalog.yaml"
    broken.write_text(text.replace("max_days: 28", "max_days: soon")
                      .replace("      discounted_riel: 500", "      discounted_rial: 500")
                      .replace("public_holidays: []", "public_holidays: [2026-02-30]")
                      .replace("confidence: medium", "confidence: mediun", 1),
                      encoding="utf-8")
    result = run_check(monkeypatch, tmp_path / "audio", catalog=broken)
    assert result.exit_code == 1
    assert "catalogue: INVALID, 4 errors:" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith(f"  {broken}:")]
    assert [line.split(": ", 2)[1] for line in lines] == [
        "service 'notarize-business-certificate'.fee.discounted_rial",
        "service 'notarize-business-permit'.confidence", "service 'rental-rooms'.max_days",
        "public_holidays[0]"]
    assert "(did you mean discounted_riel?)" in lines[0] and "(did you mean medium?)" in lines[1]
    assert "February 2026 has 28 days" in lines[3]
    assert "FAILED: 4 errors" in result.output
