"""The Python client (clients/python, package `usersd`) against a running
usersd: every call, bad input raising UsersdError with the API's status and
sentence, the README's block as written, and the stream resuming across
server restarts.

Run by test_python_client.py with the python of a fresh virtual
environment where the package was pip-installed (not named test_*.py, so
that the http glob does not run it with the system python)."""
import collections.abc
import datetime
import importlib.metadata
import os
import pickle
import queue
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

from harness import ADMIN_PASSWORD, BIN, DB_KIND, Server

import usersd
from usersd import UserManagementService, UsersdError

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def readme_blocks():
    """The Backend Integration blocks of the READMEs (the client's must
    have one; the main README's once it carries it)."""
    found = []
    for rel in ("clients/python/README.md", "README.md"):
        with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
            text = f.read()
        for block in re.findall(r"```python\n(.*?)```", text, re.S):
            if "set_user_online_status(user_id=1, status='online')" in block:
                found.append((rel, block))
    return found


class Collector:
    """Reads a stream in a thread so that the test can wait with deadlines."""

    def __init__(self, stream):
        self.stream = stream
        self.q = queue.Queue()
        self.events = []
        self.error = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for ev in self.stream:
                self.q.put(ev)
        except BaseException as e:  # noqa: B036 - handed to the test
            self.error = e
        finally:
            self.done.set()

    def until(self, cond, timeout=15.0):
        """Gathers events until cond(events) holds; fails at the deadline."""
        deadline = time.monotonic() + timeout
        while not cond(self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("stream: condition not met in %.0f s; got %r (error %r)"
                                     % (timeout, self.events, self.error))
            try:
                self.events.append(self.q.get(timeout=min(left, 0.2)))
            except queue.Empty:
                if self.done.is_set() and self.q.empty():
                    raise AssertionError("stream ended early: %r, error %r"
                                         % (self.events, self.error))
        return self.events

    def presence(self):
        return [(e["data"]["user_id"], e["data"]["online_status"])
                for e in self.events if e["event"] == "presence"]


def count(kind):
    return lambda evs: len([e for e in evs if e["event"] == kind])


class Calls(unittest.TestCase):
    """Every call on one server, each with its bad input."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server().start()
        cls.url = "http://127.0.0.1:%d" % cls.srv.port
        cls.svc = UserManagementService(cls.url)
        cls.svc.login("admin", ADMIN_PASSWORD)

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    _n = [0]

    def user(self, **fields):
        """A new user and a logged-in service of theirs."""
        self._n[0] += 1
        name = "user%d" % self._n[0]
        u = self.svc.create_user(name, "password-123", **fields)
        svc = UserManagementService(self.url)
        svc.login(name, "password-123")
        return u, svc

    def refused(self, status, sentence, fn, /, *args, **kwargs):
        with self.assertRaises(UsersdError) as cm:
            fn(*args, **kwargs)
        e = cm.exception
        self.assertEqual((e.status, e.message), (status, sentence), str(e))
        return e

    def test_installed_package(self):
        """The package under test is the one pip installed in this venv."""
        self.assertTrue(os.path.abspath(usersd.__file__).startswith(os.path.abspath(sys.prefix)),
                        usersd.__file__)
        self.assertNotEqual(sys.prefix, sys.base_prefix, "not run in a virtual environment")
        self.assertGreaterEqual(sys.version_info[:2], (3, 9))
        self.assertEqual(importlib.metadata.version("usersd"), usersd.__version__)

    def test_readme_block_runs_as_written(self):
        blocks = readme_blocks()
        self.assertIn("clients/python/README.md", [rel for rel, _ in blocks])
        for rel, code in blocks:
            with self.subTest(readme=rel):
                self.svc.set_user_online_status(user_id=1, status="away")
                env = {"USERSD_URL": self.url, "USERSD_TOKEN": self.svc.token}
                old = {k: os.environ.get(k) for k in env}
                os.environ.update(env)
                try:
                    ns = {"__name__": "readme"}
                    exec(compile(code, rel, "exec"), ns)
                finally:
                    for k, v in old.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
                self.assertEqual(ns["result"]["message"], "User online status updated to online")
                self.assertEqual(ns["result"]["user_id"], 1)
                self.assertEqual(ns["status_info"]["online_status"], "online")
                self.assertIs(ns["status_info"]["is_online"], True)
                self.assertIn(1, [u["id"] for u in ns["online_users"]["online_users"]])
                self.assertEqual(ns["online_users"]["pagination"]["per_page"], 50)

    def test_seed_calls(self):
        u, _ = self.user()
        r = self.svc.set_user_online_status(user_id=u["id"], status="online")
        self.assertEqual(r["message"], "User online status updated to online")
        self.assertEqual((r["user_id"], r["online_status"]), (u["id"], "online"))
        s = self.svc.get_user_online_status(user_id=u["id"])
        self.assertEqual((s["username"], s["online_status"], s["is_online"]),
                         (u["username"], "online", True))
        self.assertEqual(s["last_seen"], r["last_seen"])
        page = self.svc.get_online_users(page=1, per_page=50)
        self.assertIn(u["id"], [x["id"] for x in page["online_users"]])
        self.assertEqual(page["online_count"], len(page["online_users"]))
        one = self.svc.get_online_users(page=1, per_page=1)
        self.assertEqual(len(one["online_users"]), 1)
        self.assertEqual(one["pagination"]["total_count"], page["online_count"])
        self.svc.set_user_online_status(user_id=u["id"], status="away")
        self.assertEqual(self.svc.get_user_online_status(user_id=u["id"])["online_status"], "away")
        self.assertNotIn(u["id"], [x["id"] for x in self.svc.get_online_users()["online_users"]])
        # bad input: nothing changed
        self.refused(400, "status must be one of: online, away, offline",
                     self.svc.set_user_online_status, user_id=u["id"], status="busy")
        self.refused(404, "user not found", self.svc.set_user_online_status,
                     user_id=999999, status="online")
        self.refused(404, "user not found", self.svc.get_user_online_status, user_id=999999)
        self.refused(400, "page must be 1 or more", self.svc.get_online_users, page=0)
        self.assertEqual(self.svc.get_user_online_status(user_id=u["id"])["online_status"], "away")

    def test_login_me_heartbeat_logout(self):
        u, svc = self.user(first_name="Ann")
        me = svc.me()
        self.assertEqual((me["id"], me["first_name"], me["online_status"]), (u["id"], "Ann", "online"))
        hb = svc.heartbeat()
        self.assertEqual((hb["user_id"], hb["online_status"], hb["is_online"]),
                         (u["id"], "online", True))
        r = svc.set_my_status("away")
        self.assertEqual((r["user_id"], r["online_status"]), (u["id"], "away"))
        self.refused(400, "status must be one of: online, away, offline", svc.set_my_status, "gone")
        old = svc.token
        self.assertIsNone(svc.logout())
        self.assertIsNone(svc.token)
        self.refused(401, "authentication credentials were not provided", svc.me)
        self.refused(401, "invalid token", UserManagementService(self.url, token=old).me)
        # logout_all ends every session
        a = UserManagementService(self.url)
        a.login(u["username"], "password-123")
        b = UserManagementService(self.url)
        b.login(u["username"].upper(), "password-123")  # usernames match case-insensitively
        a.logout_all()
        self.assertIsNone(a.token)
        self.refused(401, "invalid token", b.me)
        self.assertEqual(self.svc.get_user_online_status(u["id"])["online_status"], "offline")
        self.refused(401, "invalid username or password", a.login, u["username"], "wrong-pass")
        self.assertIsNone(a.token)
        # a stale token is not sent with a login
        stale = UserManagementService(self.url, token=old)
        self.assertEqual(stale.login(u["username"], "password-123")["user"]["id"], u["id"])
        self.assertNotEqual(stale.token, old)
        self.assertEqual(stale.me()["id"], u["id"])
        stale.close()

    def test_users_crud_and_list(self):
        u = self.svc.create_user("crud_ann", "password-123", email="ann@example.com",
                                 first_name="Ann", last_name="Lee", is_staff=False)
        self.assertEqual((u["username"], u["email"], u["online_status"], u["last_seen"]),
                         ("crud_ann", "ann@example.com", "offline", None))
        self.assertEqual(self.svc.get_user(u["id"]), u)
        e = self.refused(409, "a user with that username already exists",
                         self.svc.create_user, "CRUD_ANN", "password-123")
        self.assertIn("username", e.fields)
        e = self.refused(400, "password must be 8 to 1024 characters",
                         self.svc.create_user, "crud_bob", "short")
        self.assertEqual(list(e.fields), ["password"])
        self.refused(400, "enter a valid email address",
                     self.svc.create_user, "crud_bob", "password-123", email="nope")
        self.refused(400, "is_staff must be true or false",
                     self.svc.create_user, "crud_bob", "password-123", is_staff="yes")
        up = self.svc.update_user(u["id"], first_name="Anna", is_active=False)
        self.assertEqual((up["first_name"], up["is_active"]), ("Anna", False))
        self.refused(400, "online_status cannot be changed here; use set-online-status",
                     self.svc.update_user, u["id"], online_status="online")
        self.refused(400, "first_name must be a string", self.svc.update_user, u["id"], first_name=5)
        self.assertEqual(self.svc.get_user(u["id"])["first_name"], "Anna")
        # list with filters
        got = self.svc.list_users(search="crud_a", is_active=False)
        self.assertEqual([x["id"] for x in got["users"]], [u["id"]])
        self.assertEqual(got["pagination"]["total_count"], 1)
        got = self.svc.list_users(is_staff=True, ordering="-username", per_page=5)
        self.assertEqual([x["username"] for x in got["users"]], ["admin"])
        self.assertEqual(self.svc.list_users(search="crud_a", is_active=True)["users"], [])
        self.refused(400, "ordering must be one of id, username, date_joined, last_seen, "
                     "each optionally prefixed with -", self.svc.list_users, ordering="nope")
        self.refused(400, "online_status must be online, away or offline",
                     self.svc.list_users, online_status="busy")
        self.assertIsNone(self.svc.delete_user(u["id"]))
        self.refused(404, "user not found", self.svc.get_user, u["id"])
        self.refused(404, "user not found", self.svc.delete_user, u["id"])
        self.refused(404, "user not found", self.svc.update_user, u["id"], first_name="x")
        # staff only
        _, plain = self.user()
        self.refused(403, "you do not have permission to perform this action",
                     plain.create_user, "crud_eve", "password-123")
        self.refused(403, "you do not have permission to perform this action", plain.list_users)

    def test_bulk_statuses(self):
        a, _ = self.user()
        b, _ = self.user()
        got = self.svc.get_statuses([b["id"], 999999, a["id"], b["id"]])["statuses"]
        self.assertEqual([(s["user_id"], s["online_status"]) for s in got],
                         [(b["id"], "online"), (a["id"], "online")])
        self.assertEqual(self.svc.get_statuses(iter([a["id"]]))["statuses"][0]["user_id"], a["id"])
        self.refused(400, "ids is required: 1 to 100 comma-separated user ids",
                     self.svc.get_statuses, [])
        self.refused(400, "at most 100 ids may be asked at once",
                     self.svc.get_statuses, range(1, 102))

    def test_statistics_and_history(self):
        st = self.svc.statistics()
        self.assertEqual(st["total_users"], st["online_users"] + st["away_users"] +
                         st["offline_users"])
        self.assertEqual(st["total_users"], len(self.svc.list_users(per_page=100)["users"]))
        now = datetime.datetime.now(datetime.timezone.utc)
        hist = self.svc.statistics_history(from_=now - datetime.timedelta(hours=2), to=now,
                                           bucket="1h")
        self.assertEqual(hist["bucket"], "1h")
        self.assertIn(len(hist["points"]), (2, 3))
        self.assertEqual(self.svc.statistics_history()["bucket"], "5m")  # last 24 h
        self.refused(400, "bucket must be one of 1m, 5m, 1h, 1d",
                     self.svc.statistics_history, bucket="2m")
        self.refused(400, "from must be before to", self.svc.statistics_history,
                     from_="2024-01-02T00:00:00Z", to="2024-01-01T00:00:00Z")
        u, svc = self.user()
        naive_utc = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        ph = svc.presence_history(u["id"], from_=naive_utc - datetime.timedelta(minutes=5))
        self.assertEqual(ph["from"][:19], (naive_utc - datetime.timedelta(minutes=5)).strftime(
            "%Y-%m-%dT%H:%M:%S"))
        self.assertEqual(ph["user_id"], u["id"])
        self.assertEqual(ph["intervals"][-1]["status"], "online")
        self.assertGreater(ph["totals"]["online"], 0)
        self.assertEqual(self.svc.presence_history(u["id"])["user_id"], u["id"])
        self.refused(400, "from must be an RFC 3339 time, like 2024-01-15T09:00:00Z",
                     self.svc.presence_history, u["id"], from_="yesterday")
        self.refused(403, "you do not have permission to perform this action",
                     svc.presence_history, 1)
        self.refused(403, "you do not have permission to perform this action", svc.statistics)
        self.refused(403, "you do not have permission to perform this action",
                     svc.statistics_history)
        with self.assertRaises(TypeError):
            self.svc.presence_history(u["id"], from_=12)

    def test_sessions(self):
        u, a = self.user()
        b = UserManagementService(self.url)
        b.login(u["username"], "password-123")
        mine = a.my_sessions()["sessions"]
        self.assertEqual(len(mine), 2)
        self.assertEqual(sum(s["current"] for s in mine), 1)
        other = [s for s in mine if not s["current"]][0]
        self.assertNotIn(b.token, repr(mine))
        self.assertEqual(a.revoke_session(other["id"]), None)
        self.refused(401, "invalid token", b.me)
        self.refused(404, "session not found", a.revoke_session, other["id"])
        self.refused(404, "session not found", a.revoke_session, 999999)
        staff_view = self.svc.user_sessions(u["id"])["sessions"]
        self.assertEqual([s["current"] for s in staff_view], [False])
        self.assertIsNone(self.svc.revoke_user_sessions(u["id"]))
        self.refused(401, "invalid token", a.me)
        self.assertEqual(self.svc.user_sessions(u["id"])["sessions"], [])
        self.refused(404, "user not found", self.svc.user_sessions, 999999)
        _, c = self.user()
        self.refused(403, "you do not have permission to perform this action",
                     c.user_sessions, u["id"])
        self.refused(403, "you do not have permission to perform this action",
                     c.revoke_user_sessions, u["id"])

    def test_status_message(self):
        u, svc = self.user()
        m = svc.set_status_message("In a meeting", expires_in=3600)
        self.assertEqual(m["text"], "In a meeting")
        self.assertIsNotNone(m["expires_at"])
        self.assertEqual(svc.me()["status_message"]["text"], "In a meeting")
        end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        m = self.svc.set_status_message("Away today", expires_at=end, user_id=u["id"])
        self.assertEqual(m["expires_at"][:19], end.strftime("%Y-%m-%dT%H:%M:%S"))
        self.assertEqual(self.svc.get_user(u["id"])["status_message"]["text"], "Away today")
        self.assertIsNone(svc.clear_status_message())
        self.assertIsNone(svc.me()["status_message"])
        self.svc.set_status_message("Back soon", user_id=u["id"])
        self.assertIsNone(self.svc.clear_status_message(user_id=u["id"]))
        self.assertIsNone(self.svc.get_user(u["id"])["status_message"])
        self.refused(400, "text must be 1 to 100 characters, not 101",
                     svc.set_status_message, "x" * 101)
        self.refused(400, "give expires_at or expires_in, not both", svc.set_status_message,
                     "hi", expires_in=5, expires_at="2030-01-01T00:00:00Z")
        self.refused(403, "you do not have permission to perform this action",
                     svc.set_status_message, "hi", user_id=1)
        self.refused(404, "user not found", self.svc.set_status_message, "hi", user_id=999999)
        self.assertIsNone(svc.me()["status_message"])

    def test_changes(self):
        head = self.svc.changes()
        self.assertEqual(head["changes"], [])
        u, _ = self.user()  # the login: offline -> online
        self.svc.set_user_online_status(u["id"], "away")
        got = self.svc.changes(since=head["next_since"], limit=10)
        mine = [(c["user_id"], c["online_status"]) for c in got["changes"]
                if c["user_id"] == u["id"]]
        self.assertEqual(mine, [(u["id"], "online"), (u["id"], "away")])
        self.assertEqual(got["next_since"], got["changes"][-1]["seq"])
        self.assertEqual(len(self.svc.changes(since=head["next_since"], limit=1)["changes"]), 1)
        self.refused(400, "since must be a whole number from 0 to 9223372036854775807 "
                     "(a seq from this log)",
                     self.svc.changes, since=-1)
        self.refused(400, "limit must be 1 or more", self.svc.changes, limit=0)

    def test_dnd(self):
        u, svc = self.user()
        st = self.svc.stream(ids=[u["id"]])
        self.addCleanup(st.close)
        self.assertEqual(next(st)["event"], "snapshot")
        try:
            on = svc.set_dnd(minutes=30)
        except UsersdError as e:
            if e.status == 404 and e.message == "no such endpoint":
                self.skipTest("this usersd has no /api/users/me/dnd/ yet (API.md §12)")
            raise
        self.assertIsNotNone(on["until"])
        ev = next(st)  # on the stream too
        self.assertEqual((ev["event"], ev["data"]["user_id"], ev["data"]["dnd"]),
                         ("dnd", u["id"], {"until": on["until"]}))
        st.close()
        self.assertEqual(svc.me()["dnd"]["until"], on["until"])
        self.assertIsNotNone(self.svc.get_user_online_status(u["id"])["dnd"])
        self.assertEqual(svc.set_dnd()["until"], None)  # until turned off
        self.assertIsNone(svc.clear_dnd())
        self.assertIsNone(svc.me()["dnd"])
        end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)
        self.assertEqual(self.svc.set_dnd(until=end, user_id=u["id"])["until"][:19],
                         end.strftime("%Y-%m-%dT%H:%M:%S"))
        self.assertIsNone(self.svc.clear_dnd(user_id=u["id"]))
        self.assertIsNone(self.svc.get_user(u["id"])["dnd"])
        for bad in ({"minutes": 0}, {"minutes": 10081}, {"minutes": 5, "until": end}):
            with self.assertRaises(UsersdError) as cm:
                svc.set_dnd(**bad)
            self.assertEqual(cm.exception.status, 400, bad)
            self.assertTrue(cm.exception.message)
        self.assertEqual(self.refused(403, "you do not have permission to perform this action",
                                      svc.set_dnd, minutes=5, user_id=1).status, 403)
        self.assertIsNone(svc.me()["dnd"])

    def test_manual_status(self):
        u, svc = self.user()
        r = svc.set_my_status("away", manual=True)
        if "status_manual" not in r:
            self.skipTest("this usersd has no manual status yet (API.md §12): "
                          "the reply has no status_manual")
        self.assertEqual((r["online_status"], r["status_manual"]), ("away", True))
        svc.heartbeat()
        self.assertEqual((svc.me()["online_status"], svc.me()["status_manual"]), ("away", True))
        r = self.svc.set_user_online_status(u["id"], "offline", manual=True)
        self.assertEqual((r["online_status"], r["status_manual"]), ("offline", True))
        r = svc.set_my_status("online")
        self.assertEqual((r["online_status"], r["status_manual"]), ("online", False))
        with self.assertRaises(UsersdError) as cm:
            svc.set_my_status("away", manual="yes")
        self.assertEqual(cm.exception.status, 400)

    def test_errors(self):
        e = self.refused(401, "authentication credentials were not provided",
                         UserManagementService(self.url).me)
        self.assertEqual(str(e), "401: authentication credentials were not provided")
        self.refused(401, "invalid token", UserManagementService(self.url, token="nope").statistics)
        self.refused(404, "no such endpoint", self.svc.get_user, "abc")
        e = self.refused(400, "status must be one of: online, away, offline",
                         self.svc.set_my_status, "busy")
        self.assertEqual(e.fields, {"status": "status must be one of: online, away, offline"})
        self.assertEqual(e.args, (400, e.message, e.fields))
        again = pickle.loads(pickle.dumps(e))
        self.assertEqual((again.status, again.message, again.fields), (400, e.message, e.fields))
        # a server that is not there: status 0, the address in the sentence
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = "http://127.0.0.1:%d" % s.getsockname()[1]
        with self.assertRaises(UsersdError) as cm:
            UserManagementService(dead, timeout=2).health()
        self.assertEqual(cm.exception.status, 0)
        self.assertIn(dead, cm.exception.message)
        for bad in ("ftp://x", "127.0.0.1:8000", "http://"):
            with self.assertRaises(ValueError):
                UserManagementService(bad)
        self.assertEqual(UserManagementService(self.url + "/").health(), {"status": "ok"})

    def test_threads_share_one_service(self):
        """Each thread its own connection; a connection the server closed
        after its 30 s idle time would be replaced (here: after a restart
        of nothing, many calls in parallel)."""
        errors = []

        def work():
            try:
                for _ in range(10):
                    self.assertEqual(self.svc.me()["username"], "admin")
            except BaseException as e:  # noqa: B036
                errors.append(e)
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])

    def test_stream_basics(self):
        a, _ = self.user()
        b, _ = self.user()
        with self.svc.stream(ids=[b["id"], a["id"]], retry_initial=0.2) as st:
            self.assertIsInstance(st, collections.abc.Generator)
            first = next(st)
            self.assertEqual(first["event"], "snapshot")
            self.assertIsNone(first["id"])
            self.assertEqual([s["user_id"] for s in first["data"]["statuses"]], [b["id"], a["id"]])
            col = Collector(st)
            self.svc.set_user_online_status(a["id"], "away")
            self.svc.set_user_online_status(1, "away")  # not followed
            self.svc.set_user_online_status(b["id"], "away")
            col.until(count("presence"))
            col.until(lambda evs: len(col.presence()) == 2)
            self.assertEqual(col.presence(), [(a["id"], "away"), (b["id"], "away")])
            ids = [e["id"] for e in col.events]
            self.assertEqual(ids, sorted(ids))
            self.assertEqual(st.last_event_id, ids[-1])
            # status messages come on the stream too
            self.svc.set_status_message("lunch", user_id=a["id"])
            col.until(count("status_message"))
            msg = [e for e in col.events if e["event"] == "status_message"][0]
            self.assertEqual(msg["data"]["status_message"]["text"], "lunch")
            self.assertGreater(msg["id"], ids[-1])
            resume_from = ids[0]
            # closed from another thread while that one waits: it ends, no error
            st.close()
            self.assertTrue(col.done.wait(5), "the reading thread did not stop")
            self.assertIsNone(col.error)
            self.assertTrue(st.closed)
        # last_event_id replays what came after it (filtered the same way)
        with self.svc.stream(ids=[b["id"], a["id"]], last_event_id=resume_from) as st:
            ev = next(st)  # a filtered stream starts with its snapshot, resumed too (§7)
            self.assertEqual([x["user_id"] for x in ev["data"]["statuses"]], [b["id"], a["id"]])
            ev = next(st)
            self.assertEqual((ev["event"], ev["data"]["user_id"]), ("presence", b["id"]))
            st.close()
            with self.assertRaises(StopIteration):
                next(st)
        # refused at once, no retries: bad ids, bad token, bad position
        for kwargs, svc, status, sentence in (
                ({"ids": []}, self.svc, 400, "ids must be 1 to 1000 comma-separated user ids"),
                ({}, UserManagementService(self.url, token="nope"), 401, "invalid token"),
                ({"last_event_id": -1}, self.svc, 400,
                 "Last-Event-ID must be an event id from this stream")):
            start = time.monotonic()
            self.refused(status, sentence, next, svc.stream(**kwargs))
            self.assertLess(time.monotonic() - start, 5)

    def test_stream_gives_up_and_closes_while_waiting(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = UserManagementService("http://127.0.0.1:%d" % s.getsockname()[1],
                                         token=self.svc.token, timeout=2)
        start = time.monotonic()
        with self.assertRaises(UsersdError) as cm:
            next(dead.stream(ids=[1], retry_initial=0.05, max_retries=2))
        self.assertEqual(cm.exception.status, 0)
        self.assertLess(time.monotonic() - start, 5)
        # retrying forever, then closed during its backoff: ends promptly
        st = dead.stream(ids=[1], retry_initial=0.5, retry_max=0.5)
        col = Collector(st)
        time.sleep(0.3)
        st.close()
        self.assertTrue(col.done.wait(3), "close() did not end the retry loop")
        self.assertIsNone(col.error)


class Restarts(unittest.TestCase):
    """Streams that live through two restarts of the server: the events
    committed while it was down arrive, each once, in order; past the
    log's retention a resync comes instead."""

    def setUp(self):
        self.srv = Server().start()
        self.addCleanup(self.srv.cleanup)
        self.url = "http://127.0.0.1:%d" % self.srv.port
        self.svc = UserManagementService(self.url)
        self.svc.login("admin", ADMIN_PASSWORD)

    def restart(self, while_down):
        self.svc.me()  # a kept connection
        self.assertEqual(self.srv.stop(), 0)
        while_down()
        self.srv.args = ["--listen", "127.0.0.1:%d" % self.srv.port]
        self.srv.start()
        # the service's kept connection died with the old process: a call
        # goes through on a new one
        self.assertEqual(self.svc.me()["username"], "admin")

    def cli_status(self, user_id, status):
        subprocess.run([BIN, "status", "--db", self.srv.db, str(user_id), status], check=True,
                       capture_output=True, timeout=30)

    def prune_all(self):
        """As if the whole log had been pruned (its retention is an hour)."""
        sql = ("UPDATE presence_meta SET pruned_through = "
               "(SELECT max(seq) FROM presence_changes) WHERE id = 1")
        if DB_KIND == "sqlite":
            with sqlite3.connect(self.srv.db[len("sqlite:"):]) as db:
                db.execute(sql)
            return
        with open(os.path.join(os.environ["USERSD_PG_STATE"], "bindir")) as f:
            psql = os.path.join(f.read().strip(), "psql")
        subprocess.run([psql, "-q", "-X", "-v", "ON_ERROR_STOP=1", self.srv.db, "-c", sql],
                       check=True, capture_output=True, timeout=30)

    def test_resume_across_restarts(self):
        u1, u2, u3 = (self.svc.create_user("r%d" % i, "password-123") for i in (1, 2, 3))
        fast = {"retry_initial": 0.2, "retry_max": 1.0}
        # from a known position: a stream without one starts whenever its
        # thread connects, maybe after the first change below
        start = self.svc.changes()["next_since"]
        every = Collector(self.svc.stream(last_event_id=start, **fast))
        some = Collector(self.svc.stream(ids=[u2["id"], u3["id"]], **fast))
        some.until(count("snapshot"))
        self.svc.set_user_online_status(u1["id"], "online")
        self.svc.set_user_online_status(u2["id"], "online")
        every.until(lambda evs: len(every.presence()) == 2)
        some.until(lambda evs: len(some.presence()) == 1)

        # down: two changes by the command line; up: one through the API
        def changes_while_down():
            self.cli_status(u2["id"], "away")
            self.cli_status(u1["id"], "away")
        self.restart(changes_while_down)
        self.svc.set_user_online_status(u3["id"], "online")
        every.until(lambda evs: len(every.presence()) == 5, timeout=30)
        some.until(lambda evs: len(some.presence()) == 3, timeout=30)
        self.assertEqual(every.presence(), [(u1["id"], "online"), (u2["id"], "online"),
                                            (u2["id"], "away"), (u1["id"], "away"),
                                            (u3["id"], "online")])
        self.assertEqual(some.presence(), [(u2["id"], "online"), (u2["id"], "away"),
                                           (u3["id"], "online")])
        for col in (every, some):
            ids = [e["id"] for e in col.events if e["id"] is not None]
            self.assertEqual(ids, sorted(set(ids)), "an event repeated or out of order")
            # a filtered stream's snapshot comes first on each connection (§7)
            self.assertEqual([e["event"] for e in col.events if e["id"] is None],
                             ["snapshot", "snapshot"] if col is some else [])
            self.assertGreaterEqual(col.stream.reconnects, 1)
            self.assertEqual(col.stream.last_event_id, ids[-1])
        self.assertEqual(self.svc.changes(since=every.stream.last_event_id)["changes"], [])

        # down again, and the log "pruned" past where the streams are:
        # a resync (and, with ids, a fresh snapshot), then live events
        def pruned_while_down():
            self.cli_status(u3["id"], "away")
            self.prune_all()
        self.restart(pruned_while_down)
        head = self.svc.changes()["next_since"]
        # what came before the resync is in the state the client reloads
        # (a filtered stream's new snapshot); what comes after is live
        every.until(count("resync"), timeout=30)
        some.until(lambda evs: count("snapshot")(evs) == 4,  # the resumed one, the resync's
                   timeout=30)
        self.svc.set_user_online_status(u1["id"], "online")
        self.svc.set_user_online_status(u2["id"], "online")
        every.until(lambda evs: len(every.presence()) == 7, timeout=30)
        some.until(lambda evs: len(some.presence()) == 4, timeout=30)
        tail = every.events[every.events.index(
            [e for e in every.events if e["event"] == "resync"][0]):]
        self.assertEqual([e["event"] for e in tail], ["resync", "presence", "presence"])
        self.assertGreaterEqual(tail[0]["data"]["next_since"], head)
        self.assertEqual([(e["data"]["user_id"], e["data"]["online_status"]) for e in tail[1:]],
                         [(u1["id"], "online"), (u2["id"], "online")])
        tail = some.events[-3:]
        self.assertEqual([e["event"] for e in some.events[-4:]],
                         ["snapshot", "resync", "snapshot", "presence"])
        self.assertEqual([(s["user_id"], s["online_status"])
                          for s in tail[1]["data"]["statuses"]],
                         [(u2["id"], "away"), (u3["id"], "away")])  # u3's change was pruned
        self.assertEqual(tail[2]["data"]["user_id"], u2["id"])
        for col in (every, some):
            col.stream.close()
            self.assertTrue(col.done.wait(5))
            self.assertIsNone(col.error)


if __name__ == "__main__":
    unittest.main()
