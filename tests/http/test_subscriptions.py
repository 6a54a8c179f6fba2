"""Presence subscriptions (API.md §7): a stream asked with ?ids= first gets
one `event: snapshot` of those users in the order asked, then only their
events (presence and status messages); a Last-Event-ID replay is filtered
the same way; bad ids are 400; a change reaches the streams that follow its
user and no other."""
import time
import unittest

from harness import ServerTest
from sse import Stream

PATH = "/api/users/presence/stream/"


def of_kind(events, kind):
    return [e for e in events if e.get("event") == kind]


class Subscriptions(ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.users = [cls.srv.create_user(cls.admin, username="sub%d" % i) for i in range(6)]

    def set_status(self, uid, status):
        code, _, _ = self.req("POST", "/api/users/admin/users/%d/set-online-status/" % uid,
                              {"status": status}, token=self.admin)
        self.assertEqual(code, 200)

    def open(self, ids, last_event_id=None):
        s = Stream(self.srv.port, self.admin, last_event_id=last_event_id,
                   path=PATH + "?ids=" + ids)
        self.assertEqual(s.read_headers(), 200)
        return s

    def test_snapshot_then_only_the_followed_users(self):
        a, b, c = self.users[0], self.users[1], self.users[2]
        self.set_status(a["id"], "away")
        s = self.open("%d,999999,%d,%d" % (b["id"], a["id"], b["id"]))
        evs = s.events(1, kinds=("snapshot",), timeout=5)
        snap = of_kind(evs, "snapshot")
        self.assertEqual(len(snap), 1)
        self.assertNotIn("id", snap[0])  # not part of the sequence
        statuses = snap[0]["json"]["statuses"]
        self.assertEqual([x["user_id"] for x in statuses], [b["id"], a["id"]])  # as asked, once
        self.assertEqual(statuses[1]["online_status"], "away")
        self.assertEqual(set(statuses[0]), {"user_id", "username", "online_status", "last_seen",
                                            "is_online", "dnd"})
        self.set_status(c["id"], "online")  # not followed
        self.set_status(a["id"], "online")
        self.req("PUT", "/api/users/management/users/%d/status-message/" % c["id"],
                 {"text": "not for you"}, token=self.admin)
        self.req("PUT", "/api/users/management/users/%d/status-message/" % b["id"],
                 {"text": "for you"}, token=self.admin)
        evs = s.events(2, kinds=("presence", "status_message"), timeout=5)
        more = s.events(1, kinds=("presence", "status_message"), timeout=1.0)
        s.close()
        got = [e for e in evs + more if e.get("event") in ("presence", "status_message")]
        self.assertEqual([(e["event"], e["json"]["user_id"]) for e in got],
                         [("presence", a["id"]), ("status_message", b["id"])])
        self.assertLess(int(got[0]["id"]), int(got[1]["id"]))

    def test_filtered_replay_after_a_snapshot(self):
        # API.md §7: a ?ids= stream first sends one snapshot, also when it
        # is a reconnection: then the filtered replay follows it. b's last
        # change is older than the replay, so only the snapshot tells it.
        a, d, b = self.users[3], self.users[4], self.users[5]
        self.set_status(b["id"], "away")
        s = self.open("%d,%d" % (a["id"], b["id"]))
        s.events(1, kinds=("snapshot",), timeout=5)
        self.set_status(a["id"], "online")
        first = of_kind(s.events(1, timeout=5), "presence")[0]
        s.close()
        self.set_status(d["id"], "online")  # missed, not followed
        self.set_status(a["id"], "away")    # missed, followed
        self.set_status(a["id"], "offline")
        r = self.open("%d,%d" % (a["id"], b["id"]), last_event_id=first["id"])
        evs = r.events(2, timeout=5)
        more = r.events(1, timeout=1.0)
        r.close()
        kinds = [e["event"] for e in evs + more if "event" in e]
        self.assertEqual(kinds, ["snapshot", "presence", "presence"])  # the snapshot first
        snap = of_kind(evs, "snapshot")[0]["json"]["statuses"]
        self.assertEqual([(x["user_id"], x["online_status"]) for x in snap],
                         [(a["id"], "offline"), (b["id"], "away")])
        got = of_kind(evs + more, "presence")
        self.assertEqual([e["json"]["online_status"] for e in got], ["away", "offline"])
        self.assertTrue(all(e["json"]["user_id"] == a["id"] for e in got))
        self.assertTrue(all(int(e["id"]) > int(first["id"]) for e in got))

    def test_many_streams_each_gets_its_own(self):
        streams = []
        for u in self.users[:5]:
            s = self.open(str(u["id"]))
            s.events(1, kinds=("snapshot",), timeout=5)
            streams.append((u, s))
        firehose = Stream(self.srv.port, self.admin)
        self.assertEqual(firehose.read_headers(), 200)
        time.sleep(0.2)
        for u, _ in streams:
            self.set_status(u["id"], "offline")
            self.set_status(u["id"], "online")
        for u, s in streams:
            got = of_kind(s.events(2, timeout=5) + s.events(1, timeout=0.3), "presence")
            s.close()
            self.assertEqual({e["json"]["user_id"] for e in got}, {u["id"]})
        everyone = of_kind(firehose.events(10, timeout=5), "presence")
        firehose.close()
        self.assertEqual(len({e["json"]["user_id"] for e in everyone}), 5)

    def test_bad_ids(self):
        many = ",".join(str(i) for i in range(1, 1002))
        ok = ",".join(str(i) for i in range(1, 1001))
        for ids in ("", "abc", "1,,2", "1,", ",1", "-1", "1.5", "2147483648", "1%202", many):
            with self.subTest(ids=ids[:20]):
                self.assertError(self.req("GET", PATH + "?ids=" + ids, token=self.admin), 400,
                                 "ids")
        s = self.open(ok)  # a thousand is fine
        snap = of_kind(s.events(1, kinds=("snapshot",), timeout=10), "snapshot")
        s.close()
        self.assertEqual([x["user_id"] for x in snap[0]["json"]["statuses"]],
                         [u["id"] for u in sorted(self.all_users(), key=lambda x: x["id"])
                          if u["id"] <= 1000])

    def all_users(self):
        _, _, body = self.req("GET", "/api/users/management/list/?per_page=100", token=self.admin)
        return body["users"]


if __name__ == "__main__":
    unittest.main()
