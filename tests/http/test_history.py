"""Status messages and presence history (API.md §8, §9), on both drivers:
messages on every user object, set and cleared by their owner and by staff,
ended by time within a second with one stream event, replayed after
Last-Event-ID, never on the polling endpoint; a user's history as intervals
with totals that add up; users by status over time; and decay by two
processes recorded once."""
import datetime
import json
import subprocess
import time
import unittest

from harness import BIN, Server, ServerTest
from sse import Stream

MSG = "/api/users/me/status-message/"
USERS = "/api/users/management/users/"
HIST = "/api/users/admin/users/%d/presence-history/"
STATS = "/api/users/management/statistics/history/"


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def parse(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def messages(events):
    return [e for e in events if e.get("event") == "status_message"]


class Messages(ServerTest):
    def test_set_shows_everywhere_and_clears(self):
        u = self.srv.create_user(self.admin, username="msg1")
        t = self.srv.login("msg1", "password-123")
        code, _, body = self.req("PUT", MSG, {"text": "In a meeting \u2615"}, token=t)
        self.assertEqual(code, 200, body)
        self.assertEqual(body, {"text": "In a meeting \u2615", "expires_at": None})
        want = {"text": "In a meeting \u2615", "expires_at": None}
        self.assertEqual(self.req("GET", "/api/users/me/", token=t)[2]["status_message"], want)
        self.assertEqual(self.req("GET", USERS + "%d/" % u["id"],
                                  token=self.admin)[2]["status_message"], want)
        _, _, online = self.req("GET", "/api/users/admin/users/online/?per_page=100", token=t)
        mine = [x for x in online["online_users"] if x["id"] == u["id"]]
        self.assertEqual(mine[0]["status_message"], want)
        _, _, listed = self.req("GET", "/api/users/management/list/?search=msg1", token=self.admin)
        self.assertEqual(listed["users"][0]["status_message"], want)
        code, _, login = self.req("POST", "/api/auth/login/",
                                  {"username": "msg1", "password": "password-123"})
        self.assertEqual(login["user"]["status_message"], want)
        self.assertEqual(self.req("DELETE", MSG, token=t)[0], 204)
        self.assertIsNone(self.req("GET", "/api/users/me/", token=t)[2]["status_message"])
        self.assertEqual(self.req("DELETE", MSG, token=t)[0], 204)  # nothing to clear: fine

    def test_expires_at_and_form_bodies(self):
        self.srv.create_user(self.admin, username="msg2")
        t = self.srv.login("msg2", "password-123")
        end = rfc3339(time.time() + 3600)
        code, _, body = self.req("PUT", MSG, {"text": "Lunch", "expires_at": end}, token=t)
        self.assertEqual(code, 200, body)
        self.assertEqual(body["expires_at"], end)
        code, _, body = self.req("PUT", MSG, raw="text=Back+at+3&expires_in=60", token=t,
                                 content_type="application/x-www-form-urlencoded")
        self.assertEqual(code, 200, body)
        self.assertEqual(body["text"], "Back at 3")
        left = parse(body["expires_at"]) - time.time()
        self.assertTrue(50 < left <= 61, left)
        # an offset time is accepted and shown in UTC
        code, _, body = self.req("PUT", MSG, {"text": "x", "expires_at":
                                              "2999-01-01T12:00:00+02:00"}, token=t)
        self.assertEqual((code, body["expires_at"]), (200, "2999-01-01T10:00:00.000000Z"), body)

    def test_staff_set_anyones_message(self):
        u = self.srv.create_user(self.admin, username="msg3")
        path = USERS + "%d/status-message/" % u["id"]
        code, _, body = self.req("PUT", path, {"text": "On leave", "expires_in": 86400},
                                 token=self.admin)
        self.assertEqual(code, 200, body)
        _, _, got = self.req("GET", USERS + "%d/" % u["id"], token=self.admin)
        self.assertEqual(got["status_message"]["text"], "On leave")
        self.assertEqual(self.req("DELETE", path, token=self.admin)[0], 204)
        _, _, got = self.req("GET", USERS + "%d/" % u["id"], token=self.admin)
        self.assertIsNone(got["status_message"])
        self.assertError(self.req("PUT", USERS + "999999/status-message/", {"text": "x"},
                                  token=self.admin), 404)

    def test_stream_events_expiry_and_replay(self):
        u = self.srv.create_user(self.admin, username="msg4")
        t = self.srv.login("msg4", "password-123")
        s = Stream(self.srv.port, self.admin)
        self.assertEqual(s.read_headers(), 200)
        s.events(0, timeout=0.3)
        self.req("PUT", MSG, {"text": "Brb", "expires_in": 1}, token=t)
        set_at = time.monotonic()
        evs = messages(s.events(2, kinds=("status_message",), timeout=6))
        cleared_at = time.monotonic()
        self.assertEqual(len(evs), 2, evs)
        self.assertEqual(evs[0]["json"], {"user_id": u["id"], "username": "msg4",
                                          "status_message": evs[0]["json"]["status_message"]})
        self.assertEqual(evs[0]["json"]["status_message"]["text"], "Brb")
        self.assertEqual(evs[1]["json"]["status_message"], None)  # ended: one event
        # cleared within a second of its end (1 s after the set), loosely bounded
        self.assertLess(cleared_at - set_at, 1.0 + 1.0 + 1.5)
        ids = [int(e["id"]) for e in evs]
        self.assertLess(ids[0], ids[1])
        more = messages(s.events(1, kinds=("status_message",), timeout=1.5))
        self.assertEqual(more, [])  # no second end
        s.close()
        # a reconnect replays message events after Last-Event-ID
        r = Stream(self.srv.port, self.admin, last_event_id=ids[0] - 1)
        self.assertEqual(r.read_headers(), 200)
        got = messages(r.events(2, kinds=("status_message",), timeout=5))
        r.close()
        self.assertEqual([int(e["id"]) for e in got], ids)
        # the polling endpoint stays presence-only
        _, _, ch = self.req("GET", "/api/users/presence/changes/?since=%d" % (ids[0] - 1),
                            token=self.admin)
        self.assertNotIn(ids[0], [c["seq"] for c in ch["changes"]])
        self.assertNotIn(ids[1], [c["seq"] for c in ch["changes"]])


class History(ServerTest):
    server_args = ("--away-after", "1", "--offline-after", "2")

    def test_a_users_history(self):
        u = self.srv.create_user(self.admin, username="hist1")
        t = self.srv.login("hist1", "password-123")  # online
        time.sleep(0.3)
        self.req("POST", "/api/users/me/online-status/", {"status": "away"}, token=t)
        time.sleep(0.3)
        self.req("POST", "/api/users/me/heartbeat/", token=t)  # online; decay: away, offline
        time.sleep(3.0)
        code, _, h = self.req("GET", HIST % u["id"], token=t)  # the user themself
        self.assertEqual(code, 200, h)
        self.assertEqual(set(h), {"user_id", "from", "to", "intervals", "totals"})
        self.assertAlmostEqual(parse(h["to"]) - parse(h["from"]), 86400, delta=0.001)
        statuses = [i["status"] for i in h["intervals"]]
        self.assertEqual(statuses[0], "unknown")  # before the server started keeping it
        self.assertEqual([s for s in statuses if s != "unknown"][-5:],
                         ["online", "away", "online", "away", "offline"])
        for a, b in zip(h["intervals"], h["intervals"][1:]):
            self.assertEqual(a["to"], b["from"])
            self.assertNotEqual(a["status"], b["status"])
        self.assertEqual(h["intervals"][0]["from"], h["from"])
        self.assertEqual(h["intervals"][-1]["to"], h["to"])
        total = sum(h["totals"].values())
        self.assertAlmostEqual(total, 86400, delta=0.00001)
        for i in h["intervals"]:
            if i["status"] != "unknown":
                self.assertGreater(parse(i["to"]), parse(i["from"]))
        # a window of the last few seconds, clipped
        frm = rfc3339(time.time() - 3.5)
        code, _, w = self.req("GET", HIST % u["id"] + "?from=" + frm, token=self.admin)
        self.assertEqual(code, 200, w)
        self.assertEqual(w["from"], frm)
        span = parse(w["to"]) - parse(w["from"])  # from alone: until now
        self.assertAlmostEqual(sum(w["totals"].values()), span, delta=0.00001)
        self.assertLess(span, 10)
        self.assertEqual(w["intervals"][-1]["status"], "offline")
        # a window reaching into the future: unknown after now
        code, _, f = self.req("GET", HIST % u["id"] + "?from=%s&to=%s" % (
            frm, rfc3339(time.time() + 60)), token=self.admin)
        self.assertEqual(f["intervals"][-1]["status"], "unknown")
        self.assertGreater(f["totals"]["unknown"], 55)

    def test_counts_over_time(self):
        code, _, h = self.req("GET", STATS + "?bucket=1m&from=" + rfc3339(time.time() - 180),
                              token=self.admin)
        self.assertEqual(code, 200, h)
        self.assertEqual(h["bucket"], "1m")
        self.assertGreaterEqual(len(h["points"]), 3)
        last = h["points"][-1]
        self.assertIsNotNone(last["online"])  # the sweep sampled this minute
        self.assertGreaterEqual(last["online_max"], last["online"])
        self.assertIsNone(h["points"][0]["online"])  # before the server started
        self.assertTrue(h["points"][0]["at"].endswith(":00.000000Z"))
        code, _, d = self.req("GET", STATS, token=self.admin)  # default: 24 h in 5m buckets
        self.assertEqual((code, d["bucket"], len(d["points"])), (200, "5m", 289 if
                         parse(d["from"]) % 300 else 288))


class TwoProcessesRecordOnce(unittest.TestCase):
    def test_decay_by_two_processes_is_recorded_once(self):
        args = ["--away-after", "1", "--offline-after", "2"]
        a = Server(args).start()
        b = Server(args, db=a.db).start()
        try:
            ta = a.login()
            u = a.create_user(ta, username="twice")
            a.request("POST", "/api/users/admin/users/%d/set-online-status/" % u["id"],
                      {"status": "online"}, token=ta)
            time.sleep(3.5)  # both sweep: away, then offline
            code, _, h = b.request("GET", HIST % u["id"], token=b.login())
            self.assertEqual(code, 200, h)
            known = [i["status"] for i in h["intervals"] if i["status"] != "unknown"]
            self.assertEqual(known, ["offline", "online", "away", "offline"])
        finally:
            b.cleanup()
            a.cleanup()


class Cli(ServerTest):
    def run_cli(self, *args):
        return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=60)

    def test_message_and_history_commands(self):
        u = self.srv.create_user(self.admin, username="clih")
        uid = str(u["id"])
        p = self.run_cli("message", "--db", self.srv.db, uid)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "null"), p.stderr)
        p = self.run_cli("message", "--db", self.srv.db, uid, "Gone fishing", "--expires-in", "600")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["text"], "Gone fishing")
        # the server sees it at once
        _, _, got = self.req("GET", USERS + "%s/" % uid, token=self.admin)
        self.assertEqual(got["status_message"]["text"], "Gone fishing")
        p = self.run_cli("message", "--db", self.srv.db, uid, "--clear")
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "null"), p.stderr)
        p = self.run_cli("message", "--db", self.srv.db, uid, "")
        self.assertEqual(p.returncode, 1)
        self.assertIn("text", p.stderr)
        self.run_cli("status", "--db", self.srv.db, uid, "online")
        p = self.run_cli("history", "--db", self.srv.db, uid)
        self.assertEqual(p.returncode, 0, p.stderr)
        h = json.loads(p.stdout)
        self.assertEqual(h["intervals"][-1]["status"], "online")
        _, _, api = self.req("GET", HIST % u["id"] + "?from=%s&to=%s" % (h["from"], h["to"]),
                             token=self.admin)
        self.assertEqual(api["intervals"], h["intervals"])  # the CLI prints what the API returns
        for args in (("history", "--db", self.srv.db), ("history", "--db", self.srv.db, uid,
                                                        "--from", "soon"),
                     ("message", "--db", self.srv.db, uid, "x", "--clear"),
                     ("message", "--db", self.srv.db, uid, "--expires-in", "5"),
                     ("message", "--db", self.srv.db, uid, "x", "--expires-in", "0"),
                     ("serve", "--history-days", "-1"), ("serve", "--history-days", "x")):
            with self.subTest(args=args):
                p = self.run_cli(*args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)


if __name__ == "__main__":
    unittest.main()
