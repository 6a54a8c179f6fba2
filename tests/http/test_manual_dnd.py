"""Manual status, invisible and do not disturb (API.md §12), on the real
binary: a manual status is kept against heartbeats, activity, streams,
login, logout and decay until a status is set again (online ends it);
status_manual is shown to the user themself and staff only; an invisible
user is, to every other non-staff reader, key by key what a user really
offline is, and their activity sends nothing; do not disturb is set, shown
in every user and status object, ends by itself within 1 s with an
`event: dnd`, is replayed after Last-Event-ID and changes no status; bad
input is 400 naming the field with nothing changed; the staff routes are
403 to others and 404 for unknown users; the CLI and `usersd copy` carry
both."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
from datetime import datetime, timedelta, timezone

from harness import BIN, DB_KIND, Server, ServerTest, db_url
from sse import Stream

STREAM = "/api/users/presence/stream/"
PW = "password-123"


def rfc3339(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def of_kind(events, kind):
    return [e for e in events if e.get("event") == kind]


def cli(*args):
    e = {k: v for k, v in os.environ.items() if not k.startswith("USERSD_")}
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=60, env=e)


class Base(ServerTest):
    # every request and heartbeat is activity that would write (§7), so a
    # manual status that were not kept would show it at once
    server_args = ("--activity-interval", "0")
    n = 0

    def user(self, prefix, staff=False):
        Base.n += 1
        name = "%s%d" % (prefix, Base.n)
        u = self.srv.create_user(self.admin, username=name, password=PW, is_staff=staff)
        return u, self.srv.login(name, PW)

    def set_status(self, uid, status, token, manual=None, own=False):
        body = {"status": status}
        if manual is not None:
            body["manual"] = manual
        path = ("/api/users/me/online-status/" if own else
                "/api/users/admin/users/%d/set-online-status/" % uid)
        return self.req("POST", path, body, token=token)

    def status_of(self, uid, token=None):
        code, _, body = self.req("GET", "/api/users/admin/users/%d/online-status/" % uid,
                                 token=token or self.admin)
        self.assertEqual(code, 200, body)
        return body

    def me(self, token):
        code, _, body = self.req("GET", "/api/users/me/", token=token)
        self.assertEqual(code, 200, body)
        return body

    def head(self):
        code, _, body = self.req("GET", "/api/users/presence/changes/?since=0&limit=1000",
                                 token=self.admin)
        self.assertEqual(code, 200)
        return body["next_since"]

    def changes_of(self, uid, since, token=None):
        code, _, body = self.req("GET", "/api/users/presence/changes/?since=%d&limit=1000" % since,
                                 token=token or self.admin)
        self.assertEqual(code, 200, body)
        return [c for c in body["changes"] if c["user_id"] == uid]

    def metric(self, name):
        code, _, text = self.req("GET", "/metrics", token=self.admin)
        self.assertEqual(code, 200)
        m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
        self.assertIsNotNone(m, name)
        return int(m.group(1))


class ManualStatus(Base):
    def test_manual_away_is_kept_until_a_status_is_set(self):
        u, tok = self.user("man")
        code, _, body = self.set_status(u["id"], "away", tok, manual=True, own=True)
        self.assertEqual(code, 200, body)
        self.assertEqual((body["online_status"], body["status_manual"]), ("away", True))
        seen = body["last_seen"]
        since = self.head()
        for _ in range(3):  # heartbeats, activity: nothing moves
            code, _, hb = self.req("POST", "/api/users/me/heartbeat/", token=tok)
            self.assertEqual(code, 200)
            self.assertEqual((hb["online_status"], hb["last_seen"]), ("away", seen))
            self.me(tok)
        tok2 = self.srv.login(u["username"], PW)  # a login
        s = Stream(self.srv.port, tok2)  # a stream of theirs
        self.assertEqual(s.read_headers(), 200)
        time.sleep(1.2)
        s.close()
        code, _, _ = self.req("POST", "/api/auth/logout/", token=tok2)  # a logout
        self.assertEqual(code, 204)
        me = self.me(tok)
        self.assertEqual((me["online_status"], me["status_manual"], me["last_seen"]),
                         ("away", True, seen))
        self.assertEqual(self.changes_of(u["id"], since), [])
        staff_view = self.req("GET", "/api/users/management/users/%d/" % u["id"],
                              token=self.admin)[2]
        self.assertTrue(staff_view["status_manual"])
        # setting a status again (online) ends it
        code, _, body = self.set_status(u["id"], "online", tok, own=True)
        self.assertEqual((code, body["online_status"], body["status_manual"]),
                         (200, "online", False))
        self.assertFalse(self.me(tok)["status_manual"])
        # and a plain away is automatic again: a heartbeat takes it online
        self.set_status(u["id"], "away", tok, own=True)
        self.req("POST", "/api/users/me/heartbeat/", token=tok)
        self.assertEqual(self.me(tok)["online_status"], "online")

    def test_manual_false_or_absent_ends_it_and_staff_may_set_it(self):
        u, tok = self.user("mst")
        code, _, body = self.set_status(u["id"], "offline", self.admin, manual=True)
        self.assertEqual((code, body["status_manual"]), (200, True))
        self.assertEqual(self.me(tok)["online_status"], "offline")
        code, _, body = self.set_status(u["id"], "away", self.admin, manual=False)
        self.assertEqual((code, body["status_manual"]), (200, False))
        self.set_status(u["id"], "away", tok, manual=True, own=True)
        code, _, body = self.set_status(u["id"], "offline", tok, own=True)  # absent
        self.assertEqual((code, body["status_manual"]), (200, False))

    def test_status_manual_only_for_self_and_staff(self):
        u, tok = self.user("vis")
        other, otok = self.user("vio")
        self.set_status(u["id"], "away", tok, manual=True, own=True)
        # others: no such key anywhere (the status object never has it)
        st = self.status_of(u["id"], otok)
        self.assertNotIn("status_manual", st)
        code, _, bulk = self.req("GET", "/api/users/admin/users/online-status/?ids=%d" % u["id"],
                                 token=otok)
        self.assertNotIn("status_manual", bulk["statuses"][0])
        code, _, page = self.req("GET", "/api/users/admin/users/online/?per_page=100",
                                 token=otok)
        for x in page["online_users"]:
            self.assertEqual("status_manual" in x, x["id"] == other["id"], x)
        # another user may not set it for them
        code, _, _ = self.set_status(u["id"], "online", otok)
        self.assertEqual(code, 403)
        self.assertEqual(self.me(tok)["status_manual"], True)
        # self (me, login) and staff (get, list) see it
        self.assertIn("status_manual", self.me(tok))
        code, _, login = self.req("POST", "/api/auth/login/",
                                  {"username": u["username"], "password": PW})
        self.assertEqual((login["user"]["online_status"], login["user"]["status_manual"]),
                         ("away", True))
        code, _, lst = self.req("GET", "/api/users/management/list/?search=%s" % u["username"],
                                token=self.admin)
        self.assertEqual([x["status_manual"] for x in lst["users"]], [True])

    def test_bad_manual_is_400_naming_it_and_changes_nothing(self):
        u, tok = self.user("bad")
        self.set_status(u["id"], "online", tok, own=True)
        before = self.me(tok)
        for status, manual in (("away", "yes"), ("away", 1), ("away", None), ("away", [True]),
                               ("offline", {}), ("online", True)):
            for own in (True, False):
                body = {"status": status, "manual": manual}
                path = ("/api/users/me/online-status/" if own else
                        "/api/users/admin/users/%d/set-online-status/" % u["id"])
                resp = self.req("POST", path, body, token=tok)
                self.assertError(resp, 400)
                self.assertIn("manual", resp[2].get("fields", {}), (status, manual))
        after = self.me(tok)
        self.assertEqual((after["online_status"], after["status_manual"]),
                         (before["online_status"], False))
        # a form body says manual=true the usual way
        code, _, body = self.req("POST", "/api/users/me/online-status/",
                                 raw="status=away&manual=true", token=tok,
                                 content_type="application/x-www-form-urlencoded")
        self.assertEqual((code, body["status_manual"]), (200, True))

    def test_metrics_count_manual_statuses(self):
        u, tok = self.user("met")
        before = self.metric("usersd_users_manual")
        self.set_status(u["id"], "away", tok, manual=True, own=True)
        self.assertEqual(self.metric("usersd_users_manual"), before + 1)
        self.set_status(u["id"], "online", tok, own=True)
        self.assertEqual(self.metric("usersd_users_manual"), before)


class ManualAgainstDecay(Base):
    server_args = ("--activity-interval", "0", "--away-after", "1", "--offline-after", "2")

    def test_decay_passes_over_a_manual_status(self):
        m, mtok = self.user("dm")
        a, atok = self.user("da")
        self.set_status(m["id"], "away", mtok, manual=True, own=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.status_of(a["id"])["online_status"] != "offline":
            time.sleep(0.2)
        self.assertEqual(self.status_of(a["id"])["online_status"], "offline")  # decay runs
        time.sleep(1.0)
        st = self.status_of(m["id"])
        self.assertEqual(st["online_status"], "away")
        self.set_status(m["id"], "online", self.admin)  # ended: decay takes it again
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.status_of(m["id"])["online_status"] != "offline":
            time.sleep(0.2)
        self.assertEqual(self.status_of(m["id"])["online_status"], "offline")


class Invisible(Base):
    def view(self, token, uid, snapshot):
        """What a non-staff reader reads of uid on every read endpoint."""
        v = {"online-status": self.status_of(uid, token)}
        code, _, bulk = self.req("GET", "/api/users/admin/users/online-status/?ids=%d" % uid,
                                 token=token)
        self.assertEqual(code, 200)
        v["bulk"] = bulk["statuses"][0]
        listed, page = False, 1
        while page < 50:
            code, _, body = self.req("GET", "/api/users/admin/users/online/?per_page=100&page=%d"
                                     % page, token=token)
            self.assertEqual(code, 200)
            listed = listed or any(x["id"] == uid for x in body["online_users"])
            if not body["pagination"]["has_next"]:
                break
            page += 1
        v["online list"] = {"listed": listed}
        v["snapshot"] = [x for x in snapshot if x["user_id"] == uid][0]
        for path in ("/api/users/management/statistics/",
                     "/api/users/management/users/%d/" % uid,
                     "/api/users/admin/users/%d/presence-history/" % uid,
                     "/api/users/management/list/"):
            v[path.replace(str(uid), "{id}")] = {"code": self.req("GET", path, token=token)[0]}
        return v

    def assertSameView(self, a, b):
        self.assertEqual(set(a), set(b))
        for where in a:
            x, y = a[where], b[where]
            self.assertEqual(set(x), set(y), where)  # the same keys
            for k in x:
                if k in ("user_id", "username", "seq"):
                    continue
                if k == "last_seen":  # a time for both (each the moment they left)
                    self.assertTrue(isinstance(x[k], str) and isinstance(y[k], str), where)
                    continue
                self.assertEqual(x[k], y[k], "%s: %s" % (where, k))

    def test_invisible_reads_exactly_as_offline_to_another_user(self):
        inv, itok = self.user("inv")
        off, otok = self.user("off")
        reader, rtok = self.user("rdr")
        since = self.head()
        code, _, _ = self.req("POST", "/api/auth/logout/", token=otok)  # really offline
        self.assertEqual(code, 204)
        stats = lambda: self.req("GET", "/api/users/management/statistics/", token=self.admin)[2]
        before = stats()
        code, _, body = self.set_status(inv["id"], "offline", itok, manual=True, own=True)
        self.assertEqual((code, body["status_manual"]), (200, True))
        went = body["last_seen"]
        after = stats()  # counted offline, like a logout
        self.assertEqual((after["online_users"], after["offline_users"]),
                         (before["online_users"] - 1, before["offline_users"] + 1))
        self.assertEqual(self.status_of(inv["id"], rtok)["last_seen"], went)

        # the reader follows both; the invisible user keeps working
        watch = Stream(self.srv.port, rtok, path=STREAM + "?ids=%d,%d" % (inv["id"], off["id"]))
        self.assertEqual(watch.read_headers(), 200)
        watch.events(1, kinds=("snapshot",), timeout=5)
        everyone = Stream(self.srv.port, rtok)
        self.assertEqual(everyone.read_headers(), 200)
        for _ in range(3):
            time.sleep(0.3)
            self.req("POST", "/api/users/me/heartbeat/", token=itok)
            self.me(itok)
            self.req("GET", "/api/users/admin/users/online/", token=itok)
        itok2 = self.srv.login(inv["username"], PW)
        own = Stream(self.srv.port, itok2)
        self.assertEqual(own.read_headers(), 200)
        time.sleep(1.5)  # the hub's refreshes of a stream of theirs
        quiet = watch.events(1, kinds=("presence", "dnd", "status_message"), timeout=1.5)
        quiet += everyone.events(1, kinds=("presence",), user_id=inv["id"], timeout=0.5)
        # (a stream opened just after may still get the change to invisible
        # itself: the hub reads the log a moment later; nothing after it)
        self.assertEqual([e for e in quiet if e.get("json", {}).get("user_id") == inv["id"]
                          and e.get("event") != "snapshot"
                          and (e["json"].get("online_status"), e["json"].get("last_seen"))
                          != ("offline", went)], [])
        me = self.me(itok)
        self.assertEqual((me["online_status"], me["status_manual"], me["last_seen"]),
                         ("offline", True, went))

        snap = Stream(self.srv.port, rtok, path=STREAM + "?ids=%d,%d" % (inv["id"], off["id"]))
        self.assertEqual(snap.read_headers(), 200)
        statuses = of_kind(snap.events(1, kinds=("snapshot",), timeout=5),
                           "snapshot")[0]["json"]["statuses"]
        snap.close()
        a = self.view(rtok, inv["id"], statuses)
        b = self.view(rtok, off["id"], statuses)
        self.assertSameView(a, b)
        self.assertEqual(a["online-status"]["online_status"], "offline")
        self.assertEqual(a["online-status"]["last_seen"], went)  # nothing moved it

        # the change log (stream and polling): the same entries for both,
        # online at login then offline, and nothing for the activity
        ci, co = self.changes_of(inv["id"], since, rtok), self.changes_of(off["id"], since, rtok)
        self.assertEqual([c["online_status"] for c in ci], ["offline"])
        self.assertEqual(len(ci), len(co))
        self.assertSameView({"changes": ci[-1]}, {"changes": co[-1]})

        # staff's statistics and history count them offline
        code, _, st = self.req("GET", "/api/users/management/statistics/", token=self.admin)
        code, _, lst = self.req("GET", "/api/users/management/list/?online_status=offline"
                                "&per_page=100&search=inv", token=self.admin)
        self.assertIn(inv["id"], [x["id"] for x in lst["users"]])
        code, _, lst = self.req("GET", "/api/users/management/list/?online_status=online"
                                "&per_page=100&search=inv", token=self.admin)
        self.assertNotIn(inv["id"], [x["id"] for x in lst["users"]])
        code, _, h = self.req("GET", "/api/users/admin/users/%d/presence-history/" % inv["id"],
                              token=self.admin)
        self.assertEqual(code, 200)
        self.assertEqual(h["intervals"][-1]["status"], "offline")
        now = datetime.now(timezone.utc)
        code, _, hh = self.req("GET", "/api/users/management/statistics/history/?bucket=1m"
                               "&from=%s&to=%s" % (rfc3339(now - timedelta(hours=1)),
                                                   rfc3339(now + timedelta(minutes=1))),
                               token=self.admin)
        self.assertEqual(code, 200, hh)
        # the points come from the counters, where they are offline
        self.assertEqual(st["online_users"] + st["away_users"] + st["offline_users"],
                         st["total_users"])
        self.assertGreaterEqual(st["offline_users"], 2)

        # the stream is alive: a real change of the other user arrives
        self.set_status(off["id"], "online", self.admin)
        got = of_kind(watch.events(1, timeout=5), "presence")
        self.assertEqual([e["json"]["user_id"] for e in got], [off["id"]])
        for s in (watch, everyone, own):
            s.close()

        # back online: a change like any other, seen by everyone
        code, _, body = self.set_status(inv["id"], "online", itok, own=True)
        self.assertEqual((code, body["online_status"], body["status_manual"]),
                         (200, "online", False))
        self.assertEqual([c["online_status"] for c in self.changes_of(inv["id"], since, rtok)],
                         ["offline", "online"])


class DoNotDisturb(Base):
    def dnd(self, token, body=None, uid=None, method="PUT", **kw):
        path = "/api/users/me/dnd/" if uid is None else \
            "/api/users/management/users/%d/dnd/" % uid
        return self.req(method, path, body, token=token, **kw)

    def test_set_shown_everywhere_and_no_status_change(self):
        u, tok = self.user("dnd")
        other, otok = self.user("dno")
        self.set_status(u["id"], "online", tok, own=True)
        since = self.head()
        s = Stream(self.srv.port, otok, path=STREAM + "?ids=%d" % u["id"])
        self.assertEqual(s.read_headers(), 200)
        s.events(1, kinds=("snapshot",), timeout=5)
        t0 = datetime.now(timezone.utc)
        code, _, body = self.dnd(tok, {"minutes": 30})
        self.assertEqual(code, 200, body)
        self.assertEqual(set(body), {"until"})
        until = parse_time(body["until"])
        self.assertLess(abs((until - t0 - timedelta(minutes=30)).total_seconds()), 5)
        ev = of_kind(s.events(1, kinds=("dnd",), timeout=5), "dnd")
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["json"], {"user_id": u["id"], "username": u["username"],
                                         "dnd": {"until": body["until"]}})
        want = {"until": body["until"]}
        self.assertEqual(self.status_of(u["id"], otok)["dnd"], want)
        code, _, bulk = self.req("GET", "/api/users/admin/users/online-status/?ids=%d" % u["id"],
                                 token=otok)
        self.assertEqual(bulk["statuses"][0]["dnd"], want)
        code, _, page = self.req("GET", "/api/users/admin/users/online/?per_page=100",
                                 token=otok)
        self.assertEqual([x["dnd"] for x in page["online_users"] if x["id"] == u["id"]], [want])
        self.assertEqual(self.me(tok)["dnd"], want)
        self.assertEqual(self.me(tok)["online_status"], "online")  # no status change
        self.assertEqual(self.changes_of(u["id"], since), [])
        snap = Stream(self.srv.port, otok, path=STREAM + "?ids=%d" % u["id"])
        self.assertEqual(snap.read_headers(), 200)
        first = of_kind(snap.events(1, kinds=("snapshot",), timeout=5), "snapshot")[0]
        snap.close()
        self.assertEqual(first["json"]["statuses"][0]["dnd"], want)
        # a presence change (stream and changes entries) carries it
        self.set_status(u["id"], "away", tok, own=True)
        pev = of_kind(s.events(1, timeout=5), "presence")
        self.assertEqual(pev[0]["json"]["dnd"], want)
        self.assertEqual([c["dnd"] for c in self.changes_of(u["id"], since)], [want])
        # until turned off, then off
        code, _, body = self.dnd(tok, {})
        self.assertEqual((code, body), (200, {"until": None}))
        self.assertEqual(of_kind(s.events(1, kinds=("dnd",), timeout=5), "dnd")[0]["json"]["dnd"],
                         {"until": None})
        code, _, _ = self.dnd(tok, method="DELETE")
        self.assertEqual(code, 204)
        self.assertEqual(of_kind(s.events(1, kinds=("dnd",), timeout=5), "dnd")[0]["json"]["dnd"],
                         None)
        self.assertIsNone(self.status_of(u["id"], otok)["dnd"])
        code, _, _ = self.dnd(tok, method="DELETE")  # nothing to turn off: no event
        self.assertEqual(code, 204)
        self.assertEqual(of_kind(s.events(1, kinds=("dnd",), timeout=1.0), "dnd"), [])
        self.assertEqual(self.me(tok)["online_status"], "away")
        s.close()

    def test_ends_by_itself_within_a_second_with_an_event_and_replays(self):
        u, tok = self.user("dne")
        s = Stream(self.srv.port, self.admin, path=STREAM + "?ids=%d" % u["id"])
        self.assertEqual(s.read_headers(), 200)
        s.events(1, kinds=("snapshot",), timeout=5)
        until = datetime.now(timezone.utc) + timedelta(seconds=2)
        code, _, body = self.dnd(tok, {"until": rfc3339(until)})
        self.assertEqual((code, body), (200, {"until": rfc3339(until)}))
        on = of_kind(s.events(1, kinds=("dnd",), timeout=5), "dnd")[0]
        off = of_kind(s.events(1, kinds=("dnd",), timeout=6), "dnd")
        ended = datetime.now(timezone.utc)
        s.close()
        self.assertEqual(len(off), 1)
        self.assertIsNone(off[0]["json"]["dnd"])
        self.assertLess((ended - until).total_seconds(), 1.5)  # within 1 s (and the read)
        self.assertGreater(int(off[0]["id"]), int(on["id"]))
        self.assertIsNone(self.me(tok)["dnd"])
        # replayed after Last-Event-ID, filtered like the rest
        r = Stream(self.srv.port, self.admin, last_event_id=int(on["id"]) - 1,
                   path=STREAM + "?ids=%d" % u["id"])
        self.assertEqual(r.read_headers(), 200)
        got = of_kind(r.events(2, kinds=("dnd",), timeout=5), "dnd")
        r.close()
        self.assertEqual([e["id"] for e in got], [on["id"], off[0]["id"]])
        # an entry replayed after its end reads ended (null), as the user does
        self.assertIsNone(got[0]["json"]["dnd"])

    def test_null_at_once_when_read_after_its_end(self):
        u, tok = self.user("dnn")
        until = datetime.now(timezone.utc) + timedelta(seconds=1)
        code, _, _ = self.dnd(tok, {"until": rfc3339(until)})
        self.assertEqual(code, 200)
        time.sleep(max(0.0, (until - datetime.now(timezone.utc)).total_seconds()) + 0.01)
        self.assertIsNone(self.status_of(u["id"])["dnd"])

    def test_bad_input_is_400_naming_the_field_and_changes_nothing(self):
        u, tok = self.user("dnb")
        past = rfc3339(datetime.now(timezone.utc) - timedelta(seconds=5))
        future = rfc3339(datetime.now(timezone.utc) + timedelta(hours=1))
        rows = [({"minutes": 0}, "minutes"), ({"minutes": 10081}, "minutes"),
                ({"minutes": -5}, "minutes"), ({"minutes": "5"}, "minutes"),
                ({"minutes": 1.5}, "minutes"), ({"minutes": None}, "minutes"),
                ({"minutes": 2 ** 40}, "minutes"),
                ({"minutes": 5, "until": future}, "minutes"),
                ({"until": past}, "until"), ({"until": "tomorrow"}, "until"),
                ({"until": "2030-01-01"}, "until"), ({"until": 5}, "until"),
                ({"until": None}, "until")]
        for own in (True, False):
            for body, field in rows:
                resp = self.dnd(tok if own else self.admin, body, uid=None if own else u["id"])
                self.assertError(resp, 400)
                self.assertIn(field, resp[2].get("fields", {}), (body, resp))
        self.assertError(self.dnd(tok, raw="[1]"), 400)
        self.assertError(self.dnd(tok, raw="{"), 400)
        self.assertError(self.dnd(tok, raw="x", content_type="text/plain"), 415)
        self.assertIsNone(self.me(tok)["dnd"])
        # the limits themselves are fine, and so is a form body
        for body in ({"minutes": 1}, {"minutes": 10080}):
            self.assertEqual(self.dnd(tok, body)[0], 200)
        code, _, body = self.dnd(tok, raw="minutes=15", content_type=
                                 "application/x-www-form-urlencoded")
        self.assertEqual(code, 200)
        code, _, body = self.req("PUT", "/api/users/me/dnd/", token=tok)  # no body at all
        self.assertEqual((code, body), (200, {"until": None}))

    def test_staff_routes(self):
        u, tok = self.user("dns")
        other, otok = self.user("dnt")
        path = "/api/users/management/users/%d/dnd/" % u["id"]
        for method in ("PUT", "DELETE"):
            self.assertError(self.req(method, path, {"minutes": 5}, token=otok), 403)
            self.assertError(self.req(method, path, {"minutes": 5}, token=tok), 403)  # even own
            self.assertError(self.req(method, path, {"minutes": 5}), 401)
            self.assertError(self.req(method, "/api/users/management/users/999999/dnd/",
                                      {"minutes": 5}, token=self.admin), 404)
            self.assertError(self.req(method, "/api/users/management/users/x/dnd/",
                                      {"minutes": 5}, token=self.admin), 404)
            self.assertError(self.req(method, "/api/users/me/dnd/", {"minutes": 5}), 401)
        self.assertIsNone(self.me(tok)["dnd"])
        self.assertEqual(self.req("PATCH", "/api/users/me/dnd/", {}, token=tok)[0], 405)
        # neither is a profile field: PATCH names it and changes nothing
        for field, value in (("dnd", {"until": None}), ("status_manual", True)):
            resp = self.req("PATCH", "/api/users/management/users/%d/" % u["id"],
                            {field: value, "first_name": "Changed"}, token=self.admin)
            self.assertError(resp, 400)
            self.assertIn(field, resp[2]["fields"])
        me = self.me(tok)
        self.assertEqual((me["dnd"], me["status_manual"], me["first_name"]), (None, False, ""))
        code, _, body = self.req("PUT", path, {"minutes": 5}, token=self.admin)
        self.assertEqual(code, 200)
        self.assertIsNotNone(self.me(tok)["dnd"])
        before = self.metric("usersd_users_dnd")
        self.assertGreaterEqual(before, 1)
        self.assertEqual(self.req("DELETE", path, token=self.admin)[0], 204)
        self.assertIsNone(self.me(tok)["dnd"])
        self.assertEqual(self.metric("usersd_users_dnd"), before - 1)


class Faces(unittest.TestCase):
    """The command line and `usersd copy` (from SQLite into the database
    under test) carry a manual status and do not disturb."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="usersd-dnd-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_cli_and_copy(self):
        src = "sqlite:" + os.path.join(self.dir, "src.db")
        ids = []
        for name in ("ann", "bob"):
            p = subprocess.run([BIN, "createuser", "--db", src, "--username", name,
                                "--password-stdin"], input=PW + "\n", capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            ids.append(json.loads(p.stdout)["id"])
        ann, bob = ids
        p = cli("status", "--db", src, str(ann), "offline", "--manual")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["status_manual"], True)
        p = cli("dnd", "--db", src, str(bob), "--on", "--minutes", "90")
        self.assertEqual(p.returncode, 0, p.stderr)
        until = json.loads(p.stdout)["until"]
        self.assertIsNotNone(until)
        for bad in (("status", "--db", src, str(ann), "online", "--manual"),
                    ("status", "--db", src, str(ann), "--manual"),
                    ("dnd", "--db", src, str(bob), "--on", "--minutes", "0"),
                    ("dnd", "--db", src, str(bob), "--on", "--minutes", "10081"),
                    ("dnd", "--db", src, str(bob), "--on", "--off"),
                    ("dnd", "--db", src, str(bob), "--minutes", "5"),
                    ("dnd", "--db", src, str(bob), "--on", "--minutes", "5", "--until",
                     "2100-01-01T00:00:00Z"),
                    ("dnd", "--db", src, str(bob), "--on", "--until", "soon")):
            p = cli(*bad)
            self.assertEqual(p.returncode, 2, (bad, p.stdout, p.stderr))
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        p = cli("dnd", "--db", src, str(bob), "--on", "--until", "2000-01-01T00:00:00Z")
        self.assertEqual(p.returncode, 1)  # in the past
        p = cli("dnd", "--db", src, "999", "--on")
        self.assertEqual(p.returncode, 1)
        p = cli("dnd", "--db", src, str(bob))
        self.assertEqual(json.loads(p.stdout), {"until": until})  # unchanged
        p = cli("status", "--db", src, str(bob))
        self.assertEqual(json.loads(p.stdout)["dnd"], {"until": until})

        dst = db_url(self.dir, "dst")
        p = cli("copy", "--from", src, "--to", dst)
        self.assertEqual(p.returncode, 0, p.stderr)
        srv = Server(db=dst, workdir=self.dir).start()
        try:
            tok = srv.login("ann", PW)  # a login keeps the manual status
            code, _, me = srv.request("GET", "/api/users/me/", token=tok)
            self.assertEqual((me["online_status"], me["status_manual"]), ("offline", True))
            code, _, st = srv.request("GET", "/api/users/admin/users/%d/online-status/" % bob,
                                      token=tok)
            self.assertEqual(st["dnd"], {"until": until})
        finally:
            srv.stop()
        p = cli("dnd", "--db", dst, str(bob), "--off")
        self.assertEqual((p.returncode, json.loads(p.stdout)), (0, None))


if __name__ == "__main__":
    unittest.main()
