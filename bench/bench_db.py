"""What bench/run.sh does to and asks of the database besides usersd.

  bench_db.py ids DB TOKENS OUT
      the user id of each token in TOKENS (from `usersd seed --tokens`), one
      a line in the same order, into OUT: a token's session is found by its
      hash (BLAKE2b-256 of the token, as src/lib/auth.c stores it)
  bench_db.py prime DB IDS COUNT DUE_S FRESH_S
      the users of IDS' first COUNT lines online, last_seen DUE_S seconds
      ago on even lines and FRESH_S seconds ago on odd ones, in one
      transaction beside a stopped or running usersd (the triggers keep the
      counters; on PostgreSQL the two tables are vacuumed after). With the
      default --activity-interval 60, DUE_S 120 and
      FRESH_S 5 make every other heartbeat a refresh and the rest write
      nothing, as for clients beating every 30 s; DUE_S = FRESH_S = 3600
      make every first heartbeat a refresh.
  bench_db.py waits SAMPLES
      sums psql's pg_stat_activity samples (lines "n|type|event|count",
      bench/run.sh's sampler) into one JSON object: samples, active
      backends seen (and idle in a transaction, apart), the shares of the
      active ones by wait_event_type (CPU: none), the top five wait events

DB is usersd's --db: sqlite:PATH or a postgresql:// URL (psql from $PSQL).
"""
import hashlib
import json
import os
import subprocess
import sys
import time

ONLINE = 2  # enum usersd_status (include/usersd.h)


def psql(db, sql, stdin=None):
    return subprocess.run([os.environ.get("PSQL", "psql"), "-Atq", "-v", "ON_ERROR_STOP=1",
                           db, "-c" if stdin is None else "-f", sql if stdin is None else "-"],
                          input=stdin, capture_output=True, text=True, check=True).stdout


def sessions(db):
    """(hash bytes, user id) of every session."""
    if db.startswith("sqlite:"):
        import sqlite3
        c = sqlite3.connect(db[len("sqlite:"):], timeout=60)
        yield from c.execute("SELECT hash, user_id FROM sessions")
        c.close()
        return
    out = psql(db, "COPY (SELECT encode(hash, 'hex'), user_id FROM sessions) TO STDOUT")
    for line in out.splitlines():
        h, uid = line.split("\t")
        yield bytes.fromhex(h), int(uid)


def ids(db, tokens, out):
    want = {}
    with open(tokens) as f:
        toks = [t.strip() for t in f if t.strip()]
    for i, t in enumerate(toks):
        want[hashlib.blake2b(t.encode(), digest_size=32).digest()] = i
    uid = [0] * len(toks)
    found = 0
    for h, u in sessions(db):
        i = want.get(bytes(h))
        if i is not None:
            uid[i] = u
            found += 1
    if found != len(toks):
        sys.exit("bench_db: %d of %d tokens have no session" % (len(toks) - found, len(toks)))
    with open(out, "w") as f:
        f.write("".join("%d\n" % u for u in uid))


def prime(db, idfile, count, due_s, fresh_s):
    with open(idfile) as f:
        uid = [int(x) for _, x in zip(range(count), f)]
    now = int(time.time() * 1e6)
    rows = [(ONLINE, now - int((due_s if i % 2 == 0 else fresh_s) * 1e6), u)
            for i, u in enumerate(uid)]
    if db.startswith("sqlite:"):
        import sqlite3
        c = sqlite3.connect(db[len("sqlite:"):], timeout=60)
        with c:
            c.executemany("UPDATE presence SET online_status = ?, last_seen = ? WHERE user_id = ?",
                          rows)
        c.close()
        return
    # users holds the truth; its triggers keep presence and the counters.
    # 5,000 users a transaction: the counters' row a backend writes gains a
    # version per user changed, and a transaction walks its own versions,
    # so one statement over 200,000 users took minutes.
    data = "".join("%d\t%d\t%d\n" % (u, seen, i) for i, (_, seen, u) in enumerate(rows))
    chunks = "".join("UPDATE users u SET online_status = %d, last_seen = p.seen FROM bench_prime p "
                     "WHERE u.id = p.id AND p.n >= %d AND p.n < %d;\n" % (ONLINE, k, k + 5000)
                     for k in range(0, len(rows), 5000))
    psql(db, None, "CREATE TEMP TABLE bench_prime (id BIGINT, seen BIGINT, n INT);\n"
         "COPY bench_prime FROM STDIN;\n" + data + "\\.\n" + chunks +
         # the old versions vacuumed now, not by autovacuum during the
         # round that follows (it would start soon: 20 % of a table dead)
         "VACUUM (ANALYZE) presence;\nVACUUM users;\nVACUUM user_counts;\n")


def waits(path):
    samples, active, idle_tx, by_type, by_event = set(), 0, 0, {}, {}
    for line in open(path):
        parts = line.strip().split("|")
        if len(parts) != 4:
            continue
        n, typ, event, count = parts[0], parts[1] or "CPU", parts[2], int(parts[3])
        samples.add(n)
        if typ == "none":  # every sample has this line, even one finding nothing
            continue
        if typ == "IdleInTx":  # not active: waiting for usersd inside a transaction
            idle_tx += count
            continue
        active += count
        by_type[typ] = by_type.get(typ, 0) + count
        if typ != "CPU":
            key = "%s:%s" % (typ, event)
            by_event[key] = by_event.get(key, 0) + count
    share = {t: round(c / active, 4) for t, c in by_type.items()} if active else {}
    top = sorted(by_event.items(), key=lambda kv: -kv[1])[:5]
    print(json.dumps({"samples": len(samples), "active": active, "idle_in_tx": idle_tx,
                      "share": share,
                      "top_waits": {k: round(c / active, 4) for k, c in top}}))


def main():
    a = sys.argv[1:]
    if a[:1] == ["ids"] and len(a) == 4:
        ids(a[1], a[2], a[3])
    elif a[:1] == ["prime"] and len(a) == 6:
        prime(a[1], a[2], int(a[3]), float(a[4]), float(a[5]))
    elif a[:1] == ["waits"] and len(a) == 2:
        waits(a[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
