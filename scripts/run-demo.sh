#!/bin/sh
# `make run`: serves on SQLite (./usersd.db) with a demo staff user. The
# demo password is made once and kept in .demo-admin-password beside the
# database, since the admin is created only when the database is empty.
set -eu
cd "$(dirname "$0")/.."
pwfile=.demo-admin-password
if [ ! -s "$pwfile" ] || [ ! -f usersd.db ]; then
    rm -f usersd.db usersd.db-wal usersd.db-shm
    head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$pwfile"
fi
pw=$(cat "$pwfile")
listen=${USERSD_LISTEN:-127.0.0.1:8000}
cat <<MSG
usersd demo — database sqlite:usersd.db, listening on http://$listen
  dashboard:  open http://$listen/ in a browser
  log in as:  admin / $pw
  try:        curl -s -X POST http://$listen/api/auth/login/ \\
                -H 'Content-Type: application/json' \\
                -d '{"username": "admin", "password": "$pw"}'
  stop with Ctrl-C
MSG
USERSD_ADMIN_PASSWORD="$pw" exec ./build/usersd serve --listen "$listen" --db sqlite:usersd.db
