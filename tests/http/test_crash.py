"""kill -9 under concurrent writes loses no acknowledged write (API.md §5),
and at most the last second of refreshes (§7).

`make test` runs one round; `make soak` runs USERSD_SOAK_ROUNDS=20 of them
on both drivers, each round killing the server at a random moment while
eight clients create users and set statuses (the group commit path), then
restarting it on the same database and checking every write it had
acknowledged."""
import http.client
import os
import random
import signal
import threading
import time
import unittest

from harness import Server

ROUNDS = int(os.environ.get("USERSD_SOAK_ROUNDS", "1"))
STATUSES = ("online", "away", "offline")
LOST = (ConnectionError, http.client.HTTPException, OSError)


class Client:
    """One client writing in a loop until the server dies under it. Keeps
    what was acknowledged and what was in flight when it died (applied or
    not: both are right)."""

    def __init__(self, srv, token, uid, n):
        self.srv, self.token, self.uid, self.n = srv, token, uid, n
        self.acked_status = None
        self.in_flight = None
        self.created = {}  # id -> username
        self.created_in_flight = None
        self.errors = []

    def run(self, round_no):
        i = 0
        while i < 100000:  # bounded; the kill ends it long before
            i += 1
            status = STATUSES[(i + self.n) % 3]
            self.in_flight = status
            try:
                code, _, body = self.srv.request(
                    "POST", "/api/users/admin/users/%d/set-online-status/" % self.uid,
                    {"status": status}, token=self.token)
            except LOST:
                return
            if code != 200:
                self.errors.append((code, body))
                return
            self.acked_status, self.in_flight = status, None
            if i % 4 == 0:
                name = "r%dc%di%d" % (round_no, self.n, i)
                self.created_in_flight = name
                try:
                    code, _, body = self.srv.request(
                        "POST", "/api/users/management/users/",
                        {"username": name, "password": "password-123"}, token=self.token)
                except LOST:
                    return
                if code != 201:
                    self.errors.append((code, body))
                    return
                self.created[body["id"]] = name
                self.created_in_flight = None


class KillNine(unittest.TestCase):
    def test_acknowledged_writes_survive_kill_9(self):
        srv = Server().start()
        workdir, db = srv.dir, srv.db
        self.addCleanup(srv.cleanup)
        token = srv.login()
        clients = [Client(srv, token, srv.create_user(token, username="w%d" % n)["id"], n)
                   for n in range(8)]
        created = {}
        rng = random.Random(ROUNDS)
        for round_no in range(ROUNDS):
            threads = [threading.Thread(target=c.run, args=(round_no,)) for c in clients]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 1.5))
            if round_no == 0:  # a creation acknowledged to check, however loaded the machine
                deadline = time.monotonic() + 30
                while not any(c.created for c in clients) and time.monotonic() < deadline:
                    time.sleep(0.05)
            srv.proc.send_signal(signal.SIGKILL)
            srv.proc.wait(timeout=10)
            srv.log.close()
            for t in threads:
                t.join(timeout=60)
                self.assertFalse(t.is_alive())
            srv = Server(workdir=workdir, db=db).start()
            self.addCleanup(srv.stop)
            token = srv.login()
            for c in clients:
                self.assertEqual(c.errors, [])
                c.srv, c.token = srv, token
                code, _, body = srv.request(
                    "GET", "/api/users/admin/users/%d/online-status/" % c.uid, token=token)
                self.assertEqual(code, 200)
                # the last acknowledged status, or the one in flight at the kill
                self.assertIn(body["online_status"], {c.acked_status, c.in_flight} - {None},
                              (round_no, c.n, c.acked_status, c.in_flight))
                created.update(c.created)
                c.created = {}
            for uid, name in created.items():  # every round's acknowledged users
                code, _, body = srv.request("GET", "/api/users/management/users/%d/" % uid,
                                            token=token)
                self.assertEqual((code, body.get("username")), (200, name), round_no)
        self.assertGreater(len(created), 0)
        print("%d rounds, %d users created and acknowledged, all kept" % (ROUNDS, len(created)))


class RefreshesAndKillNine(unittest.TestCase):
    def test_a_crash_loses_at_most_the_last_second_of_refreshes(self):
        """API.md §7: a refresh is answered before it is written, so kill -9
        may lose the last second of them, and nothing else: one answered
        more than a second before the kill is there after it, and the
        status change acknowledged just before the kill too."""
        args = ["--activity-interval", "1", "--away-after", "0", "--offline-after", "0"]
        srv = Server(args).start()
        workdir, db = srv.dir, srv.db
        self.addCleanup(srv.cleanup)
        admin = srv.login()
        uid = srv.create_user(admin, username="beat")["id"]
        other = srv.create_user(admin, username="other")["id"]
        token = srv.login("beat", "password-123")  # online now
        time.sleep(1.2)  # past the interval: the next heartbeat is a refresh
        code, _, old = srv.request("POST", "/api/users/me/heartbeat/", token=token)
        self.assertEqual(code, 200, old)
        time.sleep(1.2)  # older than a second at the kill
        code, _, new = srv.request("POST", "/api/users/me/heartbeat/", token=token)
        self.assertEqual(code, 200, new)
        self.assertNotEqual(new["last_seen"], old["last_seen"])
        code, _, st = srv.request("POST", "/api/users/admin/users/%d/set-online-status/" % other,
                                  {"status": "away"}, token=admin)
        self.assertEqual(code, 200, st)
        srv.proc.send_signal(signal.SIGKILL)  # the second refresh may be on its way
        srv.proc.wait(timeout=10)
        srv.log.close()
        srv = Server(args, workdir=workdir, db=db).start()
        self.addCleanup(srv.stop)
        admin = srv.login()
        code, _, got = srv.request("GET", "/api/users/admin/users/%d/online-status/" % uid,
                                   token=admin)
        self.assertEqual(code, 200, got)
        self.assertEqual(got["online_status"], "online")
        self.assertIn(got["last_seen"], (old["last_seen"], new["last_seen"]))
        code, _, got = srv.request("GET", "/api/users/admin/users/%d/online-status/" % other,
                                   token=admin)
        self.assertEqual((code, got["online_status"]), (200, "away"))


if __name__ == "__main__":
    unittest.main()
