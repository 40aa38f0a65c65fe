"""Accounts and sessions: `ivr users` (the contract's commands, password on standard input),
sessions that end on sign-out, disabling, a password change and idleness; the audit log,
append-only; the Ombudsman of one office and another office's case."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from ivr import create_app
from ivr.admin import accounts
from ivr.cli import main as cli
from tests.support import PASSWORD, RECORDING_URL, ROOT, csrf_of, log_in

SECRET = "ombudsman password 1"


def env(settings) -> dict[str, str]:
    return {"IVR_DATABASE": str(settings.database), "IVR_CATALOG": str(ROOT / "catalog.yaml"),
            "IVR_PROMPTS": str(ROOT / "prompts"), "IVR_CALLER_KEY": "k"}


def ivr(settings, *args: str, stdin: str = ""):
    return CliRunner().invoke(cli, list(args), input=stdin, env=env(settings))


def audit_rows(settings) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(settings.database) as conn:
        return conn.execute("SELECT user, action, target, detail FROM audit_log "
                            "ORDER BY id").fetchall()


@pytest.fixture
def line_app(settings):
    """A line with two offices' cases and an Ombudsman for Poipet, made with `ivr users`."""
    app = create_app(settings)
    store = app.extensions["ivr"].store
    cases = {}
    for i, office in enumerate(("poipet", "battambang")):
        cases[office] = store.save_recording(
            sid=f"CA{i}", caller="+85510000000", kind="complaint", lang="km", office=office,
            service="", topic="other", recording_sid=f"RE{i}",
            recording_url=RECORDING_URL + str(i), duration_s=20)
    made = ivr(settings, "users", "add", "sok.dara", "--role", "ombudsman", "--office",
               "poipet", stdin=SECRET + "\n")
    assert made.exit_code == 0, made.output
    assert "added sok.dara (ombudsman: poipet)" in made.output
    return app, cases


def test_users_add_list_disable_password_from_the_command_line(settings, line_app):
    listed = ivr(settings, "users", "list")
    assert listed.exit_code == 0
    assert "sok.dara" in listed.output and "ombudsman" in listed.output
    assert "poipet" in listed.output and "active" in listed.output
    for args, stdin, error in [
        (("users", "add", "sok.dara", "--role", "analyst"), "another password\n",
         "There is already an account sok.dara"),
        (("users", "add", "chief", "--role", "office"), "long enough pw\n",
         "A office account needs at least one office"),
        (("users", "add", "chief", "--role", "office", "--office", "atlantis"),
         "long enough pw\n", "Unknown office: atlantis"),
        (("users", "add", "an", "--role", "analyst"), "short\n", "at least 10 characters"),
        (("users", "add", "Bad Name!", "--role", "analyst"), "long enough pw\n",
         "A user name has"),
        (("users", "add", "x1", "--role", "king"), "long enough pw\n", "Invalid value"),
        (("users", "disable", "nobody"), "", "There is no account nobody"),
    ]:
        result = ivr(settings, *args, stdin=stdin)
        assert result.exit_code != 0 and error in result.output, (args, result.output)
    assert ivr(settings, "users", "password", "sok.dara", stdin="a new password 2\n"
               ).exit_code == 0
    assert ivr(settings, "users", "disable", "sok.dara").exit_code == 0
    assert "disabled" in ivr(settings, "users", "list").output
    actions = [(a, t) for _, a, t, _ in audit_rows(settings)]
    assert actions == [("user.add", "sok.dara"), ("user.password", "sok.dara"),
                       ("user.disable", "sok.dara")]
    with sqlite3.connect(settings.database) as conn:
        stored = conn.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$") and "a new password" not in stored


def test_an_ombudsman_opens_their_own_case_not_another_office_and_it_is_audited(line_app):
    app, cases = line_app
    client = app.test_client()
    assert log_in(client, SECRET, "sok.dara").status_code == 302
    own = client.get(f"/admin/cases/{cases['poipet']}")
    assert own.status_code == 200
    assert client.get(f"/admin/cases/{cases['battambang']}").status_code == 404
    listed = client.get("/admin/cases").get_data(as_text=True)
    assert cases["poipet"] in listed and cases["battambang"] not in listed
    with sqlite3.connect(app.extensions["ivr"].settings.database) as conn:
        views = conn.execute("SELECT user, role, action, target, address FROM audit_log "
                             "WHERE action = 'case.view'").fetchall()
    assert views == [("sok.dara", "ombudsman", "case.view", cases["poipet"], "127.0.0.1")]


def test_a_cookie_copied_before_sign_out_no_longer_works(line_app):
    app, cases = line_app
    client = app.test_client()
    log_in(client, SECRET, "sok.dara")
    copied = client.get_cookie("ivr_admin").value
    page = client.get("/admin/cases").get_data(as_text=True)
    assert client.post("/admin/logout", data={"csrf": csrf_of(page)}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("ivr_admin", copied)
    response = thief.get(f"/admin/cases/{cases['poipet']}")
    assert response.status_code == 302 and response.location.startswith("/admin/login")
    assert thief.post(f"/admin/cases/{cases['poipet']}/status",
                      data={"status": "closed"}).status_code == 403


@pytest.mark.parametrize("how", ["disable", "password"])
def test_disabling_or_a_new_password_ends_every_session_at_once(settings, line_app, how):
    app, cases = line_app
    browsers = [app.test_client() for _ in range(2)]
    for browser in browsers:
        assert log_in(browser, SECRET, "sok.dara").status_code == 302
        assert browser.get("/admin/cases").status_code == 200
    if how == "disable":
        assert ivr(settings, "users", "disable", "sok.dara").exit_code == 0
    else:
        assert ivr(settings, "users", "password", "sok.dara", stdin="a fresh password\n"
                   ).exit_code == 0
    for browser in browsers:
        assert browser.get("/admin/cases").status_code == 302
    fresh = app.test_client()
    expected = 401 if how == "disable" else 302
    assert log_in(fresh, "a fresh password" if how == "password" else SECRET,
                  "sok.dara").status_code == expected


def test_an_idle_session_ends(settings, line_app, monkeypatch):
    app, _ = line_app
    client = app.test_client()
    now = [1_000_000.0]
    monkeypatch.setattr(accounts, "clock", lambda: now[0])
    log_in(client, SECRET, "sok.dara")
    idle = app.extensions["ivr"].settings.admin_idle_minutes * 60
    now[0] += idle - 5
    assert client.get("/admin/cases").status_code == 200  # used: the idle time starts again
    now[0] += idle - 5
    assert client.get("/admin/cases").status_code == 200
    now[0] += idle + 1
    assert client.get("/admin/cases").status_code == 302
    now[0] += 1
    assert client.get("/admin/cases").status_code == 302  # ended, not merely idle


def test_the_idle_timeout_is_a_setting(settings):
    from ivr.config import Settings

    assert Settings.from_env({"IVR_ADMIN_IDLE_MINUTES": "5"}).admin_idle_minutes == 5
    with pytest.raises(RuntimeError, match="IVR_ADMIN_IDLE_MINUTES is 'soon'"):
        Settings.from_env({"IVR_ADMIN_IDLE_MINUTES": "soon"})


def test_signing_in_and_failing_are_audited_with_the_address(settings, line_app):
    app, _ = line_app
    client = app.test_client()
    assert log_in(client, "wrong password", "sok.dara",
                  environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 401
    assert log_in(client, SECRET, "sok.dara",
                  environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 302
    with sqlite3.connect(settings.database) as conn:
        rows = conn.execute("SELECT user, action, address FROM audit_log WHERE action "
                            "LIKE 'login.%' ORDER BY id").fetchall()
    assert rows == [("sok.dara", "login.failed", "192.0.2.7"),
                    ("sok.dara", "login.ok", "192.0.2.7")]


def test_the_audit_log_is_append_only(settings, line_app):
    with sqlite3.connect(settings.database) as conn:
        for statement in ("UPDATE audit_log SET user = 'someone else'",
                          "DELETE FROM audit_log"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 1


def test_the_audit_page_and_csv_for_administrators_only(settings, line_app):
    app, cases = line_app
    ombudsman = app.test_client()
    log_in(ombudsman, SECRET, "sok.dara")
    ombudsman.get(f"/admin/cases/{cases['poipet']}")
    assert ombudsman.get("/admin/audit").status_code == 403
    assert ombudsman.get("/admin/export/audit/log.csv").status_code == 403
    assert ivr(settings, "users", "add", "root", "--role", "admin",
               stdin="administrator pw\n").exit_code == 0
    admin = app.test_client()
    log_in(admin, "administrator pw", "root")
    page = admin.get("/admin/audit?lang=en&user=sok.dara").get_data(as_text=True)
    assert "case.view" in page and cases["poipet"] in page and "user.add" not in page
    exported = admin.get("/admin/export/audit/log.csv?user=sok.dara").get_data(as_text=True)
    assert "case.view" in exported and "login.ok" in exported and "root" not in exported
    assert ("root", "export", "audit/log.csv") in [r[:3] for r in audit_rows(settings)]


def test_the_bootstrap_password_makes_the_first_admin_only(settings):
    app = create_app(settings, admin_password=PASSWORD)
    assert log_in(app.test_client()).status_code == 302
    rows = audit_rows(settings)
    assert rows[0] == ("IVR_ADMIN_PASSWORD", "user.add", "admin", "role admin (bootstrap)")
    with pytest.raises(RuntimeError, match="at least 10 characters"):
        create_app(settings.__class__(**{**settings.__dict__, "database":
                                         settings.database.with_name("other.db")}),
                   admin_password="short")


def test_an_administrator_manages_accounts_on_the_page(settings, line_app):
    app, cases = line_app
    admin = app.test_client()
    assert ivr(settings, "users", "add", "root", "--role", "admin",
               stdin="administrator pw\n").exit_code == 0
    log_in(admin, "administrator pw", "root")
    page = admin.get("/admin/users?lang=en").get_data(as_text=True)
    token = csrf_of(page)
    made = admin.post("/admin/users", data={"csrf": token, "username": "keo.sophea",
                                            "role": "ombudsman", "office": ["battambang"],
                                            "password": "sophea's password"})
    assert made.status_code == 302
    refused = admin.post("/admin/users", data={"csrf": token, "username": "keo.sophea",
                                               "role": "analyst", "password": "long enough pw"})
    assert refused.status_code == 400
    assert "There is already an account keo.sophea" in refused.get_data(as_text=True)
    sophea = app.test_client()
    assert log_in(sophea, "sophea's password", "keo.sophea").status_code == 302
    assert sophea.get(f"/admin/cases/{cases['battambang']}").status_code == 200
    assert sophea.get(f"/admin/cases/{cases['poipet']}").status_code == 404
    assert admin.post("/admin/users/keo.sophea/password",
                      data={"csrf": token, "password": "short"}).status_code == 400
    assert admin.post("/admin/users/keo.sophea/password",
                      data={"csrf": token, "password": "a brand new one"}).status_code == 302
    assert sophea.get("/admin/cases").status_code == 302  # signed out by the new password
    assert admin.post("/admin/users/root/disable", data={"csrf": token}).status_code == 400
    assert admin.post("/admin/users/keo.sophea/disable", data={"csrf": token}
                      ).status_code == 302
    assert log_in(app.test_client(), "a brand new one", "keo.sophea").status_code == 401
    logged = [(u, a, t) for u, a, t, _ in audit_rows(settings) if a.startswith("user.")]
    assert logged[-3:] == [("root", "user.add", "keo.sophea"),
                           ("root", "user.password", "keo.sophea"),
                           ("root", "user.disable", "keo.sophea")]
