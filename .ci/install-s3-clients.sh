#!/usr/bin/env bash
# Installs the S3 clients the S3-dialect tests drive (test/s3): aws-cli, rclone, s3cmd and restic,
# from Debian's packages (tests call /usr/bin/aws: a pyenv shim of another aws-cli may be first on
# PATH, hence the paths). Idempotent (.ci/apt-install.sh).
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" install-s3-clients \
  "/usr/bin/aws /usr/bin/rclone /usr/bin/s3cmd /usr/bin/restic" \
  awscli rclone s3cmd restic
