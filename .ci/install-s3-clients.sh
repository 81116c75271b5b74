#!/usr/bin/env bash
# Installs the S3 clients the S3-dialect tests drive (test/s3): aws-cli, rclone, s3cmd and restic,
# from Debian's packages (tests call /usr/bin/aws: a pyenv shim of another aws-cli may be first on
# PATH). Idempotent: does nothing when every program is already installed.
set -euo pipefail
programs=(/usr/bin/aws /usr/bin/rclone /usr/bin/s3cmd /usr/bin/restic)
missing() {
  local program
  for program in "${programs[@]}"; do [ -x "$program" ] || echo "$program"; done
}
absent=$(missing)
if [ -z "$absent" ]; then
  echo "install-s3-clients: already installed"
  exit 0
fi
echo "install-s3-clients: missing $(echo $absent); installing awscli rclone s3cmd restic"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-s3-clients: not root and no sudo" >&2; exit 1; }
  sudo=(sudo -n)
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  awscli rclone s3cmd restic >/dev/null
absent=$(missing)
if [ -n "$absent" ]; then
  echo "install-s3-clients: still missing after the install: $(echo $absent)" >&2
  exit 1
fi
