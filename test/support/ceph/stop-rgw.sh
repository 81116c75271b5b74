#!/usr/bin/env bash
# Stops the daemons start-rgw.sh started (by PID) and waits for them to exit.
set -u
dir=$(realpath -m "$1")
for name in rgw-a rgw-b osd mon; do
  file="$dir/run/$name.pid.bg"
  [ -f "$file" ] || continue
  pid=$(cat "$file"); kill "$pid" 2>/dev/null
done
for name in rgw-a rgw-b osd mon; do
  file="$dir/run/$name.pid.bg"
  [ -f "$file" ] || continue
  pid=$(cat "$file")
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
done
exit 0
