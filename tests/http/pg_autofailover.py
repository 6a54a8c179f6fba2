"""pg_auto_failover (Debian's postgresql-15-auto-failover), for `make soak`:
a monitor and two data nodes on loopback, usersd on `pg_autoctl show uri`,
and `pg_autoctl perform failover` under writes with a stream open, with
the checks of pg_failover.py (API.md §13). Skipped unless USERSD_SOAK=1
(it takes about a minute to stand the nodes up)."""
import os
import shutil
import signal
import subprocess
import time
import unittest

from pg_failover import BINDIR, FailoverTest, free_port, pg_argv, pg_dir

AUTOCTL = shutil.which("pg_autoctl")


class AutoFailover:
    """A monitor and two nodes, each run by its own `pg_autoctl run`, in a
    folder under /tmp (the postgres account cannot enter /root)."""

    def __init__(self):
        self.dir = pg_dir("usersd-paf-")
        self.env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(self.dir, "config"),
                        XDG_DATA_HOME=os.path.join(self.dir, "data"),
                        PG_CONFIG=os.path.join(BINDIR, "pg_config"),
                        PATH=BINDIR + ":" + os.environ.get("PATH", ""))
        self.runs = []
        self.ports = [free_port() for _ in range(3)]
        self.mon = os.path.join(self.dir, "monitor")
        self.nodes = [os.path.join(self.dir, "node%d" % i) for i in (1, 2)]

    def start(self):
        self.ctl(["create", "monitor", "--pgdata", self.mon, "--pgport", str(self.ports[0]),
                  "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl"])
        self.run(self.mon)
        monitor = "postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable" % \
            self.ports[0]
        for node, port in zip(self.nodes, self.ports[1:]):
            self.ctl(["create", "postgres", "--pgdata", node, "--pgport", str(port),
                      "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--dbname", "ha",
                      "--monitor", monitor])
            self.run(node)
            self.wait_state(node, ("single", "primary", "secondary"))
        self.wait_state(self.nodes[0], ("primary",))
        self.wait_state(self.nodes[1], ("secondary",))
        uri = self.ctl(["show", "uri", "--pgdata", self.mon, "--formation", "default"]).strip()
        # postgres://host:port,host:port/ha?target_session_attrs=read-write&sslmode=prefer
        self.url = uri.replace("postgres://", "postgresql://postgres@", 1) + "&connect_timeout=2"

    def argv(self, args):
        """pg_autoctl args, as postgres when root, with this formation's
        configuration folders (runuser does not pass the environment on)."""
        return pg_argv(["env"] + ["%s=%s" % (k, self.env[k]) for k in
                                  ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "PG_CONFIG", "PATH")] +
                       [AUTOCTL] + args)

    def ctl(self, args, timeout=120):
        return subprocess.run(self.argv(args), check=True, capture_output=True, text=True,
                              timeout=timeout, env=self.env, cwd=self.dir).stdout

    def run(self, pgdata):
        cmd = self.argv(["run", "--pgdata", pgdata])
        log = open(pgdata + ".log", "ab")
        self.runs.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log,
                                          stdin=subprocess.DEVNULL, cwd=self.dir,
                                          start_new_session=True))
        log.close()

    def wait_state(self, node, states, timeout=90):
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                last = self.ctl(["show", "state", "--pgdata", self.mon])
            except subprocess.CalledProcessError as e:
                last = e.stderr
            rows = [r for r in last.splitlines() if ("127.0.0.1:%s" % self.port_of(node)) in r]
            if rows and rows[0].split("|")[-1].strip() in states and \
                    rows[0].split("|")[-2].strip() in states:
                return
            time.sleep(0.5)
        raise AssertionError("node %s never reached %s:\n%s" % (node, states, last))

    def port_of(self, node):
        return self.ports[1 + self.nodes.index(node)]

    def stop(self):
        for p in self.runs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
        for p in self.runs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        for d in [self.mon] + self.nodes:  # whatever outlived its keeper
            try:
                with open(os.path.join(d, "postmaster.pid")) as f:
                    os.kill(int(f.readline()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(os.environ.get("USERSD_SOAK") == "1", "make soak only (USERSD_SOAK=1)")
@unittest.skipUnless(AUTOCTL and BINDIR, "pg_autoctl (postgresql-15-auto-failover) not installed")
class PgAutoFailover(FailoverTest):
    def setUp(self):
        self.cluster = AutoFailover()
        self.addCleanup(self.cluster.stop)
        self.cluster.start()
        self.start_usersd(self.cluster.url)

    def test_perform_failover_under_load(self):
        timing = {}

        def failover():
            t0 = time.monotonic()
            self.cluster.ctl(["perform", "failover", "--pgdata", self.cluster.mon, "--wait", "60"])
            timing["failover"] = time.monotonic() - t0
        # the switchover is the fault; the promotion is done once it returns
        self.run_fault("pg_auto_failover", failover, 0, lambda: None, expect_down=False)
        print("pg_autoctl perform failover took %.2f s" % timing["failover"])
        self.cluster.wait_state(self.cluster.nodes[1], ("primary",))


if __name__ == "__main__":
    unittest.main()
