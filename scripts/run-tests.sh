#!/usr/bin/env bash
# The test command (README.md): installs what the tests need, then runs the type checker
# and all the tests.
# Python packages go into .venv, at the versions of constraints.txt; Debian packages
# (espeak-ng for the offline voice, Chromium and a Khmer font for the browser tests, nginx and
# openssl for the deployment test, systemd's systemd-analyze for its units) are installed when
# missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v chromium >/dev/null || need+=(chromium)
fc-list 2>/dev/null | grep -qi khmer || need+=(fonts-khmeros)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v openssl >/dev/null || need+=(openssl)
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian packages: ${need[*]}"
    apt-get update -qq >/dev/null
    # no service may start on its own (nginx would listen on port 80): the tests run their own
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; made_policy=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    if [ -n "$made_policy" ]; then rm -f "$policy"; fi
  else
    echo "Missing (install them for the full suite): ${need[*]}" >&2
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
# the type checker (settings in pyproject.toml: ivr/), then the tests; either failing fails
status=0
.venv/bin/python -m mypy || status=$?
.venv/bin/python -m pytest "$@" || status=$?
exit "$status"
