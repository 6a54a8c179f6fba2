"""The command line: every subcommand, USERSD_* variables, --help, exit 2
with one line on a bad option, and the same JSON as the API."""
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

from harness import ADMIN_PASSWORD, BIN, DB_KIND, Server, db_url

COMMANDS = ("serve", "createuser", "migrate", "status", "online", "stats", "copy", "seed",
            "routes", "sessions", "message", "history", "dnd")


class Cli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="usersd-cli-")
        self.db = db_url(self.dir, "cli")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_cli(self, *args, stdin="", env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("USERSD_")}
        e.update(env or {})
        return subprocess.run([BIN] + list(args), input=stdin, capture_output=True, text=True,
                              timeout=60, env=e)

    def create(self, name, *extra, password="password-123"):
        p = self.run_cli("createuser", "--db", self.db, "--username", name, *extra,
                         "--password-stdin", stdin=password + "\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    @unittest.skipUnless(DB_KIND == "sqlite", "reads the SQLite file's schema")
    def test_sqlite_indexes_serve_the_presence_queries(self):
        """API.md asks for indexes on online_status and last_seen: presence
        lives in its own narrow table (migration 008) with one index,
        presence_by_status (online_status, last_seen DESC, user_id), which
        serves the status filters, the online list, decay and every
        last_seen range (one range per status); each query below must be
        answered through an index, not a scan of the table."""
        p = self.run_cli("migrate", "--db", self.db)
        self.assertEqual(p.returncode, 0, p.stderr)
        db = sqlite3.connect(self.db[len("sqlite:"):])
        try:
            cols = {}
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                      "AND tbl_name IN ('users', 'presence', 'presence_changes')"):
                cols[name] = [r[2] for r in db.execute("PRAGMA index_info(%s)" % name)]
            for gone in ("users_online_status", "users_presence", "users_last_seen"):
                self.assertNotIn(gone, cols)
            self.assertEqual(cols["presence_by_status"], ["online_status", "last_seen", "user_id"])
            user_cols = [r[1] for r in db.execute("PRAGMA table_info(users)")]
            self.assertNotIn("online_status", user_cols)  # a status change never touches users
            plans = {
                "SELECT count(*) FROM presence WHERE online_status = 2": "presence_by_status",
                "SELECT user_id, last_seen FROM presence WHERE online_status = 2 "
                "ORDER BY last_seen DESC, user_id LIMIT 50 OFFSET 5000": "presence_by_status",
                "SELECT user_id FROM presence WHERE online_status IN (0, 1, 2) AND last_seen < 5":
                    "presence_by_status",
                "SELECT max(seq) FROM presence_changes INDEXED BY presence_changes_at "
                "WHERE at < 5": "presence_changes_at",
            }
            for sql, index in plans.items():
                plan = " ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql))
                self.assertIn("INDEX " + index, plan, sql)
            # the online page is cut from the index alone (it covers the query)
            plan = " ".join(r[3] for r in db.execute(
                "EXPLAIN QUERY PLAN SELECT user_id, online_status, last_seen FROM presence "
                "WHERE online_status = 2 ORDER BY last_seen DESC, user_id LIMIT 50 OFFSET 5000"))
            self.assertIn("COVERING INDEX presence_by_status", plan)
        finally:
            db.close()

    def test_help_everywhere(self):
        p = self.run_cli("--help")
        self.assertEqual(p.returncode, 0)
        for c in COMMANDS:
            self.assertIn(c, p.stdout)
            q = self.run_cli(c, "--help")
            self.assertEqual(q.returncode, 0, c)
            self.assertIn("usage: usersd " + c, q.stdout)

    def test_bad_options_exit_2_with_one_line(self):
        for args in (("nosuch",), ("status", "--db", self.db), ("status", "--db", self.db, "x1"),
                     ("status", "--db", self.db, "1", "busy"), ("online", "--page", "0"),
                     ("online", "--per-page", "abc"), ("stats", "--wat"),
                     ("migrate", "--db", "oracle:x"), ("createuser", "--db", self.db),
                     ("createuser", "--db", self.db, "--username", "x"),
                     ("status", "--db", self.db, "1", "online", "extra"), ("online", "--db")):
            with self.subTest(args=args):
                p = self.run_cli(*args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
                self.assertEqual(p.stdout, "")
        p = self.run_cli("online", env={"USERSD_DB": self.db, "USERSD_THREADS": "x"})
        self.assertEqual(p.returncode, 0)  # online has no --threads: the variable is not its own
        p = self.run_cli("serve", env={"USERSD_THREADS": "abc"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("USERSD_THREADS", p.stderr)

    def test_createuser_and_status(self):
        u = self.create("john_doe", "--email", "john@example.com", "--first-name", "John",
                        "--last-name", "Doe", "--staff")
        self.assertEqual((u["username"], u["email"], u["first_name"], u["last_name"],
                          u["is_staff"], u["online_status"], u["last_seen"]),
                         ("john_doe", "john@example.com", "John", "Doe", True, "offline", None))
        p = self.run_cli("createuser", "--db", self.db, "--username", "JOHN_DOE",
                         "--password-stdin", stdin="password-123\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("username", p.stderr)
        p = self.run_cli("createuser", "--db", self.db, "--username", "shortpw",
                         "--password-stdin", stdin="short\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("password", p.stderr)

        p = self.run_cli("status", "--db", self.db, str(u["id"]))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"user_id": u["id"], "username": "john_doe",
                                                "online_status": "offline", "last_seen": None,
                                                "is_online": False, "dnd": None})
        p = self.run_cli("status", "--db", self.db, str(u["id"]), "online")
        s = json.loads(p.stdout)
        self.assertEqual((s["message"], s["online_status"]),
                         ("User online status updated to online", "online"))
        p = self.run_cli("status", "--db", self.db, "999")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not found", p.stderr)

    def test_env_variables(self):
        env = {"USERSD_DB": self.db}
        p = self.run_cli("migrate", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.run_cli("stats", env=env)
        self.assertEqual(json.loads(p.stdout)["total_users"], 0)
        # a flag beats the variable
        other = db_url(self.dir, "other")
        self.run_cli("createuser", "--db", other, "--username", "x", "--password-stdin",
                     stdin="password-123\n")
        p = self.run_cli("stats", "--db", other, env=env)
        self.assertEqual(json.loads(p.stdout)["total_users"], 1)

    def test_cli_prints_what_the_api_returns(self):
        srv = Server(workdir=self.dir, db=self.db).start()
        try:
            tok = srv.login()
            for i in range(3):
                u = srv.create_user(tok, username="u%d" % i, email="u%d@example.com" % i)
                srv.request("POST", "/api/users/admin/users/%d/set-online-status/" % u["id"],
                            {"status": ("online", "away", "online")[i]}, token=tok)
            _, _, api_stats = srv.request("GET", "/api/users/management/statistics/", token=tok)
            _, _, api_online = srv.request("GET", "/api/users/admin/users/online/?per_page=2",
                                           token=tok)
            _, _, api_status = srv.request("GET", "/api/users/admin/users/2/online-status/",
                                           token=tok)
            p = self.run_cli("stats", "--db", self.db)
            self.assertEqual(json.loads(p.stdout), api_stats)
            p = self.run_cli("online", "--db", self.db, "--per-page", "2")
            self.assertEqual(json.loads(p.stdout), api_online)
            p = self.run_cli("status", "--db", self.db, "2")
            self.assertEqual(json.loads(p.stdout), api_status)
            # a change from the CLI is seen by the running server at once,
            # in the online list too (which the server may reuse while nothing changed)
            for _ in range(3):
                srv.request("GET", "/api/users/admin/users/online/", token=tok)
            self.run_cli("status", "--db", self.db, "2", "offline")
            _, _, after = srv.request("GET", "/api/users/admin/users/2/online-status/", token=tok)
            self.assertEqual(after["online_status"], "offline")
            _, _, online = srv.request("GET", "/api/users/admin/users/online/", token=tok)
            self.assertNotIn(2, [u["id"] for u in online["online_users"]])
        finally:
            srv.stop()

    def test_admin_bootstrap(self):
        srv = Server(workdir=self.dir, db=self.db,
                     env={"USERSD_ADMIN_USERNAME": "root", "USERSD_ADMIN_PASSWORD": "root-pass-1"})
        srv.start()
        try:
            tok = srv.login("root", "root-pass-1")
            _, _, me = srv.request("GET", "/api/users/me/", token=tok)
            self.assertTrue(me["is_staff"])
            self.assertIn("created staff user 'root'", srv.read_log())
        finally:
            srv.stop()
        # not again once the database has users
        srv2 = Server(workdir=self.dir, db=self.db,
                      env={"USERSD_ADMIN_USERNAME": "root2", "USERSD_ADMIN_PASSWORD": "x-pass-12"})
        srv2.start()
        try:
            status, _, _ = srv2.request("POST", "/api/auth/login/",
                                        {"username": "root2", "password": "x-pass-12"})
            self.assertEqual(status, 401)
        finally:
            srv2.stop()

    def test_serve_reads_environment(self):
        env = {"USERSD_LISTEN": "127.0.0.1:0", "USERSD_DB": self.db, "USERSD_THREADS": "1",
               "USERSD_ADMIN_PASSWORD": ADMIN_PASSWORD}
        e = {k: v for k, v in os.environ.items() if not k.startswith("USERSD_")}
        e.update(env)
        log = open(os.path.join(self.dir, "log"), "w+")
        p = subprocess.Popen([BIN, "serve"], env=e, stderr=log, stdout=log,
                             stdin=subprocess.DEVNULL)
        try:
            import time
            deadline = time.monotonic() + 20
            text = ""
            while time.monotonic() < deadline and "listening" not in text:
                time.sleep(0.05)
                log.seek(0)
                text = log.read()
            self.assertIn("listening on http://127.0.0.1:", text)
            self.assertIn("1 threads", text)
            # the database is named, its password never shown
            self.assertIn(self.db.rsplit("/", 1)[-1], text)
            if "@" in self.db:
                password = self.db.split("://", 1)[1].split("@")[0].split(":")[1]
                self.assertNotIn(password, text)
                self.assertIn(":***@", text)
        finally:
            p.terminate()
            self.assertEqual(p.wait(timeout=20), 0)
            log.close()


if __name__ == "__main__":
    unittest.main()
