"""Black-box harness: the real usersd binary on a free loopback port.

Each Server starts `usersd serve --listen 127.0.0.1:0` on its own database,
waits (bounded) for the "listening on" line in its log, and stops it with
SIGTERM. Only the standard library is used, so the tests need nothing but
Debian's python3.
"""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import openapi_check

BIN = os.environ.get("USERSD_BIN", "../../build-test/usersd")
ADMIN_PASSWORD = "admin-password-1"
START_TIMEOUT = 20.0  # seconds, generous for sanitizer builds


DB_KIND = os.environ.get("USERSD_TEST_DB", "sqlite")  # or "postgresql"
_dbs = [0]


def pg_admin(sql, state=None):
    """Runs one statement on the test cluster's maintenance database (or
    that of the cluster whose scripts/pg-cluster.sh state folder is given)."""
    state = state or os.environ["USERSD_PG_STATE"]
    with open(os.path.join(state, "url")) as f:
        base = f.read().strip()
    with open(os.path.join(state, "bindir")) as f:
        psql = os.path.join(f.read().strip(), "psql")
    subprocess.run([psql, "-q", "-X", "-v", "ON_ERROR_STOP=1", base + "/postgres", "-c", sql],
                   check=True, capture_output=True, timeout=60)
    return base


def db_url(directory, name="usersd"):
    """A fresh, empty database of the kind under test."""
    if DB_KIND == "sqlite":
        return "sqlite:" + os.path.join(directory, name + ".db")
    _dbs[0] += 1
    db = "t_%d_%d_%s" % (os.getpid(), _dbs[0], name)
    base = pg_admin("CREATE DATABASE " + db)
    return base + "/" + db


class Server:
    def __init__(self, args=(), env=None, workdir=None, db=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="usersd-http-")
        self.owns_dir = workdir is None
        self.db = db or db_url(self.dir)
        self.log_path = os.path.join(self.dir, "server.log")
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.update({"USERSD_ADMIN_PASSWORD": ADMIN_PASSWORD})
        for k in ("USERSD_LISTEN", "USERSD_DB", "USERSD_THREADS"):
            self.env.pop(k, None)
        if env:
            self.env.update(env)
        self.proc = None
        self.port = None
        self.bin = BIN  # a test may run a copy from a folder another user can reach

    def start(self):
        self.log = open(self.log_path, "ab")
        offset = self.log.tell()  # a restart on the same folder appends
        cmd = [self.bin, "serve", "--listen", "127.0.0.1:0", "--db", self.db, "--threads", "2"]
        self.proc = subprocess.Popen(cmd + self.args, env=self.env, stdout=self.log,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.read_log()[offset:])
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("usersd exited on start:\n" + self.read_log())
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("usersd did not start in time:\n" + self.read_log())

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the server; returns its exit code."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    def cleanup(self):
        self.stop()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                content_type="application/json", conn=None):
        """Sends one request; returns (status, headers, parsed JSON or None)."""
        h = dict(headers or {})
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None and content_type and "Content-Type" not in h:
            h["Content-Type"] = content_type
        if token:
            h["Authorization"] = "Token " + token
        c = conn or self.conn()
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            payload = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            if conn is None:
                c.close()
        parsed = None
        ctype = hdrs.get("content-type", "")
        if payload:
            parsed = json.loads(payload) if ctype.startswith("application/json") else \
                payload.decode("utf-8", "replace")
        # every reply the tests see is checked against the OpenAPI document
        openapi_check.check_response(method, path, r.status, ctype, parsed)
        return r.status, hdrs, parsed

    def login(self, username="admin", password=ADMIN_PASSWORD):
        status, _, body = self.request("POST", "/api/auth/login/",
                                       {"username": username, "password": password})
        if status != 200:
            raise AssertionError("login %s failed: %s %s" % (username, status, body))
        return body["token"]

    def create_user(self, token, **fields):
        fields.setdefault("password", "password-123")
        status, _, body = self.request("POST", "/api/users/management/users/", fields, token=token)
        if status != 201:
            raise AssertionError("create %s failed: %s %s" % (fields, status, body))
        return body


class ServerTest(unittest.TestCase):
    """One server for the whole class; an admin token in self.admin."""
    server_args = ()
    server_env = None

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(cls.server_args, cls.server_env).start()
        cls.admin = cls.srv.login()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def req(self, *a, **kw):
        return self.srv.request(*a, **kw)

    def assertError(self, resp, status, message_part=None):
        code, headers, body = resp
        self.assertEqual(code, status, body)
        self.assertIsInstance(body, dict)
        self.assertIsInstance(body.get("error"), str)
        self.assertTrue(body["error"])
        self.assertTrue(headers["content-type"].startswith("application/json"))
        if message_part:
            self.assertIn(message_part, body["error"])
        if status == 401:
            self.assertEqual(headers.get("www-authenticate"), "Token")
