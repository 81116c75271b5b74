#!/usr/bin/env bash
# Adds RADOS Gateways to a cluster that start-rgw.sh started, or restarts one with another
# `rgw multipart min part size` (a gateway already running on that port is stopped first).
# Usage: add-rgw.sh <scratch-dir> <rgw-port> <min-part-size-bytes> [<rgw-port> <min-part-size-bytes>]...
# Prints the JSON connection info of all running gateways (as start-rgw.sh does) on stdout.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { echo "usage: $0 <scratch-dir> <rgw-port> <min-part-size-bytes> [<rgw-port> <min-part-size-bytes>]..." >&2; exit 2; }
(($# >= 3)) || usage
dir=$(realpath -m "$1")
shift
ceph_check_pairs "$@" || usage
if ! [ -f "$dir/run/mon.pid.bg" ] || ! kill -0 "$(cat "$dir/run/mon.pid.bg")" 2>/dev/null; then
  ceph_log "no cluster of start-rgw.sh runs under $dir"
  exit 2
fi
started=$(ceph_now_ms)
args=("$@")
while (($# >= 2)); do
  if [ -f "$dir/run/rgw.$1.pid.bg" ]; then "$here/stop-rgw.sh" "$dir" "$1"; fi
  if ceph_port_open "$1"; then ceph_log "127.0.0.1:$1 is already in use by another program"; exit 5; fi
  shift 2
done
ceph_start_rgws "$dir" "${args[@]}"
ceph_connection_json "$dir" | tee "$dir/connection.json"
ceph_log "gateway(s) up in $(($(ceph_now_ms) - started))ms"
