"""Sessions, devices and live connections (API.md §7): a session per login,
listed and revoked by their owner and by staff; presence that stays true
across a user's devices (logging out on one keeps the user online while
another is in use); an open stream is activity, in any process, and stops
being so the moment its process dies; the activity interval; expiry; the
`usersd sessions` command. Runs against both drivers."""
import json
import re
import signal
import subprocess
import time
import unittest

from harness import BIN, Server, ServerTest
from sse import Stream

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ME = "/api/users/me/sessions/"
USERS = "/api/users/management/users/"


def status_of(srv, token, uid):
    code, _, body = srv.request("GET", "/api/users/admin/users/%d/online-status/" % uid,
                                token=token)
    assert code == 200, body
    return body


def wait_for(predicate, timeout, step=0.1):
    """Polls predicate until it is true or the deadline passes; returns its
    last value (bounded: never more than timeout seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


class Sessions(ServerTest):
    counter = 0

    def fresh(self):
        Sessions.counter += 1
        name = "dev%d" % Sessions.counter
        u = self.srv.create_user(self.admin, username=name)
        return u, name

    def login_as(self, name, agent):
        code, headers, body = self.req("POST", "/api/auth/login/",
                                       {"username": name, "password": "password-123"},
                                       headers={"User-Agent": agent})
        self.assertEqual(code, 200, body)
        return body["token"]

    def test_two_devices_list_and_current(self):
        u, name = self.fresh()
        # http.client sends header text as Latin-1: send UTF-8 bytes through it
        utf8 = "Phone/1.0 (\u00e9t\u00e9)".encode().decode("latin-1")
        phone = self.login_as(name, utf8)
        laptop = self.login_as(name, "Laptop/2.0 \xff")  # one byte that is not UTF-8
        code, _, body = self.req("GET", ME, token=laptop)
        self.assertEqual(code, 200, body)
        ss = body["sessions"]
        self.assertEqual(len(ss), 2)
        for x in ss:
            self.assertEqual(set(x), {"id", "created", "last_used", "user_agent", "client_ip",
                                      "current"})
            self.assertTrue(TIME_RE.match(x["created"]) and TIME_RE.match(x["last_used"]))
            self.assertEqual(x["client_ip"], "127.0.0.1")
            self.assertNotIn(phone, json.dumps(x))  # never a token
            self.assertNotIn(laptop, json.dumps(x))
        self.assertEqual([x["user_agent"] for x in ss if x["current"]], ["Laptop/2.0 \ufffd"])
        self.assertEqual({x["user_agent"] for x in ss},
                         {"Phone/1.0 (\u00e9t\u00e9)", "Laptop/2.0 \ufffd"})
        self.assertGreaterEqual(ss[0]["last_used"], ss[1]["last_used"])  # most recent first
        # staff see the same sessions, none current
        code, _, staff = self.req("GET", USERS + "%d/sessions/" % u["id"], token=self.admin)
        self.assertEqual(code, 200)
        self.assertEqual(sorted(x["id"] for x in staff["sessions"]), sorted(x["id"] for x in ss))
        self.assertFalse(any(x["current"] for x in staff["sessions"]))

    def test_logout_of_one_device_keeps_the_user_online(self):
        u, name = self.fresh()
        phone = self.login_as(name, "phone")
        laptop = self.login_as(name, "laptop")
        self.assertEqual(self.req("POST", "/api/auth/logout/", token=phone)[0], 204)
        self.assertEqual(status_of(self.srv, self.admin, u["id"])["online_status"], "online")
        self.assertError(self.req("GET", "/api/users/me/", token=phone), 401)
        self.assertEqual(self.req("GET", "/api/users/me/", token=laptop)[0], 200)
        self.assertEqual(self.req("POST", "/api/auth/logout/", token=laptop)[0], 204)
        self.assertEqual(status_of(self.srv, self.admin, u["id"])["online_status"], "offline")

    def test_revoke_one_session_by_id(self):
        u, name = self.fresh()
        phone = self.login_as(name, "phone")
        laptop = self.login_as(name, "laptop")
        _, _, body = self.req("GET", ME, token=laptop)
        phone_id = [x["id"] for x in body["sessions"] if x["user_agent"] == "phone"][0]
        code, headers, _ = self.req("DELETE", ME + "%d/" % phone_id, token=laptop)
        self.assertEqual(code, 204)
        self.assertNotIn("set-cookie", headers)  # not the current session
        self.assertError(self.req("GET", "/api/users/me/", token=phone), 401)
        self.assertEqual(status_of(self.srv, self.admin, u["id"])["online_status"], "online")
        # revoking the current one clears the cookie
        _, _, body = self.req("GET", ME, token=laptop)
        me_id = body["sessions"][0]["id"]
        code, headers, _ = self.req("DELETE", ME + "%d/" % me_id, token=laptop)
        self.assertEqual(code, 204)
        self.assertIn("Max-Age=0", headers["set-cookie"])
        self.assertError(self.req("GET", ME, token=laptop), 401)
        self.assertEqual(status_of(self.srv, self.admin, u["id"])["online_status"], "offline")

    def test_logout_everywhere(self):
        u, name = self.fresh()
        tokens = [self.login_as(name, "device %d" % i) for i in range(3)]
        code, headers, _ = self.req("POST", "/api/auth/logout-all/", token=tokens[0])
        self.assertEqual(code, 204)
        self.assertIn("Max-Age=0", headers["set-cookie"])
        for t in tokens:
            self.assertError(self.req("GET", "/api/users/me/", token=t), 401)
        self.assertEqual(status_of(self.srv, self.admin, u["id"])["online_status"], "offline")
        _, _, staff = self.req("GET", USERS + "%d/sessions/" % u["id"], token=self.admin)
        self.assertEqual(staff["sessions"], [])

    def test_staff_revoke_all(self):
        u, name = self.fresh()
        t = self.login_as(name, "x")
        self.assertEqual(self.req("DELETE", USERS + "%d/sessions/" % u["id"],
                                  token=self.admin)[0], 204)
        self.assertError(self.req("GET", "/api/users/me/", token=t), 401)
        self.assertEqual(status_of(self.srv, self.admin, u["id"])["online_status"], "offline")
        self.assertEqual(self.req("GET", "/api/users/me/", token=self.admin)[0], 200)

    def test_password_change_revokes_the_other_sessions(self):
        u, name = self.fresh()
        t1, t2 = self.login_as(name, "a"), self.login_as(name, "b")
        code, _, _ = self.req("PATCH", USERS + "%d/" % u["id"], {"password": "brand-new-pw"},
                              token=self.admin)
        self.assertEqual(code, 200)
        for t in (t1, t2):
            self.assertError(self.req("GET", "/api/users/me/", token=t), 401)
        # staff changing their own password keep the session they do it from
        staff = self.srv.create_user(self.admin, username="staff%d" % Sessions.counter,
                                     is_staff=True)
        s1 = self.srv.login(staff["username"], "password-123")
        s2 = self.srv.login(staff["username"], "password-123")
        code, _, _ = self.req("PATCH", USERS + "%d/" % staff["id"], {"password": "other-new-pw"},
                              token=s1)
        self.assertEqual(code, 200)
        self.assertEqual(self.req("GET", "/api/users/me/", token=s1)[0], 200)
        self.assertError(self.req("GET", "/api/users/me/", token=s2), 401)
        self.assertEqual(self.srv.login(staff["username"], "other-new-pw") != "", True)

    def test_metrics_count_sessions(self):
        def metric(name):
            _, _, text = self.req("GET", "/metrics", token=self.admin)
            m = re.search(r"^%s (\d+)$" % name, text, re.M)
            return int(m.group(1))
        before, revoked = metric("usersd_sessions"), metric("usersd_sessions_revoked_total")
        u, name = self.fresh()
        t = self.login_as(name, "m")
        self.assertEqual(metric("usersd_sessions"), before + 1)
        self.req("POST", "/api/auth/logout/", token=t)
        self.assertEqual(metric("usersd_sessions"), before)
        self.assertEqual(metric("usersd_sessions_revoked_total"), revoked + 1)
        self.assertIn("usersd_sessions_expired_total", self.req("GET", "/metrics",
                                                                token=self.admin)[2])


class Heartbeats(ServerTest):
    """The default activity interval (60 s): a heartbeat of a user already
    online and recently seen writes nothing and answers the stored values."""

    def test_heartbeat_within_the_interval_writes_nothing(self):
        u = self.srv.create_user(self.admin, username="hb1")
        t = self.srv.login("hb1", "password-123")
        _, _, first = self.req("POST", "/api/users/me/heartbeat/", token=t)
        time.sleep(0.05)
        _, _, second = self.req("POST", "/api/users/me/heartbeat/", token=t)
        self.assertEqual(first, second)  # same stored last_seen
        self.assertEqual(first["online_status"], "online")
        # away → a heartbeat is a status change: it writes, last_seen exact
        self.req("POST", "/api/users/me/online-status/", {"status": "away"}, token=t)
        time.sleep(0.05)
        _, _, third = self.req("POST", "/api/users/me/heartbeat/", token=t)
        self.assertEqual(third["online_status"], "online")
        self.assertGreater(third["last_seen"], first["last_seen"])
        self.assertEqual(status_of(self.srv, self.admin, u["id"])["last_seen"],
                         third["last_seen"])


class EveryHeartbeatWrites(ServerTest):
    server_args = ("--activity-interval", "0")

    def test_interval_0_writes_every_time(self):
        self.srv.create_user(self.admin, username="hb2")
        t = self.srv.login("hb2", "password-123")
        seen = []
        for _ in range(3):
            time.sleep(0.01)
            _, _, b = self.req("POST", "/api/users/me/heartbeat/", token=t)
            seen.append(b["last_seen"])
        self.assertEqual(len(set(seen)), 3)
        self.assertEqual(sorted(seen), seen)


class LiveConnections(ServerTest):
    """Short thresholds: away after 2 s, offline after 4 s."""
    server_args = ("--away-after", "2", "--offline-after", "4", "--activity-interval", "1")

    def test_an_open_stream_keeps_its_user_online(self):
        u = self.srv.create_user(self.admin, username="live1")
        t = self.srv.login("live1", "password-123")
        s = Stream(self.srv.port, t)
        self.assertEqual(s.read_headers(), 200)
        time.sleep(5.0)  # past both thresholds
        s.events(0, timeout=0.1)
        self.assertEqual(status_of(self.srv, self.admin, u["id"])["online_status"], "online")
        _, _, mine = self.req("GET", ME, token=t)
        # a second device logging out does not take the connected user offline
        t2 = self.srv.login("live1", "password-123")
        self.assertEqual(self.req("POST", "/api/auth/logout/", token=t2)[0], 204)
        self.assertEqual(status_of(self.srv, self.admin, u["id"])["online_status"], "online")
        s.close()
        # the stream closed: nothing refreshes any more, decay runs
        st = wait_for(lambda: status_of(self.srv, self.admin, u["id"])["online_status"] != "online",
                      timeout=8)
        self.assertTrue(st)
        self.assertEqual(len(mine["sessions"]), 1)

    def test_a_revoked_session_closes_its_stream(self):
        self.srv.create_user(self.admin, username="live2")
        t1 = self.srv.login("live2", "password-123")
        t2 = self.srv.login("live2", "password-123")
        s = Stream(self.srv.port, t1)
        self.assertEqual(s.read_headers(), 200)
        _, _, mine = self.req("GET", ME, token=t2)
        sid = [x["id"] for x in mine["sessions"] if not x["current"]][0]
        self.assertEqual(self.req("DELETE", ME + "%d/" % sid, token=t2)[0], 204)
        # reads until the server ends it: the hub finds the revocation at its
        # next refresh (each activity interval, 1 s here); a loaded machine
        # (the whole suite at once, sanitizers) has been seen past 5 s
        s.events(1, timeout=15)
        self.assertTrue(s.closed, "the revoked session's stream is still open")
        s.close()


class Expiry(ServerTest):
    # A session in use is marked used at most once per activity interval,
    # so its last_used may be up to about two intervals old when checked:
    # the time to live is three of them.
    server_args = ("--session-ttl", "3", "--activity-interval", "1", "--away-after", "0",
                   "--offline-after", "0")

    def test_an_unused_session_expires(self):
        u = self.srv.create_user(self.admin, username="exp1")
        t = self.srv.login("exp1", "password-123")
        self.assertEqual(self.req("GET", "/api/users/me/", token=t)[0], 200)
        time.sleep(4.0)
        self.assertError(self.req("GET", "/api/users/me/", token=t), 401)
        self.assertError(self.req("GET", "/api/users/me/", token=self.admin), 401)  # idle too
        admin = self.srv.login()
        # the sweep removes it and, being the last, takes the user offline
        gone = wait_for(lambda: self.req("GET", USERS + "%d/sessions/" % u["id"],
                                         token=admin)[2]["sessions"] == [], timeout=5)
        self.assertTrue(gone)
        self.assertEqual(status_of(self.srv, admin, u["id"])["online_status"], "offline")
        # a session in use does not expire
        for _ in range(4):
            time.sleep(1.0)
            self.assertEqual(self.req("GET", "/api/users/me/", token=admin)[0], 200)


class TwoProcesses(unittest.TestCase):
    """Two servers on one database (SQLite file or PostgreSQL): a stream in A
    keeps its user online while B's decay runs; kill -9 of A lets the user
    decay; a revocation in one is refused by the other at once."""

    def setUp(self):
        args = ["--away-after", "2", "--offline-after", "60", "--activity-interval", "1"]
        self.a = Server(args).start()
        self.b = Server(args, db=self.a.db).start()

    def tearDown(self):
        self.b.cleanup()
        self.a.cleanup()

    def test_stream_in_a_keeps_the_user_online_until_a_is_killed(self):
        ta, tb = self.a.login(), self.b.login()
        u = self.a.create_user(ta, username="far1")
        t = self.a.login("far1", "password-123")
        s = Stream(self.a.port, t)
        self.assertEqual(s.read_headers(), 200)
        time.sleep(4.0)  # twice --away-after; both processes sweep
        self.assertEqual(status_of(self.b, tb, u["id"])["online_status"], "online")
        before = status_of(self.b, tb, u["id"])["last_seen"]
        self.a.proc.send_signal(signal.SIGKILL)
        self.a.proc.wait(timeout=10)
        s.close()
        st = wait_for(lambda: status_of(self.b, tb, u["id"])["online_status"] == "away",
                      timeout=8)
        self.assertTrue(st, "the killed process's stream kept the user online")
        # decay ran from the last refresh, which was no earlier than before
        self.assertGreaterEqual(status_of(self.b, tb, u["id"])["last_seen"], before)

    def test_a_revocation_in_one_is_refused_by_the_other_at_once(self):
        ta = self.a.login()
        self.a.create_user(ta, username="far2")
        t = self.a.login("far2", "password-123")
        for _ in range(3):  # B has resolved (and may keep) the token
            self.assertEqual(self.b.request("GET", "/api/users/me/", token=t)[0], 200)
        self.assertEqual(self.a.request("POST", "/api/auth/logout/", token=t)[0], 204)
        code, _, _ = self.b.request("GET", "/api/users/me/", token=t)
        self.assertEqual(code, 401)


class Cli(unittest.TestCase):
    def setUp(self):
        self.srv = Server().start()
        self.admin = self.srv.login()

    def tearDown(self):
        self.srv.cleanup()

    def run_cli(self, *args):
        return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=60)

    def test_list_and_revoke(self):
        u = self.srv.create_user(self.admin, username="cli1")
        t1 = self.srv.login("cli1", "password-123")
        t2 = self.srv.login("cli1", "password-123")
        p = self.run_cli("sessions", "--db", self.srv.db, str(u["id"]))
        self.assertEqual(p.returncode, 0, p.stderr)
        ss = json.loads(p.stdout)["sessions"]
        self.assertEqual(len(ss), 2)
        p = self.run_cli("sessions", "--db", self.srv.db, str(u["id"]), "--revoke", str(ss[0]["id"]))
        self.assertEqual((p.returncode, json.loads(p.stdout)), (0, {"revoked": 1}), p.stderr)
        codes = sorted(self.srv.request("GET", "/api/users/me/", token=t)[0] for t in (t1, t2))
        self.assertEqual(codes, [200, 401])
        p = self.run_cli("sessions", "--db", self.srv.db, str(u["id"]), "--revoke", "all")
        self.assertEqual((p.returncode, json.loads(p.stdout)), (0, {"revoked": 1}), p.stderr)
        self.assertEqual(self.srv.request("GET", "/api/users/me/", token=t1)[0], 401)
        self.assertEqual(self.srv.request("GET", "/api/users/me/", token=t2)[0], 401)
        # unknown session or user: exit 1 with the reason
        p = self.run_cli("sessions", "--db", self.srv.db, str(u["id"]), "--revoke", "999999")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not found", p.stderr)
        p = self.run_cli("sessions", "--db", self.srv.db, "999999")
        self.assertEqual(p.returncode, 1)

    def test_bad_arguments_exit_2(self):
        for args in (("sessions", "--db", self.srv.db), ("sessions", "--db", self.srv.db, "x"),
                     ("sessions", "--db", self.srv.db, "1", "--revoke", "some"),
                     ("sessions", "--db", self.srv.db, "1", "--revoke", "-3"),
                     ("serve", "--session-ttl", "-1"), ("serve", "--session-ttl", "abc"),
                     ("serve", "--activity-interval", "-5"),
                     ("serve", "--activity-interval", "1.5")):
            with self.subTest(args=args):
                p = self.run_cli(*args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        p = subprocess.run([BIN, "serve"], capture_output=True, text=True, timeout=60,
                           env={"USERSD_ACTIVITY_INTERVAL": "soon"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("USERSD_ACTIVITY_INTERVAL", p.stderr)


if __name__ == "__main__":
    unittest.main()
