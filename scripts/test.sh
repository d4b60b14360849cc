#!/usr/bin/env bash
# Install what the tests need on a fresh Debian machine (as root), then run them all.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need_apt+=(fonts-wqy-microhei)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v unshare >/dev/null 2>&1 || need_apt+=(util-linux)
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
# Independent WebRTC/RTSP software the footage tests talk to (GStreamer's webrtcbin and
# GstRtspServer, driven from Debian's own python3 with gi, not from our venv).
/usr/bin/python3 -c "import gi; gi.require_version('GstWebRTC', '1.0'); gi.require_version('GstRtspServer', '1.0')" >/dev/null 2>&1 \
    && [ -f /usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstx264.so ] \
    || need_apt+=(python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0
                  gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
                  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-nice gstreamer1.0-libav)
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# The suite talks only to loopback. As root, run it in a network namespace of its
# own whose only interface is lo, so nothing can reach the host's network.
if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
    exec unshare -n sh -c 'ip link set lo up && exec .venv/bin/python -m pytest "$@"' sh "$@"
else
    echo "note: not root or no unshare: running without a private network namespace"
    exec .venv/bin/python -m pytest "$@"
fi
