"""Presence writes at scale, on both drivers: the writer's group commit
(one usersd_set_status_many per batch; PostgreSQL sends the whole batch as
one statement) keeps each request's own answer, and two processes writing
the same users at once log each real change exactly once, in commit order.
SQLite only: the WAL starts again under writes that never pause.
PostgreSQL only: the server's background sweeps never walk the users table
(a generic plan of a prepared statement once did, twice a second)."""
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import DB_KIND, Server, db_url

STATUSES = ("online", "away", "offline")


def set_status(srv, token, uid, status):
    code, _, body = srv.request("POST", "/api/users/admin/users/%d/set-online-status/" % uid,
                                {"status": status}, token=token)
    return code, body


def all_changes(srv, token):
    """The whole presence log (bounded: at most 50 pages of 1,000)."""
    out, since = [], 0
    for _ in range(50):
        code, _, body = srv.request(
            "GET", "/api/users/presence/changes/?since=%d&limit=1000" % since, token=token)
        assert code == 200, body
        out.extend(body["changes"])
        if not body["changes"]:
            return out
        since = body["next_since"]
    raise AssertionError("the log did not end within 50 pages")


def run_all(n, fn):
    """Runs fn(i) for i < n in n threads started together; returns results."""
    results = [None] * n
    start = threading.Barrier(n)

    def one(i):
        start.wait(timeout=30)
        results[i] = fn(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a request thread did not finish"
    return results


class Batches(unittest.TestCase):
    """Requests that arrive together share a batch; each keeps its answer."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server().start()
        cls.admin = cls.srv.login()
        cls.ids = [cls.srv.create_user(cls.admin, username="batch%d" % i)["id"]
                   for i in range(6)]

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def test_unknown_users_fail_alone(self):
        ghost = max(self.ids) + 1000
        # 24 writes at once: every fourth to a user that does not exist
        plan = [(ghost + i if i % 4 == 1 else self.ids[i % len(self.ids)], STATUSES[i % 3])
                for i in range(24)]
        results = run_all(len(plan), lambda i: set_status(self.srv, self.admin, *plan[i]))
        for (uid, status), (code, body) in zip(plan, results):
            if uid >= ghost:
                self.assertEqual(code, 404, body)
                self.assertIn("error", body)
            else:
                self.assertEqual(code, 200, body)
                self.assertEqual((body["user_id"], body["online_status"]), (uid, status))
        # what each user holds now is what its last write said, and its log
        # has no change twice in a row
        changes = all_changes(self.srv, self.admin)
        for uid in self.ids:
            mine = [c["online_status"] for c in changes if c["user_id"] == uid]
            for a, b in zip(mine, mine[1:]):
                self.assertNotEqual(a, b, mine)
            code, _, st = self.srv.request(
                "GET", "/api/users/admin/users/%d/online-status/" % uid, token=self.admin)
            self.assertEqual(code, 200)
            self.assertEqual(mine[-1] if mine else "offline", st["online_status"])

    def test_own_writes_in_one_batch_are_each_callers_activity(self):
        tokens = []
        for i in range(4):
            u = self.srv.create_user(self.admin, username="own%d" % i)
            tokens.append((u["id"], self.srv.login("own%d" % i, "password-123")))
        results = run_all(8, lambda i: self.srv.request(
            "POST", "/api/users/me/online-status/", {"status": "away"},
            token=tokens[i % 4][1]) if i < 4 else self.srv.request(
            "POST", "/api/users/me/heartbeat/", token=tokens[i % 4][1]))
        for code, _, body in results:
            self.assertEqual(code, 200, body)
        for uid, token in tokens:
            code, _, me = self.srv.request("GET", "/api/users/me/", token=token)
            self.assertEqual(code, 200)
            self.assertEqual(me["id"], uid)
            self.assertIn(me["online_status"], ("online", "away"))
            self.assertIsNotNone(me["last_seen"])  # the write was also activity


class TwoProcesses(unittest.TestCase):
    """Two servers (a and b) on one fresh database, started with ARGS."""
    ARGS = ()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="usersd-two-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        db = db_url(self.dir, "two")
        self.a = Server(self.ARGS, workdir=self.dir, db=db).start()
        self.addCleanup(self.a.stop)
        self.b = Server(self.ARGS, workdir=tempfile.mkdtemp(prefix="usersd-two-b-"), db=db).start()
        self.addCleanup(self.b.cleanup)

    def status(self, srv, token, uid):
        code, _, body = srv.request("GET", "/api/users/admin/users/%d/online-status/" % uid,
                                    token=token)
        self.assertEqual(code, 200, body)
        return body

    def last_seen(self, srv, token, uid):
        return self.status(srv, token, uid)["last_seen"]


class Activity(TwoProcesses):
    """API.md §4: a request's activity need not delay its reply, and is
    visible to every reader, in every process, within 1 s."""
    ARGS = ("--activity-interval", "1", "--away-after", "0", "--offline-after", "0")

    def test_a_read_is_activity_seen_everywhere_within_a_second(self):
        admin = self.a.login()
        uid = self.a.create_user(admin, username="act")["id"]
        token = self.a.login("act", "password-123")
        reader = self.b.login()
        before = self.last_seen(self.b, reader, uid)
        self.assertIsNotNone(before)  # the login set it
        for _ in range(3):  # three reads, each past the interval
            time.sleep(1.2)
            code, _, me = self.a.request("GET", "/api/users/me/", token=token)
            self.assertEqual(code, 200)
            replied = time.monotonic()
            seen = {}
            for srv, tok in ((self.a, admin), (self.b, reader)):  # both processes
                now = self.last_seen(srv, tok, uid)
                while now == before and time.monotonic() - replied < 1.0:
                    time.sleep(0.05)
                    now = self.last_seen(srv, tok, uid)
                seen[srv.port] = now
            self.assertEqual(len(set(seen.values())), 1, seen)  # one value, everywhere
            after = seen[self.a.port]
            self.assertGreater(after, before, "the read was not visible within 1 s")
            before = after


class Refreshes(TwoProcesses):
    """API.md §7 "Refreshes": a heartbeat of a user already online is
    answered at once with the refreshed last_seen, which every process
    reads within 1 s; decay never takes the user away meanwhile."""
    # away after 4 s: heartbeats 1.5 s apart leave 2.5 s (and decay's
    # grace) of slack for a loaded machine
    ARGS = ("--activity-interval", "1", "--away-after", "4", "--offline-after", "0")

    def test_heartbeats_refresh_everywhere_and_decay_waits(self):
        admin = self.a.login()
        uid = self.a.create_user(admin, username="hb")["id"]
        token = self.a.login("hb", "password-123")  # online now
        reader = self.b.login()
        changes_before = len(all_changes(self.b, reader))
        replies = []
        for _ in range(5):  # each 1.5 s apart: past the interval (a refresh), inside away-after
            time.sleep(1.5)
            code, _, hb = self.a.request("POST", "/api/users/me/heartbeat/", token=token)
            self.assertEqual((code, hb["online_status"]), (200, "online"), hb)
            replied = time.monotonic()
            replies.append(hb["last_seen"])
            got = self.status(self.b, reader, uid)  # the other process, within 1 s
            while got["last_seen"] != hb["last_seen"] and time.monotonic() - replied < 1.0:
                time.sleep(0.05)
                got = self.status(self.b, reader, uid)
            self.assertEqual(got["last_seen"], hb["last_seen"], "not seen in 1 s")
            self.assertEqual(got["online_status"], "online")  # decay never took it away
        self.assertEqual(replies, sorted(set(replies)))  # each reply a new last_seen
        # refreshes change no status: nothing was logged for them
        self.assertEqual(len(all_changes(self.b, reader)), changes_before)
        # without them, decay takes the user away (4 s, plus its 0.5 s grace)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.status(self.b, reader, uid)["online_status"] \
                == "online":
            time.sleep(0.2)
        self.assertEqual(self.status(self.b, reader, uid)["online_status"], "away")


class TwoWriters(unittest.TestCase):
    """Two processes on one database write the same users at once."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="usersd-writers-")
        self.db = db_url(self.dir, "writers")
        args = ["--away-after", "0", "--offline-after", "0"]
        self.a = Server(args, workdir=self.dir, db=self.db).start()
        self.b = Server(args, workdir=tempfile.mkdtemp(prefix="usersd-writers-b-"),
                        db=self.db).start()

    def tearDown(self):
        self.a.stop()
        self.b.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_each_change_is_logged_once_in_commit_order(self):
        ta, tb = self.a.login(), self.b.login()
        ids = [self.a.create_user(ta, username="w%d" % i)["id"] for i in range(5)]
        rounds = 12

        def writer(i):
            srv, token = (self.a, ta) if i % 2 == 0 else (self.b, tb)
            done = []
            for r in range(rounds):
                uid = ids[(i + r) % len(ids)]
                status = STATUSES[(i * 7 + r) % 3]
                code, body = set_status(srv, token, uid, status)
                assert code == 200, body
                done.append((uid, status))
            return done

        results = run_all(16, writer)
        changes = all_changes(self.b, tb)
        seqs = [c["seq"] for c in changes]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(seqs), len(set(seqs)))
        writes = {uid: 0 for uid in ids}
        for done in results:
            for uid, _ in done:
                writes[uid] += 1
        for uid in ids:
            mine = [c["online_status"] for c in changes if c["user_id"] == uid]
            # a change reported twice (by both processes, or out of commit
            # order) shows as the same status twice in a row
            for x, y in zip(mine, mine[1:]):
                self.assertNotEqual(x, y, (uid, mine))
            self.assertLessEqual(len(mine), writes[uid])
            self.assertTrue(mine, "no change was logged for %d" % uid)
            for srv, token in ((self.a, ta), (self.b, tb)):
                code, _, st = srv.request(
                    "GET", "/api/users/admin/users/%d/online-status/" % uid, token=token)
                self.assertEqual((code, st["online_status"]), (200, mine[-1]))


def psql(url, sql):
    state = os.environ["USERSD_PG_STATE"]
    with open(os.path.join(state, "bindir")) as f:
        bin_psql = os.path.join(f.read().strip(), "psql")
    p = subprocess.run([bin_psql, "-At", "-X", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@unittest.skipUnless(DB_KIND == "postgresql", "PostgreSQL's presence table")
class PresenceCopy(unittest.TestCase):
    """PostgreSQL keeps the indexed copy of presence (table presence) in
    step with users through every kind of write."""

    def test_presence_follows_users_through_every_write(self):
        d = tempfile.mkdtemp(prefix="usersd-copy-")
        db = db_url(d, "copy")
        srv = Server(["--away-after", "1", "--offline-after", "2", "--activity-interval", "0"],
                     workdir=d, db=db).start()
        try:
            admin = srv.login()
            ids = [srv.create_user(admin, username="c%d" % i)["id"] for i in range(6)]
            for i, uid in enumerate(ids):  # batches through the writer
                set_status(srv, admin, uid, STATUSES[i % 3])
            t = srv.login("c0", "password-123")  # login: online
            srv.request("POST", "/api/users/me/heartbeat/", token=t)
            srv.request("GET", "/api/users/me/", token=t)  # activity
            srv.request("PATCH", "/api/users/management/users/%d/" % ids[1],
                        {"is_active": False}, token=admin)  # deactivation: offline
            srv.request("DELETE", "/api/users/management/users/%d/" % ids[2], token=admin)
            srv.request("POST", "/api/auth/logout/", token=t)
            # decay takes c3 away, then offline; the admin, who keeps
            # asking, stays online, and c4 away (never seen: no decay)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                code, _, st = srv.request("GET", "/api/users/management/statistics/",
                                          token=admin)
                if (st["online_users"], st["away_users"]) == (1, 1):
                    break
                time.sleep(0.2)
            self.assertEqual((st["online_users"], st["away_users"]), (1, 1))
            differ = psql(db, "SELECT count(*) FROM users u FULL JOIN presence p "
                              "ON p.user_id = u.id WHERE u.id IS NULL OR p.user_id IS NULL "
                              "OR (u.online_status, u.last_seen) IS DISTINCT FROM "
                              "(p.online_status, p.last_seen)")
            self.assertEqual(differ, "0")
            self.assertEqual(psql(db, "SELECT count(*) FROM presence"),
                             psql(db, "SELECT count(*) FROM users"))
        finally:
            srv.cleanup()
            shutil.rmtree(d, ignore_errors=True)


def wal_header(path):
    """(checkpoint sequence, size) of a SQLite WAL file; (None, 0) before it
    exists. The sequence (bytes 12-15, big-endian) moves each time the WAL
    starts again from its beginning."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return None, 0
    return (int.from_bytes(head[12:16], "big") if len(head) >= 16 else None), size


@unittest.skipUnless(DB_KIND == "sqlite", "SQLite's WAL")
class WalBound(unittest.TestCase):
    """The server's commits leave checkpoints to a thread of their own
    (usersd_config.checkpoint_apart): under writes that never pause, the
    WAL still starts again from its beginning, again and again, and stays
    bounded. Without the thread nothing would ever copy it back."""

    def test_the_wal_restarts_under_writes_that_never_pause(self):
        srv = Server(["--away-after", "0", "--offline-after", "0"]).start()
        try:
            admin = srv.login()
            ids = [srv.create_user(admin, username="wal%d" % i)["id"] for i in range(40)]
            wal = srv.db[len("sqlite:"):] + "-wal"
            stop = threading.Event()
            failures = []

            def writer(k):
                n = 0
                while not stop.is_set() and n < 20000:
                    uid = ids[(k * 7 + n) % len(ids)]
                    code, body = set_status(srv, admin, uid, STATUSES[n % 3])
                    if code != 200:
                        failures.append((code, body))
                        return
                    n += 1

            threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            seqs, biggest = set(), 0
            deadline = time.monotonic() + 60
            while (time.monotonic() < deadline and len(seqs) < 4 and biggest < 96 << 20
                   and not failures):
                seq, size = wal_header(wal)
                if seq is not None:
                    seqs.add(seq)
                biggest = max(biggest, size)
                time.sleep(0.05)
            stop.set()
            for t in threads:
                t.join(timeout=30)
                self.assertFalse(t.is_alive(), "a writer did not stop")
            self.assertEqual(failures, [])
            # three restarts seen while the writers kept writing
            self.assertGreaterEqual(len(seqs), 4, "the WAL never started again: %s" % seqs)
            # 8,192 pages (32 MiB) before the checkpoint takes the writer's
            # turn, and what one more pass lets through
            self.assertLess(biggest, 96 << 20, "the WAL grew to %d bytes" % biggest)
        finally:
            srv.cleanup()


@unittest.skipUnless(DB_KIND == "postgresql", "PostgreSQL's plans")
class BackgroundReads(unittest.TestCase):
    def test_sweeps_never_walk_the_users_table(self):
        d = tempfile.mkdtemp(prefix="usersd-sweeps-")
        db = db_url(d, "sweeps")
        bin_ = os.environ.get("USERSD_BIN", "../../build-test/usersd")
        p = subprocess.run([bin_, "seed", "--db", db, "--users", "3000"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        # no decay: its check is an index range at any size that matters
        srv = Server(["--away-after", "0", "--offline-after", "0"], workdir=d, db=db).start()
        try:
            count = "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'users'"
            # the sweeps run four times a second: after two seconds each
            # prepared statement has run more than five times, so it runs
            # on PostgreSQL's generic plan
            time.sleep(2.0)
            before = int(psql(db, count))
            time.sleep(2.5)  # ten more sweeps (statistics reach the view within a second)
            after = int(psql(db, count))
            self.assertEqual(after, before, "a background sweep scanned every user")
        finally:
            srv.cleanup()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
