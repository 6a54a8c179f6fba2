#!/bin/sh
# The presence stream under load, with per-subscriber accounting
# (bench/stream_bench.c): for each SPEC a fresh SQLite database of USERS
# users and a fresh usersd (--threads 1, pinned to core 0, decay off so the
# only changes are the bench's), N subscribers on core 1 while the bench
# changes statuses at RATE a second for SECONDS. Prints one JSON line per
# SPEC: delivered %, missing events, resyncs, p50/p99 delivery latency, RSS
# per open stream, server CPU. bench/run.sh calls it for `make bench`.
#   bench/stream.sh [SPEC...]    SPEC = SUBSCRIBERS:RATE[:FOLLOW]
#     FOLLOW: each subscriber follows that many random users (?ids=)
#     default: 1000:1000 10000:100 10000:1000:100
#   BENCH_STREAM_SECONDS (10), BENCH_STREAM_USERS (1000), USERSD_BIN (the
#   server measured; default build/usersd)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || set -- 1000:1000 10000:100 10000:1000:100
secs=${BENCH_STREAM_SECONDS:-10}
users=${BENCH_STREAM_USERS:-1000}
bin=${USERSD_BIN:-$root/build/usersd}
work=$(mktemp -d /tmp/usersd-stream.XXXXXX)
trap '[ -n "${upid:-}" ] && kill "$upid" 2>/dev/null; sleep 0.3; rm -rf "$work"' EXIT INT TERM
[ -x "$root/build/stream_bench" ] || { echo "stream.sh: build first (make build)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
pin0="" pin1=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then pin0="taskset -c 0" pin1="taskset -c 1"; fi
# thousands of streams from one address (the per-address limit, where there is one)
extra=""
"$bin" serve --help | grep -q -- --max-connections-per-ip && extra="--max-connections-per-ip 100000"

for spec in "$@"; do
    n=${spec%%:*} rest=${spec#*:}
    rate=${rest%%:*} follow=0
    [ "$rest" != "$rate" ] && follow=${rest#*:}
    db="sqlite:$work/stream-$n-$rate-$follow.db"
    "$bin" seed --db "$db" --users "$users" 2>/dev/null
    echo "stream-admin-pass" | "$bin" createuser --db "$db" --username streamadmin --staff \
        --password-stdin >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # shellcheck disable=SC2086
    $pin0 "$bin" serve --listen 127.0.0.1:$port --db "$db" --threads 1 --away-after 0 \
        --offline-after 0 $extra 2>"$work/log-$spec" &
    upid=$!
    for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    token=$(curl -s -X POST "http://127.0.0.1:$port/api/auth/login/" -H 'Content-Type: application/json' \
        -d '{"username": "streamadmin", "password": "stream-admin-pass"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    if [ "$follow" -gt 0 ]; then name="stream_ids_$n"; else name="stream_all_$n"; fi
    # shellcheck disable=SC2086
    $pin1 ${BENCH_STREAM_WRAP:-} "$root/build/stream_bench" --port "$port" --token "$token" --subscribers "$n" \
        --rate "$rate" --seconds "$secs" --users "$users" --follow "$follow" --pid "$upid" |
        sed "s/^{/{\"scenario\": \"$name\", /"
    kill "$upid"
    wait "$upid" 2>/dev/null || true
    upid=
    sleep 1
done
