#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (test/e2e/cos-js-sdk-browser.test.ts drives it with
# playwright-core, which downloads no browser of its own). Idempotent (.ci/apt-install.sh).
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" install-chromium chromium chromium
