"""The deployment in deploy/, run for real: Debian's nginx with the shipped site in front of
gunicorn started as the systemd unit says, on a socket handed over as systemd does. Slow
clients meet nginx, and callers do not notice them (scripts/slow_clients.py measures the
same, and gunicorn alone, for the README)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest

from tests.support import ROOT

SCRIPT = ROOT / "scripts" / "slow_clients.py"


def load_script():
    spec = importlib.util.spec_from_file_location("slow_clients", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["slow_clients"] = module
    spec.loader.exec_module(module)
    return module


def test_behind_nginx_sixteen_slow_clients_hold_up_no_webhook(tmp_path):
    """The issue's attack: 16 connections trickling header bytes (8 bytes/s in all). Behind
    nginx every webhook of six calls at once is answered within a second (gunicorn alone
    left most of them unanswered after Twilio's 15 s: README, "Operating it")."""
    for tool in ("nginx", "openssl"):
        if not (shutil.which(tool) or (tool == "nginx" and shutil.which("/usr/sbin/nginx"))):
            pytest.skip(f"{tool} is missing (apt-get install nginx openssl; "
                        "scripts/run-tests.sh installs them as root)")
    slow = load_script()
    result = slow.measure("nginx", tmp_path)
    print(result)
    assert result["slow_connections_open_at_the_end"] == slow.SLOW  # they were there all along
    assert result["calls_whole"] == result["calls"] == slow.CALLERS  # every call went through
    assert result["webhooks"] >= 5 * slow.CALLERS
    assert result["over_1s"] == 0 and result["unanswered_in_15s"] == 0, result


def test_the_site_tested_is_the_site_shipped(tmp_path):
    """The test above runs the shipped site with only its machine-specific lines swapped
    (site_config fails when one is not there as shipped), and its proxy settings."""
    slow = load_script()
    cert = key = tmp_path / "x.pem"
    site = slow.site_config(tmp_path, 8443, 8080, tmp_path / "s.sock", cert, key)
    assert f"include {slow.PROXY};" in site and "proxy_pass" not in slow.SITE.read_text()
    proxy = slow.PROXY.read_text()
    for setting in ("proxy_request_buffering on;", "proxy_buffering on;",
                    "client_max_body_size 64k;", "client_header_timeout 10s;",
                    "proxy_set_header X-Forwarded-Proto $scheme;",
                    "proxy_set_header X-Forwarded-For $remote_addr;"):
        assert setting in proxy, setting


def test_the_units_are_valid_and_agree_with_nginx_and_gunicorn(tmp_path):
    """systemd accepts the units (systemd-analyze verify, with the programs where this
    checkout's Python has them); the socket is the one nginx's upstream names; the service
    runs gunicorn with ivr/gunicorn_conf.py and trusts exactly one proxy (nginx)."""
    slow = load_script()
    socket_unit = slow.unit_entries(slow.SOCKET_UNIT)
    service = slow.unit_entries(slow.SERVICE)
    listen = dict(socket_unit["Socket"])["ListenStream"]
    assert f"server unix:{listen};" in slow.SITE.read_text()
    assert ("Requires", "owso-ivr.socket") in service["Unit"]
    command, environment = slow.service_command(tmp_path)
    assert command[3:] == ["-c", "python:ivr.gunicorn_conf", "ivr:create_app()"], command
    assert environment["IVR_PROXY_HOPS"] == "1"
    assert environment["IVR_CALLER_KEY_FILE"] == f"{tmp_path}/caller-key"
    for timer in ("owso-ivr-backup", "owso-ivr-check"):
        assert (slow.DEPLOY / "systemd" / f"{timer}.service").exists()
        assert slow.unit_entries(slow.DEPLOY / "systemd" / f"{timer}.timer")["Timer"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is missing (apt-get install systemd)")
    bin_dir = str(__import__("pathlib").Path(sys.executable).parent) + "/"
    for unit in (slow.DEPLOY / "systemd").iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/owso-ivr/.venv/bin/",
                                                                   bin_dir))
    done = subprocess.run([analyze, "verify", *sorted(str(p) for p in tmp_path.glob("*.*")
                                                      if p.suffix in (".service", ".socket",
                                                                      ".timer"))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (
        done.stdout + done.stderr)


def test_nginx_lets_the_audio_forms_through_as_large_as_the_app_takes_them():
    """nginx refuses bodies over 64 KiB (webhooks); the admin forms that send audio (a case's
    reply, a studio recording, a studio import) have their own limit there, at least the
    app's, so an office's recorded reply is not a 413 from nginx in production."""
    import re

    from ivr import replies, studio

    slow = load_script()
    proxy = slow.PROXY.read_text()
    limits = {pattern: int(size) * 1024 * 1024 for pattern, size in re.findall(
        r"location ~ (\S+) \{\s*client_max_body_size (\d+)m;", proxy)}
    for path, needed in (("/admin/cases/123456/reply", replies.MAX_BYTES),
                         ("/admin/voice/km/greeting", studio.MAX_FILE_BYTES),
                         ("/admin/voice/import", studio.MAX_IMPORT_BYTES)):
        matching = [size for pattern, size in limits.items() if re.match(pattern, path)]
        assert matching and matching[0] >= needed, (path, limits)
    assert not re.match(next(iter(limits)), "/voice/km/main")  # webhooks keep 64 KiB
