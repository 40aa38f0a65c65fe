"""How many key presses a caller needs: to reach every office through the province and
district menus, and every service's facts through the service menus.

    python scripts/measure_keys.py            # the figures in the README
    python scripts/measure_keys.py --json     # every office and service with its keys

It walks the line's own menus (ivr.flow.CallFlow, the same menus the webhooks answer with),
breadth first, pressing 1-8 to choose and 9 for the next page, so each count is the fewest
presses. Counts start at the greeting of a Khmer caller, who waits there (silence chooses
Khmer): an English caller presses 2 first, one more. Offices are reached as a caller who
rates a service reaches them (main menu 2, then 2 "choose your province and district");
complaints and the Ombudsman use the same menus after one other key. Keying the office code
instead is the same for every office: main menu 2, 1, the four digits and #.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter, deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr import tree  # noqa: E402
from ivr.audio import AudioLibrary  # noqa: E402
from ivr.catalog import Catalog, FeeChoice, load_catalog  # noqa: E402
from ivr.flow import CallFlow, Menu, Position  # noqa: E402
from ivr.prompts import PromptBook, fee_node, load_wording  # noqa: E402

CHOOSE = "123456789"


def flow_for(catalog: Catalog, prompts: Path) -> CallFlow:
    book = PromptBook(catalog, load_wording(prompts, catalog.languages))
    return CallFlow(catalog, book, AudioLibrary(ROOT / "audio-none"), urls=None)  # type: ignore


def presses_from(flow: CallFlow, start: Position, goal) -> dict[str, int]:
    """Fewest presses from `start` to each goal: `goal(pos)` is (its name or None, whether
    to stop there)."""
    found: dict[str, int] = {}
    queue = deque([(start, 0)])
    seen = {start}
    while queue:
        pos, presses = queue.popleft()
        name, stop = goal(pos)
        if name is not None:
            found.setdefault(name, presses)
        if stop:
            continue
        menu = flow.menu(pos)
        if not isinstance(menu, Menu) or menu.num_digits != 1:
            continue
        for key in CHOOSE:
            target = menu.more if key == "9" and menu.more is not None else menu.choices.get(key)
            if target is not None and target not in seen:
                seen.add(target)
                queue.append((target, presses + 1))
    return found


def office_keys(flow: CallFlow, lang: str = "km") -> dict[str, int]:
    """Keys from the greeting to each office, by province and district (rating)."""
    before = 2  # main menu: 2 (rate a service); how to choose: 2 (province and district)
    found = presses_from(flow, Position(lang, tree.RATE_PROVINCES.path()),
                         lambda pos: (pos.office or None, bool(pos.office)))
    return {office: before + n for office, n in found.items()}


def service_keys(flow: CallFlow, lang: str = "km") -> dict[str, int]:
    """Keys from the greeting to each service's facts ("id"), and to each fee of a fee table
    ("id fee 1.2"), through the services menus."""
    before = 1  # main menu: 1 (services)

    def goal(pos: Position) -> tuple[str | None, bool]:
        found_node = tree.resolve(pos.node)
        if found_node is None or found_node[0] not in (tree.SERVICE, tree.FEE):
            return None, False
        row, parts = found_node
        service_id, path = parts["service"], parts.get("path", "")
        service = flow.catalog.service(service_id)
        if service is None:
            return None, True
        found = fee_node(service.fee, path)
        table = found is not None and isinstance(found[1], FeeChoice)
        return service_id + (f" fee {path}" if path else ""), not table

    found = presses_from(flow, Position(lang, tree.CATEGORIES.path()), goal)
    return {name: before + n for name, n in found.items()
            if " fee " not in name or not isinstance(_fee_at(flow, name), FeeChoice)}


def _fee_at(flow: CallFlow, name: str) -> object:
    service_id, _, path = name.partition(" fee ")
    service = flow.catalog.service(service_id)
    found = fee_node(service.fee if service else None, path)
    return found[1] if found else None


def summary(counts: dict[str, int]) -> dict[str, object]:
    values = sorted(counts.values())
    return {"count": len(values), "fewest": values[0], "median": statistics.median(values),
            "worst": values[-1], "spread": dict(sorted(Counter(values).items()))}


def measure(catalog_path: Path = ROOT / "catalog.yaml",
            prompts: Path = ROOT / "prompts") -> dict[str, object]:
    catalog = load_catalog(catalog_path)
    flow = flow_for(catalog, prompts)
    offices = office_keys(flow)
    missing = [o.id for o in catalog.offices if o.id not in offices]
    services = service_keys(flow)
    facts = {k: v for k, v in services.items() if " fee " not in k}
    fees = {k: v for k, v in services.items() if " fee " in k}
    code_keys = 2 + max(len(o.code) for o in catalog.offices) + 1  # 2, 1, the digits, '#'
    return {"offices": offices, "unreachable": missing, "office_summary": summary(offices),
            "by_code": code_keys, "services": facts, "service_summary": summary(facts),
            "fees": fees, "fee_summary": summary(fees) if fees else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=ROOT / "catalog.yaml")
    parser.add_argument("--json", action="store_true", help="every office and service")
    args = parser.parse_args(argv)
    found = measure(args.catalog)
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return 0 if not found["unreachable"] else 1
    o, s, f = found["office_summary"], found["service_summary"], found["fee_summary"]
    print(f"offices by province and district: {o['count']} reached, "
          f"{len(found['unreachable'])} unreachable; key presses from the greeting "
          f"(Khmer): fewest {o['fewest']}, median {o['median']}, worst {o['worst']}")
    print(f"  presses: offices {o['spread']}")
    worst = sorted(k for k, v in found["offices"].items() if v == o["worst"])
    print(f"  the worst case: {', '.join(worst[:6])}{' ...' if len(worst) > 6 else ''}")
    print(f"offices by code: {found['by_code']} presses for every office (2, 1, code, #)")
    print(f"service facts: {s['count']} services, fewest {s['fewest']}, median {s['median']}, "
          f"worst {s['worst']} presses")
    if f:
        print(f"a fee of a fee table: {f['count']} fees, fewest {f['fewest']}, median "
              f"{f['median']}, worst {f['worst']} presses")
    print("(an English caller presses 2 at the greeting: one more each)")
    return 0 if not found["unreachable"] else 1


if __name__ == "__main__":
    sys.exit(main())
