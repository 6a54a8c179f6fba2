"""The Python client as a developer gets it: a fresh virtual environment,
`pip install` of clients/python with no network (PyPI is not asked: pip
takes the build tools from Debian's wheels in /usr/share/python-wheels),
then python_client_checks.py run by that environment's python against a
real usersd of the driver under test."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.normpath(os.path.join(HERE, "..", "..", "clients", "python"))
WHEELS = "/usr/share/python-wheels"  # python3-pip-whl, -setuptools-whl, -wheel-whl
NEEDED = "python3-venv and python3-wheel-whl (scripts/install-deps.sh test)"


def run(cmd, timeout, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, **kw)


class PythonClient(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="usersd-pyclient-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def test_fresh_venv_install_and_every_call(self):
        # A copy: pip builds in the source folder (build/, *.egg-info), and
        # the two drivers' runs may build at the same time.
        src = os.path.join(self.dir, "src")
        shutil.copytree(CLIENT, src, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__"))
        venv = os.path.join(self.dir, "venv")
        t0 = time.monotonic()
        r = run([sys.executable, "-m", "venv", venv], 120)
        self.assertEqual(r.returncode, 0, "python3 -m venv failed; needs %s:\n%s"
                         % (NEEDED, r.stdout))
        py = os.path.join(venv, "bin", "python")
        env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                   PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPATH", None)
        t1 = time.monotonic()
        r = run([py, "-m", "pip", "install", "--no-compile", "--no-index", "--find-links", WHEELS,
                 src], 180, env=env)
        self.assertEqual(r.returncode, 0, "pip install ./clients/python failed offline; "
                         "needs %s:\n%s" % (NEEDED, r.stdout))
        self.assertIn("Successfully installed usersd-", r.stdout)
        t2 = time.monotonic()
        # Every call, bad input, the README's block, streams across restarts.
        r = run([py, "-m", "unittest", "-v", "python_client_checks"], 240, env=env, cwd=HERE)
        sys.stderr.write(r.stdout)
        sys.stderr.write("venv %.1f s, pip install %.1f s, checks %.1f s\n"
                         % (t1 - t0, t2 - t1, time.monotonic() - t2))
        self.assertEqual(r.returncode, 0, "python_client_checks failed (output above)")
        self.assertRegex(r.stdout, r"\nOK")


if __name__ == "__main__":
    unittest.main()
