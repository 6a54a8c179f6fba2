#!/bin/sh
# Status reads beside a flood of logins (API.md §11): usersd (--threads 1,
# pinned to core 0, SQLite) gets N logins at once (default 1,000; argon2id
# each, run by its login thread) while one keep-alive client on core 1 times
# status GETs until every login is answered. Prints one JSON line: p50/p99
# of those GETs, idle and during the flood, and the logins per second.
# Loopback only.
#   bench/login_flood.sh [N] [THREADS]    defaults 1000, 1
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000}
threads=${2:-1}
work=$(mktemp -d /tmp/usersd-loginflood.XXXXXX)
bin=${USERSD_BIN:-$root/build/usersd}
trap '[ -n "${upid:-}" ] && kill "$upid" 2>/dev/null; sleep 0.3; rm -rf "$work"' EXIT INT TERM
[ -x "$bin" ] || { echo "login_flood: build first (make build): $bin" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pw=flood-admin-password
cpus=$(nproc)
pin_server="" pin_client=""
[ "$cpus" -ge 2 ] && command -v taskset >/dev/null && pin_server="taskset -c 0" pin_client="taskset -c 1"
USERSD_ADMIN_PASSWORD=$pw $pin_server "$bin" serve --listen 127.0.0.1:$port --db "sqlite:$work/flood.db" \
    --threads "$threads" --max-connections-per-ip $((n + 100)) 2>"$work/log" &
upid=$!
for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
token=$(curl -s -X POST "http://127.0.0.1:$port/api/auth/login/" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$pw\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
$pin_client python3 "$root/bench/login_flood.py" "$port" "$token" "$pw" "$n" "$threads"
