#!/usr/bin/env bash
# Starts a throwaway one-host Ceph cluster — one ceph-mon, one ceph-osd on memstore, no ceph-mgr, no
# systemd — and one or more RADOS Gateways (beast frontend) on 127.0.0.1, each with its own
# `rgw multipart min part size`, all sharing the cluster. Everything (config, keyring, monmap, daemon
# data, run dir, admin sockets, pid files, logs) lives under <scratch-dir>.
#
# Usage: start-rgw.sh <scratch-dir> <rgw-port> <min-part-size-bytes> [<rgw-port> <min-part-size-bytes>]...
#   e.g. start-rgw.sh /tmp/ceph 7480 5242880 7481 1048576
# Prints one line of JSON on stdout:
#   {"endpoint","gateways":[{"endpoint","port","minPartSize","pid"}],"accessKeyId","secretAccessKey",
#    "region","scratch","pids":{"mon","osd","rgw":{"<port>":pid}}}
# Progress and errors go to stderr; on a failure, the tails of the daemons' logs, and whatever was
# started is stopped. Exit status 3: Ceph is not installed; 4: another cluster runs (or is starting) on
# this machine; 5: a port is taken by some other program.
# Stop with stop-rgw.sh <scratch-dir>; add a gateway, or restart one with another minimum, with
# add-rgw.sh. The cluster uses fixed ports (mon 3300, osd 6800-6807): one cluster per machine at a time,
# so the script refuses to start while any ceph-mon/ceph-osd/radosgw runs.
#
# Environment: COFFER_CEPH_MEMSTORE_BYTES (memstore capacity, default 6 GiB; memstore keeps about twice
# the stored bytes in RAM), COFFER_CEPH_OWNER_PID (the process that owns the cluster, recorded so a
# later run can tell an orphaned cluster from a busy one).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() { echo "usage: $0 <scratch-dir> <rgw-port> <min-part-size-bytes> [<rgw-port> <min-part-size-bytes>]..." >&2; exit 2; }
(($# >= 3)) || usage
dir=$(realpath -m "$1")
shift
ceph_check_pairs "$@" || usage
memstore_bytes=${COFFER_CEPH_MEMSTORE_BYTES:-6442450944}
started=$(ceph_now_ms)

for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool; do
  command -v "$tool" >/dev/null || { ceph_log "$tool is not installed: run .ci/install-ceph.sh"; exit 3; }
done

# --- one cluster per machine -------------------------------------------------------------------------
# Two starts racing (two jest runs) must not both pass the check below: hold a machine-wide lock until
# this cluster is up (fd 9; the daemons do not inherit it).
exec 9>"${TMPDIR:-/tmp}/coffer-ceph-start.lock"
if ! flock -w 120 9; then ceph_log "refusing to start: another start-rgw.sh holds ${TMPDIR:-/tmp}/coffer-ceph-start.lock"; exit 4; fi
running=$(ceph_running_daemons)
if [ -n "$running" ]; then
  ceph_log "refusing to start: Ceph daemons are already running on this machine (the mon and osd ports are fixed)."
  ceph_log "running (pid name config):"
  sed 's/^/  /' <<<"$running" >&2
  for conf in $(awk '{print $3}' <<<"$running" | sort -u); do
    [ "$conf" = "?" ] || ceph_log "stop it first if it is yours: $here/stop-rgw.sh $(dirname "$conf")"
  done
  exit 4
fi
for port in "$CEPH_MON_PORT" $(printf '%s\n' "$@" | sed -n 'p;n'); do
  if ceph_port_open "$port"; then
    ceph_log "refusing to start: 127.0.0.1:$port is already in use by another program"
    exit 5
  fi
done

# --- a fresh scratch directory -----------------------------------------------------------------------
if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
  if [ -f "$dir/coffer-ceph-cluster" ]; then
    rm -rf "${dir:?}"/* # a stopped cluster of ours: start over from empty
  else
    ceph_log "refusing to use $dir: not empty and not a scratch directory of start-rgw.sh"
    exit 2
  fi
fi
mkdir -p "$dir"/{run,log,mon,osd,rgw}
touch "$dir/coffer-ceph-cluster"
echo "${COFFER_CEPH_OWNER_PID:-$PPID}" >"$dir/run/owner.pid"

# On any failure: show the logs' tails and stop whatever was started.
on_error() {
  local status=$?
  trap - ERR
  ceph_log "start failed (exit $status); logs in $dir/log:"
  for log in "$dir"/log/*; do
    [ -s "$log" ] || continue
    echo "---- $log" >&2
    tail -n 15 "$log" >&2
  done
  "$here/stop-rgw.sh" "$dir" >&2 || true
  exit "$status"
}
trap on_error ERR

fsid=$(cat /proc/sys/kernel/random/uuid)
conf=$dir/ceph.conf
admin_socket="admin socket = $dir/run/\$name.asok"
if ((${#dir} + 30 > 107)); then # a unix socket path has at most 107 bytes
  ceph_log "scratch path too long for admin sockets: they are disabled"
  admin_socket="admin socket ="
fi
cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$CEPH_MON_PORT
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
ms bind ipv6 = false
public addr = 127.0.0.1
cluster addr = 127.0.0.1
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
# Commit map changes (pool creation, osd boot) without the default 1 s batching.
paxos propose interval = 0.05
mon max pg per osd = 1000
# The mon stores little (memstore holds the data in RAM): do not stop it on a nearly full disk.
mon data avail warn = 0
mon data avail crit = 0
run dir = $dir/run
$admin_socket
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
keyring = $dir/keyring
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $memstore_bytes
rgw gc obj min wait = 10
rgw gc processor period = 10
rgw gc processor max time = 10
# Lifecycle sped up for the coffer-lifecycle tests: one lifecycle "day" lasts 10 s and the lifecycle
# engine may run at any hour (rgw_lc_debug_interval, rgw_lifecycle_work_time).
rgw lc debug interval = 10
rgw lifecycle work time = 00:00-23:59

[client.admin]
# radosgw-admin runs as client.admin: no admin socket (it would clash with nothing, but is not needed),
# and the same messenger modes as the gateways.
admin socket =
ms mon client mode = crc
ms client mode = crc
CONF

# --- monitor -----------------------------------------------------------------------------------------
ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >"$dir/log/authtool.out" 2>&1
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$CEPH_MON_PORT]" "$dir/monmap" >"$dir/log/monmaptool.out" 2>&1
ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/keyring" >"$dir/log/mon-mkfs.out" 2>&1
ceph-mon -c "$conf" -i a -f </dev/null >"$dir/log/mon.a.out" 2>&1 9>&- &
echo $! >"$dir/run/mon.pid.bg"
ceph_wait_port "$CEPH_MON_PORT" "$(cat "$dir/run/mon.pid.bg")" 300 || { ceph_log "ceph-mon did not listen on $CEPH_MON_PORT"; false; }
mon_ms=$(ceph_now_ms)

# --- object storage daemon ---------------------------------------------------------------------------
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(ceph -c "$conf" --connect-timeout 30 osd new "$osd_uuid" 2>"$dir/log/osd-new.out")
mkdir -p "$dir/osd/ceph-$osd_id"
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$dir/log/osd-mkfs.out" 2>&1
ceph-osd -c "$conf" -i "$osd_id" -f </dev/null >"$dir/log/osd.$osd_id.out" 2>&1 9>&- &
echo $! >"$dir/run/osd.pid.bg"
up=no
for _ in $(seq 1 300); do
  if ceph -c "$conf" --connect-timeout 10 osd stat 2>/dev/null | grep -q ' 1 up'; then up=yes; break; fi
  kill -0 "$(cat "$dir/run/osd.pid.bg")" 2>/dev/null || break
  sleep 0.2
done
[ "$up" = yes ] || { ceph_log "ceph-osd did not come up"; false; }
osd_ms=$(ceph_now_ms)

# --- RADOS Gateways ----------------------------------------------------------------------------------
ceph_start_rgws "$dir" "$@"
rgw_ms=$(ceph_now_ms)
radosgw-admin -c "$conf" user create --uid test --display-name test \
  --access-key "$CEPH_TEST_ACCESS_KEY" --secret "$CEPH_TEST_SECRET_KEY" >"$dir/log/user-create.out" 2>&1
trap - ERR

ceph_connection_json "$dir" | tee "$dir/connection.json"
done_ms=$(ceph_now_ms)
ceph_log "cluster up in $(((done_ms - started)))ms (mon $((mon_ms - started))ms, osd +$((osd_ms - mon_ms))ms, radosgw +$((rgw_ms - osd_ms))ms, user +$((done_ms - rgw_ms))ms), scratch $dir"
