"""The JavaScript client as served (API.md §14): /client/usersd.js and
/client/usersd.d.ts to anyone, byte for byte the files of clients/js/,
with their content types, an ETag and 304 on If-None-Match, the
dashboard's CSP, HEAD, JSON 404/405 beside them — with the dashboard and
with --no-dashboard. What the client does is tests/js/."""
import hashlib
import os
import re
import unittest

from harness import Server, ServerTest

CLIENT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients",
                          "js")
FILES = {"/client/usersd.js": ("usersd.js", "text/javascript; charset=utf-8"),
         "/client/usersd.d.ts": ("usersd.d.ts", "application/typescript; charset=utf-8")}
ASSET = re.compile(r'src="(/dashboard/[^"]+\.js)"')


def get(srv, method, path, headers=None):
    """(status, headers, body as text or None), checked against the OpenAPI document."""
    return srv.request(method, path, headers=headers)


class Checks:
    """The same checks on a server with and without the dashboard (a mixin,
    not a TestCase of its own)."""

    def test_files_are_served_to_anyone_with_type_etag_and_csp(self):
        for path, (name, ctype) in FILES.items():
            with self.subTest(path=path):
                with open(os.path.join(CLIENT_DIR, name), "rb") as f:
                    want = f.read().decode()
                status, headers, body = get(self.srv, "GET", path)
                self.assertEqual(status, 200)
                self.assertEqual(body, want)  # no credentials needed, the file as committed
                self.assertEqual(headers["content-type"], ctype)
                self.assertEqual(headers["etag"],
                                 '"%s"' % hashlib.sha256(want.encode()).hexdigest()[:16])
                self.assertEqual(headers["cache-control"], "no-cache")
                self.assertEqual(headers["content-security-policy"], "default-src 'self'")
                self.assertEqual(headers["x-content-type-options"], "nosniff")
                # without the trailing slash's twin, and with it, the same file
                self.assertEqual(get(self.srv, "GET", path + "/")[2], want)
                # HEAD: the headers, no body
                status, h2, body = get(self.srv, "HEAD", path)
                self.assertEqual((status, body, h2["etag"]), (200, None, headers["etag"]))
                self.assertEqual(h2["content-length"], str(len(want.encode())))

    def test_if_none_match(self):
        for path in FILES:
            with self.subTest(path=path):
                etag = get(self.srv, "HEAD", path)[1]["etag"]
                for inm in (etag, 'W/"0000000000000000", ' + etag, "*"):
                    status, headers, body = get(self.srv, "GET", path, {"If-None-Match": inm})
                    self.assertEqual((status, body), (304, None), inm)
                    self.assertEqual(headers["etag"], etag)
                for inm in ('"0000000000000000"', "W/" + etag.replace('"', "")):
                    status, _, body = get(self.srv, "GET", path, {"If-None-Match": inm})
                    self.assertEqual(status, 200, inm)
                    self.assertGreater(len(body), 1000)
                # a token, even a wrong one, changes nothing: the file is public
                status = get(self.srv, "GET", path, {"Authorization": "Token nope"})[0]
                self.assertEqual(status, 200)

    def test_wrong_methods_and_other_names_are_json(self):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            with self.subTest(method=method):
                self.assertError(self.req(method, "/client/usersd.js"), 405)
                self.assertEqual(self.req(method, "/client/usersd.js")[1]["allow"], "GET, HEAD")
        for path in ("/client/", "/client", "/client/usersd.mjs", "/client/usersd.js.map",
                     "/client/../web/app.js", "/client/USERSD.JS", "/client/usersd.js/x",
                     "/client/app.js", "/clients/js/usersd.js"):
            with self.subTest(path=path):
                self.assertError(self.req("GET", path), 404, "no such endpoint")


class WithDashboard(Checks, ServerTest):
    def test_the_dashboard_and_the_client_it_imports_stay_in_budget(self):
        status, _, html = get(self.srv, "GET", "/")
        self.assertEqual(status, 200)
        paths = ASSET.findall(html) + re.findall(r'href="(/dashboard/[^"]+)"', html)
        total = len(html.encode())
        for path in paths + ["/client/usersd.js"]:
            total += len(get(self.srv, "GET", path)[2].encode())
        self.assertLess(total, 100 * 1024, "the dashboard with its client is over 100 KiB")


class WithoutDashboard(Checks, ServerTest):
    server_args = ("--no-dashboard",)

    def test_dashboard_is_off_client_is_not(self):
        self.assertError(self.req("GET", "/"), 404, "no such endpoint")
        self.assertEqual(get(self.srv, "GET", "/client/usersd.js")[0], 200)


class ReadmeExample(unittest.TestCase):
    def test_the_readme_page_is_the_example_the_browser_test_runs(self):
        # README's "Use it from your app" shows examples/contacts.js, which
        # tests/browser runs as written: the two must not drift apart.
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
            blocks = re.findall(r"```js\n(.*?)```", f.read(), re.S)
        with open(os.path.join(root, "examples", "contacts.js"), encoding="utf-8") as f:
            example = f.read()
        self.assertIn(example, blocks)


if __name__ == "__main__":
    unittest.main()
