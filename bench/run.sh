#!/bin/sh
# `make bench`: usersd against nginx serving a static body of the same size,
# in the same run, on this machine. usersd and nginx each get core 0 (one
# worker), wrk runs on core 1; rounds alternate usersd, nginx (A B A B A B)
# and the medians are reported. Results: bench/results.json and
# bench/RESULTS.md.
# Then the same presence scenarios at 1,000 users on PostgreSQL (a private
# cluster, pinned to core 0 with usersd: the service gets one core, as
# nginx does), when its server binaries are installed.
#   bench/run.sh [USERS] [SECONDS_PER_ROUND]      defaults 1000000, 4
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
users=${1:-1000000}
secs=${2:-4}
rounds=3
conns=64
work=$(mktemp -d /tmp/usersd-bench.XXXXXX)
bin=$root/build/usersd
out=$work/results.jsonl
: > "$out"

cleanup() {
    [ -n "${upid:-}" ] && kill "$upid" 2>/dev/null || true
    "$root/scripts/pg-cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

nport=$(free_port)
mkdir -p "$work/www"
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
worker_cpu_affinity 01;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$nport;
        root $work/www;
        location / { default_type application/json; }
    }
}
NGINX
nginx -c "$work/nginx.conf"

# One wrk round; prints its JSON line.
wrk_round() { # URL MODE PATH
    BENCH_MODE=$2 BENCH_PATH=$3 BENCH_USERS=$size BENCH_TOKENS=$work/tokens \
        taskset -c 1 wrk -t1 -c$conns -d${secs}s --timeout 10s -s "$root/bench/bench.lua" "$1" 2>&1 |
        sed -n 's/^BENCH //p'
}

scenario() { # NAME MODE PATH (the path whose body size nginx mirrors)
    name=$1 mode=$2 path=$3
    body=$(curl -s -H "Authorization: Token $(head -n 1 "$work/tokens")" \
        "http://127.0.0.1:$uport$(echo "$path" | sed 's/{page}/1/')")
    printf '%s' "$body" > "$work/www/$name.json"
    bytes=$(wc -c < "$work/www/$name.json")
    for r in $(seq $rounds); do
        u=$(wrk_round "http://127.0.0.1:$uport" "$mode" "$path")
        n=$(BENCH_TOKENS= wrk_round "http://127.0.0.1:$nport" static "/$name.json")
        rss=$(awk '/VmRSS/ {print $2}' /proc/$upid/status)
        echo "{\"users\": $size, \"db\": \"$backend\", \"scenario\": \"$name\", \"round\": $r, \"bytes\": $bytes, \"usersd\": $u, \"nginx\": $n, \"rss_kb\": $rss}" >> "$out"
    done
    echo "  $name done" >&2
}

# Seeds $db with $size users, starts usersd on it and logs in the tokens.
start_usersd() {
    echo "seeding $size users ($backend)..." >&2
    "$bin" seed --db "$db" --users $((size - 1)) 2>&1 | tail -n 1 >&2
    echo "bench-admin-pass" | "$bin" createuser --db "$db" --username benchadmin --staff --password-stdin >/dev/null
    uport=$(free_port)
    taskset -c 0 "$bin" serve --listen 127.0.0.1:$uport --db "$db" --threads 1 2>"$work/usersd-$backend-$size.log" &
    upid=$!
    for _ in $(seq 100); do curl -s "http://127.0.0.1:$uport/healthz" >/dev/null && break; sleep 0.1; done
    login() {
        curl -s -X POST "http://127.0.0.1:$uport/api/auth/login/" -H 'Content-Type: application/json' \
            -d "{\"username\": \"$1\", \"password\": \"$2\"}" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
    }
    login benchadmin bench-admin-pass > "$work/tokens"
    for k in $(seq 1 10 300); do login "seed$k" seed-password >> "$work/tokens"; done
}

stop_usersd() {
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$upid/status)
    echo "{\"users\": $size, \"db\": \"$backend\", \"peak_rss_kb\": $hwm}" >> "$out"
    kill "$upid"
    wait "$upid" 2>/dev/null || true
    upid=
}

backend=sqlite
for size in 1000 "$users"; do
    db="sqlite:$work/bench-$size.db"
    start_usersd

    scenario status status "/api/users/admin/users/2/online-status/"
    scenario online_page_1 static "/api/users/admin/users/online/?page=1&per_page=50"
    scenario online_page_500 static "/api/users/admin/users/online/?page=500&per_page=50"
    scenario statistics static "/api/users/management/statistics/"
    # the management list filtered by status, then searched for one person
    # (seed777's address: one match at every size; seed777 is offline)
    scenario list_status static "/api/users/management/list/?online_status=offline&per_page=50"
    # twenty different pages at random: a thread keeps four, so most are
    # rendered afresh (what a list costs when it is not a repeat)
    scenario list_pages pages "/api/users/management/list/?page={page}&per_page=50"
    scenario list_search_one static "/api/users/management/list/?online_status=offline&search=seed777%40&per_page=50"
    scenario set_status set "/api/users/admin/users/2/online-status/"
    scenario heartbeat heartbeat "/api/users/admin/users/2/online-status/"
    scenario mixed_90_10 mixed "/api/users/admin/users/2/online-status/"
    # last: a broad search ("seed12" is in 1.1 % of all users) costs in
    # proportion to its matches (see RESULTS.md), and its backlog must not
    # slow the scenarios after it
    scenario list_search static "/api/users/management/list/?online_status=online&search=seed12&per_page=50"
    scenario list_search_pages pages "/api/users/management/list/?online_status=online&search=seed12&page={page}&per_page=50"
    stop_usersd
done

# PostgreSQL: where usersd goes when one machine is not enough. No page or
# token is kept there (it has no cheap data version), so every read asks.
if "$root/scripts/pg-cluster.sh" start "$work/pg" >&2; then
    pgdir=$(cat "$work/pg/data_dir")
    pm=$(head -n 1 "$pgdir/data/postmaster.pid")
    for p in $pm $(pgrep -P "$pm"); do taskset -a -p -c 0 "$p" >/dev/null; done
    "$(cat "$work/pg/bindir")/psql" -q "$(cat "$work/pg/url")/postgres" -c "CREATE DATABASE bench"
    backend=postgresql size=1000 db="$(cat "$work/pg/url")/bench"
    start_usersd
    scenario status status "/api/users/admin/users/2/online-status/"
    scenario online_page_1 static "/api/users/admin/users/online/?page=1&per_page=50"
    scenario statistics static "/api/users/management/statistics/"
    scenario list_pages pages "/api/users/management/list/?page={page}&per_page=50"
    scenario set_status set "/api/users/admin/users/2/online-status/"
    scenario heartbeat heartbeat "/api/users/admin/users/2/online-status/"
    scenario mixed_90_10 mixed "/api/users/admin/users/2/online-status/"
    stop_usersd
    "$root/scripts/pg-cluster.sh" stop "$work/pg" >&2
else
    echo "PostgreSQL server binaries not found: its rows are left out" >&2
fi


cp "$out" "$root/bench/results.jsonl"
python3 "$root/bench/report.py" "$root/bench/results.jsonl" > "$root/bench/RESULTS.md"
cat "$root/bench/RESULTS.md"
