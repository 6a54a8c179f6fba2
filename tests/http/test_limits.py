"""Limits and abuse (API.md §11): failed logins per client address and
username, password checks that do not starve other requests, the client
address behind a trusted proxy, connection limits, slow and idle
connections, and running out of file descriptors."""
import json
import os
import resource
import socket
import subprocess
import threading
import time
import unittest

import rawhttp
from harness import ADMIN_PASSWORD, BIN, Server, ServerTest

PASSWORD = "right-password-1"


def login(srv, username, password, xff=None):
    h = {"X-Forwarded-For": xff} if xff else None
    return srv.request("POST", "/api/auth/login/", {"username": username, "password": password},
                       headers=h)


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


class Logins(ServerTest):
    # every test blocks its own client address, named by X-Forwarded-For
    server_args = ("--login-max-failures", "3", "--trusted-proxy", "127.0.0.1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for name in ("ann", "bob", "cy"):
            cls.srv.create_user(cls.admin, username=name, password=PASSWORD)

    def assert429(self, resp):
        code, headers, body = resp
        self.assertEqual(code, 429, body)
        self.assertIsInstance(body["error"], str)
        self.assertTrue(headers["content-type"].startswith("application/json"))
        self.assertTrue(1 <= int(headers["retry-after"]) <= 600, headers)

    def test_pair_blocked_after_max_failures_even_with_right_password(self):
        ip = "198.51.100.1"
        for _ in range(3):
            self.assertEqual(login(self.srv, "ann", "wrong", ip)[0], 401)
        self.assert429(login(self.srv, "ann", "wrong", ip))
        self.assert429(login(self.srv, "ann", PASSWORD, ip))
        self.assert429(login(self.srv, "ANN", PASSWORD, ip))  # usernames match case-insensitively
        # the same user from elsewhere, and another user from here, are not blocked
        self.assertEqual(login(self.srv, "ann", PASSWORD, "198.51.100.2")[0], 200)
        self.assertEqual(login(self.srv, "bob", PASSWORD, ip)[0], 200)

    def test_address_blocked_after_five_times_as_many(self):
        ip = "198.51.100.10"
        for i in range(5):  # 5 usernames x 3 failures = 15 = 5 x --login-max-failures
            for _ in range(3):
                self.assertEqual(login(self.srv, "nobody%d" % i, "wrong", ip)[0], 401)
        self.assert429(login(self.srv, "cy", PASSWORD, ip))  # any username now
        self.assert429(login(self.srv, "nobody99", "wrong", ip))
        self.assertEqual(login(self.srv, "cy", PASSWORD, "198.51.100.11")[0], 200)

    def test_success_starts_the_pair_afresh(self):
        ip = "198.51.100.20"
        for _ in range(2):
            self.assertEqual(login(self.srv, "bob", "wrong", ip)[0], 401)
        self.assertEqual(login(self.srv, "bob", PASSWORD, ip)[0], 200)
        for _ in range(3):
            self.assertEqual(login(self.srv, "bob", "wrong", ip)[0], 401)
        self.assert429(login(self.srv, "bob", PASSWORD, ip))

    def test_concurrent_guesses_are_limited_exactly(self):
        # 30 wrong passwords at once: exactly --login-max-failures of them
        # get checked, the rest are refused (running checks count).
        ip = "198.51.100.40"
        results = []

        def guess():
            results.append(login(self.srv, "ann", "wrong", ip)[0])
        threads = [threading.Thread(target=guess) for _ in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertEqual(sorted(results), [401] * 3 + [429] * 27)

    def test_password_checks_run_below_the_http_threads(self):
        # the --threads (2) login threads, named, at niceness 10; the rest
        # of the server at the usual 0 (a read preempts a check at once)
        nice = {}
        task = "/proc/%d/task" % self.srv.proc.pid
        for tid in os.listdir(task):
            with open(os.path.join(task, tid, "stat")) as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            nice.setdefault(comm, []).append(int(stat[stat.rindex(")") + 2:].split()[16]))
        self.assertEqual(nice.get("usersd-login"), [10, 10], nice)
        self.assertEqual(nice.get("usersd"), [0] * len(nice["usersd"]), nice)

    def test_forwarded_for_right_most_untrusted_address(self):
        # The client may write anything on the left; the proxy appends the
        # address it saw, and that is the one counted.
        for _ in range(3):
            login(self.srv, "ann", "wrong", "203.0.113.7")
        self.assert429(login(self.srv, "ann", PASSWORD, "1.2.3.4, 203.0.113.7"))
        self.assert429(login(self.srv, "ann", PASSWORD, "203.0.113.7, 127.0.0.1"))  # trusted hop
        self.assert429(login(self.srv, "ann", PASSWORD, "garbage, 203.0.113.7"))
        self.assertEqual(login(self.srv, "ann", PASSWORD, "203.0.113.7, 203.0.113.8")[0], 200)

    def test_forwarded_for_over_several_header_lines(self):
        for _ in range(3):
            login(self.srv, "cy", "wrong", "203.0.113.30")
        body = json.dumps({"username": "cy", "password": PASSWORD}).encode()
        raw = (b"POST /api/auth/login/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"X-Forwarded-For: 10.9.9.9\r\nX-Forwarded-For: 203.0.113.30\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        resp = rawhttp.exchange(self.srv.port, raw)
        self.assertTrue(resp.startswith(b"HTTP/1.1 429"), resp[:200])

    def test_malformed_forwarded_for_counts_the_peer(self):
        # an address the proxy did not write cannot be trusted: the peer's counts
        for _ in range(3):
            login(self.srv, "nobody-x", "wrong", "not-an-address")
        self.assert429(login(self.srv, "nobody-x", "wrong", None))


class UntrustedPeer(ServerTest):
    server_args = ("--login-max-failures", "2")

    def test_forwarded_for_ignored_without_trusted_proxy(self):
        self.srv.create_user(self.admin, username="dee", password=PASSWORD)
        for _ in range(2):
            self.assertEqual(login(self.srv, "dee", "wrong", "198.51.100.50")[0], 401)
        code, headers, _ = login(self.srv, "dee", PASSWORD, "198.51.100.51")
        self.assertEqual(code, 429)


class Window(ServerTest):
    server_args = ("--login-max-failures", "1")
    server_env = {"USERSD_TEST_LOGIN_WINDOW": "2"}  # the 10 minutes, shortened for the test

    def test_block_lifts_when_the_window_passes(self):
        self.assertEqual(login(self.srv, "admin", "wrong")[0], 401)
        code, headers, _ = login(self.srv, "admin", ADMIN_PASSWORD)
        self.assertEqual(code, 429)
        wait = int(headers["retry-after"])
        self.assertTrue(1 <= wait <= 2)
        time.sleep(wait + 0.2)
        self.assertEqual(login(self.srv, "admin", ADMIN_PASSWORD)[0], 200)


class BadOptions(unittest.TestCase):
    def run_serve(self, args, env=None):
        import os
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--db", "sqlite::memory:"]
                              + args, capture_output=True, text=True, timeout=30, env=e,
                              stdin=subprocess.DEVNULL)

    def test_bad_values_exit_2_with_one_line(self):
        for args, env, part in (
                (["--trusted-proxy", "10.0.0.0/33"], None, "--trusted-proxy"),
                (["--trusted-proxy", "nonsense"], None, "--trusted-proxy"),
                (["--trusted-proxy", "10.0.0.0/"], None, "--trusted-proxy"),
                (["--trusted-proxy", "::1/129"], None, "--trusted-proxy"),
                (["--trusted-proxy", "10.0.0.0/8,,"], None, "--trusted-proxy"),
                ([], {"USERSD_TRUSTED_PROXY": "1.2.3.4/8x"}, "--trusted-proxy"),
                (["--login-max-failures", "0"], None, "login-max-failures"),
                (["--max-connections", "0"], None, "max-connections"),
                (["--max-connections-per-ip", "x"], None, "max-connections-per-ip")):
            p = self.run_serve(args, env)
            self.assertEqual(p.returncode, 2, (args, env, p.stderr))
            self.assertIn(part, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_good_cidrs_are_accepted(self):
        srv = Server(("--trusted-proxy", "10.0.0.0/8, 2001:db8::/32", "--trusted-proxy", "::1",
                      "--trusted-proxy", "192.168.1.7")).start()
        try:
            self.assertEqual(srv.request("GET", "/healthz")[0], 200)
        finally:
            srv.cleanup()


def open_conns(port, n, request=True):
    """Opens n connections, each doing one keep-alive GET /healthz; returns
    (served sockets, number refused)."""
    served, refused = [], 0
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if not request:
            served.append(s)
            continue
        if get_on(s):
            served.append(s)
        else:
            refused += 1
            s.close()
    return served, refused


def get_on(s):
    """One GET /healthz on s; True when answered 200, False when the
    connection was closed or reset instead."""
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = b""
        while not resp.endswith(b'{"status":"ok"}'):
            chunk = s.recv(65536)
            if not chunk:
                return False
            resp += chunk
        return resp.startswith(b"HTTP/1.1 200")
    except (ConnectionError, socket.timeout):
        return False


class Connections(unittest.TestCase):
    def start(self, args, env=None, preexec=None):
        srv = Server(args, env)
        if preexec:  # the harness has no hook for it: wrap Popen's start
            import harness
            real = harness.subprocess.Popen

            def popen(*a, **kw):
                kw["preexec_fn"] = preexec
                return real(*a, **kw)
            harness.subprocess.Popen = popen
            try:
                srv.start()
            finally:
                harness.subprocess.Popen = real
        else:
            srv.start()
        self.addCleanup(srv.cleanup)
        return srv

    def assert_recovers(self, srv):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            ok = get_on(s)
            s.close()
            if ok:
                return
            time.sleep(0.1)
        self.fail("new connections are still refused")

    def check_limit(self, srv, limit):
        served, refused = open_conns(srv.port, limit + 5)
        try:
            self.assertEqual((len(served), refused), (limit, 5))
            for s in served:  # those already open are still served
                self.assertTrue(get_on(s))
        finally:
            for s in served:
                s.close()
        self.assert_recovers(srv)

    def test_per_ip_limit(self):
        srv = self.start(("--max-connections-per-ip", "6"))
        self.check_limit(srv, 6)
        self.assertIn("--max-connections-per-ip", srv.read_log())

    def test_max_connections(self):
        srv = self.start(("--max-connections", "7"))
        self.check_limit(srv, 7)
        self.assertIn("--max-connections)", srv.read_log())

    def test_trusted_proxy_is_not_limited_per_address(self):
        srv = self.start(("--max-connections-per-ip", "2", "--trusted-proxy", "127.0.0.0/8"))
        served, refused = open_conns(srv.port, 10)
        for s in served:
            s.close()
        self.assertEqual((len(served), refused), (10, 0))

    def test_headers_trickled_past_the_deadline_are_closed(self):
        # One byte every 0.3 s resets the 2 s idle timer each time; only the
        # header deadline (2 s here, 30 s normally) ends it.
        srv = self.start((), {"USERSD_TEST_CONN_TIMEOUT": "2"})
        for first_request in (True, False):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            if not first_request:  # the second request of a kept-alive connection
                self.assertTrue(get_on(s))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            closed = False
            for i in range(40):  # 12 s of trickling at most
                try:
                    s.sendall(b"X-%d: y\r\n" % i)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                time.sleep(0.3)
                s.setblocking(False)
                try:
                    if s.recv(100) == b"":
                        closed = True
                        break
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    closed = True
                    break
                finally:
                    s.setblocking(True)
            s.close()
            self.assertTrue(closed, "a trickling client kept its connection")
            self.assertTrue(i >= 4, "closed after %d bytes, before the deadline" % i)
        self.assertEqual(srv.request("GET", "/healthz")[0], 200)

    def test_slow_but_timely_headers_are_served(self):
        srv = self.start((), {"USERSD_TEST_CONN_TIMEOUT": "3"})
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        self.assertTrue(get_on(s))
        time.sleep(1)
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(1)
        s.sendall(b"Host: x\r\n")
        time.sleep(1)
        s.sendall(b"\r\n")
        resp = s.recv(65536)
        s.close()
        self.assertTrue(resp.startswith(b"HTTP/1.1 200"), resp)

    def test_idle_keep_alive_is_closed(self):
        srv = self.start((), {"USERSD_TEST_CONN_TIMEOUT": "2"})
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
        self.assertTrue(get_on(s))
        try:
            self.assertEqual(s.recv(100), b"")  # the server's close, well before 15 s
        except ConnectionResetError:
            pass
        finally:
            s.close()

    def test_out_of_file_descriptors(self):
        raise_fd_limit(1000)

        def few_fds():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        srv = self.start(("--max-connections", "100000", "--max-connections-per-ip", "100000"),
                         preexec=few_fds)
        served, refused = open_conns(srv.port, 120)
        try:
            self.assertGreater(len(served), 5)
            self.assertGreater(refused, 5)
            for s in served:  # the connections it has are still served
                self.assertTrue(get_on(s))
            more, refused2 = open_conns(srv.port, 20)
            self.assertEqual(more, [])
            self.assertEqual(refused2, 20)
        finally:
            for s in served:
                s.close()
        self.assert_recovers(srv)
        time.sleep(0.3)
        log = srv.read_log()
        self.assertEqual(log.count("out of file descriptors"), 1, log[-3000:])
        self.assertNotIn("resource limit", log)  # the library's line per attempt


if __name__ == "__main__":
    unittest.main()
