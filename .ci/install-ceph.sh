#!/usr/bin/env bash
# Installs what the integration tests need beyond npm: a one-host Ceph cluster's daemons and the RADOS
# Gateway, from Debian's packages (test/support/ceph starts them). Idempotent: does nothing when every
# program is already installed; otherwise one `apt-get update` and one non-interactive install.
set -euo pipefail
# curl and openssl: the egress and certificate tests drive them as real clients.
tools=(ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool curl openssl)
missing() {
  local tool
  for tool in "${tools[@]}"; do command -v "$tool" >/dev/null || echo "$tool"; done
}
absent=$(missing)
if [ -z "$absent" ]; then
  echo "install-ceph: Ceph already installed ($(radosgw --version 2>/dev/null | head -n 1))"
  exit 0
fi
echo "install-ceph: missing $(echo $absent); installing ceph-mon ceph-osd radosgw ceph-common curl openssl"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-ceph: not root and no sudo" >&2; exit 1; }
  sudo=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  ceph-mon ceph-osd radosgw ceph-common curl openssl >/dev/null
absent=$(missing)
if [ -n "$absent" ]; then
  echo "install-ceph: still missing after the install: $(echo $absent)" >&2
  exit 1
fi
echo "install-ceph: installed $(radosgw --version | head -n 1)"
