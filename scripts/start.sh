#!/usr/bin/env bash
# Install dutycall into .venv and start it on embedded defaults.
# Usage: bash scripts/start.sh [dutycall flags...]   (see: .venv/bin/dutycall --help)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/dutycall "$@"
