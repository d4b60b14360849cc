#!/usr/bin/env bash
# Install dutycall into .venv and start it on embedded defaults.
# Usage: bash scripts/start.sh [dutycall flags...]   (see: .venv/bin/dutycall --help)
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need_apt+=(python3-venv)
# A Chinese font for the PDF handbook.
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need_apt+=(fonts-wqy-microhei)
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/dutycall "$@"
