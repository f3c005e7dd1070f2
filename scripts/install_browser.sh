#!/usr/bin/env bash
# Install what tests/test_leaderboard_browser.py needs: Debian's Chromium, nothing else.
#
# The browser test drives Chromium through the DevTools protocol over a pipe
# (--remote-debugging-pipe), written with the Python standard library, so no
# WebDriver, Node package or pip package is needed: only /usr/bin/chromium.
# Idempotent: does nothing when chromium is already installed. Needs root (or sudo).
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "chromium already installed: $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install_browser.sh: need root (or sudo) to apt-get install chromium" >&2; exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# fonts-liberation: metric-compatible fonts so screenshots show real text, not boxes.
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-liberation ca-certificates
echo "installed: $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
