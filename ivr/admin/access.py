"""Who may open which admin page: the role matrix (README, "Roles"), in one place.

Every /admin endpoint is listed here; an endpoint missing from ACCESS is refused to everyone
(the role-matrix test enumerates the URL map, so a new page cannot be forgotten silently).
Roles scoped to offices (ombudsman, office) see only their own offices' rows on every page,
filter, CSV and print page; a case or office page of another office answers 404.
"""

from __future__ import annotations

ROLES = ("admin", "ombudsman", "office", "analyst")
SCOPED = frozenset({"ombudsman", "office"})  # limited to the offices of their account
EVERYONE = frozenset(ROLES)
PUBLIC = frozenset({"login"})  # endpoints (without "admin.") open before signing in

ACCESS: dict[str, frozenset[str]] = {
    "index": EVERYONE,
    "logout": EVERYONE,
    "scorecard": EVERYONE,
    "print_office": EVERYONE,
    "calls": frozenset({"admin", "office", "analyst"}),
    "cases": frozenset({"admin", "ombudsman"}),
    "case": frozenset({"admin", "ombudsman"}),
    "case_status": frozenset({"admin", "ombudsman"}),
    "recording": frozenset({"admin", "ombudsman"}),
    "followup_recording": frozenset({"admin", "ombudsman"}),
    "case_reply": frozenset({"admin", "ombudsman"}),  # who may handle the case: reply to it
    "reply_audio": frozenset({"admin", "ombudsman"}),
    "export": EVERYONE,  # then per exported page: EXPORT_PAGES
    "users": frozenset({"admin"}),
    "user_add": frozenset({"admin"}),
    "user_disable": frozenset({"admin"}),
    "user_password": frozenset({"admin"}),
    "audit": frozenset({"admin"}),
    # post-visit feedback calls: OWSO staff register visitors of their own offices
    "visitors": frozenset({"admin", "office"}),
    "visitor_add": frozenset({"admin", "office"}),
    # the voice studio: what every caller hears, so only administrators record
    "voice": frozenset({"admin"}),
    "voice_upload": frozenset({"admin"}),
    "voice_remove": frozenset({"admin"}),
    "voice_import": frozenset({"admin"}),
    "voice_script": frozenset({"admin"}),
    "voice_script_csv": frozenset({"admin"}),
}

# /admin/export/<page>/...: the page whose rules an export follows
EXPORT_PAGES = {"scorecard": "scorecard", "office": "print_office", "calls": "calls",
                "cases": "cases", "audit": "audit"}

# Who may hear a recording or read a case's note (what the complaint and Ombudsman notices
# promise the caller, in prompts/*.yaml): the line's administrators, and the Ombudsman of
# the office the case is about.
LISTENERS = ACCESS["recording"]


def may(role: str, endpoint: str) -> bool:
    return role in ACCESS.get(endpoint, frozenset())


def may_export(role: str, page: str) -> bool:
    target = EXPORT_PAGES.get(page)
    return target is not None and may(role, target)


def sees_free_text(role: str) -> bool:
    """Notes and recordings: only those who may open a case."""
    return may(role, "case")
