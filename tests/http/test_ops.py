"""Operations: the OpenAPI document checked against the route table and
served at /api/schema/, Prometheus /metrics, the access log (text and
JSON, never a secret), and --config with its precedence."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import openapi_check
from harness import ADMIN_PASSWORD, BIN, Server, ServerTest, db_url
from sse import Stream

METRIC_LINE = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? [0-9.e+-]+$')


class Schema(unittest.TestCase):
    def test_route_table_and_document_list_the_same_operations(self):
        p = subprocess.run([BIN, "routes"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        table = {(r["method"], r["path"]) for r in json.loads(p.stdout)}
        doc = {(m.upper(), path) for path, item in openapi_check.DOC["paths"].items()
               for m in item}
        self.assertEqual(table, doc)
        # and who may call it agrees with the document's security
        for r in json.loads(p.stdout):
            op = openapi_check.DOC["paths"][r["path"]][r["method"].lower()]
            self.assertEqual(op["security"] == [], r["auth"] == "anyone", r)
            self.assertIn("operationId", op)
            self.assertTrue(any(c.startswith("4") for c in op["responses"]), r)


class Ops(ServerTest):
    def test_schema_is_served_to_anyone(self):
        code, headers, body = self.req("GET", "/api/schema/")
        self.assertEqual(code, 200)
        self.assertEqual(body, openapi_check.DOC)
        self.assertEqual(body["openapi"][:2], "3.")

    def test_metrics(self):
        user = self.srv.create_user(self.admin, username="metrics_user")
        tok = self.srv.login("metrics_user", "password-123")
        self.assertEqual(self.req("GET", "/metrics")[0], 401)
        self.assertEqual(self.req("GET", "/metrics", token=tok)[0], 403)
        self.req("GET", "/api/users/admin/users/%d/online-status/" % user["id"], token=tok)
        self.req("GET", "/api/users/admin/users/987654/online-status/", token=tok)
        self.req("GET", "/no/such/path")
        s = Stream(self.srv.port, tok)
        s.read_headers()
        # A request is counted when it completes, which the server's thread
        # may do a moment after the client has read its reply: scrape until
        # the requests above show (bounded).
        route = '/api/users/admin/users/{id}/online-status/'
        seen = ['route="unmatched"', 'route="%s",method="GET",code="404"}' % route]
        deadline = time.monotonic() + 5
        while True:
            code, headers, text = self.req("GET", "/metrics", token=self.admin)
            if all(x in text for x in seen) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        s.close()
        self.assertEqual(code, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        for line in text.splitlines():
            if not line.startswith("#"):
                self.assertRegex(line, METRIC_LINE)
        self.assertIn('usersd_http_requests_total{route="%s",method="GET",code="200"} 1' % route,
                      text)
        self.assertIn('usersd_http_requests_total{route="%s",method="GET",code="404"} 1' % route,
                      text)
        self.assertNotIn("987654", text)  # routes are patterns: bounded cardinality
        self.assertNotIn("/no/such/path", text)
        self.assertIn('route="unmatched"', text)
        self.assertIn('usersd_http_request_duration_seconds_bucket{route="%s",method="GET",'
                      'le="+Inf"} 2' % route, text)
        self.assertIn('usersd_http_request_duration_seconds_count{route="%s",method="GET"} 2'
                      % route, text)
        _, _, stats = self.req("GET", "/api/users/management/statistics/", token=self.admin)
        for status in ("online", "away", "offline"):
            self.assertIn('usersd_users{status="%s"} %d' % (status, stats[status + "_users"]),
                          text)
        self.assertRegex(text, r"usersd_open_streams [1-9]")
        self.assertIn("usersd_db_errors_total 0", text)
        self.assertIn("usersd_database_up 1", text)
        self.assertIn("usersd_database_reconnects_total 0", text)
        self.assertIn('usersd_build_info{version="', text)

    def test_text_log_has_errors_and_no_secrets(self):
        tok = self.srv.login()
        self.req("GET", "/api/users/me/?token=" + tok, token=tok)
        self.req("POST", "/api/users/me/online-status/", {"status": "bogus"}, token=tok)
        self.req("GET", "/api/users/me/", headers={"Authorization": "Token " + "a" * 64})
        time.sleep(0.5)  # access lines are flushed every 100 ms
        log = self.srv.read_log()
        self.assertNotIn(tok, log)
        self.assertNotIn("a" * 64, log)
        self.assertNotIn(ADMIN_PASSWORD, log)
        self.assertNotIn("Authorization", log)
        self.assertRegex(log, r'access: POST /api/users/me/online-status/ 400 \d+ \d+us user=1 '
                              r'error="status must be one of')
        self.assertRegex(log, r'access: GET /api/users/me/ 401 \d+ \d+us user=- error="invalid token"')


class JsonLog(unittest.TestCase):
    def test_json_log_lines(self):
        srv = Server(["--log-format", "json"]).start()
        try:
            tok = srv.login()
            srv.request("GET", "/api/users/me/", token=tok)
            srv.request("GET", "/api/users/admin/users/999/online-status/", token=tok)
            self.assertEqual(srv.stop(), 0)
            lines = [json.loads(l) for l in srv.read_log().splitlines() if l.strip()]
            access = [l for l in lines if l["type"] == "access"]
            self.assertTrue(any("listening on" in l.get("msg", "") for l in lines))
            me = [l for l in access if l["route"] == "/api/users/me/"][0]
            self.assertEqual((me["method"], me["status"], me["user"]), ("GET", 200, 1))
            self.assertIsInstance(me["us"], int)
            self.assertIsInstance(me["bytes"], int)
            nf = [l for l in access if l["status"] == 404][0]
            self.assertEqual(nf["error"], "user not found")
            login = [l for l in access if l["route"] == "/api/auth/login/"][0]
            self.assertEqual(login["user"], 1)
            self.assertNotIn(tok, srv.read_log())
        finally:
            srv.cleanup()


class Config(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="usersd-config-")
        self.db = db_url(self.dir)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, text):
        path = os.path.join(self.dir, "usersd.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def serve_log(self, args, env=None):
        """Starts serve with args and env, returns its startup log."""
        srv = Server(args, env=env, workdir=self.dir, db=self.db)
        # Server passes --threads 2 itself: a flag, so it beats file and env
        srv.start()
        srv.stop()
        return srv.read_log()

    def test_precedence_flag_env_file_default(self):
        path = self.write("# a comment\n\nlog-format = json\nthreads = 3\n"
                          'away-after = "5"\ntrusted-origin = http://a.example\n')
        log = self.serve_log(["--config", path])
        self.assertIn('"type":"log"', log)  # from the file
        self.assertIn("2 threads", log)  # the harness's --threads flag beats the file
        log = self.serve_log(["--config", path], env={"USERSD_LOG_FORMAT": "text"})
        self.assertIn("usersd: listening", log)  # the environment beats the file
        log = self.serve_log(["--config", path, "--log-format", "json"],
                             env={"USERSD_LOG_FORMAT": "text"})
        self.assertIn('"type":"log"', log.split("usersd: stopped")[-1])  # the flag beats both

    def listening_line(self, path, env):
        """Starts serve with --config path and env; returns its listening line."""
        p = subprocess.Popen([BIN, "serve", "--config", path, "--listen", "127.0.0.1:0", "--db",
                              self.db], env=env, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL)
        line = p.stderr.readline()
        while "listening" not in line and line:
            line = p.stderr.readline()
        p.terminate()
        p.wait(timeout=20)
        p.stderr.close()
        return line

    def test_env_beats_file_for_threads(self):
        path = self.write("threads = 3\n")
        env = dict(os.environ, USERSD_THREADS="4", USERSD_ADMIN_PASSWORD=ADMIN_PASSWORD)
        for k in ("USERSD_LISTEN", "USERSD_DB"):
            env.pop(k, None)
        self.assertIn("4 threads", self.listening_line(path, env))
        env.pop("USERSD_THREADS")
        self.assertIn("3 threads", self.listening_line(path, env))

    def test_bad_files(self):
        for text, part in (("nonsense = 1\n", "unknown key 'nonsense'"),
                           ("threads = many\n", ":1: threads must be a whole number"),
                           ("\n\nlisten\n", ":3: expected 'key = value'"),
                           ("config = other.conf\n", "unknown key 'config'"),
                           ("log-format = xml\n", "--log-format must be text or json")):
            path = self.write(text)
            p = subprocess.run([BIN, "serve", "--config", path], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            self.assertEqual(p.returncode, 2, (text, p.stderr))
            self.assertIn(part, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1)
        p = subprocess.run([BIN, "serve", "--config", os.path.join(self.dir, "missing.conf")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("cannot read --config", p.stderr)


if __name__ == "__main__":
    unittest.main()
