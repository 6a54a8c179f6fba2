"""Turns results.jsonl (from bench/run.sh) into the RESULTS.md tables:
medians of the rounds, usersd's rate as a ratio of nginx's for a body of
the same size measured in the same run, with the spread over the rounds;
then the scenarios without an nginx counterpart (the day-in-the-life mix,
the login flood, the presence streams)."""
import json
import os
import platform
import statistics
import sys

here = os.path.dirname(os.path.abspath(__file__))
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows:
    r.setdefault("db", "sqlite")
runs = [r for r in rows if "usersd" in r and "nginx" in r]
peaks = [r for r in rows if "peak_rss_kb" in r]
mixes = [r for r in rows if r.get("scenario") == "mix"]
mix_streams = [r for r in rows if r.get("scenario") == "mix_streams"]
floods = [r for r in rows if r.get("scenario") == "login_flood"]
streams = [r for r in rows if "stream" in r]
run_info = next((r["run"] for r in rows if "run" in r), None)
# SQLite first (the default, at both sizes), then PostgreSQL
groups = sorted({(r["db"], r["users"]) for r in runs}, key=lambda g: (g[0] != "sqlite", g[1]))

# What each scenario measures (README.md and NOTES.md say more).
SCENARIOS = [
    ("status", "GET one user's online-status, a random user each time (staff token)"),
    ("online_page_1", "GET the online list, page 1 of 50 (the same page again: served from "
     "the page a thread keeps while nothing changed)"),
    ("online_page_500", "GET online list page 500 (empty at 1,000 users)"),
    ("statistics", "GET the statistics (trigger-kept counters)"),
    ("list_status", "the management list filtered by status (repeated)"),
    ("list_pages", "the management list, one of 20 pages at random: mostly rendered afresh"),
    ("list_search_one", "the management list searched for one person (repeated)"),
    ("set_status", "POST set-online-status to a random user, random status: durable writes "
     "on random users"),
    ("set_status_nohistory", "set_status on a server started with `--history-days 0`: "
     "the same writes without their presence-history rows"),
    ("heartbeat", "POST heartbeat from 31 users at the default --activity-interval (60 s): "
     "after each user's first, a heartbeat writes nothing"),
    ("heartbeat_distinct", "POST heartbeat from distinct users (all 1,000 at 1k; "
     "BENCH_HEARTBEAT_USERS, 100,000, at the big size; tokens from `usersd seed --tokens`), "
     "taken in turn, usersd at --activity-interval 0: every heartbeat is a durable write "
     "(last_seen and the session's last_used) of a user already online (an untimed warm-up "
     "brings them online first)"),
    ("heartbeat_refresh", "POST heartbeat from the heartbeat_distinct users, already online, "
     "usersd at --activity-interval 0: every heartbeat a refresh (API.md §7: last_seen and the "
     "session's last_used move, no status changes; the reply does not wait for a commit since "
     "issue 19). Its rounds alternate with heartbeat_nowrite's, each on a fresh server after a "
     "second of untimed heartbeats"),
    ("heartbeat_nowrite", "the same heartbeats at --activity-interval 3600: each finds its user "
     "seen within the interval and writes nothing"),
    ("mixed_90_10", "90 % status GETs, 10 % set-online-status"),
    ("list_search", "a broad search, repeated"),
    ("list_search_pages", "a broad search, one of 20 pages at random (fresh)"),
]


def med(vals):
    return statistics.median(vals) if vals else 0


def rate(x):
    return x["requests"] / (x["duration_us"] / 1e6) if x.get("duration_us") else 0


def size(n):
    return "{:,}".format(n)


def stream_ms(us):
    """stream_bench's histogram ends at 10 s: its last bucket means more."""
    return "> 10000" if us >= 10000000 else "%.1f" % (us / 1000)


def spread(vals):
    """(max - min) / median of the rounds, in %."""
    m = med(vals)
    return 100 * (max(vals) - min(vals)) / m if vals and m else 0


table = {}
for db, n in groups:
    here_rows = [r for r in runs if r["users"] == n and r["db"] == db]
    for name in dict.fromkeys(r["scenario"] for r in here_rows):
        rs = [r for r in here_rows if r["scenario"] == name]
        us = [rate(r["usersd"]) for r in rs]
        ns = [rate(r["nginx"]) for r in rs]
        u, ng = med(us), med(ns)
        table[(db, n, name)] = {
            "bytes": rs[0]["bytes"], "rps": u, "nginx": ng, "ratio": u / ng if ng else 0,
            "spread": spread(us), "min": min(us), "max": max(us),
            "p50": med([r["usersd"]["p50_us"] for r in rs]),
            "p99": med([r["usersd"]["p99_us"] for r in rs]),
            "errors": sum(r["usersd"]["errors"] for r in rs),
            "nginx_errors": sum(r["nginx"]["errors"] for r in rs),
            "rss": max(r["rss_kb"] for r in rs),
        }

cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
nrounds = max([r.get("round", 1) for r in runs] or [0])
print("# usersd benchmark results\n")
print("Machine: %s, %d cores, Linux %s. Command: `make bench` (bench/run.sh): SQLite "
      "database (and, last, PostgreSQL: a private cluster pinned to core 0 with usersd), "
      "usersd `--threads 1` pinned to core 0, nginx (1 worker, static file of the "
      "same body size) pinned to core 0 in alternating rounds, wrk `-t1 -c64` pinned to "
      "core 1; %d rounds each, medians; spread = (max − min) / median of the rounds' "
      "usersd rates. Decay is off (`--away-after 0 --offline-after 0`; BENCH_DECAY=1 keeps "
      "it): the seeded online users would all decay in one burst minutes after seeding."
      "%s\n" % (
          cpu, os.cpu_count(), platform.release(), nrounds,
          (" Whole run: %d min (%s users, %d s rounds)." % (
              run_info["wall_s"] // 60, size(run_info["users"]), run_info["seconds"]))
          if run_info and "wall_s" in run_info else ""))
names = dict.fromkeys(name for (_, _, name) in table)
described = [(n, d) for n, d in SCENARIOS if n in names]
if described:
    print("Scenarios:\n")
    for n, d in described:
        print("- `%s`: %s." % (n, d))
    print()
print("| db | users | scenario | body B | usersd req/s | spread | nginx req/s | usersd/nginx "
      "| p50 ms | p99 ms | errors | RSS MiB |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for (db, n, name), t in table.items():
    print("| %s | %s | %s | %d | %.0f | %.0f %% | %.0f%s | %.0f %% | %.2f | %.2f | %d | %.1f |" % (
        db, size(n), name, t["bytes"], t["rps"], t["spread"], t["nginx"],
        " (%d errors)" % t["nginx_errors"] if t["nginx_errors"] else "", 100 * t["ratio"],
        t["p50"] / 1000, t["p99"] / 1000, t["errors"], t["rss"] / 1024))
print()

# Peak RSS per size outside streams (the mix holds 1,000 streams: apart).
peak = {}
for r in peaks:
    key = (r["db"], r["users"])
    if r.get("phase", "main") != "mix":
        peak[key] = max(peak.get(key, 0), r["peak_rss_kb"])
for (db, n), kb in sorted(peak.items(), key=lambda kv: (kv[0][0] != "sqlite", kv[0][1])):
    print("Peak RSS at %s users (%s), outside streams: %.1f MiB." % (size(n), db, kb / 1024))
for r in peaks:
    if r.get("phase") == "mix":
        print("Peak RSS during the mix at %s users (%s, 1,000 streams open): %.1f MiB." % (
            size(r["users"]), r["db"], r["peak_rss_kb"] / 1024))

for r in rows:
    w = r.get("warmup")
    if w and w["heartbeats"] < w["users"]:
        print("Warm-up incomplete at %s users (%s): %d heartbeats for %d users, so some timed "
              "heartbeats were first ones (status changes)." % (
                  size(r["users"]), r["db"], w["heartbeats"], w["users"]))

for db in dict.fromkeys(g[0] for g in groups):
    sizes = sorted({n for (d, n) in groups if d == db})
    if len(sizes) != 2:
        continue
    print("\nCost of size (%s): rate at %s users as a share of the rate at %s users:\n" % (
        db, size(sizes[1]), size(sizes[0])))
    for name in dict.fromkeys(nm for (d, _, nm) in table if d == db):
        a, b = table.get((db, sizes[0], name)), table.get((db, sizes[1], name))
        if a and b and a["rps"]:
            print("- %s: %.0f %%" % (name, 100 * b["rps"] / a["rps"]))

hist = [(db, n) for (db, n, name) in table if name == "set_status_nohistory"
        and (db, n, "set_status") in table]
if hist:
    print("\nCost of presence history (API.md §9; target: at most 10 %), set_status with "
          "history kept as a share of the same writes with none:\n")
    for db, n in hist:
        on, off = table[(db, n, "set_status")], table[(db, n, "set_status_nohistory")]
        print("- %s, %s users: %.0f/s kept, %.0f/s none: %.0f %% (spreads %.0f %% and %.0f %%)"
              % (db, size(n), on["rps"], off["rps"], 100 * on["rps"] / off["rps"] if off["rps"]
                 else 0, on["spread"], off["spread"]))

checks = [r for r in rows if "check" in r]
refresh = [(db, n) for (db, n, name) in table if name == "heartbeat_refresh"
           and (db, n, "heartbeat_nowrite") in table]
if refresh:
    print("\nRefreshes against heartbeats that write nothing (API.md §7; issue 19's target: at "
          "least 80 % at 1M users), the same distinct users already online, rounds alternating "
          "(refresh/no-write per round: the rounds' pairs). After each round the database "
          "says what the timed heartbeats did: the users whose last_seen and the sessions whose "
          "last_used moved since the round began, the staff user's left out (a refresh moves "
          "both; at most the heartbeating users, more than the requests by those still in "
          "flight at the end), "
          "and the change log's rows added (a status change adds one). CPU µs a heartbeat: "
          "usersd's CPU time (user + system) from the round's start until its refreshes were "
          "written, over its heartbeats, median of the rounds; on PostgreSQL then its server's "
          "(the processes of the private cluster, on usersd's core) the same way:\n")
    print("| db | users | heartbeating users | refresh req/s | spread | p50 / p99 ms "
          "| no-write req/s | spread | p50 / p99 ms | refresh / no-write | per round "
          "| CPU µs a heartbeat, refresh / no-write "
          "| refresh rounds: requests, users seen, sessions used, log rows "
          "| no-write rounds: users seen, sessions used, log rows |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|")
    for db, n in refresh:
        a, b = table[(db, n, "heartbeat_refresh")], table[(db, n, "heartbeat_nowrite")]
        def by_round(name):
            return {r["round"]: rate(r["usersd"]) for r in runs
                    if (r["db"], r["users"], r["scenario"]) == (db, n, name)}
        ra, rb = by_round("heartbeat_refresh"), by_round("heartbeat_nowrite")
        per = ["%.0f %%" % (100 * ra[k] / rb[k]) for k in sorted(ra) if rb.get(k)]
        cs = [c for c in checks if (c["db"], c["users"]) == (db, n)]
        ca = [c for c in cs if c["check"] == "heartbeat_refresh"]
        cb = [c for c in cs if c["check"] == "heartbeat_nowrite"]
        k = cs[0]["heartbeat_users"] if cs else 0
        def cpu(cc, key="usersd_cpu_us"):
            us = [c[key] / c["requests"] for c in cc if key in c and c["requests"]]
            return "%.0f" % med(us) if us else "?"
        cpus = "%s / %s" % (cpu(ca), cpu(cb))
        if db != "sqlite":
            cpus += "; PostgreSQL %s / %s" % (cpu(ca, "db_cpu_us"), cpu(cb, "db_cpu_us"))
        print("| %s | %s | %s | %.0f | %.0f %% | %.2f / %.2f | %.0f | %.0f %% | %.2f / %.2f "
              "| **%.0f %%** | %s | %s | %s | %s |" % (
                  db, size(n), size(k), a["rps"], a["spread"], a["p50"] / 1000, a["p99"] / 1000,
                  b["rps"], b["spread"], b["p50"] / 1000, b["p99"] / 1000,
                  100 * a["rps"] / b["rps"] if b["rps"] else 0, ", ".join(per), cpus,
                  "; ".join("%d, %d, %d, %d" % (c["requests"], c["users_seen"],
                                                c["sessions_used"], c["log_rows"]) for c in ca),
                  "; ".join("%d, %d, %d" % (c["users_seen"], c["sessions_used"], c["log_rows"])
                            for c in cb)))
    for c in checks:
        # less one: the staff user (whose own requests the counts leave out)
        # may be one of the heartbeating users
        want = min(c["requests"], c["heartbeat_users"]) - 1
        if c["check"] == "heartbeat_refresh" and (c["log_rows"] or c["users_seen"] < want):
            print("\nRound %d of heartbeat_refresh (%s, %s users) was not all refreshes: %d "
                  "users seen for %d requests, %d log rows." % (
                      c["round"], c["db"], size(c["users"]), c["users_seen"], c["requests"],
                      c["log_rows"]))
        if c["check"] == "heartbeat_nowrite" and (c["log_rows"] or c["users_seen"]
                                                   or c["sessions_used"]):
            print("\nRound %d of heartbeat_nowrite (%s, %s users) wrote: %d users seen, %d "
                  "sessions used, %d log rows." % (
                      c["round"], c["db"], size(c["users"]), c["users_seen"],
                      c["sessions_used"], c["log_rows"]))

if mixes:
    print("\n## A day in the life (the mix)\n")
    print("At the big size, everything at once, each kind its own wrk on core 1 (so each has "
          "its own latency): distinct users heartbeating (the minted tokens in turn, 32 "
          "connections), status GETs of random users (16), online-list pages 1–20 at random "
          "(8), logins of random users (2 connections, 250 ms pause before each: a few a "
          "second, argon2id each), and 1,000 presence streams listening "
          "(bench/stream_bench.c `--rate 0`). usersd runs with `--activity-interval 1`: a "
          "user's heartbeats are seconds apart, so each one writes, while the readers' own "
          "activity writes at most once a second; the heartbeating users are brought online "
          "first (untimed), so the streams carry the logins' changes. Medians of the "
          "rounds.\n")
    print("| db | users | kind | connections | req/s | spread | p50 ms | p99 ms | errors |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    conns = {"heartbeat": 32, "status": 16, "list": 8, "login": 2}
    for db, n in dict.fromkeys((r["db"], r["users"]) for r in mixes):
        rs = [r for r in mixes if (r["db"], r["users"]) == (db, n)]
        total = 0
        for kind in ("heartbeat", "status", "list", "login"):
            ks = [r["kinds"][kind] for r in rs if kind in r["kinds"]]
            if not ks:
                continue
            rr = [rate(k) for k in ks]
            total += med(rr)
            print("| %s | %s | %s | %d | %.1f | %.0f %% | %.2f | %.2f | %d |" % (
                db, size(n), kind, conns[kind], med(rr), spread(rr),
                med([k["p50_us"] for k in ks]) / 1000, med([k["p99_us"] for k in ks]) / 1000,
                sum(k["errors"] for k in ks)))
        print("| %s | %s | **all** | 58 | %.0f | | | | |" % (db, size(n), total))
    for r in mix_streams:
        s = r["streams"]
        print("\nStreams during the mix (%s, %s users): %d of %d open, %d presence events each "
              "at most (the best-served), %.3f %% delivered (%d missing, %d skipped ids, %d "
              "reconnects, %d resyncs), delivery p50 %s ms / p99 %s ms." % (
                  r["db"], size(r["users"]), s["opened"], s["subscribers"],
                  s["expected_events"] // max(s["opened"], 1), s["delivered_pct"],
                  s["missing_events"], s["gap_events"], s["reconnects"], s["resyncs"],
                  stream_ms(s["p50_us"]), stream_ms(s["p99_us"])))

if floods:
    print("\n## Login flood (bench/login_flood.sh)\n")
    print("A usersd of its own (`--threads 1`, core 0, password checks on its login thread) "
          "gets N logins at once, argon2id each, while one keep-alive client on core 1 times "
          "status GETs back to back, first alone (idle), then until every login is "
          "answered.\n")
    print("| logins | answered 200 | flood s | logins/s | status GETs during "
          "| p50 / p99 ms idle | p50 / p99 / max ms during |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in floods:
        f = r["flood"]
        print("| %d | %d | %.1f | %.1f | %d | %.2f / %.2f | %.2f / %.2f / %.1f |" % (
            f["logins"], f["logins_ok"], f["flood_s"] or 0, f["logins_per_s"] or 0,
            f["status_gets_during"], f["idle_status_get_p50_ms"], f["idle_status_get_p99_ms"],
            f["status_get_p50_ms"] or 0, f["status_get_p99_ms"] or 0,
            f["status_get_max_ms"] or 0))

if streams:
    print("\n## Presence streams (bench/stream.sh)\n")
    print("A fresh usersd (`--threads 1`, core 0, decay off) on the users given; N subscribers "
          "on core 1 (bench/stream_bench.c) while 8 keep-alive writers change statuses at the "
          "given rate, each change a real one (every user set offline first, then online and "
          "away in turn). Each subscriber follows every user, or (`ids`) 100 random users "
          "through `?ids=` (a `snapshot` event first). A stream the server drops reconnects "
          "with Last-Event-ID (at most 20 times). Per subscriber: expected = the changes of "
          "the users it follows; missing = expected − received, 10 s after the last change; "
          "skipped = ids jumped over between two received events (full streams; lost, not "
          "late); latency from an `online` event's last_seen to its arrival; RSS per stream "
          "= usersd's RSS after the streams opened, less before, divided.\n")
    print("| scenario | users | subscribers | follows | changes/s | changes | expected events "
          "| delivered | missing | skipped | resyncs | reconnects | p50 ms | p99 ms "
          "| RSS KiB / stream | server CPU % | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in streams:
        s = r["stream"]
        print("| %s | %s | %d | %s | %d | %d | %d | %.2f %% | %d | %d | %d | %d | %s | %s | %.1f "
              "| %.0f | %.0f |" % (
                  s.get("scenario", "?"), size(s.get("users", r["users"])), s["subscribers"], s["follow"] or "all", s["rate"],
                  s["changes"], s["expected_events"], s["delivered_pct"], s["missing_events"],
                  s["gap_events"], s["resyncs"], s["reconnects"], stream_ms(s["p50_us"]),
                  stream_ms(s["p99_us"]), s["rss_per_stream_kb"], s["server_cpu_pct"],
                  s["server_peak_rss_kb"] / 1024))
        bad = []
        if s.get("refused") or s.get("not_ok") or s.get("failed_streams"):
            bad.append("%d refused, %d not 200, %d failed" % (
                s.get("refused", 0), s.get("not_ok", 0), s.get("failed_streams", 0)))
        if s.get("foreign_events"):
            bad.append("%d events of users not followed" % s["foreign_events"])
        if s.get("snapshot_bad"):
            bad.append("%d missing or wrong snapshots" % s["snapshot_bad"])
        if s.get("out_of_order"):
            bad.append("%d ids out of order" % s["out_of_order"])
        if s.get("change_errors") or s.get("warm_errors"):
            bad.append("%d failed writes" % (s.get("change_errors", 0) + s.get("warm_errors", 0)))
        if bad:
            print("|  | %s |" % "; ".join(bad) + " |" * 15)

notes = os.path.join(here, "NOTES.md")
if os.path.exists(notes):
    print()
    print(open(notes).read().rstrip())
legacy = os.path.join(here, "stream_results.jsonl")
if not streams and os.path.exists(legacy):
    print("\n## Presence stream (bench/stream.sh)\n")
    print("One usersd (`--threads 1`, core 0), N subscribers on core 1 (bench/stream_bench.c), "
          "changes through 8 keep-alive writers; latency is from the change's server timestamp "
          "to its arrival. `expected` counts every request as a change, but a request that sets "
          "the status a user already has is no change and sends no event.\n")
    print("| subscribers | changes/s | changes | events delivered | expected at most | dropped "
          "streams | p50 ms | p99 ms | server CPU % | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in open(legacy):
        if not line.strip():
            continue
        d = json.loads(line)
        print("| %d | %d | %d | %d | %d | %d | %.1f | %.1f | %.0f | %.0f |" % (
            d["subscribers"], d["rate"], d["changes"], d["events"], d["expected_events"],
            d["dropped_streams"], d["p50_us"] / 1000, d["p99_us"] / 1000, d["server_cpu_pct"],
            d["server_peak_rss_kb"] / 1024))
