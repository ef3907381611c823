#!/usr/bin/env python3
"""`make image` (scripts/image.sh) with Debian's buildah, run with Debian's
podman: the image is one layer built from nothing (no base image pulled),
runs as the non-root user 65532 with a read-only root filesystem and its
data on a volume, answers /healthz and stores a real EventList from the
corpus; kubectl-audit runs from it too.

This machine's container set-up, and why (the same flags work wherever
podman does): crun refuses cgroups in hybrid mode (v1 controllers beside
a v2 mount), so the runtime is runc with the cgroupfs manager; the VM does
not permit raising RLIMIT_NPROC, so podman's default ulimits are dropped
(a containers.conf of this test's own); storage is vfs in a temporary
root, so the test leaves nothing behind; the network is the host's.

Environment: ANNALS_BINARY, ANNALS_CORPUS_DIR, ANNALS_SOURCE_DIR.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

ANNALS = os.environ["ANNALS_BINARY"]
CORPUS = os.environ["ANNALS_CORPUS_DIR"]
SOURCE = os.environ["ANNALS_SOURCE_DIR"]
USER = 65532


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="annals-image-")
        storage = ["--root", cls.dir + "/root", "--runroot", cls.dir + "/run", "--storage-driver", "vfs"]
        conf = cls.dir + "/containers.conf"
        with open(conf, "w") as f:
            f.write('[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n')
        cls.env = dict(os.environ, CONTAINERS_CONF=conf, ANNALS_BUILDAH_FLAGS=" ".join(storage))
        cls.podman = ["podman", *storage, "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
        cls.image = "localhost/annals:test"
        r = subprocess.run(["sh", os.path.join(SOURCE, "scripts", "image.sh"), os.path.dirname(ANNALS), cls.image],
                           capture_output=True, text=True, env=cls.env)
        if r.returncode != 0:
            raise RuntimeError("scripts/image.sh: " + r.stdout + r.stderr)
        cls.containers = []

    @classmethod
    def tearDownClass(cls):
        for c in cls.containers:
            subprocess.run(cls.podman + ["rm", "-f", c], capture_output=True, env=cls.env)
        subprocess.run(cls.podman + ["rmi", "-f", cls.image], capture_output=True, env=cls.env)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_podman(self, *args, check=True):
        r = subprocess.run(self.podman + list(args), capture_output=True, text=True, env=self.env, timeout=120)
        if check:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def test_the_image_is_built_from_nothing_and_runs_as_non_root(self):
        info = json.loads(self.run_podman("image", "inspect", self.image).stdout)[0]
        self.assertEqual(len(info["RootFS"]["Layers"]), 1)  # from scratch: no base image's layers
        cfg = info["Config"]
        self.assertEqual(cfg["User"], f"{USER}:{USER}")
        self.assertEqual(cfg["Entrypoint"], ["/usr/bin/annals"])
        self.assertIn("/var/lib/annals", cfg["Volumes"])
        # Nothing in it but the binaries, their libraries and a few files.
        files = self.run_podman("run", "--rm", "--ulimit", "host", "--network", "host", "--entrypoint",
                                "/usr/bin/kubectl-audit", self.image, "--help")
        self.assertIn("--url", files.stdout + files.stderr)

    def test_it_serves_and_stores_a_real_event_list_on_its_volume(self):
        data = os.path.join(self.dir, "data")
        os.makedirs(data)
        os.chown(data, USER, USER)
        port = free_port()
        name = "annals-image-test"
        self.containers.append(name)
        self.run_podman("run", "-d", "--name", name, "--read-only", "--ulimit", "host", "--network", "host",
                        "-v", data + ":/var/lib/annals", self.image,
                        "serve", "--data=/var/lib/annals", f"--listen=127.0.0.1:{port}")
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        health = None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                    health = r.read().decode().strip()
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        logs = self.run_podman("logs", name, check=False)
        self.assertEqual(health, "ok", logs.stdout + logs.stderr)
        with open(os.path.join(CORPUS, "k8s-audit", "audit2rbac-demo.jsonl")) as f:
            items = [json.loads(l) for l in f if l.strip()]
        body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}).encode()
        req = urllib.request.Request(url + "/v1/ingest/k8s-audit", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            answer = json.loads(r.read())
        self.assertEqual(answer["stored"], len({e["auditID"] for e in items}))
        # The ledger's files are on the volume, written by the non-root user.
        owners = {os.stat(os.path.join(d, f)).st_uid for d, _, fs in os.walk(data) for f in fs}
        self.assertEqual(owners, {USER})
        self.assertTrue(os.path.exists(os.path.join(data, "log", "checkpoints.log")))
        # The root filesystem is read-only, and the process is not root.
        inspect = json.loads(self.run_podman("container", "inspect", name).stdout)[0]
        self.assertTrue(inspect["HostConfig"]["ReadonlyRootfs"])
        status = self.run_podman("exec", name, "/usr/bin/annals", "keygen", "--name", "x/y", "--out",
                                 "/var/lib/annals/probe.key")
        self.assertEqual(os.stat(os.path.join(data, "probe.key")).st_uid, USER, status.stdout)
        touch = self.run_podman("exec", "--user", "0", name, "/usr/bin/annals", "keygen", "--name", "x/y", "--out",
                                "/probe.key", check=False)
        self.assertNotEqual(touch.returncode, 0)  # even root cannot write outside the volume
        self.assertIn("Read-only file system", touch.stdout + touch.stderr)
        self.run_podman("stop", "-t", "20", name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
