"""PostgreSQL at scale: the server's background sweeps never walk the
users table (a generic plan of a prepared statement once did, twice a
second)."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import DB_KIND, Server, db_url


def psql(url, sql):
    state = os.environ["USERSD_PG_STATE"]
    with open(os.path.join(state, "bindir")) as f:
        bin_psql = os.path.join(f.read().strip(), "psql")
    p = subprocess.run([bin_psql, "-At", "-X", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@unittest.skipUnless(DB_KIND == "postgresql", "PostgreSQL's plans")
class BackgroundReads(unittest.TestCase):
    def test_sweeps_never_walk_the_users_table(self):
        d = tempfile.mkdtemp(prefix="usersd-sweeps-")
        db = db_url(d, "sweeps")
        bin_ = os.environ.get("USERSD_BIN", "../../build-test/usersd")
        p = subprocess.run([bin_, "seed", "--db", db, "--users", "3000"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        # no decay: its check is an index range at any size that matters
        srv = Server(["--away-after", "0", "--offline-after", "0"], workdir=d, db=db).start()
        try:
            count = "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'users'"
            # the sweeps run four times a second: after two seconds each
            # prepared statement has run more than five times, so it runs
            # on PostgreSQL's generic plan
            time.sleep(2.0)
            before = int(psql(db, count))
            time.sleep(2.5)  # ten more sweeps (statistics reach the view within a second)
            after = int(psql(db, count))
            self.assertEqual(after, before, "a background sweep scanned every user")
        finally:
            srv.cleanup()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
