"""The stream's keepalive comment (its own file: it waits 17 s, in parallel
with the other tests)."""
import unittest

from harness import ServerTest
from sse import Stream


class Keepalive(ServerTest):
    def test_keepalive_comment_every_15_seconds(self):
        s = Stream(self.srv.port, self.admin)
        s.read_headers()
        evs = s.events(1, timeout=17, kinds=())  # nothing happens for 17 s
        s.close()
        comments = [c for e in evs for c in e["comments"]]
        self.assertIn("keepalive", comments)


if __name__ == "__main__":
    unittest.main()
