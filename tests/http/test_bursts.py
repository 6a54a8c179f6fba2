"""Bursts of short connections (API.md §11): a client address below
--max-connections-per-ip is never refused, even while the server has not
yet cleaned up the connections its clients just closed (each client opens
a new connection per request, as many HTTP clients without a pool do)."""
import threading
import unittest

from harness import Server


class Bursts(unittest.TestCase):
    def start(self, args):
        srv = Server(args).start()
        self.addCleanup(srv.cleanup)
        return srv

    def burst(self, srv, threads, per_thread):
        """threads clients, each opening a new connection per request, per_thread
        times (bounded: 10 s a request); returns the errors they saw."""
        errors, lock = [], threading.Lock()

        def client():
            for _ in range(per_thread):
                try:
                    c = srv.conn(timeout=10)
                    c.request("GET", "/healthz")
                    r = c.getresponse()
                    r.read()
                    c.close()
                    if r.status != 200:
                        raise AssertionError("status %d" % r.status)
                except Exception as e:  # a reset, a close without reply, a timeout
                    with lock:
                        errors.append(repr(e))
        ts = [threading.Thread(target=client) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=300)
        return errors

    def test_burst_of_short_connections_below_the_limit_is_never_refused(self):
        # API.md §11: 100 clients at once is below the per-address limit, so
        # none of 5,000 short connections may be reset, even while the
        # server has not yet cleaned up the ones their clients just closed.
        srv = self.start(())
        errors = self.burst(srv, 100, 50)
        self.assertEqual(len(errors), 0, "%d of 5000 failed, e.g. %s" % (len(errors), errors[:3]))
        self.assertNotIn("--max-connections-per-ip", srv.read_log())

    def test_burst_at_a_small_limit_is_never_refused(self):
        # the same with the limit close above the clients: 20 clients, 24
        srv = self.start(("--max-connections-per-ip", "24"))
        errors = self.burst(srv, 20, 100)
        self.assertEqual(len(errors), 0, "%d of 2000 failed, e.g. %s" % (len(errors), errors[:3]))


if __name__ == "__main__":
    unittest.main()
