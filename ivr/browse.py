"""The greeting, the main menu, and services information: category -> service -> its facts
(documents, official fee, maximum processing time), a fee table asked as a short menu."""

from __future__ import annotations

from dataclasses import replace

from ivr import tree
from ivr.catalog import FeeChoice, Service
from ivr.prompts import PAGE_SIZE, fee_key, fee_node
from ivr.steps import Context, Menu, Position, paged

WELCOME_TIMEOUT = 3  # the greeting waits less: no key simply means Khmer


@tree.WELCOME.builder
def welcome(flow: Context, pos: Position) -> Menu:
    prompts = ["greeting", "language.offer@en"]
    choices = {"1": Position("km", tree.MAIN.path())}
    if "en" in flow.catalog.languages:
        choices["2"] = Position("en", tree.MAIN.path())
    return Menu(prompts, choices, timeout=WELCOME_TIMEOUT)


@tree.MAIN.builder
def main(flow: Context, pos: Position) -> Menu:
    """The table's main-menu items, by key."""
    items = tree.main_items()
    prompts = ["menu.main.intro", *(row.main[1] for row in items if row.main), "menu.repeat"]
    choices = {row.main[0]: Position(pos.lang, row.path()) for row in items if row.main}
    return Menu(prompts, choices)


@tree.CATEGORIES.builder
def categories(flow: Context, pos: Position) -> Menu | None:
    items = [(f"category.{c.id}.choice", tree.CATEGORY.path(category=c.id))
             for c in flow.catalog.categories]
    return paged(pos, "menu.categories.intro", items, Position(pos.lang, tree.MAIN.path()))


@tree.CATEGORY.builder
def category(flow: Context, pos: Position, category: str) -> Menu | None:
    found = flow.catalog.category(category)
    if found is None:
        return None
    items = [(f"service.{s.id}.choice", tree.SERVICE.path(service=s.id)) for s in found.services]
    index = flow.catalog.categories.index(found)
    back = Position(pos.lang, tree.CATEGORIES.path(), page=index // PAGE_SIZE + 1)
    return paged(pos, f"category.{found.id}.intro", items, back)


@tree.SERVICE.builder
def service(flow: Context, pos: Position, service: str) -> Menu | None:
    """A service's facts; then 1 again, 2 rate it (or, for a fee table, its first question)."""
    found = flow.catalog.service(service)
    if found is None:
        return None
    up = _category_page(flow, pos, found)
    prompts = [f"service.{found.id}.info"]
    if isinstance(found.fee, FeeChoice):
        return _fee_menu(pos, found, "", prompts, up)
    return Menu([*prompts, "service.again", "service.rate", "nav.hint"],
                {"1": replace(pos, attempt=0), "2": rate(pos, found)}, back=up)


@tree.FEE.builder
def fee(flow: Context, pos: Position, service: str, path: str) -> Menu | None:
    """One question of a fee table (keys so far in `path`: "1", "1.2"), or its fee."""
    found = flow.catalog.service(service)
    if found is None:
        return None
    parent = path.rpartition(".")[0]
    back = replace(pos, node=fee_node_name(found, parent), attempt=0)
    return _fee_menu(pos, found, path, [], back)


def _category_page(flow: Context, pos: Position, service: Service) -> Position:
    """The page of the category menu that lists `service`."""
    category = flow.catalog.category(service.category)
    assert category is not None
    index = category.services.index(service)
    return Position(pos.lang, tree.CATEGORY.path(category=category.id),
                    page=index // PAGE_SIZE + 1)


def _fee_menu(pos: Position, service: Service, path: str, prompts: list[str],
              back: Position) -> Menu | None:
    """One question of a fee table, or the fee it leads to."""
    found = fee_node(service.fee, path)
    if found is None:
        return None
    _, node = found
    prompts = [*prompts, fee_key(service, path)]
    if isinstance(node, FeeChoice):
        choices = {
            str(i): Position(pos.lang, fee_node_name(service, f"{path}.{i}" if path else str(i)))
            for i in range(1, len(node.options) + 1)
        }
        return Menu([*prompts, "nav.hint"], choices, back=back)
    return Menu([*prompts, "service.again", "service.rate", "nav.hint"],
                {"1": replace(pos, attempt=0), "2": rate(pos, service)}, back=back)


def rate(pos: Position, service: Service) -> Position:
    """Rating this service: straight to choosing the office."""
    return Position(pos.lang, tree.RATE_OFFICE.path(), service=service.id)


def fee_node_name(service: Service, path: str) -> str:
    return (tree.FEE.path(service=service.id, path=path) if path
            else tree.SERVICE.path(service=service.id))
