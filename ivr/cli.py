"""The `ivr` command: serve, check, render, call, report, users, purge, backup."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ivr.config import Settings

if TYPE_CHECKING:
    import sqlite3

    from ivr.admin.accounts import User

T = TypeVar("T")


def _catalogue_or_exit(build: Callable[[], T]) -> T:
    """Run `build()`; a catalogue it cannot use is a short message and exit status 1."""
    from ivr.catalog import CatalogError, short_message

    try:
        return build()
    except CatalogError as exc:
        click.echo(short_message(exc), err=True)
        sys.exit(1)


@click.group()
def main() -> None:
    """owso-ivr: the One Window Service Office phone line."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug/--no-debug", default=False)
def serve(host: str, port: int, debug: bool) -> None:
    """Run the line on a development server (production: gunicorn 'ivr:create_app()')."""
    from ivr.app import create_app

    settings = Settings.from_env(development=True)
    if settings.auth_token is None:
        click.echo("TWILIO_AUTH_TOKEN is not set: using the development token, which only "
                   "the local simulator knows.", err=True)
    app = _catalogue_or_exit(lambda: create_app(settings))
    click.echo(f"The line answers at http://{host}:{port}/voice "
               f"(catalogue {settings.catalog}, database {settings.database})")
    app.run(host=host, port=port, debug=debug)


@main.command()
@click.option("--keys", default=None,
              help='A scripted call, e.g. "2 1 3 1": one entry per menu, "-" for no input.')
@click.option("--url", default=None,
              help="Call a running line (e.g. http://127.0.0.1:5000); default: in-process.")
@click.option("--dial", "dial_outcome", default="completed", show_default=True,
              type=click.Choice(["completed", "busy", "no-answer", "failed", "canceled"]),
              help="How a call to the Ombudsman ends.")
@click.option("--record-seconds", default=5, show_default=True,
              help="Length of a recorded message (0: an empty recording).")
@click.option("--sound/--no-sound", default=None,
              help="Play the prompts' audio (default: when a player is installed).")
@click.option("--provider", "carrier", default=None, type=click.Choice(["twilio", "somleng"]),
              help="Whose rules the simulated carrier follows (Gather, Record, Redirect); "
                   "default: IVR_PROVIDER, else twilio.")
@click.option("--callback", is_flag=True,
              help="Ring the missed-call number first: the line rejects it (busy) and calls "
                   "back; the keys are pressed on the call back (in-process only).")
def call(keys: str | None, url: str | None, dial_outcome: str, record_seconds: int,
         sound: bool | None, carrier: str | None, callback: bool) -> None:
    """Call the line from the terminal: hear (read) the prompts, press keys.

    Without --keys it is interactive: type keys and Enter; Enter alone is no input; q hangs
    up. With --keys it runs the script and prints the transcript (for docs and CI); a token
    such as 0105@2.5 presses those keys 2.5 s apart.
    """
    from ivr.app import create_app
    from ivr.simulate import Simulator
    from ivr.terminal import TerminalPhone, prompt_texts

    settings = Settings.from_env(development=True).resolved()
    if callback:
        if url:
            raise click.UsageError("--callback calls the line in-process: leave out --url")
        from dataclasses import replace

        from cryptography.fernet import Fernet

        settings = replace(settings, outbound_key=Fernet.generate_key().decode(),
                           public_url="http://localhost",
                           twilio_account_sid=settings.twilio_account_sid or "AC" + "0" * 32)
    target = url or _catalogue_or_exit(lambda: create_app(settings))
    phone = TerminalPhone(settings.audio_dir, play_sound=sound if sound is not None else
                          keys is None)
    simulator = Simulator(target, settings.auth_token or "", prompt_text=prompt_texts(settings),
                          dial_outcome=dial_outcome, record_seconds=record_seconds,
                          carrier=carrier or settings.provider,
                          ask_keys=None if keys is not None else phone.ask)
    if callback:
        transcript = _callback_call(target, settings, simulator, keys)
    else:
        transcript = simulator.call(keys or "")
    if keys is not None:
        click.echo(transcript.text())
    else:
        phone.finish(transcript)


def _callback_call(app: Any, settings: Settings, simulator: Any, keys: str | None) -> Any:
    """A missed call on the callback number, then the line's call back, through the
    simulated carrier (its REST API too): what `ivr call --callback` shows."""
    from ivr.outbound import Outbound
    from ivr.simulate import CarrierCalls

    api = CarrierCalls(simulator.carrier)
    outbound = Outbound(settings, app.extensions["ivr"].store, api=api)
    app.extensions["ivr.outbound"] = outbound  # placed at once, without a worker
    missed = simulator.start(at=(simulator.url("/voice/callback"), "POST", None)).transcript
    click.echo(missed.text())
    outbound.dispatch_due()
    if not api.placed:
        raise click.ClickException("no call back was placed (see the log for why)")
    placed, sid = api.placed[0]
    click.echo("--- the line calls back ---")
    return simulator.receive(placed, sid, keys or "")


@main.command()
@click.option("--strict", is_flag=True,
              help="Also fail on placeholders, placeholder audio and orphan files.")
def check(strict: bool) -> None:
    """Check the catalogue, the prompts and the audio; non-zero exit when incomplete."""
    from ivr.check import check as run_check

    settings = Settings.from_env()
    report = run_check(settings.catalog, settings.prompts, settings.audio_dir)
    click.echo("\n".join(report.lines))
    failed = report.failed(strict)
    click.echo(f"\n{'FAILED' if failed else 'OK'}: {len(report.errors)} errors, "
               f"{len(report.warnings)} warnings{' (strict)' if strict else ''}")
    sys.exit(1 if failed else 0)


@main.command()
@click.option("--catalog", "catalog_path", default=None, type=click.Path(dir_okay=False),
              help="The catalogue whose languages the texts hold (default: IVR_CATALOG).")
def schema(catalog_path: str | None) -> None:
    """Print the JSON Schema of catalog.yaml (editors check the file with it):
    ivr schema > catalog.schema.json"""
    import json

    from ivr.catalog import catalog_json_schema, read_yaml

    path = catalog_path or str(Settings.from_env().catalog)
    try:
        data = read_yaml(Path(path))
        languages = [str(lang) for lang in data.get("languages") or []] or ["km", "en"]
    except Exception:  # a broken or missing catalogue: the schema of the default languages
        languages = ["km", "en"]
    click.echo(json.dumps(catalog_json_schema(languages), indent=2, ensure_ascii=False))


@main.command()
@click.option("--since", help="From this date (YYYY-MM-DD), inclusive.")
@click.option("--until", help="Until this date (YYYY-MM-DD), exclusive.")
@click.option("--office", help="Only this office id.")
@click.option("--by", type=click.Choice(["service", "office"]), default="service",
              show_default=True, help="One row per office and service, or per office.")
@click.option("--csv", "as_csv", is_flag=True, help="Export every answer as CSV.")
@click.option("--json", "as_json", is_flag=True, help="Export every answer as JSON.")
@click.option("--cases", "show_cases", is_flag=True,
              help="List complaints and Ombudsman messages instead.")
def report(since: str | None, until: str | None, office: str | None, by: str, as_csv: bool,
           as_json: bool, show_cases: bool) -> None:
    """Feedback scorecards in the terminal, or every answer as CSV/JSON."""
    import sqlite3

    from ivr import report as reports
    from ivr.catalog import load_catalog

    settings = Settings.from_env()
    if not settings.database.exists():
        raise click.ClickException(f"no database at {settings.database}: no calls yet")
    conn = sqlite3.connect(f"file:{settings.database}?mode=ro", uri=True)
    if show_cases:
        items = reports.cases(conn, office=office)
    elif as_csv or as_json:
        items = reports.answers(conn, since, until, office)
    else:
        catalog = load_catalog(settings.catalog)
        rows = reports.scorecard(conn, catalog, since, until, office, by_service=by == "service")
        items = reports.score_table(rows, catalog)
    if as_csv:
        click.echo(reports.to_csv(items), nl=False)
    elif as_json:
        click.echo(reports.to_json(items))
    else:
        click.echo(reports.format_table(items))


@main.command()
@click.option("--to", "folder", required=True, type=click.Path(file_okay=False),
              help="The folder of the copies (deploy/systemd/owso-ivr-backup.service).")
@click.option("--keep-days", default=30, show_default=True,
              help="Copies older than this many days are removed.")
def backup(folder: str, keep_days: int) -> None:
    """Copy the database while the line runs (consistent, private), drop old copies."""
    from pathlib import Path

    from ivr.store import backup_database

    settings = Settings.from_env()
    if not settings.database.exists():
        raise click.ClickException(f"no database at {settings.database}")
    copy = backup_database(settings.database, Path(folder), keep_days)
    click.echo(f"{settings.database} copied to {copy}")


@main.command()
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 16),
              help="Threads placing calls.")
def worker(workers: int) -> None:
    """Place the line's outbound calls: callbacks and post-visit feedback calls
    (deploy/systemd/owso-ivr-worker.service)."""
    from ivr.worker import Queue, queue_location

    try:
        settings = Settings.from_env().resolved()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    missing = [name for name, value in (("IVR_OUTBOUND_KEY", settings.outbound_key),
                                        ("IVR_PUBLIC_URL", settings.public_url),
                                        ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid))
               if not value]
    if missing:
        raise click.ClickException(f"{', '.join(missing)} not set: the worker cannot place "
                                   "calls (README, \"Calls the line places\").")
    click.echo(f"placing outbound calls (queue {queue_location(settings)}, database "
               f"{settings.database})", err=True)
    Queue(settings).run(workers)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def render(ctx: click.Context) -> None:
    """Render the prompts' audio (the same as python scripts/render_prompts.py)."""
    from ivr.render import main as render_main

    sys.exit(render_main(ctx.args))


def _admin_store(settings: Settings) -> Any:
    """The line's database with the admin pages' tables (no caller is hashed here)."""
    from ivr.admin import schema
    from ivr.store import Store

    store = Store(settings.database, settings.caller_key or b"unused: no caller is stored")
    schema.migrate(store)
    return store


def _password(confirm: bool = True) -> str:
    """The new password: from standard input (its first line), or asked twice at a
    terminal without echo."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return sys.stdin.readline().rstrip("\r\n")


def _change_account(action: str,
                    change: Callable[[sqlite3.Connection], User]) -> User | None:
    """Run one change to an account on the line's database and audit it as `action`: what
    `ivr users disable` and `ivr users password` share. None: refused (_fail said why)."""
    from ivr.admin import accounts

    store = _admin_store(Settings.from_env())
    try:
        changed = change(store.patient_db.conn)
    except accounts.AccountError as exc:
        _fail(exc)
        return None
    accounts.audit(store.patient_db.conn, accounts.operator(), "", action, changed.name,
                   address="local")
    return changed


def _fail(exc: Exception) -> None:
    from ivr.admin.accounts import AccountError
    from ivr.admin.web import english

    if isinstance(exc, AccountError):
        raise click.ClickException(english(exc.key, **exc.values))
    raise exc


@main.group()
def users() -> None:
    """Admin accounts: one per person, with a role (admin, ombudsman, office, analyst)."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["admin", "ombudsman", "office",
                                                          "analyst"]))
@click.option("--office", "offices", multiple=True,
              help="An office id of the catalogue (repeat for several); ombudsman and office "
                   "accounts need one at least.")
def users_add(name: str, role: str, offices: tuple[str, ...]) -> None:
    """Create an account; the password is read from standard input."""
    from ivr.admin import accounts
    from ivr.catalog import load_catalog

    settings = Settings.from_env()
    store = _admin_store(settings)
    known = [o.id for o in load_catalog(settings.catalog).offices]
    try:
        made = accounts.add_user(store.patient_db.conn, name, role, offices, _password(), known)
    except accounts.AccountError as exc:
        _fail(exc)
        return
    accounts.audit(store.patient_db.conn, accounts.operator(), "", "user.add", made.name,
                   f"role {made.role}; offices {','.join(made.offices) or '-'}", "local")
    click.echo(f"added {made.name} ({made.role}"
               + (f": {', '.join(made.offices)}" if made.offices else "") + ")")


@users.command("list")
def users_list() -> None:
    """Every account: name, role, offices, active or disabled, last sign-in (UTC)."""
    from ivr.admin import accounts

    store = _admin_store(Settings.from_env())
    rows = accounts.list_users(store.patient_db.conn)
    if not rows:
        click.echo("no accounts yet: ivr users add NAME --role admin")
        return
    click.echo(f"{'name':<20} {'role':<10} {'status':<9} {'last sign-in':<20} offices")
    for account in rows:
        click.echo(f"{account.name:<20} {account.role:<10} "
                   f"{'active' if account.active else 'disabled':<9} "
                   f"{(account.last_sign_in_at or '-')[:19]:<20} "
                   f"{','.join(account.offices) or '(all)'}")


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable an account: its sessions end at once; it can no longer sign in."""
    from ivr.admin import accounts

    gone = _change_account("user.disable", lambda conn: accounts.disable_user(conn, name))
    if gone is not None:
        click.echo(f"disabled {gone.name}; its sessions have ended")


@users.command("password")
@click.argument("name")
def users_password(name: str) -> None:
    """Set an account's password (from standard input); its sessions end at once."""
    from ivr.admin import accounts

    changed = _change_account("user.password",
                              lambda conn: accounts.set_password(conn, name, _password()))
    if changed is not None:
        click.echo(f"password of {changed.name} changed; its sessions have ended")


@main.command()
@click.option("--dry-run", is_flag=True, help="List what is due; delete nothing.")
def purge(dry_run: bool) -> None:
    """Delete the recordings (at the provider too) and notes of cases closed more than
    IVR_RETENTION_DAYS ago. Run it daily (cron or a systemd timer)."""
    from ivr.admin import retention

    settings = Settings.from_env()
    if not settings.database.exists():
        raise click.ClickException(f"no database at {settings.database}")
    try:
        settings = settings.resolved() if not dry_run else settings
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    store = _admin_store(settings)
    listed, outcome = retention.purge(store.patient_db.conn, settings, dry_run=dry_run)
    verb = "due" if dry_run else "purged"
    click.echo(f"retention {settings.retention_days} days (closed before "
               f"{retention.cutoff(settings)[:10]}): {len(listed)} case(s) due")
    for case in listed:
        held = [w for w, has in (("recording", bool(case.recording_url)),
                                 ("note", case.has_note)) if has]
        click.echo(f"  {case.reference}  {case.kind:<18} {case.office or '-':<14} "
                   f"closed {case.closed[:10]}  {' + '.join(held) or 'nothing left'}")
    if dry_run:
        click.echo(f"dry run: nothing deleted ({len(listed)} {verb})")
        return
    click.echo(f"{len(outcome.deleted)} {verb}; {len(outcome.failed)} kept at the provider")
    for case, problem in outcome.failed:
        click.echo(f"  NOT DELETED {case.reference}: {problem}", err=True)
    if outcome.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
