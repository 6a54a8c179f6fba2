"""Every endpoint of API.md §3 on its happy path, and the seed's examples
replayed: the same requests, the same response shapes."""
import re
import time
import unittest

from harness import ServerTest

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
USER_KEYS = {"id", "username", "email", "first_name", "last_name", "is_active", "is_staff",
             "date_joined", "online_status", "last_seen", "is_online", "status_message",
             "status_manual", "dnd"}
PAGINATION_KEYS = {"page", "per_page", "total_pages", "total_count", "has_next", "has_previous"}


class Api(ServerTest):
    def setUp(self):
        self.n = getattr(self, "n", 0)

    def fresh_user(self, **fields):
        Api.counter = getattr(Api, "counter", 0) + 1
        fields.setdefault("username", "user%d_%d" % (Api.counter, int(time.time() * 1000) % 100000))
        return self.srv.create_user(self.admin, **fields)

    def assertUser(self, u, with_email=True):
        # status_manual, like email, only to staff and to the user themself
        keys = USER_KEYS if with_email else USER_KEYS - {"email", "status_manual"}
        self.assertEqual(set(u), keys)
        self.assertTrue(TIME_RE.match(u["date_joined"]))
        self.assertIn(u["online_status"], ("online", "away", "offline"))
        self.assertEqual(u["is_online"], u["online_status"] == "online")
        if u["last_seen"] is not None:
            self.assertTrue(TIME_RE.match(u["last_seen"]), u["last_seen"])

    def test_login_returns_token_and_user_and_goes_online(self):
        u = self.fresh_user(email="li@example.com")
        status, headers, body = self.req("POST", "/api/auth/login/",
                                         {"username": u["username"].upper(),
                                          "password": "password-123"})
        self.assertEqual(status, 200, body)
        self.assertEqual(set(body), {"token", "user"})
        self.assertRegex(body["token"], r"^[0-9a-f]{64}$")
        self.assertUser(body["user"])
        self.assertEqual(body["user"]["email"], "li@example.com")  # themself
        self.assertEqual(body["user"]["online_status"], "online")
        self.assertIsNotNone(body["user"]["last_seen"])
        self.assertTrue(headers["content-type"] == "application/json; charset=utf-8")
        cookie = headers["set-cookie"]
        self.assertIn("usersd_session=" + body["token"], cookie)
        for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
            self.assertIn(attr, cookie)
        self.assertNotIn("Secure", cookie)

    def test_logout_revokes_only_that_token(self):
        u = self.fresh_user()
        t1 = self.srv.login(u["username"], "password-123")
        t2 = self.srv.login(u["username"], "password-123")
        self.assertNotEqual(t1, t2)
        status, headers, body = self.req("POST", "/api/auth/logout/", token=t1)
        self.assertEqual(status, 204)
        self.assertIsNone(body)
        self.assertIn("Max-Age=0", headers["set-cookie"])
        self.assertError(self.req("GET", "/api/users/me/", token=t1), 401)
        status, _, me = self.req("GET", "/api/users/me/", token=t2)
        self.assertEqual(status, 200)
        # the other session is in use: still online (API.md §7)
        self.assertEqual(me["online_status"], "online")
        # the last session out: offline
        self.assertEqual(self.req("POST", "/api/auth/logout/", token=t2)[0], 204)
        _, _, st = self.req("GET", "/api/users/admin/users/%d/online-status/" % u["id"],
                            token=self.admin)
        self.assertEqual(st["online_status"], "offline")

    def test_seed_set_user_online_status(self):
        u = self.fresh_user()
        path = "/api/users/admin/users/%d/set-online-status/" % u["id"]
        status, _, body = self.req("POST", path, {"status": "online"}, token=self.admin)
        self.assertEqual(status, 200, body)
        self.assertEqual(set(body), {"message", "user_id", "online_status", "last_seen",
                                     "status_manual"})
        self.assertEqual(body["message"], "User online status updated to online")
        self.assertEqual(body["user_id"], u["id"])
        self.assertEqual(body["online_status"], "online")
        self.assertTrue(TIME_RE.match(body["last_seen"]))
        online_seen = body["last_seen"]
        # away keeps last_seen; offline moves it
        status, _, body = self.req("POST", path, {"status": "away"}, token=self.admin)
        self.assertEqual((status, body["online_status"], body["last_seen"]),
                         (200, "away", online_seen))
        self.assertEqual(body["message"], "User online status updated to away")
        time.sleep(0.01)
        status, _, body = self.req("POST", path, {"status": "offline"}, token=self.admin)
        self.assertEqual(body["online_status"], "offline")
        self.assertGreater(body["last_seen"], online_seen)

    def test_user_may_set_own_status(self):
        u = self.fresh_user()
        tok = self.srv.login(u["username"], "password-123")
        path = "/api/users/admin/users/%d/set-online-status" % u["id"]  # no trailing slash
        status, _, body = self.req("POST", path, {"status": "away"}, token=tok)
        self.assertEqual((status, body["online_status"]), (200, "away"))

    def test_seed_get_user_online_status(self):
        u = self.fresh_user()
        status, _, body = self.req("GET", "/api/users/admin/users/%d/online-status/" % u["id"],
                                   token=self.admin)
        self.assertEqual(status, 200)
        self.assertEqual(body, {"user_id": u["id"], "username": u["username"],
                                "online_status": "offline", "last_seen": None,
                                "is_online": False, "dnd": None})

    def test_seed_online_users_list(self):
        a, b, c = self.fresh_user(), self.fresh_user(), self.fresh_user()
        for u in (a, b, c):
            self.req("POST", "/api/users/admin/users/%d/set-online-status/" % u["id"],
                     {"status": "online"}, token=self.admin)
            time.sleep(0.002)
        status, _, body = self.req("GET", "/api/users/admin/users/online/?page=1&per_page=2",
                                   token=self.admin)
        self.assertEqual(status, 200)
        self.assertEqual(set(body), {"online_users", "online_count", "pagination"})
        self.assertEqual(set(body["pagination"]), PAGINATION_KEYS)
        self.assertGreaterEqual(body["online_count"], 3)
        p = body["pagination"]
        self.assertEqual((p["page"], p["per_page"], p["total_count"]),
                         (1, 2, body["online_count"]))
        self.assertEqual(p["total_pages"], -(-body["online_count"] // 2))
        self.assertTrue(p["has_next"])
        self.assertFalse(p["has_previous"])
        users = body["online_users"]
        self.assertEqual([u["id"] for u in users], [c["id"], b["id"]])  # newest first
        for u in users:
            self.assertUser(u)
            self.assertTrue(u["is_online"])
        # page past the end: empty, has_previous true
        status, _, body = self.req("GET", "/api/users/admin/users/online/?page=999",
                                   token=self.admin)
        self.assertEqual((status, body["online_users"]), (200, []))
        self.assertTrue(body["pagination"]["has_previous"])
        self.assertFalse(body["pagination"]["has_next"])

    def test_email_hidden_from_other_non_staff(self):
        a = self.fresh_user(email="a%d@example.com" % time.time_ns())
        b = self.fresh_user()
        tok = self.srv.login(b["username"], "password-123")  # b is online now
        self.req("POST", "/api/users/admin/users/%d/set-online-status/" % a["id"],
                 {"status": "online"}, token=self.admin)
        status, _, body = self.req("GET", "/api/users/admin/users/online/?per_page=100",
                                   token=tok)
        seen = {u["id"]: u for u in body["online_users"]}
        self.assertNotIn("email", seen[a["id"]])
        self.assertUser(seen[a["id"]], with_email=False)
        self.assertIn("email", seen[b["id"]])  # themself
        status, _, body = self.req("GET", "/api/users/admin/users/online/?per_page=100",
                                   token=self.admin)
        self.assertIn("email", {u["id"]: u for u in body["online_users"]}[a["id"]])

    def test_online_list_never_stale_nor_leaks_emails(self):
        # the server reuses a rendered page while the database is unchanged:
        # any change must show at once, and one viewer's page never another's
        a = self.fresh_user(email="c%d@example.com" % time.time_ns())
        b = self.fresh_user()
        tok = self.srv.login(b["username"], "password-123")
        path = "/api/users/admin/users/online/?per_page=100"
        self.req("POST", "/api/users/admin/users/%d/set-online-status/" % a["id"],
                 {"status": "online"}, token=self.admin)
        for _ in range(3):  # the same page, again and again
            _, _, staff_view = self.req("GET", path, token=self.admin)
            self.assertIn(a["email"], [u.get("email") for u in staff_view["online_users"]])
            _, _, user_view = self.req("GET", path, token=tok)
            seen = {u["id"]: u for u in user_view["online_users"]}
            self.assertNotIn("email", seen[a["id"]])
            self.assertIn("email", seen[b["id"]])
        self.req("POST", "/api/users/admin/users/%d/set-online-status/" % a["id"],
                 {"status": "offline"}, token=self.admin)
        for who in (self.admin, tok):
            _, _, view = self.req("GET", path, token=who)
            self.assertNotIn(a["id"], [u["id"] for u in view["online_users"]])

    def test_management_list_pages_never_stale(self):
        # list pages are reused while the database is unchanged (several per
        # thread): each query keeps its own page, and any change shows at once
        tag = "lc%d" % (time.time_ns() % 10**9)
        a = self.fresh_user(username=tag + "_a")
        b = self.fresh_user(username=tag + "_b")
        queries = ["search=%s_a" % tag, "search=%s_b" % tag, "search=%s" % tag,
                   "search=%s&ordering=-id" % tag, "search=%s&per_page=1&page=2" % tag,
                   "search=%s&online_status=online" % tag]

        def view():
            out = {}
            for q in queries:
                status, _, body = self.req("GET", "/api/users/management/list/?" + q,
                                           token=self.admin)
                self.assertEqual(status, 200, body)
                out[q] = ([u["id"] for u in body["users"]],
                          [u["online_status"] for u in body["users"]],
                          body["pagination"]["total_count"])
            return out

        want = {queries[0]: ([a["id"]], ["offline"], 1),
                queries[1]: ([b["id"]], ["offline"], 1),
                queries[2]: ([a["id"], b["id"]], ["offline"] * 2, 2),
                queries[3]: ([b["id"], a["id"]], ["offline"] * 2, 2),
                queries[4]: ([b["id"]], ["offline"], 2),
                queries[5]: ([], [], 0)}
        for _ in range(3):  # the same pages again: kept, and each its own
            self.assertEqual(view(), want)
        self.req("POST", "/api/users/admin/users/%d/set-online-status/" % b["id"],
                 {"status": "online"}, token=self.admin)
        got = view()
        self.assertEqual(got[queries[1]], ([b["id"]], ["online"], 1))
        self.assertEqual(got[queries[5]], ([b["id"]], ["online"], 1))
        self.req("PATCH", "/api/users/management/users/%d/" % a["id"],
                 {"username": tag + "_z"}, token=self.admin)
        got = view()
        self.assertEqual(got[queries[0]], ([], [], 0))
        self.assertEqual(got[queries[2]][0], [a["id"], b["id"]])
        # an over-long search is refused, cached pages or not
        status, _, _ = self.req("GET", "/api/users/management/list/?search=" + "x" * 400,
                                token=self.admin)
        self.assertEqual(status, 400)

    def test_bulk_statuses_in_order_asked(self):
        a, b = self.fresh_user(), self.fresh_user()
        q = "ids=%d,999999,%d,%d" % (b["id"], a["id"], b["id"])
        status, _, body = self.req("GET", "/api/users/admin/users/online-status/?" + q,
                                   token=self.admin)
        self.assertEqual(status, 200)
        self.assertEqual([s["user_id"] for s in body["statuses"]], [b["id"], a["id"]])
        self.assertEqual(set(body["statuses"][0]),
                         {"user_id", "username", "online_status", "last_seen", "is_online", "dnd"})
        ids = ",".join(str(i) for i in range(1, 101))
        status, _, body = self.req("GET", "/api/users/admin/users/online-status/?ids=" + ids,
                                   token=self.admin)
        self.assertEqual(status, 200)

    def test_management_list_filters(self):
        tag = "flt%d" % (time.time_ns() % 10**9)
        a = self.fresh_user(username=tag + "_a", first_name="Zed", email=tag + "@example.com")
        b = self.fresh_user(username=tag + "_b", is_staff=True)
        c = self.fresh_user(username=tag + "_c", is_active=False, last_name="O'Brien")
        self.req("POST", "/api/users/admin/users/%d/set-online-status/" % b["id"],
                 {"status": "online"}, token=self.admin)

        def ids(query):
            status, _, body = self.req("GET", "/api/users/management/list/?" + query,
                                       token=self.admin)
            self.assertEqual(status, 200, body)
            self.assertEqual(set(body), {"users", "pagination"})
            for u in body["users"]:
                self.assertUser(u)
            return [u["id"] for u in body["users"]]

        self.assertEqual(ids("search=" + tag.upper()), [a["id"], b["id"], c["id"]])
        self.assertEqual(ids("search=%s&online_status=online" % tag), [b["id"]])
        self.assertEqual(ids("search=%s&online_status=" % tag), [a["id"], b["id"], c["id"]])
        self.assertEqual(ids("search=%s&is_staff=true" % tag), [b["id"]])
        self.assertEqual(ids("search=%s&is_staff=0&is_active=1" % tag), [a["id"]])
        self.assertEqual(ids("search=%s&is_active=false" % tag), [c["id"]])
        self.assertEqual(ids("search=zed&search_unused=1"), [a["id"]])
        self.assertEqual(ids("search=o%27brien"), [c["id"]])
        self.assertEqual(ids("search=%s&ordering=-id" % tag), [c["id"], b["id"], a["id"]])
        self.assertEqual(ids("search=%s&ordering=-username" % tag), [c["id"], b["id"], a["id"]])
        self.assertEqual(ids("search=%s&ordering=date_joined" % tag), [a["id"], b["id"], c["id"]])
        # last_seen: the never-seen users last in both directions, ties by id
        self.assertEqual(ids("search=%s&ordering=last_seen" % tag), [b["id"], a["id"], c["id"]])
        self.assertEqual(ids("search=%s&ordering=-last_seen" % tag), [b["id"], a["id"], c["id"]])
        self.assertEqual(ids("search=%s&per_page=1&page=2" % tag), [b["id"]])
        # injection-like searches are plain text
        for s in ("%27%20OR%201%3D1--", "%25", "_", "%5C", "%22%3B%20DROP%20TABLE%20users%3B"):
            self.assertEqual(ids("search=" + s + tag), [])

    def test_statistics(self):
        status, _, body = self.req("GET", "/api/users/management/statistics/", token=self.admin)
        self.assertEqual(status, 200)
        self.assertEqual(set(body), {"total_users", "active_users", "inactive_users",
                                     "staff_users", "online_users", "away_users",
                                     "offline_users", "online_ratio"})
        self.assertEqual(body["total_users"], body["active_users"] + body["inactive_users"])
        self.assertEqual(body["total_users"],
                         body["online_users"] + body["away_users"] + body["offline_users"])
        self.assertAlmostEqual(body["online_ratio"],
                               round(body["online_users"] * 100 / body["total_users"], 2))
        self.assertEqual(body["online_ratio"], round(body["online_ratio"], 2))

    def test_user_crud(self):
        tag = "crud%d" % (time.time_ns() % 10**9)
        status, _, u = self.req("POST", "/api/users/management/users/",
                                {"username": tag, "password": "password-123",
                                 "email": tag + "@Example.com", "first_name": "Ann",
                                 "last_name": "Lee", "is_staff": False, "is_active": True},
                                token=self.admin)
        self.assertEqual(status, 201, u)
        self.assertUser(u)
        self.assertEqual((u["username"], u["email"], u["online_status"], u["last_seen"]),
                         (tag, tag + "@Example.com", "offline", None))
        path = "/api/users/management/users/%d/" % u["id"]
        status, _, got = self.req("GET", path, token=self.admin)
        self.assertEqual((status, got), (200, u))
        status, _, got = self.req("PATCH", path, {"first_name": "Anne", "password": "new-pass-456"},
                                  token=self.admin)
        self.assertEqual((status, got["first_name"], got["last_name"]), (200, "Anne", "Lee"))
        self.srv.login(tag, "new-pass-456")
        status, _, body = self.req("DELETE", path, token=self.admin)
        self.assertEqual((status, body), (204, None))
        self.assertError(self.req("GET", path, token=self.admin), 404)
        self.assertError(self.req("GET", "/api/users/admin/users/%d/online-status/" % u["id"],
                                  token=self.admin), 404)

    def test_delete_ends_sessions(self):
        u = self.fresh_user()
        tok = self.srv.login(u["username"], "password-123")
        self.req("DELETE", "/api/users/management/users/%d" % u["id"], token=self.admin)
        self.assertError(self.req("GET", "/api/users/me/", token=tok), 401)

    def test_deactivation_ends_sessions_and_logins(self):
        u = self.fresh_user()
        tok = self.srv.login(u["username"], "password-123")
        self.req("PATCH", "/api/users/management/users/%d/" % u["id"], {"is_active": False},
                 token=self.admin)
        self.assertError(self.req("GET", "/api/users/me/", token=tok), 401)
        self.assertError(self.req("POST", "/api/auth/login/",
                                  {"username": u["username"], "password": "password-123"}), 401)

    def test_me_heartbeat_and_own_status(self):
        u = self.fresh_user(email="me%d@example.com" % time.time_ns())
        tok = self.srv.login(u["username"], "password-123")
        status, _, me = self.req("GET", "/api/users/me", token=tok)
        self.assertEqual(status, 200)
        self.assertUser(me)
        self.assertEqual(me["id"], u["id"])
        status, _, body = self.req("POST", "/api/users/me/online-status/", {"status": "away"},
                                   token=tok)
        self.assertEqual((status, body["online_status"], body["message"]),
                         (200, "away", "User online status updated to away"))
        status, _, hb = self.req("POST", "/api/users/me/heartbeat/", token=tok)
        self.assertEqual(status, 200)
        self.assertEqual(set(hb), {"user_id", "online_status", "last_seen", "is_online"})
        self.assertEqual((hb["user_id"], hb["online_status"], hb["is_online"]),
                         (u["id"], "online", True))
        self.assertGreaterEqual(hb["last_seen"], body["last_seen"])
        # Bearer works the same as Token
        status, _, me = self.req("GET", "/api/users/me/",
                                 headers={"Authorization": "Bearer " + tok})
        self.assertEqual(status, 200)

    def test_activity_updates_last_seen(self):
        u = self.fresh_user()
        tok = self.srv.login(u["username"], "password-123")
        self.req("POST", "/api/users/me/online-status/", {"status": "offline"}, token=tok)
        # last_seen was just set, so a read within the minute writes nothing
        _, _, before = self.req("GET", "/api/users/me/", token=tok)
        _, _, after = self.req("GET", "/api/users/me/", token=tok)
        self.assertEqual(before["last_seen"], after["last_seen"])
        self.assertEqual(after["online_status"], "offline")

    def test_health(self):
        for path in ("/healthz", "/healthz/", "/readyz", "/readyz/"):
            status, _, body = self.req("GET", path)
            self.assertEqual((status, body), (200, {"status": "ok"}))

    def test_head_and_trailing_slash(self):
        c = self.srv.conn()
        c.request("HEAD", "/api/users/me/", headers={"Authorization": "Token " + self.admin})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.read(), b"")
        c.close()
        for path in ("/api/users/management/statistics", "/api/users/management/statistics/"):
            self.assertEqual(self.req("GET", path, token=self.admin)[0], 200)

    def test_form_bodies(self):
        tag = "form%d" % (time.time_ns() % 10**9)
        status, _, u = self.req("POST", "/api/users/management/users/",
                                raw="username=%s&password=pass+word+1&is_staff=true&first_name=J%%C3%%BCrgen" % tag,
                                content_type="application/x-www-form-urlencoded",
                                token=self.admin)
        self.assertEqual(status, 201, u)
        self.assertEqual((u["is_staff"], u["first_name"]), (True, "J\u00fcrgen"))
        self.srv.login(tag, "pass word 1")


if __name__ == "__main__":
    unittest.main()
