"""`usersd copy` from SQLite into the database under test (SQLite, or
PostgreSQL and back): users, sessions, messages and presence history
arrive whole, the counters and search indexes agree with the source; the
copy is all or nothing, so one interrupted by SIGKILL or SIGINT (while rows
load, or while indexes are rebuilt) leaves the destination empty and simply
runs again; progress shows on a terminal and nowhere else (copy, seed,
migrations)."""
import os
import pty
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

from harness import BIN, DB_KIND, Server, db_url
from test_history import rfc3339

MANY = 200000  # enough that a copy is still running when it is interrupted
SUMMARY = re.compile(r"^usersd copy: copied (\d+) user\(s\) and (\d+) session\(s\)$")


def env(**extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("USERSD_")}
    e.update(extra)
    return e


def run(*args, **extra):
    """usersd with stderr on a pipe (not a terminal)."""
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=240,
                          env=env(**extra))


class Terminal:
    """usersd with stderr on a pseudo-terminal, read as it comes."""

    def __init__(self, *args, **extra):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([BIN] + list(args), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=slave, env=env(**extra))
        os.close(slave)
        self.raw = b""

    def read_until(self, done, timeout=240):
        """Reads until done(lines) holds or the terminal closes (bounded);
        returns whether done held."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self.lines()):
                return True
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every writer is gone
                chunk = b""
            if not chunk:
                return done(self.lines())
            self.raw += chunk
        return False

    def finish(self, timeout=240):
        self.read_until(lambda lines: False, timeout)
        rc = self.proc.wait(timeout=30)
        os.close(self.master)
        return rc

    def lines(self):
        """Every state the screen showed: the text between \\r and \\n, the
        clear-to-end-of-line removed."""
        text = self.raw.decode("utf-8", "replace").replace("\x1b[K", "")
        return [x for x in re.split(r"[\r\n]", text) if x]


def progress(lines, step):
    """(done, total) of each progress line of this step."""
    out = []
    for x in lines:
        m = re.match(r"^usersd \w+: %s ([\d,]+) of ([\d,]+)" % step, x)
        if m:
            out.append(tuple(int(g.replace(",", "")) for g in m.groups()))
    return out


def counts(db):
    p = run("stats", "--db", db)
    assert p.returncode == 0, p.stderr
    return p.stdout


class Copy(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="usersd-copy-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)  # after the servers stop

    def source(self):
        """An SQLite deployment with everything copy carries: users of
        every kind, sessions, a status message, presence history and the
        per-minute counts."""
        src = "sqlite:" + os.path.join(self.dir, "old.db")
        old = Server(workdir=self.dir, db=src).start()
        self.addCleanup(old.stop)  # also when a check fails before the test stops it
        tok = old.login()
        ids = {}
        for name, extra in (("carol", {"email": "carol@example.com", "first_name": "Zoë",
                                       "last_name": "O\\Brien \u2615"}),
                            ("dave", {"is_staff": True}), ("erin", {"is_active": False}),
                            ("frank", {})):
            ids[name] = old.create_user(tok, username=name, **extra)["id"]
        for name, status in (("carol", "away"), ("dave", "online"), ("frank", "online"),
                             ("frank", "offline")):
            self.set_status(old, tok, ids[name], status)
        carol = old.login("carol", "password-123")
        code, _, body = old.request("PUT", "/api/users/me/status-message/",
                                    {"text": "In\ta meeting", "expires_in": 3600}, token=carol)
        self.assertEqual(code, 400, body)  # no control characters: the text below has none
        code, _, body = old.request("PUT", "/api/users/me/status-message/",
                                    {"text": "Back at 3 \\o/", "expires_in": 3600}, token=carol)
        self.assertEqual(code, 200, body)
        return old, src, tok, carol, ids

    def views(self, srv, tok, carol, ids, start, end):
        """What the API shows of everything copied, read with the old tokens
        (reads are not status changes: the change log does not move)."""
        v = {}
        for path in ("/api/users/management/list/?per_page=100",
                     "/api/users/management/list/?search=brien",
                     "/api/users/management/list/?search=carol%40example",
                     "/api/users/management/statistics/",
                     "/api/users/admin/users/online/",
                     "/api/users/presence/changes/",
                     "/api/users/management/statistics/history/?from=%s&to=%s&bucket=1m"
                     % (start, end),
                     "/api/users/management/users/%d/sessions/" % ids["carol"]):
            code, _, body = srv.request("GET", path, token=tok)
            self.assertEqual(code, 200, (path, body))
            v[path] = body
        for name in ("carol", "dave", "frank"):
            path = "/api/users/admin/users/%d/presence-history/?from=%s&to=%s" % (
                ids[name], start, end)
            code, _, v[path] = srv.request("GET", path, token=tok)
            self.assertEqual(code, 200, v[path])
        code, _, v["me"] = srv.request("GET", "/api/users/me/", token=carol)
        self.assertEqual(code, 200, v["me"])
        for s in v["/api/users/management/users/%d/sessions/" % ids["carol"]]["sessions"]:
            s.pop("last_used")  # the reads themselves are activity
        return v

    def set_status(self, srv, tok, uid, status):
        code, _, body = srv.request(
            "POST", "/api/users/admin/users/%d/set-online-status/" % uid, {"status": status},
            token=tok)
        self.assertEqual(code, 200, body)

    def test_everything_arrives_and_agrees(self):
        # Wherever minute boundaries fall between the reads (see
        # test_a_minute_ends_between_the_reads for one on purpose).
        start = rfc3339(time.time() - 60)
        old, src, tok, carol, ids = self.source()
        end = rfc3339(time.time() + 1)
        time.sleep(1.2)  # end is in the past for every read below
        before = self.views(old, tok, carol, ids, start, end)
        self.assertEqual(old.stop(), 0)
        self.assertEqual(len(before["/api/users/management/list/?search=brien"]["users"]), 1)
        self.assertTrue(before["/api/users/management/statistics/history/?from=%s&to=%s&bucket=1m"
                               % (start, end)]["points"])

        dst = db_url(self.dir, "new")
        p = run("copy", "--from", src, "--to", dst)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "usersd copy: copied 5 user(s) and 2 session(s)\n")
        again = run("copy", "--from", src, "--to", dst)
        self.assertEqual(again.returncode, 1)
        self.assertIn("already holds 5 user(s)", again.stderr)

        new = Server(workdir=tempfile.mkdtemp(prefix="usersd-copy2-"), db=dst).start()
        try:
            self.assertEqual(self.views(new, tok, carol, ids, start, end), before)
            new.login("carol", "password-123")  # passwords work
            code, _, mine = new.request(
                "GET", "/api/users/management/users/%d/sessions/" % ids["carol"], token=tok)
            self.assertEqual(len({x["id"] for x in mine["sessions"]}), 2)  # session ids go on
            n = new.create_user(tok, username="gina", first_name="Zoë")
            self.assertGreater(n["id"], max(ids.values()))  # ids continue after the copied
            code, _, found = new.request("GET", "/api/users/management/list/?search=zo%C3%AB",
                                         token=tok)
            self.assertEqual([u["username"] for u in found["users"]], ["carol", "gina"])
            code, _, st = new.request("GET", "/api/users/management/statistics/", token=tok)
            self.assertEqual(st["total_users"], 6)  # the triggers count again
            if DB_KIND == "postgresql":  # and back again, out of PostgreSQL
                self.assertEqual(new.stop(), 0)
                back = "sqlite:" + os.path.join(self.dir, "back.db")
                p = run("copy", "--from", dst, "--to", back)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(counts(back), counts(dst))
        finally:
            new.cleanup()

    def test_a_minute_ends_between_the_reads(self):
        """A minute whose peak is above its opening count and its count at
        the end ends between reading the source and reading the copy, and
        the source stops before the sample that closes that minute (the
        sweep's, a second or so into the next one): the source's read after
        the boundary, the copy made then and the copy's read show that
        minute with the peak it had."""
        history = "/api/users/management/statistics/history/?from=%s&to=%s&bucket=1m"
        start = rfc3339(time.time() - 60)
        old, src, tok, carol, ids = self.source()
        gina = old.create_user(tok, username="gina")["id"]
        into = time.time() % 60
        if into > 45:  # room in this minute for the changes and a read (one wait < 16 s)
            time.sleep(60 - into + 0.5)
        minute = time.time() // 60 * 60
        # this minute recorded (a read over it records it if the sweep has
        # not): its opening count and its peak so far
        code, _, body = old.request("GET", history % (rfc3339(minute), rfc3339(minute + 60)),
                                    token=tok)
        self.assertEqual(code, 200, body)
        opening, peak = body["points"][0]["online"], body["points"][0]["online_max"]
        code, _, st = old.request("GET", "/api/users/management/statistics/", token=tok)
        online = st["online_users"]
        for uid, status in ((ids["frank"], "online"), (gina, "online"),  # two more
                            (ids["dave"], "offline"), (ids["frank"], "offline"),
                            (gina, "offline")):  # one fewer than before
            self.set_status(old, tok, uid, status)
        peak = max(peak, online + 2)
        # (what set-up left in this minute lowered the count by 1 at most)
        self.assertGreater(peak, max(opening, online - 1))
        end = rfc3339(time.time() + 1)
        time.sleep(1.2)

        def histories(srv):  # the views of history: a minute later, reads are activity
            v = self.views(srv, tok, carol, ids, start, end)
            return {k: x for k, x in v.items() if "history" in k}
        before = histories(old)
        self.assertEqual(len(before), 4)
        self.assertLess(time.time(), minute + 59, "the machine is too slow for this minute")
        last = before[history % (start, end)]["points"][-1]
        self.assertEqual((last["at"][:16], last["online"], last["online_max"]),
                         (rfc3339(minute)[:16], opening, peak))

        # The sample that closes the minute held off across the boundary (a
        # write lock on the source; its reads go on), the source read in the
        # next minute, then stopped there.
        lock = sqlite3.connect(src[len("sqlite:"):], isolation_level=None, timeout=10)
        try:
            lock.execute("BEGIN IMMEDIATE")
            time.sleep(max(0.0, minute + 60.5 - time.time()))  # < 60 s
            self.assertEqual(histories(old), before)
            self.assertEqual(old.stop(), 0)
        finally:
            lock.close()

        dst = db_url(self.dir, "new")
        p = run("copy", "--from", src, "--to", dst)
        self.assertEqual(p.returncode, 0, p.stderr)
        copies = [dst]
        if DB_KIND == "postgresql":  # and back again, out of PostgreSQL
            copies.append("sqlite:" + os.path.join(self.dir, "back.db"))
            p = run("copy", "--from", dst, "--to", copies[-1])
            self.assertEqual(p.returncode, 0, p.stderr)
        for db in copies:
            new = Server(workdir=tempfile.mkdtemp(prefix="usersd-copy2-"), db=db).start()
            try:
                self.assertEqual(histories(new), before, db)
            finally:
                new.cleanup()


class Interrupted(unittest.TestCase):
    """One source of MANY users; copies killed mid-way."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="usersd-copyk-")
        cls.src = "sqlite:" + os.path.join(cls.dir, "many.db")
        t = Terminal("seed", "--db", cls.src, "--users", str(MANY))
        cls.seed_rc = t.finish()
        cls.seed_lines = t.lines()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def interrupt(self, dst, sig, when):
        t = Terminal("copy", "--from", self.src, "--to", dst)
        reached = t.read_until(when)
        if reached:
            t.proc.send_signal(sig)
        rc = t.finish()
        self.assertTrue(reached, "the copy ended before it could be interrupted:\n%s"
                        % "\n".join(t.lines()[-5:]))
        self.assertEqual(rc, -sig)
        self.assertFalse([x for x in t.lines() if SUMMARY.match(x)])

    def assertEmpty(self, dst):
        st = counts(dst)
        self.assertIn('"total_users":0,', st)
        self.assertIn('"online_users":0,', st)

    def test_seed_showed_progress(self):
        self.assertEqual(self.seed_rc, 0, self.seed_lines)
        seen = progress(self.seed_lines, "users")
        self.assertTrue(seen, self.seed_lines)
        self.assertTrue(all(total == MANY for _, total in seen), seen)
        self.assertTrue(re.match(r"^usersd seed: added %d users in [\d.]+ s$" % MANY,
                                 self.seed_lines[-1]), self.seed_lines)

    def test_killed_copies_leave_nothing_and_run_again(self):
        self.assertEqual(self.seed_rc, 0, self.seed_lines)
        dst = db_url(self.dir, "k")
        # SIGKILL while the users load: some rows are in, uncommitted
        self.interrupt(dst, signal.SIGKILL,
                       lambda lines: any(0 < d < t for d, t in progress(lines, "users")))
        self.assertEmpty(dst)
        # SIGINT (Ctrl-C) while the indexes are rebuilt: every row is in
        self.interrupt(dst, signal.SIGINT, lambda lines: progress(lines, "indexes"))
        self.assertEmpty(dst)

        # and then it simply runs again, showing where it is on the way
        t = Terminal("copy", "--from", self.src, "--to", dst)
        self.assertEqual(t.finish(), 0, t.lines())
        lines = t.lines()
        self.assertEqual(lines[-1], "usersd copy: copied %d user(s) and 0 session(s)" % MANY)
        users = progress(lines, "users")
        self.assertEqual(users[0], (0, MANY))
        self.assertTrue(all(d <= t and t == MANY for d, t in users), users)
        self.assertTrue(progress(lines, "indexes"), lines)
        self.assertTrue(any(re.search(r", [\d,]+/s, ", x) for x in lines), lines)
        self.assertEqual(counts(dst), counts(self.src))
        srv = Server(workdir=tempfile.mkdtemp(prefix="usersd-copyk2-"), db=dst).start()
        try:
            tok = srv.login("seed4321", "seed-password")  # the password hashes came over
            code, _, me = srv.request("GET", "/api/users/me/", token=tok)
            self.assertEqual((code, me["username"]), (200, "seed4321"))
        finally:
            srv.cleanup()

    def test_no_terminal_no_progress(self):
        dst = db_url(self.dir, "quiet")
        p = run("copy", "--from", self.src, "--to", dst)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "usersd copy: copied %d user(s) and 0 session(s)\n" % MANY)


class Migrations(unittest.TestCase):
    def test_slow_steps_are_reported_on_a_terminal(self):
        d = tempfile.mkdtemp(prefix="usersd-mig-")
        try:
            db = db_url(d, "mig")
            # every step counts as slow here, so every one is reported
            t = Terminal("migrate", "--db", db, USERSD_PROGRESS_SLOW_MS="0")
            self.assertEqual(t.finish(), 0, t.lines())
            steps = [x for x in t.lines() if " took " in x]
            n = len(steps)
            self.assertGreaterEqual(n, 7, t.lines())
            for i, x in enumerate(steps):
                self.assertRegex(x, r"^usersd migrate: migration %d of %d took [\d.]+ s$"
                                 % (i + 1, n))
            self.assertRegex(t.lines()[-1], r"^usersd migrate: .* is up to date$")
            # not a terminal: only the result
            p = run("migrate", "--db", db_url(d, "mig2"), USERSD_PROGRESS_SLOW_MS="0")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
