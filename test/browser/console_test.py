#!/usr/bin/env python3
"""The console (/ui/) in a real browser: Debian's headless Chromium driven by
ChromeDriver (python3-selenium), against the real `annals` binary loaded with
the demo's events (demo/audit.jsonl: the corpus's Falco and audit2rbac audit
events, and real Pod and Service objects of the k9s fixtures in a scripted
timeline). Every view's
answer on the page is checked against the HTTP API's own answer; deep links,
keyboard zoom, live updates, a namespace-limited reader, and answers altered
in flight (a proxy between the browser and annals) shown as failing
verification. The page's verifier (verify.js) is also run in the browser on
the public RFC 6962 and signed-note vectors. Screenshots of every view go to
$ANNALS_SCREENSHOT_DIR.

Environment: ANNALS_BINARY, ANNALS_CORPUS_DIR, ANNALS_SCREENSHOT_DIR.
"""
import base64
import glob
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ANNALS = os.environ["ANNALS_BINARY"]
CORPUS = os.environ["ANNALS_CORPUS_DIR"]
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SHOTS = os.environ.get("ANNALS_SCREENSHOT_DIR", tempfile.mkdtemp(prefix="console-shots-"))

BASE = "2024-03-01T10:00:"  # the scripted timeline's minute
READER_TOKEN = "reader-token-for-default"
LOADER_TOKEN = "loader-token"


class Server:
    """One `annals serve` on a free loopback port, stopped by stop()."""

    def __init__(self, args=()):
        self.dir = tempfile.mkdtemp(prefix="annals-console-")
        self.proc = subprocess.Popen([ANNALS, "serve", "--data", self.dir + "/data", "--listen", "127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.url = None
        self.vkey = None
        deadline = time.time() + 30
        while time.time() < deadline and not (self.url and self.vkey):
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("url: "):
                self.url = line[5:].strip()
            if line.startswith("verifier key: "):
                self.vkey = line[len("verifier key: "):].strip()
        if not self.url:
            raise RuntimeError("annals did not start")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.wait_ready()

    def wait_ready(self):
        for _ in range(300):
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        raise RuntimeError("annals not ready")

    def request(self, method, path, body=None, token=None, expect=200):
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        if expect is not None and status != expect:
            raise AssertionError(f"{method} {path}: {status} {data[:300]!r}")
        return data

    def get(self, path, token=None, expect=200):
        return json.loads(self.request("GET", path, token=token, expect=expect))

    def post(self, path, body, token=None):
        return json.loads(self.request("POST", path, body=body, token=token))

    def wait_projected(self):
        """Until the projections cover every entry (answers include all posted)."""
        for _ in range(300):
            m = self.request("GET", "/metrics").decode() if not getattr(self, "auth", False) else ""
            if not m:
                return time.sleep(1)
            vals = dict(l.split(" ", 1) for l in m.splitlines() if l.startswith(("annals_projection_applied ", "annals_log_entries ")))
            if vals.get("annals_projection_applied") == vals.get("annals_log_entries"):
                return
            time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def load_k9s(name):
    with open(os.path.join(CORPUS, "k8s-objects", "k9s", name)) as f:
        return json.load(f)


def audit_event(verb, obj, second, user="alice", code=None, resource="pods", response=None):
    m = obj["metadata"]
    ts = f"{BASE}{second:02d}.000000Z"
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{verb}/{m['name']}/{second}")), "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/{m['namespace']}/{resource}/{m['name']}", "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]}, "sourceIPs": ["10.0.0.7"],
        "userAgent": "kubectl/v1.29.0",
        "objectRef": {"resource": resource, "namespace": m["namespace"], "name": m["name"], "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": code or (201 if verb == "create" else 200)},
        "responseObject": response if response is not None else obj,
        "requestReceivedTimestamp": ts, "stageTimestamp": ts,
    }


def load_corpus(server, token=None):
    """Posts the demo's events (demo/audit.jsonl, `serve --demo`: the audit
    corpus's audit2rbac and Falco events, and the k9s objects' scripted
    timeline: the Service dictionary1 at :05; nginx (172.17.0.6) created at
    :10 by alice, labelled app=dictionary1 at :20 by bob, deleted at :40;
    nginx-2, same IP, new uid, created at :50)."""
    with open(os.path.join(SOURCE, "demo", "audit.jsonl"), "rb") as f:
        server.post("/v1/ingest/events", f.read(), token)


class TamperProxy:
    """A proxy in front of annals that alters answers when told to: `mode`
    is None (pass through), "entry" (one byte of the entry in
    /v1/entries/N, and the event to match, so the change is not obvious),
    or "proof" (the first inclusion-proof hash of a question's receipt)."""

    def __init__(self, upstream):
        self.mode = None
        u = urllib.parse.urlparse(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept", "last-event-id")}
                c.request("GET", self.path, headers=headers)
                r = c.getresponse()
                body = r.read()
                if r.status == 200 and proxy.mode:
                    body = proxy.alter(self.path, body)
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def alter(self, path, body):
        if self.mode == "entry" and path.startswith("/v1/entries/"):
            j = json.loads(body)
            raw = bytearray(base64.b64decode(j["entry"]))
            i = raw.rfind(b'"verb":"') + len('"verb":"')
            raw[i:i + 1] = b"X"  # e.g. "create" -> "Xreate" in the payload
            j["entry"] = base64.b64encode(bytes(raw)).decode()
            # A careful forger makes the leaf hash match the altered bytes.
            j["leaf_hash"] = base64.b64encode(hashlib.sha256(b"\x00" + bytes(raw)).digest()).decode()
            return json.dumps(j).encode()
        if self.mode == "proof" and "proof=true" in path:
            j = json.loads(body)
            for p in j["receipt"]["inclusion_proofs"].values():
                if p["hashes"]:
                    h = bytearray(base64.b64decode(p["hashes"][0]))
                    h[0] ^= 1
                    p["hashes"][0] = base64.b64encode(bytes(h)).decode()
                    break
            return json.dumps(j).encode()
        return body

    def stop(self):
        self.httpd.shutdown()


def new_browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,1000",
              "--user-data-dir=" + tempfile.mkdtemp(prefix="chromium-")):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


class Page:
    """What the browser tests share: open a console path and wait for its
    answer, read the page. Needs self.browser and self.server."""

    def open(self, path, base=None):
        t0 = time.time()
        self.browser.get((base or self.server.url) + path)
        self.wait_ready()
        return time.time() - t0

    def wait_ready(self):
        WebDriverWait(self.browser, 20).until(
            lambda d: d.execute_script("return document.getElementById('main').dataset.ready === 'true'"))


class ConsoleTest(Page, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(SHOTS, exist_ok=True)
        cls.server = Server()
        load_corpus(cls.server)
        cls.server.wait_projected()
        cls.browser = new_browser()

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        cls.server.stop()

    # Helpers.
    def text(self, css):
        return self.browser.find_element(By.CSS_SELECTOR, css).text

    def all(self, css):
        return self.browser.find_elements(By.CSS_SELECTOR, css)

    def shot(self, name):
        self.browser.save_screenshot(os.path.join(SHOTS, name + ".png"))

    def assertNoErrors(self):
        # A 404 from pods/by-ip is an answer ("nobody held it"), which Chromium logs as a failed load.
        severe = [e for e in self.browser.get_log("browser") if e["level"] == "SEVERE" and
                  not ("/v1/pods/by-ip/" in e["message"] and "404" in e["message"])]
        self.assertEqual(severe, [])

    # The views.
    def test_overview_counts_every_event(self):
        self.open("/ui/")
        total = self.server.get("/v1/events?group_by=resource")["total"]
        self.assertIn(f"{total} events in all", self.text("#total"))
        self.shot("overview")
        self.assertNoErrors()

    def test_state_at_t_lists_the_objects_the_api_names_and_verifies_them(self):
        at = BASE + "30Z"
        self.open("/ui/state?at=" + at + "&namespace=default")
        want = self.server.get("/v1/state?at=" + at + "&namespace=default")
        self.assertIn(f"{want['count']} object", self.text("#summary"))
        uids = sorted(r.get_attribute("data-uid") for r in self.all("table.objects tbody tr"))
        self.assertEqual(uids, sorted(o["uid"] for o in want["objects"]))
        self.assertIn("nginx", [o["name"] for o in want["objects"]])
        self.assertEqual(self.all("[data-verified=failed]"), [])
        self.assertTrue(self.all("[data-verified=ok]"))
        self.shot("state")
        # Compare: nginx vanished and nginx-2 appeared between :30 and :55.
        self.open("/ui/state?at=" + at + "&compare=" + BASE + "55Z&namespace=default")
        summary = self.text("#summary")
        self.assertIn("1 appeared, 1 vanished", summary)
        page = self.text("main")
        self.assertIn("nginx-2", page)
        # The rows shown (one appeared, one vanished) are the ones verified.
        rows = self.all("table.objects tbody tr")
        self.assertEqual(len(rows), 2)
        self.assertEqual(len(self.all("table.objects tbody td span.ok")), 2)
        self.assertEqual(self.all("[data-verified=failed]"), [])
        self.shot("state-compare")
        self.assertNoErrors()

    def test_state_at_t_in_pages_is_the_whole_answer(self):
        at = "2030-01-01T00:00:00Z"
        want = self.server.get("/v1/state?at=" + at)
        self.assertGreater(want["count"], 4)
        self.open("/ui/state?at=" + at + "&limit=2")
        self.assertIn(f"{want['count']} objects existed", self.text("#summary"))
        self.assertIn(f"first 2 of {want['count']}", self.text("#shown"))
        self.assertEqual(len(self.all("table.objects tbody tr")), 2)
        more = self.browser.find_element(By.CSS_SELECTOR, "button.more")
        clicks = 0
        while more.is_displayed():
            n = len(self.all("table.objects tbody tr"))
            more.click()
            WebDriverWait(self.browser, 10).until(lambda d: len(self.all("table.objects tbody tr")) > n)
            clicks += 1
            self.assertLess(clicks, 100)
        self.assertEqual(clicks, (want["count"] + 1) // 2 - 1)
        # In the API's order, every row verified, nothing hidden.
        self.assertEqual([r.get_attribute("data-uid") for r in self.all("table.objects tbody tr")],
                         [o["uid"] for o in want["objects"]])
        self.assertEqual(len(self.all("table.objects tbody td span.ok")), want["count"])
        self.assertEqual(self.text("#shown"), "")
        self.assertEqual(self.all("[data-verified=failed]"), [])
        self.assertNoErrors()

    def test_who_had_this_ip_names_the_pod_and_its_neighbours(self):
        at = BASE + "30Z"
        self.open("/ui/ip/172.17.0.6?at=" + at)
        want = self.server.get("/v1/pods/by-ip/172.17.0.6?at=" + at)
        self.assertEqual(want["pod"]["name"], "nginx")
        summary = self.text("#summary")
        self.assertIn("default/nginx", summary)
        self.assertIn(want["pod"]["uid"], self.text("#pod"))
        self.assertIn("dictionary1", self.text("main"))  # the Service selecting it (labelled at :20)
        self.assertEqual([s["name"] for s in want["services"]], ["dictionary1"])
        self.assertIn("nginx-2", self.text("#neighbours"))  # who held it after
        self.assertTrue(self.all("[data-verified=ok]"))
        self.shot("ip")
        # A pasted Hubble flow resolves both ends: the page goes to the first.
        self.open("/ui/ip")
        box = self.browser.find_element(By.NAME, "flow")
        box.send_keys(json.dumps({"flow": {"time": BASE + "55Z", "IP": {"source": "172.17.0.6", "destination": "10.96.0.10"}}}))
        box.find_element(By.XPATH, "./ancestor::form//button").click()
        WebDriverWait(self.browser, 10).until(lambda d: "/ui/ip/172.17.0.6" in d.current_url)
        self.wait_ready()
        WebDriverWait(self.browser, 10).until(lambda d: "nginx-2" in self.text("#summary"))
        self.assertNoErrors()

    def test_provenance_shows_every_action_with_its_user(self):
        self.open("/ui/object/pods/default/nginx")
        want = self.server.get("/v1/history?kind=pods&namespace=default&name=nginx")
        rows = self.all("table.history tbody tr")
        self.assertEqual([int(r.get_attribute("data-index")) for r in rows], [e["index"] for e in want["events"]])
        users = [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows]
        self.assertEqual(users, [e["user"]["username"] for e in want["events"]])
        self.assertIn("bob", users)
        self.assertTrue(self.all("[data-verified=ok]"))
        self.assertIn("Actions by user", self.text("main"))
        self.shot("provenance")
        # A click on a bar filters by that user, in the URL too.
        bars = self.all("figure.chart svg rect.bar")
        self.assertTrue(bars)
        self.browser.get(self.server.url + "/ui/object/pods/default/nginx?user=bob")
        self.wait_ready()
        self.assertEqual(len(self.all("table.history tbody tr")), 1)
        self.assertNoErrors()

    def test_search_table_histogram_and_group_by(self):
        self.open("/ui/search?namespace=default&group_by=user")
        want = self.server.get("/v1/events?namespace=default&group_by=user")
        self.assertIn(f"{want['total']} matching", self.text("#summary"))
        got = {r.find_elements(By.TAG_NAME, "td")[0].text: int(r.find_elements(By.TAG_NAME, "td")[1].text)
               for r in self.all("table.groups tbody tr")}
        self.assertEqual(got, {str(g["key"]): g["count"] for g in want["groups"]})
        rows = self.all("table.events tbody tr")
        self.assertEqual(len(rows), min(want["total"], 200))
        listed = self.server.get("/v1/events?namespace=default&limit=200")
        self.assertEqual([int(r.get_attribute("data-index")) for r in rows], [e["index"] for e in listed["events"]])
        self.assertTrue(self.all("svg.histogram rect.bar"))
        # Every row's inclusion proof was verified in the page.
        self.assertEqual(len(self.all("table.events tbody td span.ok")), len(rows))
        self.assertTrue(self.all("[data-verified=ok]"))
        self.shot("search")
        self.assertNoErrors()

    def test_entry_is_verified_from_its_own_bytes(self):
        want = self.server.get("/v1/entries/3")
        self.open("/ui/entry/3")
        self.assertTrue(self.all("section.proof[data-verified=ok]"))
        shown = json.loads(self.browser.find_element(By.CSS_SELECTOR, "pre.json").text)
        self.assertEqual(shown, want["event"])
        # Its fields, read from the event (metadata version 2 does not repeat them).
        self.assertEqual(want["meta"]["type"], "k8s.audit")
        self.assertNotIn("audit", want["meta"])
        kv = self.text("table.kv")
        for field in ("verb", "user", "resource", "time"):
            self.assertIn(field, kv)
        self.assertIn(want["event"]["user"]["username"], kv)
        self.assertIn(want["event"]["verb"], kv)
        self.shot("entry")
        self.assertNoErrors()

    def test_timeline_rows_marks_zoom_and_detail(self):
        self.open("/ui/timeline?namespace=default&from=" + BASE + "00Z&to=" + BASE + "59Z")
        want = self.server.get("/v1/events?namespace=default&from=" + BASE + "00Z&to=" + BASE + "59Z&limit=1000")
        writes = [e for e in want["events"] if e["verb"] in ("create", "update", "patch", "delete") and e["name"]]
        marks = self.all(".timeline .mark")
        self.assertEqual(sorted(int(m.get_attribute("data-index")) for m in marks), sorted(e["index"] for e in writes))
        self.assertEqual(len(self.all(".timeline .mark.delete")), 1)
        self.assertIn("nginx-2", self.text("table.timeline-rows"))
        self.shot("timeline")
        # Keyboard: a click on a mark (Enter) shows the change and verifies its entry.
        first = self.all(".timeline .mark")[0]
        self.browser.execute_script("arguments[0].focus()", first)
        first.send_keys("\n")
        WebDriverWait(self.browser, 10).until(lambda d: self.all(".detail [data-verified=ok]"))
        self.shot("timeline-detail")
        # "+" zooms in: the URL's range halves around the middle.
        chart = self.browser.find_element(By.CSS_SELECTOR, ".timeline")
        self.browser.execute_script("arguments[0].focus()", chart)
        chart.send_keys("+")
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.browser.current_url).query)
        span = (time.mktime(time.strptime(q["to"][0][:19], "%Y-%m-%dT%H:%M:%S")) -
                time.mktime(time.strptime(q["from"][0][:19], "%Y-%m-%dT%H:%M:%S")))
        self.assertAlmostEqual(span, 29.5, delta=1.1)
        self.assertNoErrors()

    def test_timeline_live_updates_from_watch(self):
        self.open("/ui/timeline?namespace=live-ns&from=" + BASE + "00Z&to=" + BASE + "59Z")
        self.browser.find_element(By.ID, "live").click()
        WebDriverWait(self.browser, 10).until(lambda d: self.text(".controls [role=status]") == "live")
        pod = load_k9s("po.json")
        pod["metadata"]["namespace"] = "live-ns"
        pod["metadata"]["name"] = "arrives-live"
        pod["metadata"]["uid"] = "7d3c9f0e-1111-4a2b-8c3d-4e5f60718293"
        pod["status"]["podIP"] = "10.99.0.1"
        self.server.post("/v1/ingest/k8s-audit", json.dumps(audit_event("create", pod, 45)).encode())
        WebDriverWait(self.browser, 15).until(lambda d: self.all(".timeline .mark"))
        self.assertIn("arrives-live", self.text("table.timeline-rows"))
        self.shot("timeline-live")
        self.assertNoErrors()

    def test_deep_links_survive_a_reload(self):
        for path, needle in (("/ui/object/services/default/dictionary1", "dictionary1"),
                             ("/ui/ip/172.17.0.6?at=" + BASE + "55Z", "nginx-2"),
                             ("/ui/search?user=bob&verb=patch", "1 matching event")):
            self.open(path)
            self.assertIn(needle, self.text("main"))
            self.browser.refresh()
            self.wait_ready()
            self.assertIn(needle, self.text("main"))

    def test_load_time(self):
        # Printed, not asserted: the benchmark is bench/console_bench (docs/console.md).
        for path in ("/ui/", "/ui/timeline?namespace=default", "/ui/search?namespace=default"):
            print(f"load {path}: {self.open(path) * 1000:.0f} ms", file=sys.stderr)

    # Verification failures.
    def test_an_altered_entry_is_shown_failing_verification(self):
        proxy = TamperProxy(self.server.url)
        try:
            self.open("/ui/entry/60", base=proxy.url)
            self.assertTrue(self.all("section.proof[data-verified=ok]"))
            proxy.mode = "entry"
            self.open("/ui/entry/60", base=proxy.url)
            self.assertTrue(self.all("section.proof[data-verified=failed]"))
            self.assertIn("does not hash", self.text("section.proof"))
            self.assertEqual(self.all("pre.json"), [])  # nothing shown from the altered answer
            self.shot("entry-tampered")
            proxy.mode = "proof"
            self.open("/ui/object/pods/default/nginx", base=proxy.url)
            self.assertTrue(self.all("[data-verified=failed]"))
            self.assertIn("Verification failed", self.text("main"))
            self.shot("provenance-tampered")
            # One altered proof among a search page's marks exactly its row.
            self.open("/ui/search?namespace=default", base=proxy.url)
            self.assertTrue(self.all("[data-verified=failed]"))
            self.assertEqual(len(self.all("table.events tbody td span.bad")), 1)
            self.assertGreater(len(self.all("table.events tbody td span.ok")), 10)
        finally:
            proxy.stop()

    def test_a_pinned_key_of_another_log_fails_every_answer(self):
        other = Server()
        try:
            self.open("/ui/")
            self.browser.execute_script("localStorage.setItem('annals.vkey', arguments[0])", other.vkey)
            self.open("/ui/object/pods/default/nginx")
            self.assertTrue(self.all("[data-verified=failed]"))
            WebDriverWait(self.browser, 10).until(lambda d: "✗" in self.text("#log-status"))
        finally:
            self.browser.execute_script("localStorage.removeItem('annals.vkey')")
            other.stop()

    # verify.js against public vectors, in the browser.
    def test_verifier_matches_the_public_vectors(self):
        self.open("/ui/")
        incl = []
        for path in sorted(glob.glob(os.path.join(CORPUS, "merkle-vectors", "transparency-dev-merkle", "inclusion", "*", "*.json"))):
            with open(path) as f:
                incl.append(json.load(f))
        with open(os.path.join(CORPUS, "merkle-vectors", "rfc6962-reference-tree.json")) as f:
            tree = json.load(f)
        with open(os.path.join(CORPUS, "notes-checkpoints", "signed-note-vectors.json")) as f:
            notes = [v for v in json.load(f)["vectors"] if v.get("alg") == "Ed25519" and v.get("vkey")]
        result = self.browser.execute_async_script("""
          const [incl, tree, notes, done] = arguments;
          (async () => {
            const v = await import('/ui/assets/verify.js');
            const out = {inclusion: [], leaves: [], notes: []};
            for (const t of incl) {
              let ok;
              try {
                const root = await v.rootFromInclusionProof(t.leafIdx, t.treeSize, v.b64decode(t.leafHash), (t.proof || []).map(v.b64decode));
                ok = v.equalBytes(root, v.b64decode(t.root));
              } catch (e) { ok = false; }
              out.inclusion.push([t.desc, ok, !t.wantErr]);
            }
            const fromHex = (h) => new Uint8Array(h.match(/../g) ? h.match(/../g).map((x) => parseInt(x, 16)) : []);
            for (let i = 0; i < tree.leaf_inputs_hex.length; i++)
              out.leaves.push(v.hex(await v.leafHash(fromHex(tree.leaf_inputs_hex[i]))) === tree.node_hashes_hex_by_level[0][i]);
            for (const n of notes) {
              for (const k of [].concat(n.vkey)) {
                const key = await v.parseVerifierKey(k);
                let ok;
                try { await v.verifyNote(n.note, key); ok = true; } catch (e) { ok = false; }
                out.notes.push([n.id, key.name, ok]);
              }
            }
            // A key whose hash does not match its name and key is refused.
            try { await v.parseVerifierKey('PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'); out.badKey = 'accepted'; }
            catch (e) { out.badKey = e.message; }
            done(out);
          })().catch((e) => done({error: String(e)}));
        """, incl, tree, notes)
        self.assertNotIn("error", result)
        self.assertGreater(len(result["inclusion"]), 20)
        for desc, got, want in result["inclusion"]:
            self.assertEqual(got, want, desc)
        self.assertTrue(any(want for _, _, want in result["inclusion"]))
        self.assertEqual(len(result["leaves"]), len(tree["leaf_inputs_hex"]))
        self.assertTrue(all(result["leaves"]))
        self.assertIn("does not match", result["badKey"])
        self.assertGreaterEqual(len(result["notes"]), 8)
        by_id = {n["id"]: n for n in notes}
        for vid, name, got in result["notes"]:
            want = by_id[vid].get("per_key_results") or {}
            if isinstance(want, str):
                want = json.loads(want.replace("'", '"').replace("True", "true").replace("False", "false"))
            self.assertEqual(got, want.get(name) is True, f"{vid} / {name}")


class LimitedReaderTest(Page, unittest.TestCase):
    """A reader limited to namespace default, signed in through the page's
    credentials dialog, sees nothing of other namespaces."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="annals-console-auth-")
        sha = lambda t: hashlib.sha256(t.encode()).hexdigest()
        with open(cls.dir + "/tokens.txt", "w") as f:
            f.write(f"{sha(READER_TOKEN)} dora team-default\n{sha(LOADER_TOKEN)} loader loaders\n")
        with open(cls.dir + "/auth.json", "w") as f:
            json.dump({"tokens": "tokens.txt", "anonymous": ["verify"],
                       "groups": {"team-default": {"roles": ["read"], "namespaces": ["default"]},
                                  "loaders": ["ingest", "read"]}}, f)
        cls.server = Server(["--auth-config", cls.dir + "/auth.json"])
        cls.server.auth = True
        load_corpus(cls.server, LOADER_TOKEN)
        time.sleep(1)
        cls.browser = new_browser()

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_only_its_namespace_is_shown(self):
        b = self.browser
        b.get(self.server.url + "/ui/search")
        self.wait_ready()
        # Anonymous: the question is refused and the credentials dialog opens.
        WebDriverWait(b, 10).until(lambda d: d.find_element(By.ID, "settings").get_attribute("open") is not None)
        self.assertIn("401", b.find_element(By.ID, "main").text)
        b.find_element(By.NAME, "token").send_keys(READER_TOKEN)
        b.find_element(By.CSS_SELECTOR, "#settings button[value=save]").click()
        self.wait_ready()
        WebDriverWait(b, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.events tbody tr"))
        namespaces = {r.find_elements(By.TAG_NAME, "td")[4].text for r in b.find_elements(By.CSS_SELECTOR, "table.events tbody tr")}
        self.assertEqual(namespaces, {"default"})
        want = self.server.get("/v1/events?group_by=hour", token=READER_TOKEN)
        self.assertIn(f"{want['total']} matching", b.find_element(By.ID, "summary").text)
        every = self.server.get("/v1/events?group_by=hour", token=LOADER_TOKEN)
        self.assertLess(want["total"], every["total"])
        b.save_screenshot(os.path.join(SHOTS, "limited-reader.png"))
        # Another namespace: refused, and nothing of it on the page.
        b.get(self.server.url + "/ui/state?at=2030-01-01T00:00:00Z&namespace=kube-system")
        self.wait_ready()
        self.assertIn("403", b.find_element(By.ID, "main").text)
        self.assertEqual(b.find_elements(By.CSS_SELECTOR, "table.objects tbody tr"), [])
        b.get(self.server.url + "/ui/state?at=2030-01-01T00:00:00Z")
        self.wait_ready()
        rows = b.find_elements(By.CSS_SELECTOR, "table.objects tbody tr")
        self.assertTrue(rows)
        self.assertEqual({r.find_elements(By.TAG_NAME, "td")[1].text for r in rows}, {"default"})


class Witness:
    """One `annals witness` for `log_vkey` on a free loopback port."""

    def __init__(self, workdir, name, log_vkey):
        self.name = name
        key = os.path.join(workdir, name + ".key")
        subprocess.run([ANNALS, "keygen", "--name", "witness.example/" + name, "--out", key], check=True,
                       capture_output=True)
        self.proc = subprocess.Popen([ANNALS, "witness", "--data", os.path.join(workdir, name), "--listen",
                                      "127.0.0.1:0", "--key", key, "--log", log_vkey],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.url = self.vkey = None
        while not (self.url and self.vkey):
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("annals witness did not start")
            if line.startswith("url: "):
                self.url = line[5:].strip()
            if line.startswith("verifier key: "):
                self.vkey = line[len("verifier key: "):].strip()
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)


class WitnessedConsoleTest(Page, unittest.TestCase):
    """A log with three witnesses (serve --witness-policy): the console
    checks the cosignatures on the checkpoint each answer rests on, in the
    browser with the witnesses' keys, and says who witnessed it; with two
    witnesses down and a bounded wait, an answer resting on a checkpoint
    short of the quorum is shown as not witnessed."""

    @classmethod
    def setUpClass(cls):
        os.makedirs(SHOTS, exist_ok=True)
        cls.dir = tempfile.mkdtemp(prefix="annals-console-witnessed-")
        key = cls.dir + "/log.key"
        vkey = subprocess.run([ANNALS, "keygen", "--name", "console.example/log", "--out", key], check=True,
                              capture_output=True, text=True).stdout.strip()
        cls.witnesses = [Witness(cls.dir, n, vkey) for n in ("w1", "w2", "w3")]
        with open(cls.dir + "/policy", "w") as f:
            f.write(f"log {vkey}\n")
            for w in cls.witnesses:
                f.write(f"witness {w.name} {w.vkey} {w.url}\n")
            f.write("group two 2 w1 w2 w3\nquorum two\n")
        cls.server = Server(["--key", key, "--witness-policy", cls.dir + "/policy", "--witness-wait", "0.3",
                             "--checkpoint-interval", "50"])
        load_corpus(cls.server)
        cls.server.wait_projected()
        cls.browser = new_browser()

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        cls.server.stop()
        for w in cls.witnesses:
            if w.proc.poll() is None:
                w.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def witnessed(self):
        WebDriverWait(self.browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-witnessed]"))
        return self.browser.find_element(By.CSS_SELECTOR, "[data-witnessed]")

    def test_answers_say_who_witnessed_their_checkpoint(self):
        status = self.server.get("/v1/witnesses")
        self.assertTrue(status["policy"])
        self.assertEqual([w["name"] for w in status["witnesses"]], ["w1", "w2", "w3"])
        self.assertEqual(status["quorum"], "2 of {w1, w2, w3}")
        at = "2030-01-01T00:00:00Z"
        self.open("/ui/state?at=" + at)
        w = self.witnessed()
        self.assertEqual(w.get_attribute("data-witnessed"), "met")
        for name in ("w1", "w2", "w3"):
            self.assertIn(name + " (", w.text)
        self.assertIn("2 of {w1, w2, w3} is met", w.text)
        WebDriverWait(self.browser, 10).until(lambda d: "witnessed by w1, w2, w3" in d.find_element(By.ID, "log-status").text)
        self.browser.save_screenshot(os.path.join(SHOTS, "witnessed.png"))

        # Two witnesses down: the next checkpoint is served after the
        # bounded wait with w1's cosignature alone, and the answer resting
        # on it is shown as not witnessed.
        for w in self.witnesses[1:]:
            w.stop()
        before = int(self.server.get("/v1/witnesses")["checkpoint_size"])
        self.server.post("/v1/ingest/events", json.dumps(audit_event("create", {"metadata": {"name": "late", "namespace": "default"}}, 59)).encode())
        for _ in range(200):
            if int(self.server.get("/v1/witnesses")["checkpoint_size"]) > before:
                break
            time.sleep(0.05)
        self.assertGreater(int(self.server.get("/v1/witnesses")["checkpoint_size"]), before)
        self.server.wait_projected()
        self.open("/ui/state?at=" + at)
        w = self.witnessed()
        self.assertEqual(w.get_attribute("data-witnessed"), "not-met")
        self.assertIn("cosigned by w1 (", w.text)
        self.assertNotIn("w2 (", w.text)
        self.browser.save_screenshot(os.path.join(SHOTS, "not-witnessed.png"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
