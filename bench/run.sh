#!/bin/sh
# `make bench`: usersd against nginx serving a static body of the same size,
# in the same run, on this machine. usersd and nginx each get core 0 (one
# worker), wrk runs on core 1; rounds alternate usersd, nginx (A B A B A B)
# and the medians are reported. Then the scenarios with no nginx
# counterpart: a day-in-the-life mix and a million online at the defaults
# (million_online: the largest K online users whose load one core carries;
# both at the big size), a login flood
# (bench/login_flood.sh), the presence stream with per-subscriber
# accounting (bench/stream.sh); then the presence scenarios and the mix on
# PostgreSQL (a private cluster pinned to core 0 with
# usersd: the service gets one core, as nginx does), when its server
# binaries are installed, and last several usersd processes on one
# PostgreSQL (pg_processes). Results: results.jsonl and RESULTS.md.
#
#   bench/run.sh [USERS] [SECONDS_PER_ROUND]      defaults 1000000, 4
#
# Knobs (environment):
#   BENCH_SCENARIOS  which scenarios run: "all" (default), or names and
#                    groups separated by spaces: the names of the table
#                    (status, set_status, set_status_nohistory,
#                    heartbeat_distinct, heartbeat_refresh, ...), mix,
#                    login_flood, streams (or stream_all_1000,
#                    stream_all_10000, stream_ids_10000), million_online,
#                    pg_processes; groups: reads, writes (the table's
#                    scenarios, on each database)
#   BENCH_DBS        "sqlite postgresql" (default): the databases
#   BENCH_PG_USERS   the big size on PostgreSQL (default USERS)
# A whole run at a million users takes about an hour here: 23-26 minutes
# of A/B rounds, seeding, warm-ups, the mix, the flood and the streams;
# million_online ~10 minutes a database (a prime and three loads a step),
# pg_processes ~5 minutes a round (a prime of 200,000 users each).
#   BENCH_ROUNDS     rounds per scenario (3)
#   BENCH_HEARTBEAT_USERS  distinct users heartbeating at the big size (100000)
#   BENCH_FLOOD      logins in the flood (1000)
#   BENCH_DECAY      1: usersd decays statuses as by default (off otherwise:
#                    the seeded online users would all decay in one burst
#                    5-10 minutes after seeding, in whichever scenario runs
#                    then; the streams would carry it)
#   BENCH_STREAM_SECONDS   seconds of changes per stream scenario (10)
#   BENCH_STREAM_USERS     users of the full-stream scenarios (1000)
#   BENCH_STREAM_IDS_USERS users of the ?ids= scenario (100000)
#   BENCH_OUT        where results.jsonl and RESULTS.md go (default bench/;
#                    a partial run writes there too: point it elsewhere)
#   million_online (issue 19; at the big size, on each database): K users
#   online beating every 30 s at the default --activity-interval, K raised
#   until the p99 passes 50 ms or the achieved rate falls short (estimated
#   at 3-7 minutes a database at 1M: 4-7 steps of ~30-60 s)
#   BENCH_ONLINE_STEPS    the K tried, in order ("100000 250000 500000
#                         1000000 1500000 2000000"; capped by the users)
#   BENCH_ONLINE_SECONDS  timed seconds a step (10)
#   BENCH_ONLINE_CONNS    wrk connections the heartbeats are sent from
#                         (256; the status changes from a quarter as many)
#   BENCH_ONLINE_READS    reads per heartbeat (0.01)
#   pg_processes (issue 19; PostgreSQL, at the big size): 1, 2 and 4 usersd
#   processes on one database, set-status and refreshing heartbeats, lock
#   waits sampled from pg_stat_activity (BENCH_ROUNDS rounds of
#   SECONDS_PER_ROUND each; ~2.5 minutes at 20,000 users, more at 1M)
#   BENCH_PROCESSES       the process counts ("1 2 4")
#   BENCH_PROCESS_TOKENS  distinct users for the refreshes (200000)
#   BENCH_BIN        the usersd binary to measure (default build/usersd; e.g.
#                    an older commit's Release build, to compare before and
#                    after in one sitting)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
users=${1:-1000000}
secs=${2:-4}
rounds=${BENCH_ROUNDS:-3}
conns=64
scenarios=" ${BENCH_SCENARIOS:-all} "
dbs=" ${BENCH_DBS:-sqlite postgresql} "
hb_users=${BENCH_HEARTBEAT_USERS:-100000}
flood=${BENCH_FLOOD:-1000}
outdir=${BENCH_OUT:-$root/bench}
work=$(mktemp -d /tmp/usersd-bench.XXXXXX)
bin=${BENCH_BIN:-$root/build/usersd}
export USERSD_BIN="$bin" # login_flood.sh and stream.sh run the same binary
out=$work/results.jsonl
: > "$out"
t_start=$(date +%s)
[ -x "$bin" ] || { echo "run.sh: no $bin: build first (make build)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# thousands of connections from one address (the per-address limit, where there is one)
serve_extra=""
"$bin" serve --help | grep -q -- --max-connections-per-ip && serve_extra="--max-connections-per-ip 100000"
[ "${BENCH_DECAY:-0}" = 1 ] || serve_extra="$serve_extra --away-after 0 --offline-after 0"

cleanup() {
    [ -n "${upid:-}" ] && kill "$upid" 2>/dev/null || true
    [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null || true
    for p in ${pids:-}; do kill "$p" 2>/dev/null || true; done
    [ -n "${sampler:-}" ] && kill "$sampler" 2>/dev/null || true
    "$root/scripts/pg-cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# want NAME [GROUP]: is this scenario asked for?
want() {
    case "$scenarios" in *" all "* | *" $1 "*) return 0 ;; esac
    [ $# -gt 1 ] && case "$scenarios" in *" $2 "*) return 0 ;; esac
    return 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

nport=$(free_port)
mkdir -p "$work/www"
# nginx's workers run as nobody when it is started as root: they must reach
# the bodies (a mktemp folder is 0700; it answered 403 to every request)
chmod 711 "$work"
chmod 755 "$work/www"
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

# One wrk run on core 1; prints its JSON line. TOKENS: a token file (the
# first one staff; "-" none), C connections, D seconds, DELAY ms before
# each request of a connection.
wrk_run() { # URL MODE PATH [TOKENS [C [D [DELAY]]]]
    tf=${4:-$work/tokens}
    [ "$tf" = - ] && tf=""
    BENCH_MODE=$2 BENCH_PATH=$3 BENCH_USERS=$size BENCH_TOKENS=$tf BENCH_DELAY_MS=${7:-0} \
        taskset -c 1 wrk -t1 -c"${5:-$conns}" -d"${6:-$secs}"s --timeout 10s \
        -s "$root/bench/bench.lua" "$1" 2>&1 | sed -n 's/^BENCH //p'
}

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$upid/status"; }
# usersd's CPU time so far (user + system), in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$upid/stat"; }
# the same for PostgreSQL's server processes (their backends, the WAL
# writer, the checkpointer...; 0 on SQLite)
db_cpu_ticks() {
    case "$db" in
    sqlite:*) echo 0 ;;
    *) for p in $(pgrep -P "$pm"); do cat "/proc/$p/stat" 2>/dev/null; done |
        awk '{t += $14 + $15} END {print t + 0}' ;;
    esac
}

# An A/B scenario: usersd, then nginx serving a body of the same size.
# Rounds round_from..round_to (default 1..BENCH_ROUNDS): one at a time for
# scenarios whose rounds alternate with another's. GROUP "-": the caller
# has checked that it is asked for.
scenario() { # NAME MODE PATH (the path whose body size nginx mirrors) GROUP [TOKENS]
    name=$1 mode=$2 path=$3
    [ "$4" = - ] || want "$name" "$4" || return 0
    body=$(curl -s -H "Authorization: Token $(head -n 1 "$work/tokens")" \
        "http://127.0.0.1:$uport$(echo "$path" | sed 's/{page}/1/')")
    printf '%s' "$body" > "$work/www/$name.json"
    chmod 644 "$work/www/$name.json"
    bytes=$(wc -c < "$work/www/$name.json")
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$nport/$name.json")
    [ "$code" = 200 ] || { echo "run.sh: nginx answers $code for /$name.json" >&2; exit 1; }
    for r in $(seq "${round_from:-1}" "${round_to:-$rounds}"); do
        u=$(wrk_run "http://127.0.0.1:$uport" "$mode" "$path" "${5:-$work/tokens}")
        n=$(wrk_run "http://127.0.0.1:$nport" static "/$name.json" -)
        [ -n "$u" ] && [ -n "$n" ] || { echo "run.sh: wrk gave no result for $name" >&2; exit 1; }
        echo "{\"users\": $size, \"db\": \"$backend\", \"scenario\": \"$name\", \"round\": $r, \"bytes\": $bytes, \"usersd\": $u, \"nginx\": $n, \"rss_kb\": $(rss_kb)}" >> "$out"
    done
    echo "  $name done" >&2
}

# Seeds $db with $size users (ids 1..size-1 named seed<k>, then the staff
# user benchadmin) and mints tokens for distinct users into $work/hb-tokens.
seed_db() {
    echo "seeding $size users ($backend)..." >&2
    # one bulk load (usersd seed: indexes and counters rebuilt once)
    "$bin" seed --db "$db" --users $((size - 1)) >"$work/seed.log" 2>&1 ||
        { cat "$work/seed.log" >&2; echo "run.sh: seeding $backend failed" >&2; exit 1; }
    tail -n 1 "$work/seed.log" >&2
    echo "bench-admin-pass" | "$bin" createuser --db "$db" --username benchadmin --staff --password-stdin >/dev/null
    hb=$hb_users
    [ "$hb" -gt "$size" ] && hb=$size
    if want heartbeat_distinct writes || want heartbeat_refresh writes || want mix; then
        "$bin" seed --db "$db" --tokens "$hb" "$work/hb-tokens" 2>&1 | tail -n 1 >&2
    fi
    : > "$work/tokens"
}

serve() { # [EXTRA SERVE OPTIONS]: usersd on core 0 (with its database's server, if any)
    uport=$(free_port)
    # shellcheck disable=SC2086
    taskset -c 0 "$bin" serve --listen 127.0.0.1:$uport --db "$db" --threads 1 $serve_extra "$@" \
        2>>"$work/usersd-$backend-$size.log" &
    upid=$!
    for _ in $(seq 100); do curl -s "http://127.0.0.1:$uport/healthz" >/dev/null && break; sleep 0.1; done
    curl -s "http://127.0.0.1:$uport/healthz" >/dev/null ||
        { tail -n 5 "$work/usersd-$backend-$size.log" >&2; echo "run.sh: usersd did not start" >&2; exit 1; }
    if [ ! -s "$work/tokens" ]; then
        login() {
            curl -s -X POST "http://127.0.0.1:$uport/api/auth/login/" -H 'Content-Type: application/json' \
                -d "{\"username\": \"$1\", \"password\": \"$2\"}" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
        }
        login benchadmin bench-admin-pass > "$work/tokens"
        for k in $(seq 1 10 300); do login "seed$k" seed-password >> "$work/tokens"; done
    fi
}

stop_usersd() { # PHASE: the peak RSS of this server, then stop it
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$upid/status")
    echo "{\"users\": $size, \"db\": \"$backend\", \"phase\": \"$1\", \"peak_rss_kb\": $hwm}" >> "$out"
    kill "$upid"
    wait "$upid" 2>/dev/null || true
    upid=
}

# Brings every minted user online: passes of heartbeats over the tokens,
# each continuing where the last ended (not timed, at most 30), so what is
# timed after is users already online, as in a deployment (a first
# heartbeat is a status change, with an event).
warm_heartbeats() {
    done_n=0
    for _ in $(seq 30); do
        [ "$done_n" -ge "$hb" ] && break
        j=$(BENCH_TOKEN_START=$done_n wrk_run "http://127.0.0.1:$uport" heartbeat_seq / "$work/hb-tokens")
        done_n=$((done_n + $(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')))
    done
    [ "$done_n" -ge "$hb" ] || echo "  warm-up: only $done_n heartbeats for $hb users" >&2
    echo "{\"users\": $size, \"db\": \"$backend\", \"warmup\": {\"heartbeats\": $done_n, \"users\": $hb}}" >> "$out"
}

# Heartbeats from distinct users (usersd --activity-interval 0: each one a
# write of a user already online: last_seen and the session's last_used).
heartbeat_distinct() {
    want heartbeat_distinct writes || return 0
    stop_usersd main
    serve --activity-interval 0
    warm_heartbeats
    scenario heartbeat_distinct heartbeat_seq "/api/users/admin/users/2/online-status/" writes \
        "$work/hb-tokens"
    stop_usersd heartbeat_distinct
    serve
}

# One value from the database being measured (read beside the running
# server: a count between rounds).
db_value() { # SQL
    case "$db" in
    sqlite:*)
        python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30)
print(c.execute(sys.argv[2]).fetchone()[0])' "${db#sqlite:}" "$1" ;;
    *) "$(cat "$work/pg/bindir")/psql" -Atq "$db" -c "$1" ;;
    esac
}

# Refreshes (API.md §7) against heartbeats that write nothing, from the
# same distinct users already online, rounds alternating on fresh servers:
# heartbeat_refresh at --activity-interval 0 (each heartbeat moves
# last_seen and the session's last_used: a refresh, not a status change),
# heartbeat_nowrite at --activity-interval 3600 (each finds the user seen
# within the interval). After each timed round the database says what it
# was: the users and sessions seen since the round began, and the change
# log's rows added (a status change logs one; a refresh none); and the CPU
# time usersd (and PostgreSQL's server) spent from the round's start until
# its refreshes were written (on a shared machine a steadier figure than
# the rate).
heartbeat_refresh() {
    want heartbeat_refresh writes || return 0
    stop_usersd main
    serve --activity-interval 3600
    warm_heartbeats # every minted user online: their first heartbeat is a status change
    for i in $(seq "$rounds"); do
        heartbeat_round "$i" heartbeat_refresh 0
        heartbeat_round "$i" heartbeat_nowrite 3600
    done
    stop_usersd heartbeat_refresh
    serve
}

heartbeat_round() { # ROUND NAME INTERVAL
    stop_usersd "$2"
    serve --activity-interval "$3"
    # untimed: a second of the same heartbeats (the new server's caches),
    # then past the writer's next batch (a refresh is applied within 1 s),
    # so what the counts below see is the timed round's
    wrk_run "http://127.0.0.1:$uport" heartbeat_seq / "$work/hb-tokens" "$conns" 1 >/dev/null
    sleep 1.5
    admin="(SELECT id FROM users WHERE username = 'benchadmin')"
    log0=$(db_value "SELECT coalesce(max(seq), 0) FROM presence_changes")
    cpu0=$(cpu_ticks) dcpu0=$(db_cpu_ticks)
    t0=$(date +%s%6N)
    round_from=$1 round_to=$1
    scenario "$2" heartbeat_seq "/api/users/admin/users/2/online-status/" - "$work/hb-tokens"
    round_from="" round_to=""
    sleep 1 # nginx's round ran meanwhile; a refresh is durable within 1 s
    req=$(tail -n 1 "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["usersd"]["requests"])')
    seen=$(db_value "SELECT count(*) FROM presence WHERE last_seen >= $t0 AND user_id <> $admin")
    used=$(db_value "SELECT count(*) FROM sessions WHERE last_used >= $t0 AND user_id <> $admin")
    log1=$(db_value "SELECT coalesce(max(seq), 0) FROM presence_changes")
    dcpu_us=$((($(db_cpu_ticks) - dcpu0) * 1000000 / $(getconf CLK_TCK)))
    cpu_us=$((($(cpu_ticks) - cpu0) * 1000000 / $(getconf CLK_TCK)))
    echo "{\"users\": $size, \"db\": \"$backend\", \"check\": \"$2\", \"round\": $1, \"interval\": $3, \"heartbeat_users\": $hb, \"requests\": $req, \"users_seen\": $seen, \"sessions_used\": $used, \"log_rows\": $((log1 - log0)), \"usersd_cpu_us\": $cpu_us, \"db_cpu_us\": $dcpu_us}" >> "$out"
}

# set-online-status again on a server keeping no history (--history-days
# 0): what keeping it costs each presence write (API.md §9).
set_status_nohistory() {
    want set_status_nohistory writes || return 0
    stop_usersd main
    serve --history-days 0
    scenario set_status_nohistory set "/api/users/admin/users/2/online-status/" writes
    stop_usersd set_status_nohistory
    serve
}

# Several kinds at once, each its own wrk (so each has its own latency):
# distinct users heartbeating, status reads, list pages, a few logins a
# second, and 1,000 presence streams listening. usersd runs with
# --activity-interval 1: a user's heartbeats are >= 2 s apart (the tokens in
# turn), so each writes; the readers' own activity writes once a second.
mix() {
    want mix || return 0
    stop_usersd main
    serve --activity-interval 1
    warm_heartbeats
    ready=$work/streams.json
    taskset -c 1 "$root/build/stream_bench" --port "$uport" --token "$(head -n 1 "$work/tokens")" \
        --subscribers 1000 --rate 0 --seconds $((rounds * (secs + 2) + 30)) --users "$size" \
        --pid "$upid" > "$ready" &
    spid=$!
    sleep 3 # the streams open (bounded by stream_bench's own limits)
    for r in $(seq "$rounds"); do
        U="http://127.0.0.1:$uport"
        wrk_run "$U" heartbeat_seq / "$work/hb-tokens" 32 > "$work/mix-hb" &
        p1=$!
        wrk_run "$U" status / "$work/tokens" 16 > "$work/mix-status" &
        p2=$!
        wrk_run "$U" pages "/api/users/admin/users/online/?page={page}&per_page=50" \
            "$work/tokens" 8 > "$work/mix-list" &
        p3=$!
        wrk_run "$U" login / - 2 "$secs" 250 > "$work/mix-login" &
        p4=$!
        wait "$p1" "$p2" "$p3" "$p4" || true
        echo "{\"users\": $size, \"db\": \"$backend\", \"scenario\": \"mix\", \"round\": $r, \"kinds\": {\"heartbeat\": $(cat "$work/mix-hb"), \"status\": $(cat "$work/mix-status"), \"list\": $(cat "$work/mix-list"), \"login\": $(cat "$work/mix-login")}, \"rss_kb\": $(rss_kb)}" >> "$out"
    done
    kill -TERM "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    spid=
    [ -s "$ready" ] && echo "{\"users\": $size, \"db\": \"$backend\", \"scenario\": \"mix_streams\", \"streams\": $(cat "$ready")}" >> "$out"
    echo "  mix done" >&2
    stop_usersd mix
    serve
}

# 1,000 logins at once (argon2id each) beside status reads, on a server of
# its own (bench/login_flood.sh: a client times status GETs, idle and until
# every login is answered).
login_flood() {
    want login_flood || return 0
    j=$("$root/bench/login_flood.sh" "$flood" 1)
    echo "{\"users\": 1, \"db\": \"sqlite\", \"scenario\": \"login_flood\", \"flood\": $j}" >> "$out"
    echo "  login_flood done" >&2
}

# Users whose last_seen moved since T0 (µs), the staff user's left out, once
# the writer has caught up: a refresh is acknowledged before it is written,
# so the count is read until it stops growing (every 0.5 s, at most 10 s
# after the 1.5 s a refresh takes to be written when the writer keeps up).
seen_since() { # T0
    sleep 1.5
    admin="(SELECT id FROM users WHERE username = 'benchadmin')"
    prev=-1
    for _ in $(seq 20); do
        n=$(db_value "SELECT count(*) FROM presence WHERE last_seen >= $1 AND user_id <> $admin")
        [ "$n" = "$prev" ] && break
        prev=$n
        sleep 0.5
    done
    echo "$n"
}

# Tokens of distinct users for million_online and pg_processes: N minted
# (`usersd seed --tokens`, with usersd stopped) into $work/online-tokens,
# and their user ids in the same order into $work/online-ids, once per
# database and size.
online_tokens() { # N
    mark="$backend-$size"
    [ "$(cat "$work/online-tokens.for" 2>/dev/null)" = "$mark" ] &&
        [ "$(wc -l < "$work/online-tokens")" -ge "$1" ] && return 0
    n=$1
    [ "$n" -gt 1000000 ] && n=1000000
    [ "$n" -gt $((size - 1)) ] && n=$((size - 1))
    "$bin" seed --db "$db" --tokens "$n" "$work/online-tokens" 2>&1 | tail -n 1 >&2
    PSQL="$(cat "$work/pg/bindir" 2>/dev/null)/psql" python3 "$root/bench/bench_db.py" ids "$db" \
        "$work/online-tokens" "$work/online-ids"
    echo "$mark" > "$work/online-tokens.for"
}

# bench_db.py prime: the first COUNT token users online, last_seen DUE_S
# seconds ago on even lines and FRESH_S on odd ones.
prime() { # COUNT DUE_S FRESH_S
    PSQL="$(cat "$work/pg/bindir" 2>/dev/null)/psql" python3 "$root/bench/bench_db.py" prime "$db" \
        "$work/online-ids" "$1" "$2" "$3"
}

# CPU ticks of several processes (usersd's, by pid)
pids_ticks() { # PID...
    for p in "$@"; do cat "/proc/$p/stat"; done | awk '{t += $14 + $15} END {print t + 0}'
}

# A million online at the defaults (issue 19): K users each beating every
# 30 s at --activity-interval 60, so half the heartbeats are refreshes and
# half write nothing (bench_db.py prime sets the state a deployment would
# be in: every other user due), status changes at a tenth of the heartbeat
# rate (a random user of the K going away), reads at BENCH_ONLINE_READS of
# it (the online page and a user's status in turn, staff token); each kind
# an open-loop load of its own paced by the clock (bench/online.lua,
# online_load below). K rises through BENCH_ONLINE_STEPS (capped by the
# users) until, for any kind, the p99 passes 50 ms, the achieved rate falls
# short of the offered one by more than 5 %, the generator's sends run late
# (p99 > 50 ms) or more than 1 % of the replies fail (a step that fails is
# run once more before it counts); then once more halfway between the last
# K that held and the first that did not (or, if the first failed, at
# halves of it, up to three times). The figure: the
# largest K that held = online users one usersd core carries at the
# defaults. Each step a fresh usersd (the primed state; pending refreshes
# written), a second of the same load untimed (other users), then
# BENCH_ONLINE_SECONDS timed; the database then says what the step did.
million_online() {
    want million_online || return 0
    osecs=${BENCH_ONLINE_SECONDS:-10}
    oconns=${BENCH_ONLINE_CONNS:-256}
    ksteps=""
    top=0
    for k in ${BENCH_ONLINE_STEPS:-100000 250000 500000 1000000 1500000 2000000}; do
        if [ "$k" -ge "$size" ]; then top=$size; break; fi
        ksteps="$ksteps $k"
    done
    [ "$top" = 0 ] || ksteps="$ksteps $top"
    kmax=$(echo "$ksteps" | awk '{print $NF}')
    stop_usersd main
    # each step's users: K·(timed + 1 warm + 1 spare seconds)/30
    online_tokens $((kmax * (osecs + 2) / 30 + 1000))
    ntok=$(wc -l < "$work/online-tokens")
    pass=0 fail=0 tries=0 refined=0
    # shellcheck disable=SC2086
    set -- $ksteps
    while [ $# -gt 0 ] && [ "$tries" -lt 10 ]; do
        k=$1
        shift
        tries=$((tries + 1))
        try=1
        online_step "$k"
        # once more before it counts: on a shared machine one stall of
        # 100 ms is 1 % of a 10 s round
        if [ "$ok" = 0 ]; then
            try=2
            online_step "$k"
        fi
        if [ "$ok" = 1 ]; then
            pass=$k
            [ "$refined" = 1 ] && break
            continue
        fi
        fail=$k
        [ "$refined" = 1 ] && break
        if [ "$pass" -gt 0 ]; then
            # once more, halfway between the last K that held and this one
            refined=1
            set -- $(((pass + fail) / 2))
        elif [ "$tries" -lt 4 ]; then
            set -- $((k / 2))
        else
            break
        fi
    done
    echo "{\"users\": $size, \"db\": \"$backend\", \"scenario\": \"million_online_result\", \"online_users\": $pass, \"first_failed\": $fail, \"cap\": $top, \"seconds\": $osecs, \"connections\": $oconns}" >> "$out"
    echo "  million_online done: $pass online users held ($backend)" >&2
    serve
}

online_step() { # K: sets ok=1 when the step held
    k=$1
    ok=0
    hb_rate=$(python3 -c "print($k / 30)")
    n_t=$(python3 -c "import math; print(math.ceil($k * ($osecs + 0.5) / 30))")
    n_w=$(python3 -c "import math; print(math.ceil($k / 30))")
    if [ $((n_t + n_w)) -gt "$ntok" ]; then
        echo "  million_online: $ntok tokens for $((n_t + n_w)) users at K=$k: some beat twice" >&2
        n_t=$((ntok - n_w))
    fi
    prime $((n_t + n_w)) 120 5
    head -n "$n_t" "$work/online-tokens" > "$work/online-timed"
    sed -n "$((n_t + 1)),$((n_t + n_w))p" "$work/online-tokens" > "$work/online-warm"
    serve
    online_load "$work/online-warm" 1 > /dev/null
    sleep 1.5 # the warm-up's refreshes written (within 1 s)
    log0=$(db_value "SELECT coalesce(max(seq), 0) FROM presence_changes")
    cpu0=$(cpu_ticks) dcpu0=$(db_cpu_ticks)
    t0=$(date +%s%6N)
    j=$(online_load "$work/online-timed" "$osecs")
    cpu_us=$((($(cpu_ticks) - cpu0) * 1000000 / $(getconf CLK_TCK)))
    dcpu_us=$((($(db_cpu_ticks) - dcpu0) * 1000000 / $(getconf CLK_TCK)))
    seen=$(seen_since "$t0")
    log1=$(db_value "SELECT coalesce(max(seq), 0) FROM presence_changes")
    # held: every kind within 50 ms at p99, sent on time (p99 late <= 50
    # ms), at >= 95 % of its offered rate, <= 1 % failed
    ok=$(echo "$j" | python3 -c 'import json, sys
ks = json.loads(sys.stdin.read())
print(int(all(r["p99_us"] <= 50000 and r["late_p99_ms"] <= 50
              and r["requests"] / (r["duration_us"] / 1e6) >= 0.95 * r["offered_per_s"]
              and r["errors"] <= 0.01 * max(r["requests"], 1) for r in ks.values())))')
    echo "{\"users\": $size, \"db\": \"$backend\", \"scenario\": \"million_online\", \"online_users\": $k, \"try\": $try, \"heartbeats_offered_per_s\": $hb_rate, \"seconds\": $osecs, \"connections\": $oconns, \"kinds\": $j, \"usersd_cpu_us\": $cpu_us, \"db_cpu_us\": $dcpu_us, \"users_seen\": $seen, \"log_rows\": $((log1 - log0)), \"held\": $ok, \"rss_kb\": $(rss_kb)}" >> "$out"
    echo "  million_online K=$k (try $try): held=$ok $j" >&2
    stop_usersd million_online
}

# The three kinds of million_online at once, each its own paced wrk on core
# 1 (so each has its own latency): heartbeats at K/30 a second from
# BENCH_ONLINE_CONNS connections, status changes at a tenth of that (a
# quarter of the connections), reads at BENCH_ONLINE_READS of it (8).
# Prints {"heartbeat": ..., "change": ..., "read": ...}.
online_load() { # TOKENS SECONDS
    for kind in heartbeat change read; do
        case $kind in
        heartbeat) r=$hb_rate c=$oconns ;;
        change) r=$(python3 -c "print($hb_rate / 10)") c=$((oconns / 4 > 8 ? oconns / 4 : 8)) ;;
        read) r=$(python3 -c "print(max($hb_rate * ${BENCH_ONLINE_READS:-0.01}, 1))") c=8 ;;
        esac
        BENCH_KIND=$kind BENCH_TOKENS=$1 BENCH_RATE=$r BENCH_USERS=$size \
            BENCH_STAFF_TOKEN=$(head -n 1 "$work/tokens") \
            taskset -c 1 wrk -t1 -c"$c" -d"$2"s --timeout 10s -s "$root/bench/online.lua" \
            "http://127.0.0.1:$uport" 2>&1 | sed -n 's/^BENCH //p' > "$work/online-$kind" &
        eval "wp_$kind=\$!"
    done
    # shellcheck disable=SC2154
    wait "$wp_heartbeat" "$wp_change" "$wp_read" || true
    for kind in heartbeat change read; do
        [ -s "$work/online-$kind" ] || { echo "run.sh: wrk gave no result for million_online ($kind)" >&2; exit 1; }
    done
    echo "{\"heartbeat\": $(cat "$work/online-heartbeat"), \"change\": $(cat "$work/online-change"), \"read\": $(cat "$work/online-read")}"
}

# PostgreSQL with 1, 2 and 4 usersd processes on one database
# (BENCH_PROCESSES): every process and the cluster on core 0 as in the
# other scenarios (the same CPU for every count: what changes is how many
# writers contend), wrk on core 1, 64 connections in all split between the
# processes. Two loads, each round: set-status of random users, online or
# away at random (most are changes), then refreshing heartbeats from
# distinct users primed online with an old last_seen (the default
# --activity-interval: each first heartbeat a refresh), each process its
# own users. Meanwhile one psql session samples pg_stat_activity every
# 10 ms (usersd's active backends by wait_event_type; the sampler and its
# backend on core 1), so the share of backend time spent waiting on locks
# is seen.
pg_processes() {
    want pg_processes || return 0
    stop_usersd main
    ptok=${BENCH_PROCESS_TOKENS:-200000}
    online_tokens "$ptok"
    # the first ptok of them (million_online may have minted more)
    have=$(wc -l < "$work/online-tokens")
    [ "$have" -lt "$ptok" ] && ptok=$have
    for np in ${BENCH_PROCESSES:-1 2 4}; do
        pids="" ports=""
        for _ in $(seq "$np"); do
            serve
            pids="$pids $upid" ports="$ports $uport"
        done
        c=$((conns / np))
        for r in $(seq "$rounds"); do
            # untimed: a second of the load (connections, plans)
            [ "$r" = 1 ] && procs_round "$np" set 1 > /dev/null
            procs_round "$np" set "$secs" "$r"
            prime "$ptok" 3600 3600
            procs_round "$np" refresh "$secs" "$r"
        done
        for p in $pids; do upid=$p; stop_usersd "pg_processes_$np"; done
        pids=""
        echo "  pg_processes $np done" >&2
    done
    serve
}

procs_round() { # PROCESSES LOAD SECONDS [ROUND]: one round of LOAD on every process at once
    d=$3
    log0=$(db_value "SELECT coalesce(max(seq), 0) FROM presence_changes")
    # shellcheck disable=SC2086
    cpu0=$(pids_ticks $pids) dcpu0=$(db_cpu_ticks)
    # the sampler: a bounded psql script, one sample of usersd's active
    # backends (not its own) every 10 ms, each its own transaction
    # (a backend idle inside a transaction, waiting for usersd's next
    # statement, counts apart as IdleInTx)
    sample="SELECT 'N|none||0'; SELECT 'N|' || CASE WHEN state = 'active'
        THEN coalesce(wait_event_type, 'CPU') ELSE 'IdleInTx' END || '|' ||
        coalesce(wait_event, '') || '|' || count(*) FROM pg_stat_activity
        WHERE application_name = 'usersd' AND state IN ('active', 'idle in transaction')
        AND pid <> pg_backend_pid() GROUP BY state, wait_event_type, wait_event; SELECT pg_sleep(0.01);"
    awk -v n=$((d * 100)) -v t="$(echo "$sample" | tr '\n' ' ')" \
        'BEGIN { for (i = 1; i <= n; i++) { s = t; gsub(/N\|/, i "|", s); print s } }' > "$work/sampler.sql"
    t0=$(date +%s%6N)
    if [ -n "${4:-}" ]; then
        PGAPPNAME=bench_sampler timeout $((d + 30)) taskset -c 1 "$(cat "$work/pg/bindir")/psql" \
            -Atq "$db" -f "$work/sampler.sql" > "$work/waits" 2>/dev/null &
        sampler=$!
        # its backend on core 1 too: on usersd's core it would run only
        # when the backends it samples have yielded, and see them waiting
        for _ in $(seq 40); do
            spid_pg=$(db_value "SELECT pid FROM pg_stat_activity WHERE application_name = 'bench_sampler'")
            [ -n "$spid_pg" ] && { taskset -p -c 1 "$spid_pg" > /dev/null; break; }
            sleep 0.05
        done
    fi
    k=0 wpids="" per=$((ptok / $1))
    for port in $ports; do
        k=$((k + 1))
        if [ "$2" = set ]; then
            wrk_run "http://127.0.0.1:$port" set_online_away / "$work/tokens" "$c" "$d" > "$work/procs-$k" &
        else
            # each process its own users: the k-th slice of the tokens
            sed -n "$(((k - 1) * per + 1)),$((k * per))p" "$work/online-tokens" > "$work/procs-tok-$k"
            BENCH_TOKEN_START=0 wrk_run "http://127.0.0.1:$port" heartbeat_seq / "$work/procs-tok-$k" \
                "$c" "$d" > "$work/procs-$k" &
        fi
        wpids="$wpids $!"
    done
    # shellcheck disable=SC2086
    wait $wpids || true
    [ -n "${4:-}" ] || return 0
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    sampler=""
    sleep 0.2 # its backend gone: its CPU is left out of PostgreSQL's below
    # shellcheck disable=SC2086
    cpu_us=$((($(pids_ticks $pids) - cpu0) * 1000000 / $(getconf CLK_TCK)))
    dcpu_us=$((($(db_cpu_ticks) - dcpu0) * 1000000 / $(getconf CLK_TCK)))
    seen=$(seen_since "$t0")
    log1=$(db_value "SELECT coalesce(max(seq), 0) FROM presence_changes")
    waits=$(python3 "$root/bench/bench_db.py" waits "$work/waits")
    per_proc=$(for f in $(seq "$1"); do cat "$work/procs-$f"; done | paste -sd, -)
    echo "{\"users\": $size, \"db\": \"$backend\", \"scenario\": \"pg_processes\", \"processes\": $1, \"load\": \"$2\", \"round\": $4, \"seconds\": $d, \"connections\": $conns, \"users_per_process\": $per, \"usersd\": [$per_proc], \"usersd_cpu_us\": $cpu_us, \"db_cpu_us\": $dcpu_us, \"users_seen\": $seen, \"log_rows\": $((log1 - log0)), \"waits\": $waits}" >> "$out"
}

backend=sqlite
sizes=1000
[ "$users" != 1000 ] && sizes="1000 $users"
if case "$dbs" in *" sqlite "*) true ;; *) false ;; esac; then
for size in $sizes; do
    db="sqlite:$work/bench-$size.db"
    seed_db
    serve

    scenario status status "/api/users/admin/users/2/online-status/" reads
    scenario online_page_1 static "/api/users/admin/users/online/?page=1&per_page=50" reads
    scenario online_page_500 static "/api/users/admin/users/online/?page=500&per_page=50" reads
    scenario statistics static "/api/users/management/statistics/" reads
    # the management list filtered by status, then searched for one person
    # (seed777's address: one match at every size; seed777 is offline)
    scenario list_status static "/api/users/management/list/?online_status=offline&per_page=50" reads
    # twenty different pages at random: a thread keeps four, so most are
    # rendered afresh (what a list costs when it is not a repeat)
    scenario list_pages pages "/api/users/management/list/?page={page}&per_page=50" reads
    scenario list_search_one static "/api/users/management/list/?online_status=offline&search=seed777%40&per_page=50" reads
    scenario set_status set "/api/users/admin/users/2/online-status/" writes
    set_status_nohistory
    # 31 users at the default activity interval: most heartbeats write nothing
    scenario heartbeat heartbeat "/api/users/admin/users/2/online-status/" writes
    heartbeat_distinct
    heartbeat_refresh
    scenario mixed_90_10 mixed "/api/users/admin/users/2/online-status/" writes
    if [ "$size" = "$users" ]; then mix; fi
    # last: a broad search ("seed12" is in 1.1 % of all users) costs in
    # proportion to its matches (see RESULTS.md), and its backlog must not
    # slow the scenarios after it
    scenario list_search static "/api/users/management/list/?online_status=online&search=seed12&per_page=50" reads
    scenario list_search_pages pages "/api/users/management/list/?online_status=online&search=seed12&page={page}&per_page=50" reads
    # after every list: it brings up to ~40 % of the users online (its
    # primes), which would change what the online filters match
    if [ "$size" = "$users" ]; then million_online; fi
    stop_usersd main
done
login_flood

# The presence stream: fresh servers at 1,000 users (bench/stream.sh).
# Full streams on 1,000 users; the ?ids= streams follow 100 of
# BENCH_STREAM_IDS_USERS (100,000) each, so a change interests ~10 of the
# 10,000 streams, as a contact list would (on 1,000 users every change
# interests a thousand of them: a million events a second).
streams() { # USERS SPEC...
    n_users=$1
    shift
    [ $# -gt 0 ] || return 0
    echo "streams on $n_users users: $*" >&2
    BENCH_STREAM_USERS=$n_users "$root/bench/stream.sh" "$@" | while read -r line; do
        echo "{\"users\": $n_users, \"db\": \"sqlite\", \"stream\": $line}" >> "$out"
    done
}
specs=""
want stream_all_1000 streams && specs="$specs 1000:1000"
want stream_all_10000 streams && specs="$specs 10000:100"
# shellcheck disable=SC2086
streams "${BENCH_STREAM_USERS:-1000}" $specs
specs=""
want stream_ids_10000 streams && specs="10000:1000:100"
# shellcheck disable=SC2086
streams "${BENCH_STREAM_IDS_USERS:-100000}" $specs
fi

# PostgreSQL: where usersd goes when one machine is not enough. Pages are
# kept there under the snapshot the token check read in (no token is: the
# version is known only after the check). usersd and the PostgreSQL server
# share core 0.
if case "$dbs" in *" postgresql "*) true ;; *) false ;; esac &&
    "$root/scripts/pg-cluster.sh" start "$work/pg" >&2; then
    pgdir=$(cat "$work/pg/data_dir")
    pm=$(head -n 1 "$pgdir/data/postmaster.pid")
    for p in $pm $(pgrep -P "$pm"); do taskset -a -p -c 0 "$p" >/dev/null; done
    backend=postgresql
    pg_sizes=1000
    [ "${BENCH_PG_USERS:-$users}" != 1000 ] && pg_sizes="1000 ${BENCH_PG_USERS:-$users}"
    for size in $pg_sizes; do
        "$(cat "$work/pg/bindir")/psql" -q "$(cat "$work/pg/url")/postgres" -c "CREATE DATABASE bench_$size"
        db="$(cat "$work/pg/url")/bench_$size"
        seed_db
        # new backends (one per usersd connection) start on core 0 too
        for p in $(pgrep -P "$pm"); do taskset -a -p -c 0 "$p" >/dev/null; done
        serve
        scenario status status "/api/users/admin/users/2/online-status/" reads
        scenario online_page_1 static "/api/users/admin/users/online/?page=1&per_page=50" reads
        scenario statistics static "/api/users/management/statistics/" reads
        scenario list_pages pages "/api/users/management/list/?page={page}&per_page=50" reads
        scenario set_status set "/api/users/admin/users/2/online-status/" writes
        set_status_nohistory
        scenario heartbeat heartbeat "/api/users/admin/users/2/online-status/" writes
        heartbeat_distinct
        heartbeat_refresh
        scenario mixed_90_10 mixed "/api/users/admin/users/2/online-status/" writes
        # the day in the life too, where a deployment outgrows one machine
        if [ "$size" != 1000 ] || [ "$pg_sizes" = 1000 ]; then
            mix
            million_online
            pg_processes
        fi
        stop_usersd main
    done
    "$root/scripts/pg-cluster.sh" stop "$work/pg" >&2
elif case "$dbs" in *" postgresql "*) true ;; *) false ;; esac; then
    echo "PostgreSQL server binaries not found: its rows are left out" >&2
fi

echo "{\"run\": {\"users\": $users, \"seconds\": $secs, \"rounds\": $rounds, \"scenarios\": \"$(echo $scenarios)\", \"wall_s\": $(($(date +%s) - t_start))}}" >> "$out"
mkdir -p "$outdir"
cp "$out" "$outdir/results.jsonl"
python3 "$root/bench/report.py" "$outdir/results.jsonl" > "$outdir/RESULTS.md"
cat "$outdir/RESULTS.md"
