"""The `ivr` command: serve, check, render, call, report, backup."""

from __future__ import annotations

import sys

import click

from ivr.config import Settings


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
    app = create_app(settings)
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
def call(keys: str | None, url: str | None, dial_outcome: str, record_seconds: int,
         sound: bool | None, carrier: str | None) -> None:
    """Call the line from the terminal: hear (read) the prompts, press keys.

    Without --keys it is interactive: type keys and Enter; Enter alone is no input; q hangs
    up. With --keys it runs the script and prints the transcript (for docs and CI); a token
    such as 0105@2.5 presses those keys 2.5 s apart.
    """
    from ivr.app import create_app
    from ivr.simulate import Simulator
    from ivr.terminal import TerminalPhone, prompt_texts

    settings = Settings.from_env(development=True).resolved()
    target = url or create_app(settings)
    phone = TerminalPhone(settings.audio_dir, play_sound=sound if sound is not None else
                          keys is None)
    simulator = Simulator(target, settings.auth_token or "", prompt_text=prompt_texts(settings),
                          dial_outcome=dial_outcome, record_seconds=record_seconds,
                          carrier=carrier or settings.provider,
                          ask_keys=None if keys is not None else phone.ask)
    transcript = simulator.call(keys or "")
    if keys is not None:
        click.echo(transcript.text())
    else:
        phone.finish(transcript)


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


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def render(ctx: click.Context) -> None:
    """Render the prompts' audio (the same as python scripts/render_prompts.py)."""
    from ivr.render import main as render_main

    sys.exit(render_main(ctx.args))


if __name__ == "__main__":
    main()
