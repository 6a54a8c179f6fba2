"""A flood of logins (API.md §11): password hashing runs at most --threads
at a time on threads of its own, so a status read sent during 1,000
logins at once is answered while they wait, not behind them. Apart from
test_limits.py: it is the slowest test (1,000 argon2id hashes under the
sanitizers) and runs beside the others."""
import json
import time
import unittest

import rawhttp
from harness import ADMIN_PASSWORD, ServerTest
from test_limits import raise_fd_limit


class Flood(ServerTest):
    N = 1000
    server_args = ("--max-connections-per-ip", "5000")

    def test_status_answers_during_a_login_flood(self):
        # 1,000 logins at once (argon2id each); a status read sent meanwhile
        # is answered while they wait for the login threads, not behind
        # them: few logins finish while it is in flight (with the checks on
        # the HTTP workers, it waited for hundreds).
        raise_fd_limit(self.N + 200)
        body = json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode()
        raw = (b"POST /api/auth/login/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        probe = self.srv.conn(timeout=120)  # opened before the flood
        self.assertEqual(self.req("GET", "/healthz", conn=probe)[0], 200)
        flood = rawhttp.Flood(self.srv.port, raw, self.N, timeout=600)
        done = flood.replies
        try:
            while len(done) < 10 and flood.running():
                time.sleep(0.01)
            finished_meanwhile = []
            for _ in range(3):
                before = len(done)
                code, _, _ = self.req("GET", "/api/users/admin/users/1/online-status/",
                                      token=self.admin, conn=probe)
                finished_meanwhile.append(len(done) - before)
                self.assertEqual(code, 200)
            self.assertLess(len(done), self.N)  # still flooded when the reads were answered
        finally:
            flood.join(timeout=620)
            probe.close()
        self.assertEqual(len(done), self.N)
        self.assertEqual(sum(r.startswith(b"HTTP/1.1 200") for r, _ in done), self.N,
                         [r[:100] for r, _ in done if not r.startswith(b"HTTP/1.1 200")][:3])
        print("logins finished while a status read was in flight:", finished_meanwhile)
        self.assertLess(max(finished_meanwhile), 50, finished_meanwhile)


if __name__ == "__main__":
    unittest.main()
