#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (test/e2e/cos-js-sdk-browser.test.ts drives it with
# playwright-core, which downloads no browser of its own). Idempotent: does nothing when it is there.
set -euo pipefail
if command -v chromium >/dev/null; then
  echo "install-chromium: Chromium already installed"
  exit 0
fi
echo "install-chromium: installing Debian's chromium"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-chromium: not root and no sudo" >&2; exit 1; }
  sudo=(sudo -n)
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold chromium >/dev/null
command -v chromium >/dev/null || { echo "install-chromium: chromium still missing after the install" >&2; exit 1; }
