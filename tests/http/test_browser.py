"""Browsers: the session cookie set at login, and the OWASP Origin/Referer
check for cookie-authenticated writes. The seed's "Frontend Integration"
snippets are replayed with exactly the headers a browser sends for a
same-origin fetch() after login: the cookie, and Origin on a POST."""
import json
import unittest

from harness import ADMIN_PASSWORD, Server, ServerTest

TRUSTED = "http://app.example:3000"


class Cookies(ServerTest):
    server_args = ("--trusted-origin", TRUSTED)

    def setUp(self):
        status, headers, body = self.req("POST", "/api/auth/login/",
                                         {"username": "admin", "password": ADMIN_PASSWORD})
        self.assertEqual(status, 200)
        self.cookie = headers["set-cookie"].split(";")[0]
        self.assertEqual(self.cookie, "usersd_session=" + body["token"])
        self.host = "127.0.0.1:%d" % self.srv.port
        self.origin = "http://" + self.host

    def browser(self, method, path, body=None, origin="same", referer=None):
        h = {"Cookie": self.cookie, "Host": self.host}
        if origin == "same":
            h["Origin"] = self.origin
        elif origin:
            h["Origin"] = origin
        if referer:
            h["Referer"] = referer
        return self.req(method, path, body, headers=h)

    def test_seed_frontend_snippets(self):
        # const response = await fetch('/api/users/admin/users/online/');
        status, _, data = self.browser("GET", "/api/users/admin/users/online/", origin=None)
        self.assertEqual(status, 200)
        self.assertIn("online_users", data)
        # await fetch('/api/users/admin/users/1/set-online-status/', {method: 'POST',
        #   headers: {'Content-Type': 'application/json'}, body: JSON.stringify({status: 'online'})});
        status, _, data = self.browser("POST", "/api/users/admin/users/1/set-online-status/",
                                       {"status": "online"})
        self.assertEqual(status, 200, data)
        self.assertEqual(data["message"], "User online status updated to online")
        # const status = await fetch('/api/users/admin/users/1/online-status/');
        status, _, data = self.browser("GET", "/api/users/admin/users/1/online-status/",
                                       origin=None)
        self.assertEqual((status, data["user_id"], data["online_status"]), (200, 1, "online"))

    def test_cross_site_writes_are_refused(self):
        path = "/api/users/me/online-status/"
        for origin, referer in ((None, None), ("http://evil.example", None), ("null", None),
                                ("http://localhost:%d" % self.srv.port, None),
                                ("https://" + self.host, None),
                                (self.origin + ".evil.example", None),
                                (None, "http://evil.example/" + self.host),
                                ("http://evil.example", self.origin + "/page")):
            with self.subTest(origin=origin, referer=referer):
                resp = self.browser("POST", path, {"status": "away"}, origin=origin,
                                    referer=referer)
                self.assertError(resp, 403, "Origin")
        _, _, me = self.browser("GET", "/api/users/me/", origin=None)
        self.assertNotEqual(me["online_status"], "away")

    def test_referer_and_trusted_origin_are_accepted(self):
        path = "/api/users/me/online-status/"
        status, _, _ = self.browser("POST", path, {"status": "away"}, origin=None,
                                    referer=self.origin + "/admin/panel?x=1")
        self.assertEqual(status, 200)
        status, _, _ = self.browser("POST", path, {"status": "online"}, origin=TRUSTED)
        self.assertEqual(status, 200)
        status, _, _ = self.browser("POST", path, {"status": "online"},
                                    origin="HTTP://APP.EXAMPLE:3000")
        self.assertEqual(status, 200)
        # a header token needs no Origin at all
        status, _, _ = self.req("POST", path, {"status": "online"}, token=self.admin)
        self.assertEqual(status, 200)

    def test_header_token_wins_over_cookie(self):
        h = {"Cookie": self.cookie, "Authorization": "Token " + "f" * 64}
        self.assertError(self.req("GET", "/api/users/me/", headers=h), 401)

    def test_logout_clears_the_cookie(self):
        status, headers, _ = self.browser("POST", "/api/auth/logout/")
        self.assertEqual(status, 204)
        self.assertTrue(headers["set-cookie"].startswith("usersd_session=;"))
        self.assertError(self.browser("GET", "/api/users/me/", origin=None), 401)

    def test_logout_by_cookie_needs_same_origin(self):
        self.assertError(self.browser("POST", "/api/auth/logout/", origin="http://evil.example"),
                         403)
        status, _, _ = self.browser("GET", "/api/users/me/", origin=None)
        self.assertEqual(status, 200)  # still logged in


class SecureCookie(unittest.TestCase):
    def test_secure_flag_and_https_origin(self):
        srv = Server(["--cookie-secure"]).start()
        try:
            status, headers, body = srv.request(
                "POST", "/api/auth/login/", {"username": "admin", "password": ADMIN_PASSWORD})
            self.assertEqual(status, 200)
            self.assertIn("; Secure", headers["set-cookie"])
            host = "127.0.0.1:%d" % srv.port
            h = {"Cookie": "usersd_session=" + body["token"], "Host": host,
                 "Origin": "https://" + host, "Content-Type": "application/json"}
            status, _, _ = srv.request("POST", "/api/users/me/heartbeat/", headers=h)
            self.assertEqual(status, 200)
            h["Origin"] = "http://" + host
            status, _, _ = srv.request("POST", "/api/users/me/heartbeat/", headers=h)
            self.assertEqual(status, 403)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
