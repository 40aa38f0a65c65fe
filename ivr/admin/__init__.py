"""The admin pages: scorecards, the call funnel and cases, for the people who act on the
feedback (OWSO chiefs, District Ombudsmen, NGO staff running scorecard meetings), each with
their own account and role (access.py holds the matrix).

    web         the blueprint, the signed-in account, language, dates, filters, tables
    access      the role matrix
    accounts    accounts, passwords, sessions, sign-in throttling, the audit log (SQLite)
    auth        sign in and out, the accounts page, the audit log's page
    scorecards  tallies and the scorecard pages (and the printable one)
    funnel      the call funnel
    visitors    registering visitors for a feedback call; those calls' response rates
    cases       cases, their status and note, the recording player
    exports     CSV of every table
    voice       the voice studio: people's recordings of the prompts, the recording script
    retention   `ivr purge`: recordings and notes of closed cases, at the provider too
    schema      the tables
"""

from __future__ import annotations

from ivr.admin import auth, cases, exports, funnel, scorecards, visitors, voice  # noqa: F401 - the routes
from ivr.admin.accounts import ACCOUNT, ADDRESS
from ivr.admin.cases import provider_url, recording_refusal, trusted_recording_url
from ivr.admin.scorecards import Cell, Tally, group_cells, scorecard_tables, tally_cells
from ivr.admin.web import Filters, bp, is_admin, secret_key

__all__ = ["ACCOUNT", "ADDRESS", "Cell", "Filters", "Tally", "bp", "group_cells", "is_admin",
           "provider_url", "recording_refusal", "scorecard_tables", "secret_key",
           "tally_cells", "trusted_recording_url"]
