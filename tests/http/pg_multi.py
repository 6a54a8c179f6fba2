"""PostgreSQL: many usersd processes on one database, one truth (run only
against PostgreSQL). Two servers share presence and decay; a database
restart is survived; a bad connection string fails clearly. (`usersd copy`
from SQLite: test_copy.py.)"""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import ADMIN_PASSWORD, BIN, Server, db_url, pg_admin
from sse import Stream, presence

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CLUSTER = os.path.join(ROOT, "scripts", "pg-cluster.sh")


def changes_of(srv, token, uid):
    code, _, body = srv.request("GET", "/api/users/presence/changes/?since=0&limit=1000",
                                token=token)
    assert code == 200, body
    return [c["online_status"] for c in body["changes"] if c["user_id"] == uid]


class TwoProcesses(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="usersd-pg2-")
        self.db = db_url(self.dir, "shared")
        args = ["--away-after", "1", "--offline-after", "2"]
        self.a = Server(args, workdir=self.dir, db=self.db).start()
        self.b = Server(args, workdir=tempfile.mkdtemp(prefix="usersd-pg2b-"), db=self.db).start()

    def tearDown(self):
        self.a.stop()
        self.b.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_change_through_one_reaches_the_others_stream(self):
        ta, tb = self.a.login(), self.b.login()
        u = self.a.create_user(ta, username="shared1")
        s = Stream(self.b.port, tb)
        self.assertEqual(s.read_headers(), 200)
        self.a.request("POST", "/api/users/admin/users/%d/set-online-status/" % u["id"],
                       {"status": "online"}, token=ta)
        evs = [e for e in presence(s.events(3, timeout=10, user_id=u["id"]))
               if e["json"]["user_id"] == u["id"]]
        s.close()
        # online through A, then decay (run by both processes) away and offline
        self.assertEqual([e["json"]["online_status"] for e in evs], ["online", "away", "offline"])
        time.sleep(1.0)  # both sweepers had every chance to double-report
        self.assertEqual(changes_of(self.a, ta, u["id"]), ["online", "away", "offline"])
        # B reads what A wrote, at once
        code, _, st = self.b.request("GET", "/api/users/admin/users/%d/online-status/" % u["id"],
                                     token=tb)
        self.assertEqual((code, st["online_status"]), (200, "offline"))

    def log_of(self, srv, token, ids):
        """The whole change log as srv serves it, paged: (seq, user, status)
        of the users ids."""
        out, since = [], 0
        for _ in range(200):
            code, _, body = srv.request(
                "GET", "/api/users/presence/changes/?since=%d&limit=1000" % since, token=token)
            self.assertEqual(code, 200, body)
            if not body["changes"]:
                return out
            for c in body["changes"]:
                self.assertGreater(c["seq"], since)  # in order, none twice
                since = c["seq"]
                if c["user_id"] in ids:
                    out.append((c["seq"], c["user_id"], c["online_status"]))
        self.fail("the log did not end")

    def writers(self, ids, seconds, tokens, errors, lost_ok=None):
        """Three writer threads per process (tokens: ta, tb), each setting
        random statuses of ids until seconds pass; a refusal goes to errors,
        and so does a lost connection, except to the server lost_ok."""
        stop = time.monotonic() + seconds

        def writer(srv, tok, seed):
            rnd = random.Random(seed)
            for _ in range(300):
                if time.monotonic() > stop:
                    break
                try:
                    code, _, body = srv.request(
                        "POST", "/api/users/admin/users/%d/set-online-status/" % rnd.choice(ids),
                        {"status": rnd.choice(["online", "away", "offline"])}, token=tok)
                except OSError:
                    if srv is not lost_ok:
                        errors.append("connection lost")
                    return
                if code != 200 and srv is not lost_ok:
                    errors.append((code, body))

        threads = [threading.Thread(target=writer, args=(srv, tok, k))
                   for k, (srv, tok) in enumerate(list(zip((self.a, self.b), tokens)) * 3)]
        for t in threads:
            t.start()
        return threads

    def assert_each_change_once(self, logged):
        """Never the same status twice in a row for a user (a change
        logged twice, or from a status it did not leave), each ending
        offline as last set."""
        last = {}
        for seq, uid, status in logged:
            self.assertNotEqual(last.get(uid), status,
                                "user %d logged %s twice in a row (seq %d)" % (uid, status, seq))
            last[uid] = status
        self.assertEqual(set(last.values()), {"offline"})

    def streamed(self, s, ids, n):
        """(id, user, status) of the next n events about ids on stream s."""
        out = []
        deadline = time.monotonic() + 20
        while len(out) < n and time.monotonic() < deadline:
            for e in presence(s.events(1, timeout=2)):
                if e["json"]["user_id"] in ids:
                    out.append((int(e["id"]), e["json"]["user_id"], e["json"]["online_status"]))
        s.close()
        return out

    def all_offline(self, srv, token, ids):
        for uid in ids:  # offline does not decay: the last word is known
            code, _, body = srv.request(
                "POST", "/api/users/admin/users/%d/set-online-status/" % uid,
                {"status": "offline"}, token=token)
            self.assertEqual(code, 200, body)
        time.sleep(0.5)

    def test_writers_of_two_processes_log_each_change_once_in_order(self):
        # Writers of both processes change the same users at once, with no
        # lock between them (migration 011): each real change is logged
        # once, from the status it really left (never twice the same status
        # in a row for a user), and every reader agrees on one order: the
        # log polled through A, through B, and B's stream, live.
        ta, tb = self.a.login(), self.b.login()
        ids = [self.a.create_user(ta, username="race%d" % i)["id"] for i in range(6)]
        s = Stream(self.b.port, tb)
        self.assertEqual(s.read_headers(), 200)
        errors = []
        for t in self.writers(ids, 4, (ta, tb), errors):
            t.join(timeout=30)
        self.assertEqual(errors, [])
        self.all_offline(self.a, ta, ids)
        via_a, via_b = self.log_of(self.a, ta, ids), self.log_of(self.b, tb, ids)
        self.assertEqual(via_a, via_b)
        self.assertGreater(len(via_a), 20)
        self.assert_each_change_once(via_a)
        self.assertEqual(self.streamed(s, ids, len(via_a)), via_a)

    def test_a_process_killed_mid_batch_costs_the_others_nothing(self):
        # A dies (kill -9) while its writer has batches in flight: its open
        # transaction ends with its connection, and the log read through B
        # and B's stream go on past it, every change once and in order.
        ta, tb = self.a.login(), self.b.login()
        ids = [self.a.create_user(ta, username="kill%d" % i)["id"] for i in range(6)]
        s = Stream(self.b.port, tb)
        self.assertEqual(s.read_headers(), 200)
        errors = []
        threads = self.writers(ids, 3, (ta, tb), errors, lost_ok=self.a)
        time.sleep(1.2)
        self.a.proc.send_signal(signal.SIGKILL)  # mid-batch: A writes all the time
        self.a.proc.wait(timeout=10)
        for t in threads:
            t.join(timeout=30)
        self.assertEqual(errors, [])  # B's writers never noticed
        self.all_offline(self.b, tb, ids)
        logged = self.log_of(self.b, tb, ids)
        self.assert_each_change_once(logged)
        self.assertEqual(self.streamed(s, ids, len(logged)), logged)

    def test_decay_by_two_processes_reports_each_change_once(self):
        ta = self.a.login()
        ids = []
        for i in range(20):
            u = self.a.create_user(ta, username="many%d" % i)
            ids.append(u["id"])
            self.a.request("POST", "/api/users/admin/users/%d/set-online-status/" % u["id"],
                           {"status": "online"}, token=ta)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            code, _, body = self.a.request("GET", "/api/users/management/statistics/", token=ta)
            if body["online_users"] == 0 and body["away_users"] == 0:
                break
            time.sleep(0.2)
        time.sleep(0.6)
        for uid in ids:
            self.assertEqual(changes_of(self.a, ta, uid), ["online", "away", "offline"])


class Restart(unittest.TestCase):
    def test_outage_gives_503_and_service_resumes(self):
        state = tempfile.mkdtemp(prefix="usersd-pgstate-")
        subprocess.run([CLUSTER, "start", state], check=True, capture_output=True, timeout=120)
        try:
            base = open(os.path.join(state, "url")).read().strip()
            bindir = open(os.path.join(state, "bindir")).read().strip()
            subprocess.run([os.path.join(bindir, "psql"), "-qX", base + "/postgres", "-c",
                            "CREATE DATABASE r1"], check=True, capture_output=True, timeout=60)
            srv = Server(db=base + "/r1").start()
            try:
                tok = srv.login()
                subprocess.run([CLUSTER, "pause", state], check=True, capture_output=True,
                               timeout=120)
                for path in ("/api/users/me/", "/api/users/admin/users/online/",
                             "/api/users/management/statistics/"):
                    t0 = time.monotonic()
                    code, headers, body = srv.request("GET", path, token=tok)
                    self.assertEqual(code, 503, body)
                    self.assertRegex(body["error"], "database|PostgreSQL")
                    self.assertLess(time.monotonic() - t0, 15)  # a bound on a hang, not speed
                code, _, body = srv.request("POST", "/api/auth/login/",
                                            {"username": "admin", "password": ADMIN_PASSWORD})
                self.assertEqual(code, 503, body)
                code, _, body = srv.request("GET", "/readyz")
                self.assertEqual(code, 503)
                code, _, body = srv.request("GET", "/healthz")
                self.assertEqual(code, 200)  # alive, just not ready
                subprocess.run([CLUSTER, "resume", state], check=True, capture_output=True,
                               timeout=120)
                deadline = time.monotonic() + 20
                code = 0
                while time.monotonic() < deadline and code != 200:
                    code, _, _ = srv.request("GET", "/readyz")
                    time.sleep(0.2)
                self.assertEqual(code, 200)
                code, _, me = srv.request("GET", "/api/users/me/", token=tok)
                self.assertEqual((code, me["username"]), (200, "admin"))
                self.assertEqual(srv.stop(), 0)
            finally:
                srv.cleanup()
        finally:
            subprocess.run([CLUSTER, "stop", state], capture_output=True, timeout=120)
            shutil.rmtree(state, ignore_errors=True)


class BadConnection(unittest.TestCase):
    def test_wrong_password_or_host_exits_with_one_line(self):
        good = db_url(tempfile.gettempdir(), "bad")
        scheme, rest = good.split("://", 1)
        cred, hostpart = rest.split("@", 1)
        user = cred.split(":")[0]
        for url, part in ((scheme + "://" + user + ":wrong@" + hostpart, "password"),
                          (scheme + "://" + cred + "@no-such-host.invalid:5432/x", "no-such-host"),
                          (scheme + "://" + cred + "@127.0.0.1:1/x", "127.0.0.1")):
            p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--db", url],
                               capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            self.assertEqual(p.returncode, 1, p.stderr)
            lines = p.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, p.stderr)
            self.assertIn("cannot connect to PostgreSQL", lines[0])
            self.assertIn(part, lines[0])
            self.assertNotIn("wrong@", lines[0])


if __name__ == "__main__":
    unittest.main()
