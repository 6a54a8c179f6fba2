"""bench/run.sh's login flood: N logins sent at once on N connections
(users seed<k>, k distinct and random below USERS, password PASSWORD), then
every answer awaited (at most 900 s). Prints one JSON line: how many were
answered 200 (and the other statuses), how long the flood took, logins per
second, and the p50/p99 of the logins' own latency. Status reads beside it
are wrk's (run.sh). Loopback only; every loop bounded.
    python3 bench/flood.py PORT N USERS PASSWORD"""
import json
import random
import resource
import selectors
import socket
import sys
import time

port, n, users, password = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < n + 64:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))

names = random.sample(range(1, users), min(n, users - 1))
sel = selectors.DefaultSelector()
pending = {}
t0 = time.perf_counter()
for k in names:
    body = json.dumps({"username": "seed%d" % k, "password": password}).encode()
    raw = (b"POST /api/auth/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(raw)
    except OSError:
        continue
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    pending[s] = [b"", time.perf_counter()]
sent = len(pending)
done = []  # (status, seconds from send to answer)
deadline = time.monotonic() + 900
while pending and time.monotonic() < deadline:
    for key, _ in sel.select(0.5):
        s = key.fileobj
        try:
            chunk = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            chunk = b""
        if chunk:
            pending[s][0] += chunk
            continue
        data, at = pending.pop(s)
        sel.unregister(s)
        s.close()
        status = int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else 0
        done.append((status, time.perf_counter() - at))
for s in list(pending):
    s.close()
flood_s = time.perf_counter() - t0
lat = sorted(d for st, d in done if st == 200)
statuses = {}
for st, _ in done:
    statuses[str(st)] = statuses.get(str(st), 0) + 1


def pct(p):
    return round(lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1000, 1) if lat else None


print(json.dumps({"logins": n, "sent": sent, "ok": len(lat), "statuses": statuses,
                  "unanswered": len(pending), "flood_s": round(flood_s, 2),
                  "logins_per_s": round(len(lat) / flood_s, 1) if flood_s else None,
                  "login_p50_ms": pct(50), "login_p99_ms": pct(99)}))
