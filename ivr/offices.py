"""Choosing an office, shared by rating, complaints and the Ombudsman: its code (ended with
#), or province then district from a menu.

Somleng ends a Gather of several keys after 2 s between two keys, with the keys so far and
no sign of why. Keys that begin an office code are kept in the position (`keyed`) and a
silent Gather waits for the rest; keys that begin no code are read back to the caller with
how many digits a code has.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ivr.flow import Menu, Position, Reask

if TYPE_CHECKING:
    from ivr.catalog import Catalog
    from ivr.flow import CallFlow

CODE_TIMEOUT = 8  # seconds: keying four digits takes longer than one
MORE_KEYS_TIMEOUT = 6  # seconds to wait for the rest of a code the carrier cut short
READ_BACK_MAX = 10  # keys read back at most (a code is four; a carrier may send many)
PURPOSES = ("rate", "complaint", "ombudsman")


def after_office(pos: Position, office_id: str) -> Position:
    """Where each purpose goes once the office is known."""
    purpose = pos.node.split("/")[0]
    if purpose == "rate":
        return pos.to("rate/q/1" if pos.service else "rate/categories", office=office_id)
    if purpose == "complaint":
        return pos.to("complaint/notice", office=office_id)
    return pos.to("ombudsman/call", office=office_id)


def office_menu(flow: CallFlow, pos: Position, rest: str) -> Menu | None:
    """The menus under <purpose>/office: how to choose, the code, provinces, districts."""
    purpose = pos.node.split("/")[0]
    head, _, tail = rest.partition("/")
    if head != "office" or purpose not in PURPOSES:
        return None
    base = f"{purpose}/office"
    if tail == "":
        back = pos.to("complaint") if purpose == "complaint" else Position(pos.lang, "main")
        if purpose == "rate" and pos.service:
            back = Position(pos.lang, f"service/{pos.service}")
        return Menu(["office.how", "nav.hint"],
                    {"1": pos.to(f"{base}/code"), "2": pos.to(f"{base}/provinces")},
                    back=back)
    if tail == "code":
        return code_menu(flow.catalog, pos, base)
    if tail == "provinces":
        items = [(f"province.{p.code}.choice", f"{base}/province/{p.code}")
                 for p in flow.catalog.provinces()]
        return flow.paged(pos, "office.provinces.intro", items, pos.to(base))
    if tail.startswith("province/"):
        offices = flow.catalog.offices_in(tail.removeprefix("province/"))
        if not offices:
            return None
        menu = flow.paged(pos, "office.districts.intro",
                          [(f"office.{o.id}.choice", o.id) for o in offices],
                          pos.to(f"{base}/provinces"))
        if menu is not None:  # a district chosen: on to what the caller came for
            menu.choices = {k: after_office(pos, v.node) for k, v in menu.choices.items()}
        return menu
    return None


def code_menu(catalog: Catalog, pos: Position, base: str) -> Menu | None:
    """The office code prompt, or (keys already typed) a silent wait for the rest of it."""
    if pos.keyed and not begins_a_code(catalog, pos.keyed):
        return None  # an edited URL: not where any caller can be

    def by_code(digits: str) -> Position | Reask | None:
        keyed = pos.keyed + digits.strip()
        if not keyed:
            return None
        if begins_a_code(catalog, keyed):  # the carrier cut the entry short: wait for more
            return replace(pos, keyed=keyed)
        return chosen(keyed)

    def chosen(keyed: str) -> Position | Reask:
        office = catalog.office_by_code(keyed)
        return after_office(pos, office.id) if office else Reask(read_back(keyed))

    if not pos.keyed:
        return Menu(["office.code.ask"], back=pos.to(base), num_digits=None,
                    on_digits=by_code, invalid_prompt="office.code.unknown",
                    timeout=CODE_TIMEOUT)
    return Menu([], back=pos.to(base), num_digits=None, on_digits=by_code,
                on_silence=lambda: chosen(pos.keyed), timeout=MORE_KEYS_TIMEOUT)


def begins_a_code(catalog: Catalog, keys: str) -> bool:
    """Are `keys` the start of some longer office code (so the caller may not be done)?"""
    return any(len(o.code) > len(keys) and o.code.startswith(keys) for o in catalog.offices)


def read_back(keyed: str) -> tuple[str, ...]:
    """What the caller keyed, digit by digit, and how long a code is: so a mistyped or
    unfinished code can be corrected."""
    digits = [f"digit.{key}" for key in keyed if key in "0123456789"][:READ_BACK_MAX]
    said = ("office.code.keyed", *digits) if digits else ()
    return ("office.code.unknown", *said, "office.code.length")
