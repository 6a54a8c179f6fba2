"""Bad input, one table row each: every endpoint gets malformed JSON, wrong
types, missing fields, unknown and non-numeric ids, missing/invalid/revoked
credentials, a non-staff caller, bad pages, an oversize body and a wrong
content type. Each gets its documented 4xx, a JSON error, and changes
nothing (the whole user table is compared before and after)."""
import json
import unittest

import rawhttp
from harness import ServerTest
from sse import Stream

USERS = "/api/users/management/users/"
CHANGES = "/api/users/presence/changes/"
STREAM = "/api/users/presence/stream/"
E_ACUTE = "%C3%A9"  # é, one character, two bytes
SET = "/api/users/admin/users/%s/set-online-status/"
GET = "/api/users/admin/users/%s/online-status/"
J = "application/json"
FORM = "application/x-www-form-urlencoded"
DEEP = "[" * 40 + "]" * 40


def nested(depth):
    v = {}
    for _ in range(depth - 1):
        v = {"a": v}
    return v


class BadInput(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        srv = cls.srv
        cls.user = srv.create_user(cls.admin, username="plain", email="plain@example.com")
        cls.other = srv.create_user(cls.admin, username="other", email="other@example.com")
        cls.user_token = srv.login("plain", "password-123")
        revoked = srv.login("other", "password-123")
        srv.request("POST", "/api/auth/logout/", token=revoked)
        cls.other_token = srv.login("other", "password-123")
        _, _, mine = srv.request("GET", "/api/users/me/sessions/", token=cls.other_token)
        cls.other_session = mine["sessions"][0]["id"]
        cls.tokens = {
            "admin": {"Authorization": "Token " + cls.admin},
            "user": {"Authorization": "Token " + cls.user_token},
            "none": {},
            "bad": {"Authorization": "Token " + "0" * 64},
            "revoked": {"Authorization": "Token " + revoked},
            "garbage": {"Authorization": "Token not-a-token"},
            "empty": {"Authorization": "Token "},
            "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        }

    def snapshot(self):
        status, _, body = self.req("GET", "/api/users/management/list/?per_page=100",
                                   token=self.admin)
        self.assertEqual(status, 200)
        for u in body["users"]:
            if u["username"] == "admin":
                u.pop("last_seen")  # the caller's own activity time
        _, _, stats = self.req("GET", "/api/users/management/statistics/", token=self.admin)
        sessions = {}
        for u in body["users"]:
            _, _, ss = self.req("GET", USERS + "%d/sessions/" % u["id"], token=self.admin)
            sessions[u["id"]] = sorted(x["id"] for x in ss["sessions"])
        return body["users"], stats, sessions

    def run_table(self, rows):
        before = self.snapshot()
        for row in rows:
            method, path, who, payload, ctype, want = row[:6]
            part = row[6] if len(row) > 6 else None
            with self.subTest(method=method, path=path, who=who, payload=str(payload)[:60]):
                headers = dict(self.tokens[who])
                raw = json.dumps(payload) if isinstance(payload, (dict, list)) else payload
                resp = self.req(method, path, raw=raw, headers=headers, content_type=ctype)
                self.assertError(resp, want, part)
        self.assertEqual(self.snapshot(), before, "a rejected request changed something")

    def test_authentication(self):
        uid = self.user["id"]
        paths = [("POST", "/api/auth/logout/"), ("POST", SET % uid), ("GET", GET % uid),
                 ("GET", "/api/users/admin/users/online/"),
                 ("GET", "/api/users/admin/users/online-status/?ids=1"),
                 ("GET", "/api/users/management/list/"),
                 ("GET", "/api/users/management/statistics/"), ("POST", USERS),
                 ("GET", USERS + "%d/" % uid), ("PATCH", USERS + "%d/" % uid),
                 ("DELETE", USERS + "%d/" % uid), ("GET", "/api/users/me/"),
                 ("POST", "/api/users/me/heartbeat/"), ("POST", "/api/users/me/online-status/"),
                 ("POST", "/api/auth/logout-all/"), ("GET", "/api/users/me/sessions/"),
                 ("DELETE", "/api/users/me/sessions/1/"), ("GET", USERS + "%d/sessions/" % uid),
                 ("DELETE", USERS + "%d/sessions/" % uid), ("PUT", "/api/users/me/status-message/"),
                 ("DELETE", "/api/users/me/status-message/"),
                 ("PUT", USERS + "%d/status-message/" % uid),
                 ("DELETE", USERS + "%d/status-message/" % uid),
                 ("GET", "/api/users/admin/users/%d/presence-history/" % uid),
                 ("GET", "/api/users/management/statistics/history/")]
        rows = []
        for method, path in paths:
            for who in ("none", "bad", "revoked", "garbage", "empty", "basic"):
                rows.append((method, path, who, None, None, 401))
        self.run_table(rows)

    def test_header_token_beats_cookie(self):
        headers = {"Authorization": "Token " + "1" * 64, "Cookie": "usersd_session=" + self.admin}
        self.assertError(self.req("GET", "/api/users/me/", headers=headers), 401)

    def test_permissions(self):
        oid = self.other["id"]
        rows = [
            ("POST", SET % oid, "user", {"status": "online"}, J, 403),
            ("GET", "/api/users/management/list/", "user", None, None, 403),
            ("GET", "/api/users/management/statistics/", "user", None, None, 403),
            ("POST", USERS, "user", {"username": "x1", "password": "password-1"}, J, 403),
            ("GET", USERS + "%d/" % oid, "user", None, None, 403),
            ("PATCH", USERS + "%d/" % oid, "user", {"is_staff": True}, J, 403),
            ("PATCH", USERS + "%d/" % self.user["id"], "user", {"is_staff": True}, J, 403),
            ("DELETE", USERS + "%d/" % oid, "user", None, None, 403),
            ("GET", USERS + "%d/sessions/" % oid, "user", None, None, 403),
            ("DELETE", USERS + "%d/sessions/" % oid, "user", None, None, 403),
            ("GET", USERS + "%d/sessions/" % self.user["id"], "user", None, None, 403),
            ("DELETE", USERS + "%d/sessions/" % 999999, "user", None, None, 403),
            # 403 wins over invalid input and over an unknown user
            ("POST", SET % 999999, "user", {"status": "bogus"}, J, 403),
        ]
        self.run_table(rows)

    def test_sessions(self):
        MS = "/api/users/me/sessions/"
        rows = [
            # another user's session, an unknown one, a non-numeric id: 404
            ("DELETE", MS + "%d/" % self.other_session, "user", None, None, 404),
            ("DELETE", MS + "999999/", "user", None, None, 404),
            ("DELETE", MS + "0/", "user", None, None, 404),
            ("DELETE", MS + "abc/", "user", None, None, 404),
            ("DELETE", MS + "-1/", "user", None, None, 404),
            ("DELETE", MS + "99999999999999999999/", "user", None, None, 404),
            ("GET", MS + "%d/" % self.other_session, "user", None, None, 405),
            ("POST", MS, "user", {}, J, 405),
            ("DELETE", MS, "user", None, None, 405),
            ("GET", "/api/auth/logout-all/", "user", None, None, 405),
            ("GET", USERS + "999999/sessions/", "admin", None, None, 404),
            ("DELETE", USERS + "999999/sessions/", "admin", None, None, 404),
            ("GET", USERS + "x1/sessions/", "admin", None, None, 404),
            ("DELETE", USERS + "x1/sessions/", "admin", None, None, 404),
            ("PATCH", USERS + "%d/sessions/" % self.user["id"], "admin", {}, J, 405),
            ("POST", USERS + "%d/sessions/" % self.user["id"], "admin", {}, J, 405),
        ]
        self.run_table(rows)
        # the foreign session still works
        self.assertEqual(self.req("GET", "/api/users/me/", token=self.other_token)[0], 200)

    def test_status_messages(self):
        M = "/api/users/me/status-message/"
        OM = USERS + "%d/status-message/" % self.other["id"]
        rows = [
            ("PUT", M, "user", {}, J, 400, "text"),
            ("PUT", M, "user", {"text": ""}, J, 400, "text"),
            ("PUT", M, "user", {"text": "x" * 101}, J, 400, "text"),
            ("PUT", M, "user", {"text": "\u00e9" * 101}, J, 400, "text"),
            ("PUT", M, "user", {"text": 5}, J, 400, "text"),
            ("PUT", M, "user", {"text": None}, J, 400, "text"),
            ("PUT", M, "user", {"text": ["a"]}, J, 400, "text"),
            ("PUT", M, "user", {"text": "bell \u0007"}, J, 400, "text"),
            ("PUT", M, "user", {"text": "line\nbreak"}, J, 400, "text"),
            ("PUT", M, "user", '{"text": "nul\\u0000"}', J, 400),
            ("PUT", M, "user", {"text": "x", "expires_at": "tomorrow"}, J, 400, "expires_at"),
            ("PUT", M, "user", {"text": "x", "expires_at": "2001-01-01T00:00:00.000000Z"}, J, 400,
             "expires_at"),
            ("PUT", M, "user", {"text": "x", "expires_at": 1700000000}, J, 400, "expires_at"),
            ("PUT", M, "user", {"text": "x", "expires_at": "2999-01-01T00:00:00.000000Z",
                                "expires_in": 60}, J, 400, "expires_at"),
            ("PUT", M, "user", {"text": "x", "expires_in": 0}, J, 400, "expires_in"),
            ("PUT", M, "user", {"text": "x", "expires_in": -5}, J, 400, "expires_in"),
            ("PUT", M, "user", {"text": "x", "expires_in": 2147483648}, J, 400, "expires_in"),
            ("PUT", M, "user", {"text": "x", "expires_in": "60"}, J, 400, "expires_in"),
            ("PUT", M, "user", {"text": "x", "expires_in": 1.5}, J, 400, "expires_in"),
            ("PUT", M, "user", {"text": "x", "expires_in": True}, J, 400, "expires_in"),
            ("PUT", M, "user", "text=x&expires_in=soon", FORM, 400, "expires_in"),
            ("PUT", M, "user", "[]", J, 400),
            ("PUT", M, "user", '{"text": ', J, 400),
            ("PUT", M, "user", "", J, 400),
            ("PUT", M, "user", "text=x", "text/plain", 415),
            ("GET", M, "user", None, None, 405),
            ("POST", M, "user", {"text": "x"}, J, 405),
            ("PUT", OM, "user", {"text": "x"}, J, 403),
            ("DELETE", OM, "user", None, None, 403),
            ("PUT", USERS + "999999/status-message/", "admin", {"text": "x"}, J, 404),
            ("DELETE", USERS + "999999/status-message/", "admin", None, None, 404),
            ("PUT", USERS + "x/status-message/", "admin", {"text": "x"}, J, 404),
            ("PUT", OM, "admin", {"text": ""}, J, 400, "text"),
        ]
        self.run_table(rows)

    def test_history(self):
        H = "/api/users/admin/users/%s/presence-history/"
        S = "/api/users/management/statistics/history/"
        uid, oid = self.user["id"], self.other["id"]
        rows = [
            ("GET", H % uid + "?from=yesterday", "user", None, None, 400, "from"),
            ("GET", H % uid + "?to=2024-13-01T00:00:00.000000Z", "user", None, None, 400, "to"),
            ("GET", H % uid + "?from=2024-01-02T00:00:00.000000Z&to=2024-01-01T00:00:00.000000Z", "user", None,
             None, 400, "from"),
            ("GET", H % uid + "?from=2024-01-01T00:00:00.000000Z&to=2024-01-01T00:00:00.000000Z", "user", None,
             None, 400, "from"),
            ("GET", H % uid + "?from=2024-01-01T00:00:00Z&to=2024-02-01T00:00:01Z", "user", None,
             None, 400, "31 days"),
            ("GET", H % oid, "user", None, None, 403),
            ("GET", H % 999999, "admin", None, None, 404),
            ("GET", H % "abc", "admin", None, None, 404),
            ("POST", H % uid, "user", {}, J, 405),
            ("GET", S + "?bucket=2m", "admin", None, None, 400, "bucket"),
            ("GET", S + "?bucket=1M", "admin", None, None, 400, "bucket"),
            ("GET", S + "?bucket=1m&from=2024-01-01T00:00:00.000000Z&to=2024-01-03T00:00:00.000000Z", "admin",
             None, None, 400, "bucket"),
            ("GET", S + "?from=2024-01-01T00:00:00", "admin", None, None, 400, "from"),
            ("GET", S + "?from=2024-01-01T00:00:00.000000Z&to=2024-03-01T00:00:00.000000Z", "admin", None,
             None, 400, "from"),
            ("GET", S, "user", None, None, 403),
            ("DELETE", S, "admin", None, None, 405),
        ]
        self.run_table(rows)

    def test_login(self):
        L = "/api/auth/login/"
        rows = [
            ("POST", L, "none", "{", J, 400),
            ("POST", L, "none", "[]", J, 400),
            ("POST", L, "none", "5", J, 400),
            ("POST", L, "none", "", J, 400),
            ("POST", L, "none", {"username": "admin"}, J, 400, "password"),
            ("POST", L, "none", {"password": "x"}, J, 400, "username"),
            ("POST", L, "none", {"username": 5, "password": "x"}, J, 400, "username"),
            ("POST", L, "none", {"username": "admin", "password": None}, J, 400, "password"),
            ("POST", L, "none", {"username": "admin", "password": ["x"]}, J, 400),
            ("POST", L, "none", '{"username": "admin", "password": "a\\u0000b"}', J, 400),
            ("POST", L, "none", {"username": "admin", "password": "wrong-password"}, J, 401),
            ("POST", L, "none", {"username": "nobody", "password": "password-123"}, J, 401),
            ("POST", L, "none", {"username": "admin", "password": ""}, J, 401),
            ("POST", L, "none", "username=admin&password=wrong", FORM, 401),
            ("POST", L, "none", "<xml/>", "application/xml", 415),
            ("POST", L, "none", "username=admin", "text/plain", 415),
            ("GET", L, "none", None, None, 405),
        ]
        self.run_table(rows)

    def test_set_status(self):
        uid = self.user["id"]
        rows = [
            ("POST", SET % uid, "admin", {"status": "busy"}, J, 400, "online, away, offline"),
            ("POST", SET % uid, "admin", {"status": "Online"}, J, 400),
            ("POST", SET % uid, "admin", {"status": ""}, J, 400),
            ("POST", SET % uid, "admin", {"status": None}, J, 400),
            ("POST", SET % uid, "admin", {"status": 1}, J, 400),
            ("POST", SET % uid, "admin", {"status": True}, J, 400),
            ("POST", SET % uid, "admin", {}, J, 400),
            ("POST", SET % uid, "admin", "", J, 400),
            ("POST", SET % uid, "admin", '{"status": "online"', J, 400),
            ("POST", SET % uid, "admin", '{"status": "online", "status": "away"}', J, 400),
            ("POST", SET % uid, "admin", '["online"]', J, 400),
            ("POST", SET % uid, "admin", DEEP, J, 400),
            ("POST", SET % uid, "admin", {"status": "online", "x": nested(33)}, J, 400),
            ("POST", SET % uid, "admin", '{"status": "onl\\u0000ine"}', J, 400),
            ("POST", SET % uid, "admin", b'{"status": "\xff"}', J, 400),
            ("POST", SET % uid, "admin", "status=busy", FORM, 400),
            ("POST", SET % uid, "admin", "status=online", "text/plain", 415),
            ("POST", SET % uid, "admin", {"status": "online"}, None, 415),
            ("POST", SET % 999999, "admin", {"status": "online"}, J, 404),
            ("POST", SET % "99999999999999999999", "admin", {"status": "online"}, J, 404),
            ("POST", SET % "abc", "admin", {"status": "online"}, J, 404),
            ("POST", SET % "-1", "admin", {"status": "online"}, J, 404),
            ("GET", SET % uid, "admin", None, None, 405),
            ("POST", "/api/users/me/online-status/", "user", {"status": "gone"}, J, 400),
            ("POST", "/api/users/me/online-status/", "user", {"status": ["away"]}, J, 400),
            ("POST", "/api/users/me/online-status/", "user", "", J, 400),
        ]
        self.run_table(rows)

    def test_nesting_limit_is_32(self):
        uid = self.user["id"]
        ok = self.req("POST", SET % uid, {"status": "offline", "x": nested(31)}, token=self.admin)
        self.assertEqual(ok[0], 200, ok[2])

    def test_reads(self):
        O = "/api/users/admin/users/online/"
        B = "/api/users/admin/users/online-status/"
        M = "/api/users/management/list/"
        many = ",".join(str(i) for i in range(1, 102))
        rows = [
            ("GET", GET % 999999, "admin", None, None, 404),
            ("GET", GET % "x1", "admin", None, None, 404),
            ("GET", O + "?page=0", "admin", None, None, 400, "page"),
            ("GET", O + "?page=-1", "admin", None, None, 400),
            ("GET", O + "?page=abc", "admin", None, None, 400),
            ("GET", O + "?page=1.5", "admin", None, None, 400),
            ("GET", O + "?per_page=0", "admin", None, None, 400),
            ("GET", O + "?per_page=%2B5", "admin", None, None, 400),
            ("GET", O + "?page=2147483648", "admin", None, None, 400),
            ("GET", O + "?page=99999999999999999999999", "admin", None, None, 400),
            ("POST", O, "admin", None, None, 405),
            ("GET", B, "admin", None, None, 400, "ids"),
            ("GET", B + "?ids=", "admin", None, None, 400),
            ("GET", B + "?ids=1,,2", "admin", None, None, 400),
            ("GET", B + "?ids=1,a", "admin", None, None, 400),
            ("GET", B + "?ids=1,", "admin", None, None, 400),
            ("GET", B + "?ids=-1", "admin", None, None, 400),
            ("GET", B + "?ids=" + many, "admin", None, None, 400, "100"),
            ("GET", M + "?online_status=busy", "admin", None, None, 400, "online_status"),
            ("GET", M + "?online_status=ONLINE", "admin", None, None, 400),
            ("GET", M + "?is_active=yes", "admin", None, None, 400, "is_active"),
            ("GET", M + "?is_staff=2", "admin", None, None, 400, "is_staff"),
            ("GET", M + "?ordering=password", "admin", None, None, 400, "ordering"),
            ("GET", M + "?ordering=--id", "admin", None, None, 400),
            ("GET", M + "?search=" + "s" * 201, "admin", None, None, 400, "search"),
            ("GET", M + "?search=" + E_ACUTE * 201, "admin", None, None, 400, "search"),
            ("GET", B + "?ids=2147483648", "admin", None, None, 400, "ids"),
            # query text is UTF-8 without NUL (PostgreSQL answered 503 to %ff)
            ("GET", M + "?search=%ff", "admin", None, None, 400, "search"),
            ("GET", M + "?search=%C3", "admin", None, None, 400, "search"),
            ("GET", M + "?search=%ED%A0%80", "admin", None, None, 400, "search"),
            ("GET", M + "?search=adm%00x", "admin", None, None, 400, "search"),
            ("GET", M + "?online_status=online%00x", "admin", None, None, 400, "online_status"),
            ("GET", M + "?x%ff=1", "admin", None, None, 400, "UTF-8"),
            ("GET", B + "?ids=1%002", "admin", None, None, 400, "ids"),
            ("GET", O + "?page=1%00", "admin", None, None, 400, "page"),
            # integers are plain digits up to 2^31-1 (API.md §6), except
            # event positions, which go up to 2^63-1 like the event ids
            ("GET", CHANGES + "?since=9223372036854775808", "admin", None, None, 400, "since"),
            ("GET", CHANGES + "?since=99999999999999999999", "admin", None, None, 400, "since"),
            ("GET", CHANGES + "?since=-1", "admin", None, None, 400, "since"),
            ("GET", CHANGES + "?since=%2B1", "admin", None, None, 400, "since"),
            ("GET", CHANGES + "?limit=2147483648", "admin", None, None, 400, "limit"),
            ("GET", CHANGES + "?limit=1.0", "admin", None, None, 400, "limit"),
            ("GET", STREAM + "?last_event_id=9223372036854775808", "admin", None, None, 400),
            ("GET", O + "?page=2147483648", "admin", None, None, 400, "page"),
            ("GET", STREAM + "?last_event_id=-1", "admin", None, None, 400),
            ("GET", M + "?per_page=x", "admin", None, None, 400),
            ("GET", M + "?page=0", "admin", None, None, 400),
        ]
        self.run_table(rows)

    def test_integer_and_length_limits_accept_their_bound(self):
        for since in ("2147483647", "2147483648", "9223372036854775807"):
            status, _, body = self.req("GET", CHANGES + "?since=%s&limit=0001000" % since,
                                       token=self.admin)
            self.assertEqual((status, body["changes"]), (200, []), body)
        # a stream resumed from any event position, in the query or the header
        for extra in ("?last_event_id=9223372036854775807", "?last_event_id=2147483648"):
            s = Stream(self.srv.port, self.admin, path=STREAM + extra)
            self.assertEqual(s.read_headers(), 200)
            s.close()
        s = Stream(self.srv.port, self.admin, last_event_id="9223372036854775807")
        self.assertEqual(s.read_headers(), 200)
        s.close()
        # search counts characters, not bytes: 200 of a two-byte one is fine
        status, _, body = self.req("GET", "/api/users/management/list/?search=" + E_ACUTE * 200,
                                   token=self.admin)
        self.assertEqual((status, body["users"]), (200, []), body)
        status, _, body = self.req("GET", "/api/users/management/list/?search=" + "s" * 200,
                                   token=self.admin)
        self.assertEqual(status, 200, body)

    def test_methods_that_are_not_tokens(self):
        """A method that is not an RFC 7230 token is 400 JSON (API.md §11),
        on any path, with or without credentials or a body; the server
        stays up."""
        auth = "Authorization: Token %s\r\n" % self.admin
        for method in (b"GE\xffT", b"GET\x01", b"G(E)T", b'GE"T', b"\xc3\xa9", b"P@ST",
                       b"GET\x7f"):
            for path, extra in (("/healthz", ""), ("/nope", ""), ("/api/users/me/", auth),
                                (USERS, auth + "Content-Type: application/json\r\n"
                                 "Content-Length: 2\r\n")):
                with self.subTest(method=method, path=path):
                    req = method + (" %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, extra)).encode()
                    if "Content-Length" in extra:
                        req += b"{}"
                    status, headers, body = rawhttp.parse(rawhttp.exchange(self.srv.port, req))
                    self.assertEqual(status, 400, body)
                    reply = rawhttp.json_body(headers, body)
                    self.assertIsInstance(reply, dict, body)
                    self.assertIn("method", reply["error"])
        # an extension method that is a token goes on to routing (405 here)
        status, headers, _ = rawhttp.parse(rawhttp.exchange(
            self.srv.port, b"M-SEARCH /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        self.assertEqual((status, headers.get("allow")), (405, "GET, HEAD"))
        self.assertEqual(self.req("GET", "/healthz")[0], 200)

    def test_per_page_is_clamped(self):
        status, _, body = self.req("GET", "/api/users/admin/users/online/?per_page=1000",
                                   token=self.admin)
        self.assertEqual((status, body["pagination"]["per_page"]), (200, 100))
        status, _, body = self.req("GET", "/api/users/management/list/?per_page=1000&page=0001",
                                   token=self.admin)
        self.assertEqual((status, body["pagination"]["per_page"], body["pagination"]["page"]),
                         (200, 100, 1))

    def test_create(self):
        long = "a" * 151
        rows = [
            ("POST", USERS, "admin", {"password": "password-1"}, J, 400, "username"),
            ("POST", USERS, "admin", {"username": "n1"}, J, 400, "password"),
            ("POST", USERS, "admin", {"username": 5, "password": "password-1"}, J, 400),
            ("POST", USERS, "admin", {"username": "n1", "password": 12345678}, J, 400),
            ("POST", USERS, "admin", {"username": "n1", "password": "short"}, J, 400, "password"),
            ("POST", USERS, "admin", {"username": "n1", "password": "p" * 1025}, J, 400),
            ("POST", USERS, "admin", {"username": long, "password": "password-1"}, J, 400),
            ("POST", USERS, "admin", {"username": "", "password": "password-1"}, J, 400),
            ("POST", USERS, "admin", {"username": "a b", "password": "password-1"}, J, 400),
            ("POST", USERS, "admin", {"username": "a/b", "password": "password-1"}, J, 400),
            ("POST", USERS, "admin", {"username": "\u00e9l\u00e8ve", "password": "password-1"}, J, 400),
            ("POST", USERS, "admin", {"username": "n1", "password": "password-1", "email": "x"}, J, 400, "email"),
            ("POST", USERS, "admin", {"username": "n1", "password": "password-1", "email": 5}, J, 400),
            ("POST", USERS, "admin", {"username": "n1", "password": "password-1", "email": None}, J, 400),
            ("POST", USERS, "admin", {"username": "n1", "password": "password-1", "email": "a@" + "b" * 250 + ".com"}, J, 400),
            ("POST", USERS, "admin", {"username": "n1", "password": "password-1", "first_name": long}, J, 400),
            ("POST", USERS, "admin", {"username": "n1", "password": "password-1", "last_name": ["x"]}, J, 400),
            ("POST", USERS, "admin", {"username": "n1", "password": "password-1", "is_staff": "yes"}, J, 400, "is_staff"),
            ("POST", USERS, "admin", {"username": "n1", "password": "password-1", "is_active": 1}, J, 400),
            ("POST", USERS, "admin", {"username": "n1", "password": "password-1", "is_staff": None}, J, 400),
            ("POST", USERS, "admin", "username=n1&password=password-1&is_staff=maybe", FORM, 400),
            ("POST", USERS, "admin", "username=n1&password=pass%00word-1", FORM, 400),
            ("POST", USERS, "admin", "username=n1&password=password-1&username=%zz", FORM, 400),
            ("POST", USERS, "admin", {"username": "PLAIN", "password": "password-1"}, J, 409, "username"),
            ("POST", USERS, "admin", {"username": "n1", "password": "password-1", "email": "PLAIN@example.com"}, J, 409, "email"),
            ("POST", USERS, "admin", "x" * (64 * 1024 + 1), J, 413),
            ("POST", USERS, "admin", {"username": "n1", "password": "password-1"}, "text/csv", 415),
            ("PUT", USERS, "admin", None, None, 405),
        ]
        self.run_table(rows)

    def test_patch_and_delete(self):
        p = USERS + "%d/" % self.user["id"]
        rows = [
            ("PATCH", p, "admin", {"online_status": "online"}, J, 400, "online_status"),
            ("PATCH", p, "admin", {"last_seen": None}, J, 400, "last_seen"),
            ("PATCH", p, "admin", {"id": 5}, J, 400, "id"),
            ("PATCH", p, "admin", {"date_joined": "2024-01-01T00:00:00.000000Z"}, J, 400, "date_joined"),
            ("PATCH", p, "admin", {"username": "OTHER"}, J, 409),
            ("PATCH", p, "admin", {"email": "other@EXAMPLE.com"}, J, 409),
            ("PATCH", p, "admin", {"password": "short"}, J, 400),
            ("PATCH", p, "admin", {"is_active": "false"}, J, 400),
            ("PATCH", p, "admin", {"first_name": 1}, J, 400),
            ("PATCH", p, "admin", "{", J, 400),
            ("PATCH", p, "admin", "[]", J, 400),
            ("PATCH", p, "admin", {"first_name": "x"}, "text/plain", 415),
            ("PATCH", USERS + "999999/", "admin", {"first_name": "x"}, J, 404),
            ("PATCH", USERS + "999999/", "admin", {"first_name": 5}, J, 400),
            ("GET", USERS + "999999/", "admin", None, None, 404),
            ("GET", USERS + "abc/", "admin", None, None, 404),
            ("DELETE", USERS + "999999/", "admin", None, None, 404),
            ("DELETE", USERS + "1x/", "admin", None, None, 404),
            ("POST", USERS + "%d/" % self.user["id"], "admin", {}, J, 405),
        ]
        self.run_table(rows)

    def test_unknown_paths_and_methods(self):
        rows = [
            ("GET", "/index.html", "admin", None, None, 404),  # "/" is the dashboard
            ("GET", "/api/users/", "admin", None, None, 404),
            ("GET", "/api/users/me/extra/", "admin", None, None, 404),
            ("GET", "/api/users/admin/users//online-status/", "admin", None, None, 404),
            ("GET", "/healthz//", "none", None, None, 404),
            ("GET", "/nope", "none", None, None, 404),
            ("DELETE", "/api/users/me/", "none", None, None, 405),
            ("POST", "/healthz", "none", None, None, 405),
            ("GET", "/api/users/me/heartbeat/", "user", None, None, 405),
        ]
        self.run_table(rows)

    def test_405_carries_allow(self):
        status, headers, _ = self.req("PUT", "/api/users/management/users/1/", token=self.admin)
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, HEAD, PATCH, DELETE")
        # 404 beats 405 beats 401
        self.assertError(self.req("PUT", "/api/users/management/users/1/"), 405)
        self.assertError(self.req("PUT", "/api/nothing/"), 404)


if __name__ == "__main__":
    unittest.main()
