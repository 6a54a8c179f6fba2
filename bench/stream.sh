#!/bin/sh
# The presence stream under load: N subscribers (1k, 5k, 10k) on one usersd
# (--threads 1, pinned to core 0) while changes arrive at RATE per second for
# SECONDS (8 keep-alive writers); the client (bench/stream_bench.c) runs on
# core 1. Reports delivery latency p50/p99 (the change's server timestamp to
# its arrival), events delivered, dropped streams, server CPU and peak RSS.
#   bench/stream.sh ["RATE ..."] [SECONDS]    defaults "1000 100", 10
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
rates=${1:-1000 100}
secs=${2:-10}
work=$(mktemp -d /tmp/usersd-stream.XXXXXX)
bin=$root/build/usersd
trap '[ -n "${upid:-}" ] && kill "$upid" 2>/dev/null; sleep 0.3; rm -rf "$work"' EXIT INT TERM
start_server() { # a fresh database and server for each run
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    db="sqlite:$work/stream-$1-$rate.db"
    "$bin" seed --db "$db" --users 999 2>/dev/null
    echo "stream-admin-pass" | "$bin" createuser --db "$db" --username streamadmin --staff --password-stdin >/dev/null
    taskset -c 0 "$bin" serve --listen 127.0.0.1:$port --db "$db" --threads 1 --away-after 0 --offline-after 0 \
        --max-connections-per-ip 100000 2>"$work/log-$1" &
    upid=$!
    for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    token=$(curl -s -X POST "http://127.0.0.1:$port/api/auth/login/" -H 'Content-Type: application/json' \
        -d '{"username": "streamadmin", "password": "stream-admin-pass"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
}

out="$root/bench/stream_results.jsonl"
: > "$out"
for rate in $rates; do
for n in 1000 5000 10000; do
    start_server "$n"
    t0=$(awk '{print $14 + $15}' /proc/$upid/stat)
    w0=$(date +%s.%N)
    res=$(taskset -c 1 "$root/build/stream_bench" 127.0.0.1 "$port" "$token" "$n" "$rate" "$secs" 1000)
    t1=$(awk '{print $14 + $15}' /proc/$upid/stat)
    w1=$(date +%s.%N)
    hz=$(getconf CLK_TCK)
    cpu=$(python3 -c "print(round(($t1 - $t0) / $hz / ($w1 - $w0) * 100, 1))")
    rss=$(awk '/VmHWM/ {print $2}' /proc/$upid/status)
    echo "$res" | python3 -c "import json,sys; d=json.load(sys.stdin); d['server_cpu_pct']=$cpu; d['server_peak_rss_kb']=$rss; print(json.dumps(d))" >> "$out"
    tail -n 1 "$out"
    kill "$upid"
    wait "$upid" 2>/dev/null || true
    upid=
    sleep 1
done
done
