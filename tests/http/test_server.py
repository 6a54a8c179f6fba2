"""The server as a process: keep-alive, chunked bodies, 413 before the body,
slow clients, clean SIGTERM (durability across kill -9: test_crash.py)."""
import json
import os
import signal
import socket
import threading
import time
import unittest

from harness import ADMIN_PASSWORD, Server, ServerTest


def raw_exchange(port, data, timeout=5.0, read_all=True):
    """Sends raw bytes, returns what came back (bounded in time)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
            if not read_all and b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)
    finally:
        s.close()


class Protocol(ServerTest):
    def test_keep_alive_across_requests(self):
        c = self.srv.conn()
        for path in ("/healthz", "/api/users/me/", "/api/users/management/statistics/"):
            status, headers, _ = self.req("GET", path, token=self.admin, conn=c)
            self.assertEqual(status, 200)
            self.assertNotEqual(headers.get("connection", "").lower(), "close")
        # an error reply keeps the connection too
        status, headers, _ = self.req("GET", "/nope", conn=c)
        self.assertEqual(status, 404)
        status, _, _ = self.req("POST", "/api/users/me/heartbeat/", token=self.admin, conn=c)
        self.assertEqual(status, 200)
        status, _, _ = self.req("POST", "/api/users/me/online-status/", {"status": "online"},
                                token=self.admin, conn=c)
        self.assertEqual(status, 200)
        # the same socket served them all
        sock = c.sock
        self.req("GET", "/healthz", conn=c)
        self.assertIs(c.sock, sock)
        c.close()

    def test_chunked_body_accepted(self):
        body = json.dumps({"status": "away"}).encode()
        req = (b"POST /api/users/me/online-status/ HTTP/1.1\r\nHost: x\r\n"
               b"Authorization: Token " + self.admin.encode() + b"\r\n"
               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n" +
               b"%x\r\n%s\r\n" % (5, body[:5]) + b"%x\r\n%s\r\n" % (len(body) - 5, body[5:]) +
               b"0\r\n\r\n")
        resp = raw_exchange(self.srv.port, req)
        self.assertTrue(resp.startswith(b"HTTP/1.1 200"), resp[:200])
        self.assertIn(b'"online_status":"away"', resp)

    def test_chunked_body_over_limit_is_413(self):
        chunk = b"x" * 8192
        req = (b"POST /api/users/me/online-status/ HTTP/1.1\r\nHost: x\r\n"
               b"Authorization: Token " + self.admin.encode() + b"\r\n"
               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n" + (b"2000\r\n" + chunk + b"\r\n") * 9 + b"0\r\n\r\n")
        resp = raw_exchange(self.srv.port, req)
        self.assertTrue(resp.startswith(b"HTTP/1.1 413"), resp[:200])

    def test_413_before_the_body_is_sent(self):
        # With Expect: 100-continue the server must refuse without asking
        # for the body: the reply arrives although no body byte was sent.
        req = (b"POST /api/users/management/users/ HTTP/1.1\r\nHost: x\r\n"
               b"Authorization: Token " + self.admin.encode() + b"\r\n"
               b"Content-Type: application/json\r\nContent-Length: 10000000\r\n"
               b"Expect: 100-continue\r\n\r\n")
        resp = raw_exchange(self.srv.port, req, read_all=False)
        self.assertTrue(resp.startswith(b"HTTP/1.1 413"), resp[:200])
        self.assertNotIn(b"100 Continue", resp)

    def test_401_before_the_body_is_sent(self):
        req = (b"POST /api/users/management/users/ HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nContent-Length: 100\r\n"
               b"Expect: 100-continue\r\n\r\n")
        resp = raw_exchange(self.srv.port, req, read_all=False)
        self.assertTrue(resp.startswith(b"HTTP/1.1 401"), resp[:200])
        self.assertIn(b"WWW-Authenticate: Token", resp)

    def test_slow_client_does_not_delay_others(self):
        # A few connections that send half a request and stall.
        stalled = []
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
            s.sendall(b"POST /api/users/me/heartbeat/ HTTP/1.1\r\nHost: x\r\nContent-Le")
            stalled.append(s)
        try:
            t0 = time.monotonic()
            for _ in range(20):
                status, _, _ = self.req("GET", "/healthz")
                self.assertEqual(status, 200)
            # generous bound: only a hang (seconds) would fail it
            self.assertLess(time.monotonic() - t0, 10)
        finally:
            for s in stalled:
                s.close()

    def test_concurrent_clients(self):
        errors = []

        def worker(n):
            try:
                c = self.srv.conn()
                for _ in range(25):
                    status, _, _ = self.req("GET", "/api/users/admin/users/online/",
                                            token=self.admin, conn=c)
                    if status != 200:
                        errors.append(status)
                c.close()
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(errors, [])

    def test_access_log_never_holds_secrets(self):
        tok = self.srv.login()
        self.req("GET", "/api/users/me/?token=" + tok, token=tok)
        self.req("POST", "/api/auth/login/", {"username": "admin", "password": ADMIN_PASSWORD})
        time.sleep(0.5)  # access lines are flushed every 100 ms
        log = self.srv.read_log()
        self.assertIn("access: GET /api/users/me/ 200", log)
        self.assertNotIn(tok, log)
        self.assertNotIn(ADMIN_PASSWORD, log)


class Lifecycle(unittest.TestCase):
    def test_sigterm_finishes_in_flight_and_exits_0(self):
        srv = Server().start()
        try:
            # A login (argon2id: tens of ms) is fully sent before SIGTERM, so
            # the server holds it in flight when the signal lands.
            body = json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode()
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
            s.sendall(b"POST /api/auth/login/ HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                      + body)
            time.sleep(0.005)
            srv.proc.send_signal(signal.SIGTERM)
            resp = b""
            while b"\r\n\r\n" not in resp or not resp.rstrip().endswith(b"}"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                resp += chunk
            s.close()
            self.assertTrue(resp.startswith(b"HTTP/1.1 200"), resp[:200])
            self.assertIn(b'"token"', resp)
            rc = srv.stop(signal.SIGTERM)
            self.assertEqual(rc, 0, srv.read_log())
            self.assertIn("stopped", srv.read_log())
        finally:
            srv.cleanup()

    def test_sigint_exits_0(self):
        srv = Server().start()
        try:
            self.assertEqual(srv.stop(signal.SIGINT), 0)
        finally:
            srv.cleanup()

    def test_bad_listen_and_db_fail_clearly(self):
        import subprocess
        from harness import BIN
        for args, code, msg in (
                (["--listen", "nohost"], 2, "--listen"),
                (["--listen", "127.0.0.1:99999999"], 2, "--listen"),
                (["--db", "mysql://x"], 2, "--db"),
                (["--threads", "0"], 2, "--threads"),
                (["--away-after", "-5"], 2, "away-after"),
                (["--bogus"], 2, "unknown option"),
                (["--db", "sqlite:/nonexistent-dir/x.db", "--listen", "127.0.0.1:0"], 1,
                 "cannot open")):
            p = subprocess.run([BIN, "serve"] + args, capture_output=True, timeout=20,
                               stdin=subprocess.DEVNULL, text=True)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertIn(msg, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_port_in_use(self):
        import subprocess
        from harness import BIN
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            d = Server().dir
            p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % port, "--db",
                                "sqlite:" + os.path.join(d, "x.db")],
                               capture_output=True, timeout=20, stdin=subprocess.DEVNULL, text=True)
            self.assertEqual(p.returncode, 1)
            self.assertIn("cannot listen", p.stderr)
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
