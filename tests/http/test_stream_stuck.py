"""A stream reader that never reads: dropped, never blocking others (its own
file: it waits for libmicrohttpd's 30 s idle timeout)."""
import time
import unittest

from harness import Server
from sse import Stream, presence


class NeverReads(unittest.TestCase):
    def test_reader_that_never_reads_is_dropped(self):
        srv = Server().start()
        try:
            tok = srv.login()
            u = srv.create_user(tok, username="flood")
            stuck = Stream(srv.port, tok, rcvbuf=4096)
            good = Stream(srv.port, tok)
            self.assertEqual(good.read_headers(), 200)
            changes = 1200
            c = srv.conn()
            path = "/api/users/admin/users/%d/set-online-status/" % u["id"]
            for i in range(changes):
                code, _, _ = srv.request("POST", path, {"status": ("online", "offline")[i % 2]},
                                         token=tok, conn=c)
                self.assertEqual(code, 200)
                if i % 200 == 0:
                    good.events(0, timeout=0.01)  # the good reader keeps reading
            c.close()
            evs = presence(good.events(changes, timeout=30))
            self.assertEqual(len(evs), changes)  # a stuck reader never blocks others
            code, _, _ = srv.request("GET", "/healthz")
            self.assertEqual(code, 200)
            # libmicrohttpd closes the stuck connection after 30 s without
            # progress; the last progress is when the kernel buffers filled,
            # which on a loaded machine can be late, so the close is awaited
            # (bounded) rather than assumed at a fixed time.
            time.sleep(30)
            stuck.read_headers(timeout=5)
            evs = presence(stuck.events(changes, timeout=40))
            self.assertTrue(stuck.closed, "the stuck stream was not closed")
            self.assertLess(len(evs), changes)
            good.close()
            stuck.close()
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
