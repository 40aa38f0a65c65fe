#!/usr/bin/env bash
# The test command (README.md): installs what the tests need, then runs the type checker
# and all the tests.
# Python packages go into .venv; Debian packages (espeak-ng for the offline voice,
# Chromium and a Khmer font for the browser tests) are installed when missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v chromium >/dev/null || need+=(chromium)
fc-list 2>/dev/null | grep -qi khmer || need+=(fonts-khmeros)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian packages: ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "Missing (install them for the full suite): ${need[*]}" >&2
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# the type checker (settings in pyproject.toml: ivr/), then the tests; either failing fails
status=0
.venv/bin/python -m mypy || status=$?
.venv/bin/python -m pytest "$@" || status=$?
exit "$status"
