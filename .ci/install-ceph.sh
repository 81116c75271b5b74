#!/usr/bin/env bash
# Installs what the integration tests need beyond npm: a one-host Ceph cluster's daemons and the RADOS
# Gateway, from Debian's packages (test/support/ceph starts them); curl and openssl, which the egress
# and certificate tests drive as real clients. Idempotent (.ci/apt-install.sh).
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" install-ceph \
  "ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool curl openssl" \
  ceph-mon ceph-osd radosgw ceph-common curl openssl
echo "install-ceph: $(radosgw --version | head -n 1)"
