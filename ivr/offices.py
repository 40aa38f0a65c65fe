"""Choosing an office, shared by rating, complaints and the Ombudsman: its code (ended with
#), or province then district from a menu.

Each purpose has its own four nodes in the table (how, code, provinces, a province) and
says where the caller goes once the office is known; `choose` attaches the builders.

Somleng ends a Gather of several keys after 2 s between two keys, with the keys so far and
no sign of why. Keys that begin an office code are kept in the position (`keyed`) and a
silent Gather waits for the rest; keys that begin no code are read back to the caller with
how many digits a code has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ivr.catalog import Catalog
from ivr.steps import Context, Menu, Position, Reask, paged
from ivr.tree import Node

CODE_TIMEOUT = 8  # seconds: keying four digits takes longer than one
MORE_KEYS_TIMEOUT = 6  # seconds to wait for the rest of a code the carrier cut short
READ_BACK_MAX = 10  # keys read back at most (a code is four; a carrier may send many)


@dataclass(frozen=True)
class Chooser:
    """One purpose's office choice: its nodes, where it leads, and when it may be asked."""

    how: Node  # 1 by code, 2 by province
    code: Node
    provinces: Node
    province: Node  # <province>: its districts
    after: Callable[[Position, str], Position]  # (position, office id) -> the next step
    back: Callable[[Position], Position]  # '*' at `how`
    ready: Callable[[Catalog, Position], bool] = lambda catalog, pos: True

    def how_menu(self, flow: Context, pos: Position) -> Menu | None:
        if not self.ready(flow.catalog, pos):
            return None
        return Menu(["office.how", "nav.hint"],
                    {"1": pos.to(self.code.path()), "2": pos.to(self.provinces.path())},
                    back=self.back(pos))

    def code_menu(self, flow: Context, pos: Position) -> Menu | None:
        """The office code prompt, or (keys already typed) a silent wait for the rest."""
        catalog = flow.catalog
        if not self.ready(catalog, pos):
            return None
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
            return self.after(pos, office.id) if office else Reask(read_back(keyed))

        back = pos.to(self.how.path())
        if not pos.keyed:
            return Menu(["office.code.ask"], back=back, num_digits=None,
                        on_digits=by_code, invalid_prompt="office.code.unknown",
                        timeout=CODE_TIMEOUT)
        return Menu([], back=back, num_digits=None, on_digits=by_code,
                    on_silence=lambda: chosen(pos.keyed), timeout=MORE_KEYS_TIMEOUT)

    def provinces_menu(self, flow: Context, pos: Position) -> Menu | None:
        if not self.ready(flow.catalog, pos):
            return None
        items = [(f"province.{p.code}.choice", self.province.path(province=p.code))
                 for p in flow.catalog.provinces()]
        return paged(pos, "office.provinces.intro", items, pos.to(self.how.path()))

    def province_menu(self, flow: Context, pos: Position, province: str) -> Menu | None:
        """The districts of a province; a district chosen: on to what the caller came for."""
        if not self.ready(flow.catalog, pos):
            return None
        offices = flow.catalog.offices_in(province)
        if not offices:
            return None
        menu = paged(pos, "office.districts.intro",
                     [(f"office.{o.id}.choice", o.id) for o in offices],
                     pos.to(self.provinces.path()))
        if menu is not None:
            menu.choices = {k: self.after(pos, v.node) for k, v in menu.choices.items()}
        return menu


def choose(chooser: Chooser) -> Chooser:
    """Attach the builders of a purpose's four office nodes."""
    chooser.how.builder(chooser.how_menu)
    chooser.code.builder(chooser.code_menu)
    chooser.provinces.builder(chooser.provinces_menu)
    chooser.province.builder(chooser.province_menu)
    return chooser


def begins_a_code(catalog: Catalog, keys: str) -> bool:
    """Are `keys` the start of some longer office code (so the caller may not be done)?"""
    return any(len(o.code) > len(keys) and o.code.startswith(keys) for o in catalog.offices)


def read_back(keyed: str) -> tuple[str, ...]:
    """What the caller keyed, digit by digit, and how long a code is: so a mistyped or
    unfinished code can be corrected."""
    digits = [f"digit.{key}" for key in keyed if key in "0123456789"][:READ_BACK_MAX]
    said = ("office.code.keyed", *digits) if digits else ()
    return ("office.code.unknown", *said, "office.code.length")
