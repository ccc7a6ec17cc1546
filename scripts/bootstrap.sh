#!/usr/bin/env bash
# Set up everything streamer needs on a fresh machine (idempotent, quick when already done):
# Java 17 and Maven (Debian packages, when missing), a Python venv in .venv with streamer and its
# dev tools, and the Apache Kafka jars from Maven Central.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[bootstrap] %s\n' "$*"; }

# Another process (unattended-upgrades, cloud-init) often holds the package lock on a fresh VM:
# wait for it, saying so, for at most STREAMER_APT_LOCK_TIMEOUT_SECONDS.
APT_LOCK_TIMEOUT_SECONDS="${STREAMER_APT_LOCK_TIMEOUT_SECONDS:-600}"
APT_LOCK=/var/lib/dpkg/lock-frontend

apt_lock_held() {  # dpkg takes fcntl locks: try one without waiting
  [ -e "$APT_LOCK" ] && ! python3 -c 'import fcntl, sys
with open(sys.argv[1], "w") as f:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)' "$APT_LOCK" 2>/dev/null
}

apt_get() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT_SECONDS" "$@"
}

apt_install() {
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    if apt_lock_held; then
      say "another process holds the package lock ($APT_LOCK); waiting up to ${APT_LOCK_TIMEOUT_SECONDS} s for it (STREAMER_APT_LOCK_TIMEOUT_SECONDS)"
    fi
    say "installing Debian packages: $*"
    apt_get install -y -q "$@" >/dev/null || {
      apt_get update -q >/dev/null && apt_get install -y -q "$@" >/dev/null; } || {
      if apt_lock_held; then
        echo "streamer: the package lock ($APT_LOCK) was still held after ${APT_LOCK_TIMEOUT_SECONDS} s; let the other package manager finish (ps aux | grep -E 'apt|dpkg'), or raise STREAMER_APT_LOCK_TIMEOUT_SECONDS, and rerun" >&2
      else
        echo "streamer: apt-get could not install $* (see its message above); install them and rerun" >&2
      fi
      exit 2; }
  else
    echo "streamer: missing $* ; install them (Debian: sudo apt-get install -y $*) and rerun" >&2
    exit 2
  fi
}

command -v java >/dev/null || apt_install openjdk-17-jre-headless
command -v mvn >/dev/null || apt_install maven

# --- Prometheus and promtool (Debian package `prometheus`) -------------------------------------
# The observability tests run promtool and a Prometheus of their own (own config, data dir in a
# temporary folder, free port); the package's own service, where systemd starts it, is not used.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  apt_install prometheus
fi
# ------------------------------------------------------------------------------------------------
for pkg in ${STREAMER_EXTRA_DEBS:-}; do dpkg -s "$pkg" >/dev/null 2>&1 || apt_install "$pkg"; done

PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "streamer: Python 3.11+ is required (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2; }
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
stamp=".venv/.streamer-installed-$(sha1sum pyproject.toml | cut -c1-12)-${STREAMER_EXTRAS:-dev}"
if [ ! -f "$stamp" ]; then
  say "installing streamer[${STREAMER_EXTRAS:-dev}] into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  # pip shows its own progress (one line per package, a bar per download).
  .venv/bin/python -m pip install --progress-bar on -e ".[${STREAMER_EXTRAS:-dev}]" \
    || { echo "streamer: installing into .venv failed (see above)" >&2; exit 2; }
  rm -f .venv/.streamer-installed-*
  touch "$stamp"
fi
say "Kafka jars"
.venv/bin/streamer kafka install
say "ready"
