#!/usr/bin/env bash
# Install and start a real Docker engine for the tests, and build the local base image
# (course-base:bookworm) that the course's Dockerfiles use through `--build-arg BASE_IMAGE=...`.
#
# Idempotent: every step checks whether it is already done. Runs as root (CI, or a session on the
# course machine). No registry is reachable here, so the base image is bootstrapped from Debian
# packages instead of being pulled. Builds and containers use host networking.
#
# Environment (all optional):
#   COURSE_BASE_IMAGE   tag of the base image            (default course-base:bookworm)
#   DOCKERD_LOG         where dockerd writes its log      (default /var/log/course-dockerd.log)
#   DOCKERD_WAIT_S      bounded wait for the socket       (default 60)
set -euo pipefail

BASE_IMAGE="${COURSE_BASE_IMAGE:-course-base:bookworm}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/course-dockerd.log}"
DOCKERD_WAIT_S="${DOCKERD_WAIT_S:-60}"
# The Debian package's client (the daemon's own version); a newer static client may shadow it on PATH.
DOCKER=/usr/bin/docker

log() { printf '[docker.sh %(%H:%M:%S)T] %s\n' -1 "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "docker.sh: must run as root (installs packages and starts dockerd); try: sudo bash .ci/docker.sh" >&2
    exit 1
fi

# 1. Packages ---------------------------------------------------------------------------------------
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null || [ ! -x "$DOCKER" ]; then
    log "installing docker.io and debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
else
    log "docker.io and debootstrap already installed"
fi

# 2. Daemon -----------------------------------------------------------------------------------------
daemon_answers() { timeout 5 "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
# A live process (kill -0 also succeeds on a zombie, so read its state).
alive() {
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null || true)"
    [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

if daemon_answers; then
    log "dockerd already answers"
else
    # A dockerd killed with the previous session leaves its pid file; dockerd refuses to start while that
    # pid exists (even as a zombie or a reused pid), so drop the file unless a live dockerd owns it.
    if [ -f /var/run/docker.pid ]; then
        old_pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
        state="$(ps -o stat=,comm= -p "${old_pid:-0}" 2>/dev/null || true)"
        case "$state" in
            Z*|"") rm -f /var/run/docker.pid ;;
            *dockerd*) ;;
            *) rm -f /var/run/docker.pid ;;
        esac
    fi
    log "starting dockerd (log: $DOCKERD_LOG)"
    # setsid: its own session, so it outlives this script and is not hit by the caller's signals.
    setsid dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    dockerd_pid=$!
    deadline=$((SECONDS + DOCKERD_WAIT_S))
    until daemon_answers; do
        if ! alive "$dockerd_pid" || [ "$SECONDS" -ge "$deadline" ]; then
            echo "docker.sh: dockerd did not answer (exited, or still silent after ${DOCKERD_WAIT_S}s);" \
                "last lines of $DOCKERD_LOG:" >&2
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            exit 1
        fi
        sleep 0.5
    done
    log "dockerd answers: server $("$DOCKER" version --format '{{.Server.Version}}')"
fi

# 3. Base image -------------------------------------------------------------------------------------
if "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base image $BASE_IMAGE already exists"
    exit 0
fi

ROOTFS="$(mktemp -d /tmp/course-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
log "debootstrap bookworm into $ROOTFS (about a minute)"
# python-is-python3: `python` exists as in python:3.11-slim; adduser: Dockerfiles create their user.
debootstrap --variant=minbase \
    --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates,adduser \
    bookworm "$ROOTFS" >"$ROOTFS.debootstrap.log" 2>&1 || {
    echo "docker.sh: debootstrap failed; last lines of $ROOTFS.debootstrap.log:" >&2
    tail -n 30 "$ROOTFS.debootstrap.log" >&2
    exit 1
}
rm -f "$ROOTFS.debootstrap.log"

# TLS: this machine reaches PyPI through its own CA bundle; pip inside builds needs the same bundle.
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
# pip: only the certificate and a generous timeout are needed to reach PyPI from a build. The host's
# find-links/extra-index-url point at folders on the host's disk, which a build cannot see, so they
# are not copied. Like python:3.11-slim, let pip install into the system interpreter (no PEP 668 stop).
cat >"$ROOTFS/etc/pip.conf" <<'EOF'
[global]
cert = /etc/ssl/certs/ca-certificates.crt
timeout = 180
disable-pip-version-check = true
EOF
rm -f "$ROOTFS"/usr/lib/python3*/EXTERNALLY-MANAGED
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*

log "importing $ROOTFS as $BASE_IMAGE"
tar -C "$ROOTFS" -c . | "$DOCKER" import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    - "$BASE_IMAGE" >/dev/null
log "base image $BASE_IMAGE ready ($("$DOCKER" image inspect -f '{{.Size}}' "$BASE_IMAGE") bytes)"
