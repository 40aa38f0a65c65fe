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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ivr.catalog import Catalog, Office
from ivr.prompts import PAGE_SIZE, choice_key
from ivr.steps import Context, Menu, Position, Reask, paged
from ivr.tree import Node

CODE_TIMEOUT = 8  # seconds: keying four digits takes longer than one
MORE_KEYS_TIMEOUT = 6  # seconds to wait for the rest of a code the carrier cut short
READ_BACK_MAX = 10  # keys read back at most (a code is four; a carrier may send many)
CHOSEN_TIMEOUT = 4  # seconds: "you chose ...; to continue press 1, or wait"
BY_CODE = "code"  # how an office was chosen (the <via> of a `chosen` node): by its code,
BY_LIST = "list"  # from the provinces menu (the only office of its province to choose), or
# a province code: from that province's districts menu


def every_office(catalog: Catalog, pos: Position) -> Sequence[Office]:
    return catalog.offices


@dataclass(frozen=True)
class Chooser:
    """One purpose's office choice: its nodes, where it leads, and when it may be asked."""

    how: Node  # 1 by code, 2 by province
    code: Node
    provinces: Node
    province: Node  # <province>: its districts
    chosen: Node  # <via>: "you chose ...", 1 (or silence) on, 2 another office
    after: Callable[[Position, str], Position]  # (position, office id) -> the next step
    back: Callable[[Position], Position]  # '*' at `how`
    ready: Callable[[Catalog, Position], bool] = lambda catalog, pos: True
    # the offices the caller may choose here (a service already chosen: those that give it)
    choosable: Callable[[Catalog, Position], Sequence[Office]] = every_office

    def _choosable(self, catalog: Catalog, pos: Position) -> list[Office]:
        return list(self.choosable(catalog, pos))

    def how_menu(self, flow: Context, pos: Position) -> Menu | None:
        catalog = flow.catalog
        if not self.ready(catalog, pos):
            return None
        offices = self._choosable(catalog, pos)
        if not offices:
            return None
        if len(offices) == 1:  # given at one office only: no choice to make
            only = offices[0]
            go_on = self.after(pos, only.id)
            return Menu([f"office.{only.id}.only", "office.chosen.continue"], {"1": go_on},
                        back=self.back(pos), on_silence=lambda: go_on,
                        timeout=CHOSEN_TIMEOUT)
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
            if office is None:
                return Reask(read_back(keyed))
            offices = {o.id for o in self._choosable(catalog, pos)}
            if office.id not in offices:  # a provincial service: its province's unit gives it
                unit = catalog.provincial_unit(office.province.code)
                if unit is None or unit.id not in offices:
                    return Reask(("office.not-offered",))
                office = unit
            return pos.to(self.chosen.path(via=BY_CODE), office=office.id)

        back = pos.to(self.how.path())
        if not pos.keyed:
            return Menu(["office.code.ask"], back=back, num_digits=None,
                        on_digits=by_code, invalid_prompt="office.code.unknown",
                        timeout=CODE_TIMEOUT)
        return Menu([], back=back, num_digits=None, on_digits=by_code,
                    on_silence=lambda: chosen(pos.keyed), timeout=MORE_KEYS_TIMEOUT)

    def _by_province(self, catalog: Catalog, pos: Position) -> dict[str, list[Office]]:
        """The choosable offices of each province, in the catalogue's order."""
        offices = set(o.id for o in self._choosable(catalog, pos))
        found: dict[str, list[Office]] = {}
        for province in catalog.provinces():
            listed = [o for o in catalog.offices_in(province.code) if o.id in offices]
            if listed:
                found[province.code] = listed
        return found

    def provinces_menu(self, flow: Context, pos: Position) -> Menu | None:
        """The provinces; one whose only choosable office is its unit leads straight to it."""
        catalog = flow.catalog
        if not self.ready(catalog, pos):
            return None
        by_province = self._by_province(catalog, pos)
        every = [p.code for p in catalog.provinces()]
        shown = list(by_province)
        keys = choice_keys("province", shown, every)
        menu = paged(pos, "office.provinces.intro",
                     list(zip(keys, shown, strict=True)), pos.to(self.how.path()))
        if menu is not None:
            menu.choices = {k: self._enter(pos, v.node, by_province[v.node])
                            for k, v in menu.choices.items()}
        return menu

    def _enter(self, pos: Position, province: str, offices: list[Office]) -> Position:
        if len(offices) == 1:
            return pos.to(self.chosen.path(via=BY_LIST), office=offices[0].id)
        return pos.to(self.province.path(province=province))

    def province_menu(self, flow: Context, pos: Position, province: str) -> Menu | None:
        """The districts of a province; a district chosen: said back, then on."""
        catalog = flow.catalog
        if not self.ready(catalog, pos):
            return None
        offices = self._by_province(catalog, pos).get(province, [])
        if not offices:
            return None
        every = [o.id for o in catalog.offices_in(province)]
        shown = [o.id for o in offices]
        keys = choice_keys("office", shown, every)
        menu = paged(pos, "office.districts.intro", list(zip(keys, shown, strict=True)),
                     self._provinces_page(catalog, pos, province))
        if menu is not None:
            via = self.chosen.path(via=province)
            menu.choices = {k: pos.to(via, office=v.node) for k, v in menu.choices.items()}
        return menu

    def _provinces_page(self, catalog: Catalog, pos: Position, province: str) -> Position:
        """The page of the provinces menu that lists `province`."""
        shown = list(self._by_province(catalog, pos))
        index = shown.index(province) if province in shown else 0
        return replace(pos.to(self.provinces.path()), page=index // PAGE_SIZE + 1)

    def chosen_menu(self, flow: Context, pos: Position, via: str) -> Menu | None:
        """Which office was chosen, by name: 1 (or waiting) goes on, 2 chooses another,
        '*' goes back to where it was chosen."""
        catalog = flow.catalog
        office = catalog.office(pos.office)
        if not self.ready(catalog, pos) or office is None:
            return None
        offices = self._choosable(catalog, pos)
        if office.id not in {o.id for o in offices}:
            return None
        if via == BY_CODE:
            back = pos.to(self.code.path(), office="")
        elif via == BY_LIST:
            back = self._provinces_page(catalog, pos, office.province.code)
        elif via == office.province.code:
            shown = [o.id for o in offices if o.province.code == via]
            page = shown.index(office.id) // PAGE_SIZE + 1
            back = replace(pos.to(self.province.path(province=via), office=""), page=page)
        else:
            return None  # an edited URL
        go_on = self.after(pos, office.id)
        return Menu([f"office.{office.id}.chosen", "office.chosen.keys"],
                    {"1": go_on, "2": pos.to(self.how.path(), office="")}, back=back,
                    on_silence=lambda: go_on, timeout=CHOSEN_TIMEOUT)


def choose(chooser: Chooser) -> Chooser:
    """Attach the builders of a purpose's five office nodes."""
    chooser.how.builder(chooser.how_menu)
    chooser.code.builder(chooser.code_menu)
    chooser.provinces.builder(chooser.provinces_menu)
    chooser.province.builder(chooser.province_menu)
    chooser.chosen.builder(chooser.chosen_menu)
    return chooser


def choice_keys(kind: str, shown: Sequence[str], every: Sequence[str]) -> list[str]:
    """The prompt keys of the items `shown` of a list that may be shorter than `every`
    (its items where they are given): each says the key it has in the shorter list."""
    return [choice_key(kind, item, i % PAGE_SIZE + 1, every.index(item) % PAGE_SIZE + 1)
            for i, item in enumerate(shown)]

def begins_a_code(catalog: Catalog, keys: str) -> bool:
    """Are `keys` the start of some longer office code (so the caller may not be done)?"""
    return any(len(o.code) > len(keys) and o.code.startswith(keys) for o in catalog.offices)


def read_back(keyed: str) -> tuple[str, ...]:
    """What the caller keyed, digit by digit, and how long a code is: so a mistyped or
    unfinished code can be corrected."""
    digits = [f"digit.{key}" for key in keyed if key in "0123456789"][:READ_BACK_MAX]
    said = ("office.code.keyed", *digits) if digits else ()
    return ("office.code.unknown", *said, "office.code.length")
