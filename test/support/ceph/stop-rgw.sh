#!/usr/bin/env bash
# Stops what start-rgw.sh / add-rgw.sh started under <scratch-dir>, by PID, and waits for it to exit.
# Usage: stop-rgw.sh <scratch-dir>             stops every gateway, then the osd and the mon
#        stop-rgw.sh <scratch-dir> <rgw-port>  stops only that gateway (the cluster keeps running)
# Gateways stop first (SIGTERM, SIGKILL after 10 s: radosgw needs the osd to shut down cleanly), the mon last. The memstore osd gets SIGKILL at once: on a
# clean shutdown memstore writes everything it holds into the scratch directory, which is thrown away.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
(($# == 1 || $# == 2)) || { echo "usage: $0 <scratch-dir> [<rgw-port>]" >&2; exit 2; }
dir=$(realpath -m "$1")
[ -d "$dir/run" ] || exit 0

# True while <pid> is a live Ceph daemon. A zombie counts as gone: it has released its memory and ports,
# only its parent (often PID 1, once start-rgw.sh has exited) has not reaped it yet, which can take seconds.
daemon_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $stat =~ ^[0-9]+\ \((ceph-mon|ceph-osd|radosgw)\)\ ([A-Za-z]) ]] || return 1
  [[ ${BASH_REMATCH[2]} != [ZX] ]]
}

# Sends <signal> to the daemon whose PID is in <file>, if that PID still is a live Ceph daemon.
signal_daemon() {
  local signal=$1 file=$2 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if daemon_alive "$pid"; then kill "-$signal" "$pid" 2>/dev/null || true; fi
}

# Waits up to 10 s for the daemon of <file> to exit, then kills it.
wait_daemon() {
  local file=$1 pid i
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  for ((i = 0; i < 200; i++)); do
    daemon_alive "$pid" || { rm -f "$file"; return 0; }
    sleep 0.05
  done
  ceph_log "$file: pid $pid did not stop within 10 s, killing it"
  signal_daemon KILL "$file"
  for ((i = 0; i < 100; i++)); do daemon_alive "$pid" || break; sleep 0.05; done
  rm -f "$file"
}

if (($# == 2)); then
  signal_daemon TERM "$dir/run/rgw.$2.pid.bg"
  wait_daemon "$dir/run/rgw.$2.pid.bg"
  exit 0
fi
t0=$(ceph_now_ms)
for file in "$dir"/run/rgw.*.pid.bg; do signal_daemon TERM "$file"; done
for file in "$dir"/run/rgw.*.pid.bg; do wait_daemon "$file"; done
t1=$(ceph_now_ms)
signal_daemon KILL "$dir/run/osd.pid.bg"
signal_daemon TERM "$dir/run/mon.pid.bg"
wait_daemon "$dir/run/osd.pid.bg"
wait_daemon "$dir/run/mon.pid.bg"
t2=$(ceph_now_ms)
ceph_log "stopped in $((t2 - t0))ms (radosgw $((t1 - t0))ms, osd and mon +$((t2 - t1))ms)"
exit 0
