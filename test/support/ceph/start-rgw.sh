#!/usr/bin/env bash
# Starts a throwaway one-host Ceph cluster (one mon, one memstore osd, no mgr) with two RADOS
# Gateways on loopback: one with S3's default 5 MiB minimum part size, one with 1 MiB (as COS
# allows). Everything lives under the scratch directory; daemons are stopped by stop-rgw.sh.
# Usage: start-rgw.sh <scratch-dir> <port-5MiB> <port-1MiB>   → prints JSON connection info on stdout.
set -euo pipefail
dir=$(realpath -m "$1"); port_a=$2; port_b=$3
access_key=COFFERTESTACCESSKEY0; secret_key=coffer-test-secret-key-0123456789abcdef
if pgrep -x ceph-mon >/dev/null; then echo "a ceph-mon is already running on this machine (fixed ports): stop it first" >&2; exit 1; fi
rm -rf "$dir"; mkdir -p "$dir"/{run,log,mon,osd,rgw}
fsid=$(cat /proc/sys/kernel/random/uuid)
conf=$dir/ceph.conf
cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:3300
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
ms bind ipv6 = false
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
keyring = $dir/keyring
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 8589934592
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$port_a
rgw data = $dir/rgw/a
ms mon client mode = crc
ms client mode = crc
rgw gc obj min wait = 5
rgw multipart min part size = 5242880
[client.rgw.b]
rgw frontends = beast endpoint=127.0.0.1:$port_b
rgw data = $dir/rgw/b
ms mon client mode = crc
ms client mode = crc
rgw gc obj min wait = 5
rgw multipart min part size = 1048576
CONF
ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --fsid "$fsid" --addv a '[v2:127.0.0.1:3300]' "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" >"$dir/log/mkfs-mon.out" 2>&1
ceph-mon -c "$conf" -i a -f >"$dir/log/mon.out" 2>&1 &
echo $! > "$dir/run/mon.pid.bg"
for _ in $(seq 1 100); do ceph -c "$conf" --connect-timeout 2 mon stat >/dev/null 2>&1 && break; sleep 0.2; done
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(ceph -c "$conf" osd new "$osd_uuid")
mkdir -p "$dir/osd/ceph-$osd_id"
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$dir/log/mkfs-osd.out" 2>&1
ceph-osd -c "$conf" -i "$osd_id" -f >"$dir/log/osd.out" 2>&1 &
echo $! > "$dir/run/osd.pid.bg"
for _ in $(seq 1 150); do ceph -c "$conf" osd stat 2>/dev/null | grep -q '1 up' && break; sleep 0.2; done
ceph -c "$conf" osd stat | grep -q '1 up' || { echo "osd did not come up" >&2; exit 1; }
for name in a b; do
  radosgw -c "$conf" -n "client.rgw.$name" -f >"$dir/log/rgw-$name.out" 2>&1 &
  echo $! > "$dir/run/rgw-$name.pid.bg"
done
for port in "$port_a" "$port_b"; do
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "radosgw did not listen on $port" >&2; exit 1; }
done
radosgw-admin -c "$conf" -n client.rgw.a user create --uid test --display-name test --access-key "$access_key" --secret "$secret_key" >"$dir/log/user.out" 2>&1
printf '{"endpoint":"http://127.0.0.1:%s","endpoint1MiB":"http://127.0.0.1:%s","accessKeyId":"%s","secretAccessKey":"%s","region":"us-east-1"}\n' "$port_a" "$port_b" "$access_key" "$secret_key"
