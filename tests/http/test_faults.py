"""Real faults (API.md §5, §11): a full disk and a read-only database give
503 JSON for writes while reads go on, lose nothing acknowledged, and heal
by themselves when the cause goes away. The database lives on a small
tmpfs mounted for the test (root only: CI runs as root; elsewhere the test
is skipped and says why)."""
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BIN, DB_KIND, Server, pg_admin

STATUSES = ("online", "away", "offline")


def try_mount(path, size):
    """Mounts a tmpfs of size at path; returns None, or why it cannot."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (CI runs the tests as root)"
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0777" % size, "tmpfs", path],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        return "cannot mount a tmpfs here: " + (p.stderr.strip() or "mount failed")
    return None


def umount(path):
    subprocess.run(["umount", "-l", path], capture_output=True, timeout=30)


def fill(directory, name="filler"):
    """Fills the file system of directory; returns the filler's path."""
    path = os.path.join(directory, name)
    chunk = b"\0" * 65536
    # unbuffered: a full disk is raised by the write itself, never by a
    # close that flushes what a buffer still held
    with open(path, "wb", buffering=0) as f:
        try:
            for _ in range(1 << 16):  # bounded: 4 GiB, far past any test tmpfs
                f.write(chunk)
        except OSError:
            pass
    # what the buffered writer could not place, byte by byte up to the end
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        for _ in range(65536):
            os.write(fd, b"\0")
    except OSError:
        pass
    finally:
        os.close(fd)
    return path


class Writers:
    """Clients writing at once (user creation and presence, the group commit
    path); every acknowledged write is remembered, every reply checked."""

    def __init__(self, test, srv, token, users):
        self.test, self.srv, self.token, self.users = test, srv, token, users
        self.created = {}  # id -> username, acknowledged (201)
        self.status = {}  # id -> last acknowledged status
        self.codes = []
        self.lock = threading.Lock()
        self.n = 0

    def create(self, tag):
        with self.lock:
            self.n += 1
            name = "%s%d" % (tag, self.n)
        code, headers, body = self.srv.request(
            "POST", "/api/users/management/users/",
            {"username": name, "password": "password-123", "first_name": "F" * 150,
             "last_name": "L" * 150, "email": name + "@example.com"}, token=self.token)
        self.check(code, headers, body)
        if code == 201:
            with self.lock:
                self.created[body["id"]] = name
        return code

    def set_status(self, uid, i):
        s = STATUSES[i % 3]
        code, headers, body = self.srv.request(
            "POST", "/api/users/admin/users/%d/set-online-status/" % uid, {"status": s},
            token=self.token)
        self.check(code, headers, body)
        if code == 200:
            with self.lock:
                self.status[uid] = s
        return code

    def check(self, code, headers, body):
        with self.lock:
            self.codes.append(code)
        self.test.assertIn(code, (200, 201, 503), body)
        if code == 503:
            self.test.assertRegex(body["error"], "database|disk|full|space|read-only|readonly")
            self.test.assertEqual(headers.get("retry-after"), "1")

    def burst(self, rounds, tag):
        """Creations and, beside them, one thread per user setting its
        status (so a batch of the group commit holds several)."""
        def statuses(uid):
            for i in range(rounds):
                self.set_status(uid, i)
        threads = [threading.Thread(target=statuses, args=(u,)) for u in self.users]
        for t in threads:
            t.start()
        for _ in range(rounds):
            self.create(tag)
        for t in threads:
            t.join(timeout=120)

    def verify(self, srv, token):
        """Every acknowledged write is there (after a restart)."""
        for uid, name in self.created.items():
            code, _, body = srv.request("GET", "/api/users/management/users/%d/" % uid,
                                        token=token)
            self.test.assertEqual((code, body.get("username")), (200, name))
        ids = ",".join(str(u) for u in self.status)
        if ids:
            code, _, body = srv.request("GET", "/api/users/admin/users/online-status/?ids=" + ids,
                                        token=token)
            self.test.assertEqual(code, 200)
            self.test.assertEqual({s["user_id"]: s["online_status"] for s in body["statuses"]},
                                  self.status)


class FaultTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="usersd-faults-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def mount(self, size):
        mnt = os.path.join(self.dir, "mnt")
        os.mkdir(mnt)
        why = try_mount(mnt, size)
        if why:
            self.skipTest(why)
        self.addCleanup(umount, mnt)
        return mnt

    def reads_go_on(self, srv, token, uid):
        """Reads answer 200 (a GET's activity write is best effort)."""
        for path in ("/api/users/me/", "/api/users/admin/users/%d/online-status/" % uid,
                     "/api/users/admin/users/online/", "/api/users/management/list/?search=user",
                     "/api/users/management/statistics/", "/healthz"):
            code, _, body = srv.request("GET", path, token=token)
            self.assertEqual(code, 200, (path, body))

    def writing(self, db, rounds):
        """A server on db, and writers that already wrote rounds bursts."""
        srv = Server(workdir=self.dir, db=db).start()
        self.addCleanup(srv.stop)
        token = srv.login()
        users = [srv.create_user(token, username="user%d" % i)["id"] for i in range(4)]
        w = Writers(self, srv, token, users)
        w.burst(rounds, "before")
        self.assertNotIn(503, w.codes)
        return srv, token, users, w

    def full_disk(self, db, mnt):
        srv, token, users, w = self.writing(db, 20)
        filler = fill(mnt)
        full_from = len(w.codes)
        for _ in range(40):  # until the disk refuses (bounded)
            w.burst(10, "full")
            if 503 in w.codes[full_from:]:
                break
        self.assertIn(503, w.codes[full_from:], "the full disk never refused a write")
        self.reads_go_on(srv, token, users[0])
        os.unlink(filler)  # space returns: writes work again, by themselves
        deadline = time.monotonic() + 30
        while w.create("after") != 201 and time.monotonic() < deadline:
            time.sleep(0.2)
        healed = len(w.codes)
        w.burst(10, "healed")
        self.assertEqual(set(w.codes[healed:]) - {200, 201}, set(), w.codes[healed:])
        self.assertEqual(srv.stop(), 0)
        srv2 = Server(workdir=self.dir, db=db).start()
        self.addCleanup(srv2.stop)
        w.verify(srv2, srv2.login())
        print("full disk: %d writes acknowledged, %d refused with 503" % (
            w.codes.count(200) + w.codes.count(201), w.codes.count(503)))

    def read_only(self, db, make_read_only, make_writable):
        """Writes acknowledged while writable survive a spell of read-only:
        writes then are 503, reads go on."""
        srv, token, users, w = self.writing(db, 10)
        srv = w.srv = make_read_only(srv)
        start = len(w.codes)
        w.burst(3, "ro")
        self.assertEqual(set(w.codes[start:]), {503}, w.codes[start:])
        self.reads_go_on(srv, token, users[0])
        srv = make_writable(srv)
        w.verify(srv, srv.login())


@unittest.skipUnless(DB_KIND == "sqlite", "SQLite only")
class Sqlite(FaultTest):
    def test_full_disk(self):
        mnt = self.mount("32m")  # room for the WAL of the writes before
        self.full_disk("sqlite:" + os.path.join(mnt, "usersd.db"), mnt)

    def test_read_only_file(self):
        # A database file the server may read but not write. Root writes
        # anything: as root the server then runs as nobody, in a folder of
        # its own (SQLite makes its -wal and -shm files there), from a copy
        # of the binary in this test's folder: the build folder may be
        # where nobody can enter (a clone under /root).
        root = os.geteuid() == 0
        data = os.path.join(self.dir, "data")
        os.mkdir(data)
        os.chmod(self.dir, 0o755)
        path = os.path.join(data, "usersd.db")
        db = "sqlite:" + path
        binary = os.path.join(self.dir, "usersd")
        shutil.copy2(BIN, binary)
        os.chmod(binary, 0o755)

        def as_nobody():
            os.chdir(data)
            os.setgid(65534)
            os.setgroups([])
            os.setuid(65534)

        def restart(srv, preexec):
            self.assertEqual(srv.stop(), 0)
            new = Server(workdir=self.dir, db=db)
            new.bin = binary
            real = subprocess.Popen

            def popen(*a, **kw):
                kw["preexec_fn"] = preexec
                return real(*a, **kw)
            subprocess.Popen = popen  # the harness starts the server with it
            try:
                new.start()
            finally:
                subprocess.Popen = real
            self.addCleanup(new.stop)
            return new

        def make_read_only(srv):
            if root:
                os.chown(data, 65534, 65534)
                for f in os.listdir(data):
                    os.chown(os.path.join(data, f), 65534, 65534)
                os.chown(path, 0, 0)
            os.chmod(path, 0o444)
            return restart(srv, as_nobody if root else None)

        def make_writable(srv):
            os.chmod(path, 0o644)
            return restart(srv, None)
        self.read_only(db, make_read_only, make_writable)


@unittest.skipUnless(DB_KIND == "postgresql", "PostgreSQL only")
class Postgres(FaultTest):
    def test_full_disk(self):
        # The database's own tablespace on a small tmpfs (PostgreSQL's WAL
        # stays in its data folder, which is not full), in a cluster of the
        # test's own: buffers are shared by a whole cluster, and any backend
        # that evicts a dirty page of the full tablespace (or a checkpoint,
        # which CREATE DATABASE asks for) fails with ENOSPC, so on the
        # shared cluster other tests failed at random while this one ran.
        state = os.path.join(self.dir, "pg")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                              "pg-cluster.sh")
        subprocess.run([script, "start", state], check=True, capture_output=True, timeout=120)
        self.addCleanup(subprocess.run, [script, "stop", state], capture_output=True, timeout=120)
        mnt = self.mount("12m")
        ts = os.path.join(mnt, "ts")
        os.mkdir(ts)
        if os.geteuid() == 0:  # the server runs as postgres then
            shutil.chown(ts, "postgres")
            os.chmod(self.dir, 0o755)
        name = "fd_%d" % os.getpid()
        pg_admin("CREATE TABLESPACE %s LOCATION '%s'" % (name, ts), state)
        self.addCleanup(pg_admin, "DROP TABLESPACE IF EXISTS %s" % name, state)
        base = pg_admin("CREATE DATABASE %s TABLESPACE %s" % (name, name), state)
        self.addCleanup(pg_admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name, state)
        self.full_disk(base + "/" + name, mnt)

    def test_read_only_database(self):
        # default_transaction_read_only for the database; the server's
        # sessions are ended so that it reconnects (a failover to a standby
        # looks the same to it).
        name = "ro_%d" % os.getpid()
        base = pg_admin("CREATE DATABASE " + name)
        self.addCleanup(pg_admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)

        def switch(srv, on):
            pg_admin("ALTER DATABASE %s SET default_transaction_read_only = %s" %
                     (name, "on" if on else "off"))
            pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
                     % name)
            deadline = time.monotonic() + 20  # it reconnects by itself
            while time.monotonic() < deadline and srv.request("GET", "/readyz")[0] != 200:
                time.sleep(0.2)
            return srv
        self.read_only(base + "/" + name, lambda srv: switch(srv, True),
                       lambda srv: switch(srv, False))


if __name__ == "__main__":
    unittest.main()
