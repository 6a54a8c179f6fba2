"""The dashboard as served (API.md §10): the embedded page at / and
/dashboard/, its content-hashed assets cached for a year, the CSP, HEAD
and If-None-Match, JSON 404/405 for what is not there, the 100 KiB budget,
and --no-dashboard (flag, environment, config file). What the page does in
a browser is tests/browser/."""
import hashlib
import os
import re
import subprocess
import tempfile
import unittest

from harness import BIN, Server, ServerTest

ASSET = re.compile(r'(?:src|href)="(/dashboard/[^"]+)"')
HASHED = re.compile(r"^/dashboard/([a-z0-9_-]+)\.([0-9a-f]{16})\.(js|css|svg)$")
IMMUTABLE = "public, max-age=31536000, immutable"
CSP = "default-src 'self'"
TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
         "svg": "image/svg+xml"}


class Dashboard(ServerTest):
    def get_raw(self, method, path, headers=None):
        c = self.srv.conn()
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def page(self):
        status, headers, body = self.get_raw("GET", "/")
        self.assertEqual(status, 200)
        return headers, body.decode()

    def test_page_is_served_at_root_and_dashboard(self):
        headers, html = self.page()
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertEqual(headers["content-security-policy"], CSP)
        self.assertEqual(headers["cache-control"], "no-cache")
        self.assertEqual(headers["x-content-type-options"], "nosniff")
        self.assertRegex(headers["etag"], r'^"[0-9a-f]{16}"$')
        self.assertIn("<title>usersd</title>", html)
        for path in ("/dashboard", "/dashboard/"):
            status, h2, body = self.get_raw("GET", path)
            self.assertEqual((status, body.decode(), h2["etag"]), (200, html, headers["etag"]))

    def test_assets_are_hashed_immutable_and_match_their_hash(self):
        _, html = self.page()
        assets = ASSET.findall(html)
        self.assertGreaterEqual(len(assets), 3, html)
        total = len(html.encode())
        for path in assets:
            with self.subTest(path=path):
                m = HASHED.match(path)
                self.assertIsNotNone(m, "asset name without a content hash: " + path)
                status, headers, body = self.get_raw("GET", path)
                self.assertEqual(status, 200)
                self.assertEqual(headers["cache-control"], IMMUTABLE)
                self.assertEqual(headers["content-type"], TYPES[m.group(3)])
                self.assertEqual(headers["content-security-policy"], CSP)
                self.assertEqual(headers["etag"], '"%s"' % m.group(2))
                # the name's hash is the content's: a change gives a new name
                self.assertEqual(hashlib.sha256(body).hexdigest()[:16], m.group(2))
                total += len(body)
                # the unhashed name is not served (it could be cached stale)
                plain = "/dashboard/%s.%s" % (m.group(1), m.group(3))
                self.assertEqual(self.get_raw("GET", plain)[0], 404)
        self.assertLess(total, 100 * 1024, "the dashboard is over its 100 KiB budget")

    def test_no_inline_script_or_style(self):
        _, html = self.page()
        for tag in re.findall(r"<script\b[^>]*>", html):
            self.assertRegex(tag, r'src="/dashboard/', tag)
        self.assertNotRegex(html, r"<script\b[^>]*>\s*[^<\s]")
        self.assertNotRegex(html, r"<style\b")
        self.assertNotRegex(html, r"\sstyle=")
        self.assertNotRegex(html, r"\son[a-z]+=")
        self.assertNotRegex(html, r"https?://")

    def test_head_and_conditional_get(self):
        headers, html = self.page()
        status, h2, body = self.get_raw("HEAD", "/")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(h2["content-length"], str(len(html.encode())))
        status, h3, body = self.get_raw("GET", "/", {"If-None-Match": headers["etag"]})
        self.assertEqual((status, body), (304, b""))
        self.assertEqual(h3["etag"], headers["etag"])
        status, _, body = self.get_raw("GET", "/", {"If-None-Match": '"0000000000000000"'})
        self.assertEqual(status, 200)
        asset = ASSET.findall(html)[0]
        status, h4, body = self.get_raw("GET", asset, {"If-None-Match": 'W/"x", ' +
                                                       self.get_raw("HEAD", asset)[1]["etag"]})
        self.assertEqual((status, body), (304, b""))
        self.assertEqual(h4["cache-control"], IMMUTABLE)

    def test_unknown_files_and_wrong_methods_are_json(self):
        _, html = self.page()
        asset = ASSET.findall(html)[0]
        rows = [
            ("GET", "/dashboard/nope.js", 404),
            ("GET", "/dashboard/../docs/openapi.json", 404),
            ("GET", "/dashboard//", 404),
            ("GET", "/dashboard/index.html/", 404),
            ("GET", "/dashboardx", 404),
            ("GET", "/index.html", 404),
            ("DELETE", "/dashboard/nope.js", 404),
            ("POST", "/", 405),
            ("PUT", "/dashboard/", 405),
            ("DELETE", asset, 405),
        ]
        for method, path, want in rows:
            with self.subTest(method=method, path=path):
                resp = self.req(method, path)
                self.assertError(resp, want)
                if want == 405:
                    self.assertEqual(resp[1]["allow"], "GET, HEAD")
        # a body on a refused request is not read
        self.assertError(self.req("POST", "/dashboard/", {"x": 1}, token=self.admin), 405)

    def test_api_is_untouched(self):
        status, _, me = self.req("GET", "/api/users/me/", token=self.admin)
        self.assertEqual((status, me["username"]), (200, "admin"))
        self.assertError(self.req("GET", "/api/dashboard/"), 404, "no such endpoint")
        p = subprocess.run([BIN, "routes"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn('"/dashboard', p.stdout)
        self.assertNotIn('"path":"/"', p.stdout.replace(" ", ""))


class NoDashboard(unittest.TestCase):
    def check_off(self, args=(), env=None):
        srv = Server(args, env).start()
        try:
            for path in ("/", "/dashboard/", "/dashboard"):
                status, headers, body = srv.request("GET", path)
                self.assertEqual(status, 404, path)
                self.assertTrue(headers["content-type"].startswith("application/json"))
                self.assertEqual(body["error"], "no such endpoint")
            self.assertEqual(srv.request("GET", "/healthz")[0], 200)
        finally:
            srv.cleanup()

    def test_flag(self):
        self.check_off(("--no-dashboard",))

    def test_environment(self):
        self.check_off(env={"USERSD_NO_DASHBOARD": "1"})

    def test_config_file(self):
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "usersd.conf")
            with open(conf, "w") as f:
                f.write("no-dashboard = true\n")
            self.check_off(("--config", conf))

    def test_flag_is_documented_and_checked(self):
        p = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, timeout=30)
        self.assertIn("--no-dashboard", p.stdout)
        p = subprocess.run([BIN, "serve", "--no-dashboard=maybe"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("no-dashboard", p.stderr)


if __name__ == "__main__":
    unittest.main()
