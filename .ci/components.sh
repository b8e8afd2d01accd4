#!/usr/bin/env bash
# Install the Debian components the tests drive: a real Prometheus server and promtool for the reliability
# tests (tests/reliability/, Debian's `prometheus` package), and Debian's `chromium` for the browser tests
# (tests/browser/: Playwright cannot download its own browser here, so it launches this one through
# `executable_path`). Idempotent; runs as root (CI, or a session on the course machine). Prometheus is only started by the tests themselves, on 127.0.0.1 with a temporary config and
# storage folder, so nothing is enabled or started here.
set -euo pipefail

log() { printf '[components.sh %(%H:%M:%S)T] %s\n' -1 "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "components.sh: must run as root (installs Debian packages); try: sudo bash .ci/components.sh" >&2
    exit 1
fi

if command -v chromium >/dev/null && [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
    log "chromium already installed ($(chromium --version 2>/dev/null | head -n 1))"
else
    log "installing chromium (browser tests)"
    apt-get update -qq
    # Fonts: JupyterLab's text (dejavu) and the notebooks' ✅/❌ marks (noto emoji) render as glyphs, not
    # empty boxes, in the screenshots.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium fonts-dejavu-core fonts-noto-color-emoji >/dev/null
    log "installed: $(chromium --version 2>/dev/null | head -n 1)"
fi

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    log "prometheus and promtool already installed ($(prometheus --version 2>&1 | head -n 1))"
    exit 0
fi

log "installing prometheus (server + promtool)"
apt-get update -qq
# --no-install-recommends: the package recommends node-exporter and friends, which the tests do not use.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The Debian package enables and starts a system service where an init system runs; the tests start their
# own server, so stop that one if it is running (a no-op in containers without systemd).
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
log "installed: $(prometheus --version 2>&1 | head -n 1)"
