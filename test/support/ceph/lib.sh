# Shared by start-rgw.sh, add-rgw.sh and stop-rgw.sh (sourced, not run).
# Layout of a scratch directory:
#   ceph.conf  keyring  monmap  connection.json  coffer-ceph-cluster (marker)
#   run/   admin sockets, <daemon>.pid (written by ceph), <daemon>.pid.bg (the PID we stop by), owner.pid
#   log/   daemon logs (<name>.log) and their stdout/stderr (<name>.out)
#   mon/ osd/ rgw/   daemon data

CEPH_TEST_ACCESS_KEY=COFFERTESTACCESSKEY0
CEPH_TEST_SECRET_KEY=coffer-test-secret-key-0123456789abcdef
CEPH_TEST_REGION=us-east-1
CEPH_MON_PORT=3300

ceph_log() { printf '[ceph] %s\n' "$*" >&2; }

# Milliseconds since the epoch.
ceph_now_ms() { date +%s%3N; }

# True when something accepts TCP connections on 127.0.0.1:<port>.
ceph_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to <tenths> × 0.1 s for 127.0.0.1:<port> to accept connections, giving up early when the
# daemon <pid> has exited.
ceph_wait_port() {
  local port=$1 pid=$2 tenths=$3 i
  for ((i = 0; i < tenths; i++)); do
    ceph_port_open "$port" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# One line per running Ceph daemon on this machine: "<pid> <name> <config file>". Zombies are left out:
# they hold no ports, and their parent (PID 1 once start-rgw.sh has exited) may reap them seconds later.
ceph_running_daemons() {
  local pid conf stat
  for pid in $({ pgrep -x ceph-mon; pgrep -x ceph-osd; pgrep -x radosgw; } | sort -n); do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    [[ $stat =~ ^[0-9]+\ \([^\)]*\)\ [ZX] ]] && continue
    conf=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n '/^-c$/{n;p;q}')
    printf '%s %s %s\n' "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null)" "${conf:-?}"
  done
}

# Appends a [client.rgw.<port>] section to ceph.conf (idempotent per port).
ceph_rgw_section() {
  local dir=$1 port=$2 min=$3
  if grep -q "^\[client.rgw.$port\]" "$dir/ceph.conf"; then # restarted gateway: maybe another minimum
    sed -i "/^\[client.rgw.$port\]/,/^\[/{s/^rgw multipart min part size = .*/rgw multipart min part size = $min/}" "$dir/ceph.conf"
    return 0
  fi
  mkdir -p "$dir/rgw/$port"
  cat >>"$dir/ceph.conf" <<CONF

[client.rgw.$port]
rgw frontends = beast endpoint=127.0.0.1:$port
rgw data = $dir/rgw/$port
# Without these two radosgw retries 'get_initial_auth_request returned -13' forever and never listens.
ms mon client mode = crc
ms client mode = crc
rgw multipart min part size = $min
CONF
}

# Starts radosgw for every "<port> <min>" pair given (in parallel) and waits for each to listen.
ceph_start_rgws() {
  local dir=$1 port min pid
  shift
  local -a ports=()
  while (($# >= 2)); do
    port=$1 min=$2
    shift 2
    ceph_rgw_section "$dir" "$port" "$min"
    radosgw -c "$dir/ceph.conf" -n "client.rgw.$port" -f </dev/null >"$dir/log/rgw.$port.out" 2>&1 9>&- &
    echo $! >"$dir/run/rgw.$port.pid.bg"
    ports+=("$port")
  done
  for port in "${ports[@]}"; do
    pid=$(cat "$dir/run/rgw.$port.pid.bg")
    if ! ceph_wait_port "$port" "$pid" 600; then
      ceph_log "radosgw on port $port did not listen within 60 s; last lines of its log:"
      tail -n 20 "$dir/log/client.rgw.$port.log" "$dir/log/rgw.$port.out" >&2 2>/dev/null || true
      return 1
    fi
  done
}

# Prints the JSON connection info of every gateway running under <dir>.
ceph_connection_json() {
  local dir=$1 file port min pid first='' gateways='' rgwpids=''
  for file in "$dir"/run/rgw.*.pid.bg; do
    [ -f "$file" ] || continue
    port=${file##*/rgw.}
    port=${port%.pid.bg}
    pid=$(cat "$file")
    kill -0 "$pid" 2>/dev/null || continue
    min=$(sed -n "/^\[client.rgw.$port\]/,/^\[/{s/^rgw multipart min part size = //p}" "$dir/ceph.conf")
    [ -n "$first" ] || first=$port
    gateways+="${gateways:+,}{\"endpoint\":\"http://127.0.0.1:$port\",\"port\":$port,\"minPartSize\":$min,\"pid\":$pid}"
    rgwpids+="${rgwpids:+,}\"$port\":$pid"
  done
  printf '{"endpoint":"http://127.0.0.1:%s","gateways":[%s],"accessKeyId":"%s","secretAccessKey":"%s","region":"%s","scratch":"%s","pids":{"mon":%s,"osd":%s,"rgw":{%s}}}\n' \
    "$first" "$gateways" "$CEPH_TEST_ACCESS_KEY" "$CEPH_TEST_SECRET_KEY" "$CEPH_TEST_REGION" "$dir" \
    "$(cat "$dir/run/mon.pid.bg")" "$(cat "$dir/run/osd.pid.bg")" "$rgwpids"
}

# Validates "<port> <min>" pairs: an even count of positive integers, min part size at least 5 bytes.
ceph_check_pairs() {
  (($# >= 2 && $# % 2 == 0)) || return 1
  while (($# >= 2)); do
    [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] && (($1 > 0 && $1 < 65536 && $2 > 0)) || return 1
    shift 2
  done
}
