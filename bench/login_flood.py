"""bench/login_flood.sh's client: status-GET latency beside a login flood.

Measures GET /api/users/admin/users/1/online-status/ on one keep-alive
connection, first alone (idle), then while N logins (argon2id each) are
sent at once on N connections, until every login is answered. Prints one
JSON line. Loopback only; every loop bounded in count and time."""
import http.client
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "http"))
from rawhttp import Flood  # noqa: E402  (the tests' flood client)

port, token, password, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 1
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < n + 100:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))

probe = http.client.HTTPConnection("127.0.0.1", port, timeout=120)


def get_ms():
    t0 = time.perf_counter()
    probe.request("GET", "/api/users/admin/users/1/online-status/",
                  headers={"Authorization": "Token " + token})
    r = probe.getresponse()
    r.read()
    if r.status != 200:
        raise SystemExit("status GET answered %d" % r.status)
    return (time.perf_counter() - t0) * 1000


def pct(xs, p):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * p / 100))], 3) if xs else None


idle = [get_ms() for _ in range(2000)]

body = json.dumps({"username": "admin", "password": password}).encode()
raw = (b"POST /api/auth/login/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
flood = Flood(port, raw, n, timeout=900)
during = []
while flood.running() and len(during) < 1000000:
    during.append(get_ms())
flood.join()
done = flood.replies
flood_s = max(t for _, t in done) - flood.started if done else None
ok = sum(r.startswith(b"HTTP/1.1 200") for r, _ in done)
print(json.dumps({
    "bench": "login_flood", "logins": n, "logins_ok": ok, "threads": threads,
    "flood_s": round(flood_s, 3) if flood_s else None,
    "logins_per_s": round(ok / flood_s, 1) if flood_s else None,
    "status_gets_during": len(during),
    "status_get_p50_ms": pct(during, 50), "status_get_p99_ms": pct(during, 99),
    "status_get_max_ms": round(max(during), 3) if during else None,
    "idle_status_get_p50_ms": pct(idle, 50), "idle_status_get_p99_ms": pct(idle, 99),
}))
