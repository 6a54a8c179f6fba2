#!/bin/sh
# A throwaway PostgreSQL cluster for the tests: initdb into a temp folder,
# a free loopback port, password auth, stopped and deleted at the end.
#   scripts/pg-cluster.sh start STATE_DIR   writes STATE_DIR/url and STATE_DIR/data_dir
#   scripts/pg-cluster.sh stop STATE_DIR
#   scripts/pg-cluster.sh pause|resume STATE_DIR   stop/start the server, data kept
# STATE_DIR/url holds postgresql://usersd:PASSWORD@127.0.0.1:PORT (no dbname).
set -eu
cmd=$1
state=$2
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/initdb" ] || { echo "pg-cluster: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

# initdb and postgres refuse to run as root: use the postgres account then.
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
    mkdir -p "$state"
    [ -f "$state/data_dir" ] && "$0" stop "$state" >/dev/null 2>&1 || true
    dir=$(mktemp -d /tmp/usersd-pg.XXXXXX)
    chmod 700 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '%s\n' "$pw" > "$dir/pw"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/pw"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$bindir/initdb" -D "$dir/data" -U usersd --auth=scram-sha-256 --pwfile="$dir/pw" \
        -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null ||
        { cat "$dir/server.log" >&2; exit 1; }
    echo "$dir" > "$state/data_dir"
    echo "postgresql://usersd:$pw@127.0.0.1:$port" > "$state/url"
    echo "$bindir" > "$state/bindir"
    echo "$port" > "$state/port"
    echo "pg-cluster: PostgreSQL on 127.0.0.1:$port ($dir)"
    ;;
pause)
    dir=$(cat "$state/data_dir")
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
resume)
    dir=$(cat "$state/data_dir")
    port=$(cat "$state/port")
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
    ;;
stop)
    [ -f "$state/data_dir" ] || exit 0
    dir=$(cat "$state/data_dir")
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir" "$state/data_dir" "$state/url"
    echo "pg-cluster: stopped"
    ;;
*)
    echo "usage: $0 start|stop|pause|resume STATE_DIR" >&2
    exit 2
    ;;
esac
