"""Turns bench/results.jsonl (from bench/run.sh) into the RESULTS.md table:
medians of the rounds, usersd's rate as a ratio of nginx's for a body of
the same size measured in the same run."""
import json
import os
import platform
import statistics
import subprocess
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows:
    r.setdefault("db", "sqlite")
runs = [r for r in rows if "scenario" in r]
peak = {(r["db"], r["users"]): r["peak_rss_kb"] for r in rows if "peak_rss_kb" in r}
# SQLite first (the default, at both sizes), then PostgreSQL
groups = sorted({(r["db"], r["users"]) for r in runs}, key=lambda g: (g[0] != "sqlite", g[1]))
sizes = sorted({r["users"] for r in runs if r["db"] == "sqlite"})


def med(vals):
    return statistics.median(vals) if vals else 0


def rate(x):
    return x["requests"] / (x["duration_us"] / 1e6) if x["duration_us"] else 0


table = {}
for db, size in groups:
    here = [r for r in runs if r["users"] == size and r["db"] == db]
    for name in dict.fromkeys(r["scenario"] for r in here):
        rs = [r for r in here if r["scenario"] == name]
        u = med([rate(r["usersd"]) for r in rs])
        n = med([rate(r["nginx"]) for r in rs])
        table[(db, size, name)] = {
            "bytes": rs[0]["bytes"], "rps": u, "nginx": n, "ratio": u / n if n else 0,
            "p50": med([r["usersd"]["p50_us"] for r in rs]),
            "p99": med([r["usersd"]["p99_us"] for r in rs]),
            "errors": sum(r["usersd"]["errors"] for r in rs),
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
print("# usersd benchmark results\n")
print("Machine: %s, %d cores, Linux %s. Command: `make bench` (bench/run.sh): SQLite "
      "database (and, last, PostgreSQL: a private cluster pinned to core 0 with usersd), "
      "usersd `--threads 1` pinned to core 0, nginx (1 worker, static file of the "
      "same body size) pinned to core 0 in alternating rounds, wrk `-t1 -c64` pinned to "
      "core 1; %d rounds each, medians.\n" % (cpu, os.cpu_count(), platform.release(),
                                            max(r["round"] for r in runs)))
print("| db | users | scenario | body B | usersd req/s | nginx req/s | usersd/nginx | p50 ms "
      "| p99 ms | errors | RSS MiB |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for (db, size, name), t in table.items():
    print("| %s | %s | %s | %d | %.0f | %.0f | %.0f %% | %.2f | %.2f | %d | %.1f |" % (
        db, "{:,}".format(size), name, t["bytes"], t["rps"], t["nginx"], 100 * t["ratio"],
        t["p50"] / 1000, t["p99"] / 1000, t["errors"], t["rss"] / 1024))
print()
for g in groups:
    if g in peak:
        print("Peak RSS at %s users (%s): %.1f MiB." % ("{:,}".format(g[1]), g[0],
                                                       peak[g] / 1024))
if len(sizes) == 2:
    print("\nCost of size (SQLite): rate at %s users as a share of the rate at %s users:\n" % (
        "{:,}".format(sizes[1]), "{:,}".format(sizes[0])))
    for name in dict.fromkeys(n for (db, _, n) in table if db == "sqlite"):
        a, b = table.get(("sqlite", sizes[0], name)), table.get(("sqlite", sizes[1], name))
        if a and b and a["rps"]:
            print("- %s: %.0f %%" % (name, 100 * b["rps"] / a["rps"]))

notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "NOTES.md")
if os.path.exists(notes):
    print()
    print(open(notes).read().rstrip())
stream = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stream_results.jsonl")
if os.path.exists(stream):
    print("\n## Presence stream (bench/stream.sh)\n")
    print("One usersd (`--threads 1`, core 0), N subscribers on core 1 (bench/stream_bench.c), "
          "changes through 8 keep-alive writers; latency is from the change's server timestamp "
          "to its arrival. `expected` counts every request as a change, but a request that sets "
          "the status a user already has is no change and sends no event.\n")
    print("| subscribers | changes/s | changes | events delivered | expected at most | dropped "
          "streams | p50 ms | p99 ms | server CPU % | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in open(stream):
        if not line.strip():
            continue
        d = json.loads(line)
        print("| %d | %d | %d | %d | %d | %d | %.1f | %.1f | %.0f | %.0f |" % (
            d["subscribers"], d["rate"], d["changes"], d["events"], d["expected_events"],
            d["dropped_streams"], d["p50_us"] / 1000, d["p99_us"] / 1000, d["server_cpu_pct"],
            d["server_peak_rss_kb"] / 1024))
