#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs the pinned stack plus garage 2021.3.0 (--no-deps).
# Idempotent: it reinstalls only when requirements.txt changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup: installing the pinned stack into .venv (about a minute on a fresh machine)" >&2
"$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps garage==2021.3.0
echo "$want" > "$stamp"
