"""usersd seed --tokens K FILE: K sessions for K distinct random active users,
minted straight into the database (a load-testing aid), their tokens in FILE;
the tokens work against a server like login tokens; bad values exit 2."""
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from harness import BIN, Server, db_url


class SeedTokens(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="usersd-seed-")
        self.db = db_url(self.dir, "seed")
        self.srv = None

    def tearDown(self):
        if self.srv:
            self.srv.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def seed(self, *args):
        e = {k: v for k, v in os.environ.items() if not k.startswith("USERSD_")}
        return subprocess.run([BIN, "seed", "--db", self.db] + list(args), capture_output=True,
                              text=True, timeout=120, env=e, stdin=subprocess.DEVNULL)

    def path(self, name):
        return os.path.join(self.dir, name)

    def tokens(self, name):
        with open(self.path(name)) as f:
            return f.read().splitlines()

    def server(self):
        if not self.srv:
            self.srv = Server(workdir=self.dir, db=self.db).start()
            self.admin = self.srv.login()
        return self.srv

    def me(self, token):
        status, _, body = self.server().request("GET", "/api/users/me/", token=token)
        self.assertEqual(status, 200, body)
        return body

    def stats(self):
        _, _, body = self.server().request("GET", "/api/users/management/statistics/",
                                           token=self.admin)
        return body

    # Each test starts the server first: it creates the admin (id 1) only
    # in an empty database.

    def test_users_then_tokens_for_distinct_users(self):
        self.server()
        p = self.seed("--users", "40", "--tokens", "25", self.path("t"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertIn("minted 25 tokens", p.stderr)
        toks = self.tokens("t")
        self.assertEqual(len(toks), 25)
        self.assertEqual(len(set(toks)), 25)
        for t in toks:
            self.assertRegex(t, r"^[0-9a-f]{64}$")
        # credentials: readable by the owner only
        self.assertEqual(stat.S_IMODE(os.stat(self.path("t")).st_mode), 0o600)
        users = [self.me(t) for t in toks]
        ids = [u["id"] for u in users]
        self.assertEqual(len(set(ids)), 25, ids)
        for u in users:
            self.assertTrue(re.fullmatch(r"seed\d+|admin", u["username"]), u)
            self.assertTrue(1 <= u["id"] <= 41, u)
        # each is a session like a login's, listed for its user (one not
        # picked: the admin also has the session of its login)
        seeded = next(t for t, u in zip(toks, users) if u["username"] != "admin")
        status, _, body = self.srv.request("GET", "/api/users/me/sessions/", token=seeded)
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["sessions"]), 1)
        self.assertTrue(body["sessions"][0]["current"])
        # a heartbeat with a minted token is a real write for that user
        status, _, hb = self.srv.request("POST", "/api/users/me/heartbeat/", token=toks[1])
        self.assertEqual((status, hb["user_id"], hb["online_status"]), (200, ids[1], "online"))
        # and it can be revoked like any session
        self.srv.request("POST", "/api/auth/logout/", token=toks[2])
        status, _, _ = self.srv.request("GET", "/api/users/me/", token=toks[2])
        self.assertEqual(status, 401)

    def test_tokens_alone_on_a_seeded_database_add_no_user(self):
        self.server()
        self.assertEqual(self.seed("--users", "30").returncode, 0)
        before = self.stats()
        p = self.seed("--tokens", "30", self.path("all"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("added", p.stderr)
        after = self.stats()
        # no user added, no presence changed by minting
        self.assertEqual(after, before)
        # 31 active users (30 seeded, the admin): 30 tokens are 30 of them
        ids = {self.me(t)["id"] for t in self.tokens("all")}
        self.assertEqual(len(ids), 30)
        self.assertTrue(ids <= set(range(1, 32)), ids)
        # minting again gives new tokens, which work beside the first ones
        p = self.seed("--tokens", "31", self.path("again"))
        self.assertEqual(p.returncode, 0, p.stderr)
        again = self.tokens("again")
        self.assertFalse(set(again) & set(self.tokens("all")))
        self.assertEqual({self.me(t)["id"] for t in again}, set(range(1, 32)))

    def test_many_tokens_in_batches(self):
        """More than one batch (PostgreSQL commits every 1,000): every
        token is written once, each batch's sessions exist, and the session
        counter the metrics read counts them all."""
        self.server()
        p = self.seed("--users", "1500", "--tokens", "1234", self.path("t"))
        self.assertEqual(p.returncode, 0, p.stderr)
        toks = self.tokens("t")
        self.assertEqual(len(set(toks)), 1234)
        ids = {self.me(toks[i])["id"] for i in (0, 999, 1000, 1233)}
        self.assertEqual(len(ids), 4)
        status, _, text = self.srv.request("GET", "/metrics", token=self.admin)
        self.assertEqual(status, 200)
        m = re.search(r"^usersd_sessions (\d+)$", text, re.M)
        self.assertEqual(int(m.group(1)), 1235)  # and the admin's login

    def test_token_lookup_keeps_its_index_after_seeding(self):
        """A bulk load takes the planner's statistics while sessions holds
        the admin's one: the tokens minted after it must not leave the
        token lookup planned as a scan of every session (SQLite)."""
        if not self.db.startswith("sqlite:"):
            self.skipTest("SQLite's planner statistics")
        import sqlite3
        self.server()  # the admin logs in: one session
        self.assertEqual(self.seed("--users", "1200", "--tokens", "1100",
                                   self.path("t")).returncode, 0)
        self.assertEqual(self.me(self.tokens("t")[0])["is_active"], True)
        c = sqlite3.connect(self.db[len("sqlite:"):])
        rows = c.execute("SELECT max(CAST(stat AS INTEGER)) FROM sqlite_stat1 "
                         "WHERE tbl = 'sessions'").fetchone()[0]
        self.assertGreaterEqual(rows, 1000)
        plan = " ".join(r[-1] for r in c.execute(
            "EXPLAIN QUERY PLAN SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.hash = x'00'"))
        c.close()
        self.assertIn("USING INDEX", plan)
        self.assertNotIn("SCAN s", plan)

    def test_only_active_users_and_never_more_than_there_are(self):
        srv = self.server()
        self.assertEqual(self.seed("--users", "10").returncode, 0)
        for uid in (2, 3, 4):
            status, _, body = srv.request("PATCH", "/api/users/management/users/%d/" % uid,
                                          {"is_active": False}, token=self.admin)
            self.assertEqual(status, 200, body)
        # 11 users, 8 active (the admin and seven seeded)
        p = self.seed("--tokens", "9", self.path("t"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("more than the 8 active users", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertFalse(os.path.exists(self.path("t")))
        p = self.seed("--tokens", "8", self.path("t"))
        self.assertEqual(p.returncode, 0, p.stderr)
        ids = {self.me(t)["id"] for t in self.tokens("t")}
        self.assertEqual(ids, {1, 5, 6, 7, 8, 9, 10, 11})
        # users and tokens together: nothing is added when the tokens cannot be had
        total = self.stats()["total_users"]
        p = self.seed("--users", "5", "--tokens", "100", self.path("u"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("more than the 13 active users", p.stderr)
        self.assertEqual(self.stats()["total_users"], total)

    def test_empty_database(self):
        p = self.seed("--tokens", "1", self.path("t"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("more than the 0 active users", p.stderr)

    def test_bad_values_exit_2_with_one_line(self):
        t = self.path("t")
        for args in (("--tokens", "0", t), ("--tokens", "-1", t), ("--tokens", "abc", t),
                     ("--tokens", "", t), ("--tokens", "1000001", t), ("--tokens", "5"),
                     ("--users", "5", t), (t,), (), ("--tokens", "1", t, "extra"),
                     ("--users", "0", "--tokens", "1", t)):
            with self.subTest(args=args):
                p = self.seed(*args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
                self.assertEqual(p.stdout, "")
                self.assertFalse(os.path.exists(t))

    def test_unwritable_file_is_a_failure(self):
        srv = self.server()
        self.assertEqual(self.seed("--users", "3").returncode, 0)
        p = self.seed("--tokens", "2", self.path("no/such/dir/t"))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot write", p.stderr)
        # nothing was minted: the seeded users have no session
        for uid in (2, 3, 4):
            _, _, body = srv.request("GET", "/api/users/management/users/%d/sessions/" % uid,
                                     token=self.admin)
            self.assertEqual(body["sessions"], [], uid)

    def test_help(self):
        p = self.seed("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--tokens K FILE", p.stdout)


if __name__ == "__main__":
    unittest.main()
