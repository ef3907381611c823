#!/usr/bin/env python3
"""`annals serve --demo` (issue 22): the bundled real audit events load at
start, and the README's demo commands answer what it prints (the pod that
held 172.17.0.6 before and after its reuse, nginx's history with who did
what, deletes in search, the log verified); a second start with --demo
stores nothing new.

Environment: ANNALS_BINARY.
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

ANNALS = os.environ["ANNALS_BINARY"]


def annals(*args):
    r = subprocess.run([ANNALS, *args], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"annals {' '.join(args)}: {r.stdout}{r.stderr}")
    return r.stdout


class DemoTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="annals-demo-")
        self.proc = None

    def tearDown(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self):
        self.proc = subprocess.Popen([ANNALS, "serve", "--data", self.dir + "/data", "--listen", "127.0.0.1:0",
                                      "--demo"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.url, out = None, ""
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.fail("annals did not get ready:\n" + out)
            out += line
            if line.startswith("url: "):
                self.url = line[5:].strip()
            # stdout (url, ready) and stderr (the demo's line) share the pipe
            # in no fixed order.
            if self.url and "ready: " in out and "demo: " in out:
                return out

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None

    def test_the_readme_demo(self):
        out = self.start()
        self.assertIn("demo: 93 events loaded (93 new)", out)
        self.assertIn("ready: 93 entries", out)
        before = annals("whois", "172.17.0.6", "--url", self.url, "--at", "2024-03-01T10:00:30Z").splitlines()
        self.assertEqual(before[1].split()[:6], ["172.17.0.6", "default", "nginx", "-", "minikube", "dictionary1"])
        after = annals("whois", "172.17.0.6", "--url", self.url, "--at", "2024-03-01T10:00:55Z").splitlines()
        self.assertEqual(after[1].split()[:3], ["172.17.0.6", "default", "nginx-2"])
        history = [l.split() for l in annals("history", "pods/nginx", "-n", "default", "--url", self.url).splitlines()[1:]]
        self.assertEqual([(h[1], h[4]) for h in history], [("create", "alice"), ("patch", "bob"), ("delete", "alice")])
        deletes = annals("search", "--url", self.url, "--verb", "delete").splitlines()[1:]
        self.assertGreaterEqual(len(deletes), 5)
        self.assertTrue(all(" delete " in l for l in deletes))
        key = annals("key", "show", "--data", self.dir + "/data").strip()
        v = annals("verify", "--url", self.url, "--key", key)
        self.assertIn("size 93 (previously trusted 0)", v)
        with urllib.request.urlopen(self.url + "/ui/", timeout=10) as r:
            self.assertEqual(r.status, 200)
        # Again: the same events, nothing new.
        self.stop()
        out = self.start()
        self.assertIn("demo: 93 events loaded (0 new)", out)
        self.assertIn("ready: 93 entries", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
