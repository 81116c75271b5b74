#!/usr/bin/env bash
# Installs what the integration tests need beyond npm: Ceph's RADOS Gateway and a one-host cluster's
# daemons, from Debian's packages. Idempotent: does nothing when they are already installed.
set -euo pipefail
if command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null && command -v monmaptool >/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ceph-mon ceph-osd radosgw ceph-common >/dev/null
