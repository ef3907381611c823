#!/usr/bin/env python3
"""annals scraped by Debian's real Prometheus (issue 22, docs/operations.md
"Monitoring"): the shipped rules pass `promtool check rules` and load
healthy into a running Prometheus that scrapes a running `annals serve`
fed the corpus's audit events; the key series, read back by PromQL over
Prometheus's HTTP API, equal what annals served and what was posted; the
recording rules evaluate; every PromQL expression of the Grafana dashboard
is accepted; and /metrics follows Prometheus's naming conventions
(counters end in _total, base units, no per-connection labels).

Environment: ANNALS_BINARY, ANNALS_CORPUS_DIR, ANNALS_SOURCE_DIR.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

ANNALS = os.environ["ANNALS_BINARY"]
CORPUS = os.environ["ANNALS_CORPUS_DIR"]
SOURCE = os.environ["ANNALS_SOURCE_DIR"]
RULES = os.path.join(SOURCE, "deploy", "prometheus", "annals-rules.yaml")
DASHBOARD = os.path.join(SOURCE, "deploy", "grafana", "annals-dashboard.json")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def post(url, body):
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def parse_metrics(text):
    """{series: value} and {name: type} of a Prometheus text page."""
    values, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
        elif line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            values[series] = float(value)
    return values, types


class PrometheusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="annals-prometheus-")
        cls.annals = subprocess.Popen([ANNALS, "serve", "--data", cls.dir + "/data", "--listen", "127.0.0.1:0"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        cls.url = None
        while cls.url is None:
            line = cls.annals.stdout.readline()
            if not line:
                raise RuntimeError("annals did not start")
            if line.startswith("url: "):
                cls.url = line[5:].strip()
        # The corpus's audit events (one per line) as the webhook posts them.
        items = []
        with open(os.path.join(CORPUS, "k8s-audit", "audit2rbac-demo.jsonl")) as f:
            items = [json.loads(l) for l in f if l.strip()]
        cls.posted = len({e["auditID"] for e in items})
        answer = post(cls.url + "/v1/ingest/k8s-audit",
                      json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}).encode())
        assert answer["stored"] == cls.posted, answer
        # Again: every one a duplicate. And a line that is not JSON: refused.
        again = post(cls.url + "/v1/ingest/k8s-audit",
                     json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}).encode())
        assert again["duplicates"] == cls.posted, again
        try:
            post(cls.url + "/v1/ingest/events", b"{not json\n")
            raise AssertionError("a malformed line was taken")
        except urllib.error.HTTPError as e:
            assert e.code == 400, e.code
        port = free_port()
        cls.prom_url = f"http://127.0.0.1:{port}"
        host = urllib.parse.urlparse(cls.url).netloc
        with open(cls.dir + "/prometheus.yml", "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES}
scrape_configs:
  - job_name: annals
    static_configs:
      - targets: ['{host}']
""")
        cls.prom = subprocess.Popen(["prometheus", "--config.file=" + cls.dir + "/prometheus.yml",
                                     "--storage.tsdb.path=" + cls.dir + "/tsdb",
                                     "--web.listen-address=127.0.0.1:" + str(port)],
                                    stdout=subprocess.DEVNULL, stderr=open(cls.dir + "/prometheus.log", "w"))

    @classmethod
    def tearDownClass(cls):
        for p in (cls.prom, cls.annals):
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def query(self, expr):
        body = json.loads(get(self.prom_url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        self.assertEqual(body["status"], "success", body)
        return body["data"]["result"]

    def wait_for(self, expr, pred=lambda r: bool(r), timeout=60):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.query(expr)
                if pred(last):
                    return last
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.5)
        self.fail(f"{expr}: {last}")

    def annals_metrics(self):
        return parse_metrics(get(self.url + "/metrics").decode())

    def test_rules_pass_promtool(self):
        r = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout + r.stderr)

    def test_each_alert_fires_on_its_failure_and_not_on_health(self):
        r = subprocess.run(["promtool", "test", "rules", "annals-rules-test.yaml"], capture_output=True, text=True,
                           cwd=os.path.dirname(RULES))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout + r.stderr)

    def test_prometheus_scrapes_annals_and_the_series_are_what_was_posted(self):
        up = self.wait_for('up{job="annals"}', lambda r: r and r[0]["value"][1] == "1")
        self.assertEqual(len(up), 1)
        stored = self.wait_for('annals_events_stored_total{source="k8s-audit"}')
        self.assertEqual(float(stored[0]["value"][1]), self.posted)
        dups = self.wait_for('annals_events_deduplicated_total{source="k8s-audit"}')
        self.assertEqual(float(dups[0]["value"][1]), self.posted)
        self.wait_for('annals_events_rejected_total > 0')
        values, _ = self.annals_metrics()
        entries = self.wait_for("annals_log_entries")
        self.assertEqual(float(entries[0]["value"][1]), values["annals_log_entries"])
        # The checkpoint covers what was posted, and its age is small.
        self.wait_for("annals_checkpoint_size >= %d" % self.posted)
        age = self.wait_for("time() - annals_checkpoint_timestamp_seconds")
        self.assertLess(float(age[0]["value"][1]), 120)
        self.assertGreaterEqual(float(age[0]["value"][1]), 0)

    def test_the_rules_load_healthy_and_the_recording_rules_evaluate(self):
        self.wait_for('up{job="annals"}', lambda r: r and r[0]["value"][1] == "1")
        deadline = time.time() + 60
        while True:
            groups = json.loads(get(self.prom_url + "/api/v1/rules"))["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            if rules and all(r.get("health") == "ok" for r in rules) or time.time() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual({g["name"] for g in groups}, {"annals.recording", "annals.alerts"})
        bad = [(r["name"], r.get("health"), r.get("lastError")) for r in rules if r.get("health") != "ok"]
        self.assertEqual(bad, [])
        names = {r["name"] for r in rules}
        for alert in ("AnnalsIngestStalled", "AnnalsCheckpointStale", "AnnalsDiskNearlyFull", "AnnalsForwarderLagging",
                      "AnnalsLogDamaged", "AnnalsWitnessRefusing"):
            self.assertIn(alert, names)
        # Nothing is wrong with this annals: no alert fires.
        firing = [r["name"] for r in rules if r.get("type") == "alerting" and r.get("state") == "firing"]
        self.assertEqual(firing, [])
        unsigned = self.wait_for("annals:unsigned_entries")
        self.assertEqual(float(unsigned[0]["value"][1]), 0)
        rate = self.wait_for('annals:events_stored:rate5m{source="k8s-audit"}')
        self.assertGreaterEqual(float(rate[0]["value"][1]), 0)

    def test_every_dashboard_expression_is_valid_promql(self):
        with open(DASHBOARD) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        self.assertGreaterEqual(len(exprs), 10)
        self.wait_for('up{job="annals"}', lambda r: r and r[0]["value"][1] == "1")
        for e in exprs:
            q = e.replace("$__rate_interval", "1m").replace("$instance", ".*")
            self.query(q)  # asserts status success
        # And they name series annals serves.
        _, types = self.annals_metrics()
        for e in exprs:
            for name in re.findall(r"\bannals_[a-z0-9_]+", e):
                if name.startswith(("annals_witness_", "annals_archive_", "annals_http_denied")):
                    continue  # served only with --witness-policy, --archive, auth
                self.assertIn(name, types, e)

    def test_metric_names_follow_prometheus_conventions(self):
        values, types = self.annals_metrics()
        self.assertGreater(len(types), 20)
        for name, kind in types.items():
            self.assertTrue(name.startswith("annals_"), name)
            self.assertTrue(re.fullmatch(r"[a-z][a-z0-9_]*", name), name)
            if kind == "counter":
                self.assertTrue(name.endswith("_total"), f"counter {name} does not end in _total")
            else:
                self.assertFalse(name.endswith("_total"), f"gauge {name} ends in _total")
            for unit in ("_microseconds", "_milliseconds", "_ms", "_us", "_kb", "_mb", "_kilobytes", "_megabytes"):
                self.assertFalse(name.endswith(unit) or (unit + "_") in name, f"{name}: not a base unit")
        allowed = {"source", "stage", "method", "kind", "name", "reason", "resource", "witness", "role", "result",
                   "cluster", "path", "endpoint", "index"}
        for series in values:
            for label in re.findall(r'([a-z_]+)="', series):
                self.assertIn(label, allowed, series)


if __name__ == "__main__":
    unittest.main(verbosity=2)
