"""Choosing an office, shared by rating, complaints and the Ombudsman: the code printed on
the office wall (ended with #), or province then district from a menu."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.flow import Menu, Position

if TYPE_CHECKING:
    from ivr.flow import CallFlow

CODE_TIMEOUT = 8  # seconds: keying four digits takes longer than one
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
        def by_code(digits: str) -> Position | None:
            office = flow.catalog.office_by_code(digits.strip())
            return after_office(pos, office.id) if office else None

        return Menu(["office.code.ask"], back=pos.to(base), num_digits=None,
                    on_digits=by_code, invalid_prompt="office.code.unknown",
                    timeout=CODE_TIMEOUT)
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
