#!/usr/bin/env python3
"""console_bench: how long each view of the console (/ui/) takes to show its
answer in a real browser on a large ledger. Not a test: prints figures.

It starts `annals serve` on an existing data directory (make one of 10M events
with `build/bench/questions_bench --keep --http false --dir /work/qb`, which
prints where it kept it), waits until the projections cover the log, picks
real questions from the ledger itself (a busy namespace, a time in the middle
of the history, a pod that existed then, its IP, the busiest user), then
loads each view's URL in Debian's headless Chromium `--runs` times, each a
fresh page load. The time of a load is from the navigation's start to the
moment the view has its answer on the page, every receipt verified
(app.js's performance mark 'annals-ready'): HTML, scripts, the API's
answers, the proofs checked with WebCrypto, the DOM built.

Prints, per view: the median ms to its answer (a search's group-by chart
is drawn after its table and histogram: "answer" is before it), min /
median / max ms to everything, the bytes the API sent, the requests made,
and the rows on the page; with the core count and the disk
bound (sequential 1 MiB writes, fdatasync after each) measured in the same
run. `--cold` also drops the page cache before each load (needs root).

Usage: python3 -W ignore bench/console_bench.py --data DIR [--annals build/annals] [--runs 5] [--cold]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait


def disk_bound(directory, seconds=2.0):
    path = os.path.join(directory, "disk-bound")
    chunk = bytes((i * 2654435761 >> 13) & 0xFF for i in range(1 << 20))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    off, t0 = 0, time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            os.pwrite(fd, chunk, off)
            os.fdatasync(fd)
            off += len(chunk)
    finally:
        os.close(fd)
        os.unlink(path)
    return off / (time.monotonic() - t0)


class Server:
    def __init__(self, annals, data):
        self.proc = subprocess.Popen([annals, "serve", "--data", data, "--listen", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.url = None
        t0 = time.monotonic()
        while not self.url:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("annals exited before it listened")
            if line.startswith("url: "):
                self.url = line[5:].strip()
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        while True:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        self.ready_s = time.monotonic() - t0
        # Until every entry is projected (answers cover the whole log).
        while True:
            m = dict(l.split(" ", 1) for l in self.get_text("/metrics").splitlines()
                     if l.startswith(("annals_projection_applied ", "annals_log_entries ")))
            if m.get("annals_projection_applied") == m.get("annals_log_entries"):
                self.entries = int(m["annals_log_entries"])
                break
            time.sleep(0.5)
        self.projected_s = time.monotonic() - t0

    def get_text(self, path):
        with urllib.request.urlopen(self.url + path, timeout=120) as r:
            return r.read().decode()

    def get(self, path, **params):
        q = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return json.loads(self.get_text(path + ("?" + q if q else "")))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def questions(server):
    """Real questions, picked from what the ledger holds."""
    days = server.get("/v1/events", group_by="day")["groups"]
    mid = days[len(days) // 2]["key"]
    at = f"{mid}T12:00:00Z"
    namespaces = server.get("/v1/events", group_by="namespace", resource="pods")["groups"]
    ns = max((g for g in namespaces if g["key"]), key=lambda g: g["count"])["key"]
    users = server.get("/v1/events", group_by="user")["groups"]
    user = max(users, key=lambda g: g["count"])["key"]
    pods = server.get("/v1/state", at=at, namespace=ns, kind="pods", limit=50)["objects"]
    pod = next(p for p in pods if (p.get("object") or {}).get("status", {}).get("podIP"))
    ip = pod["object"]["status"]["podIP"]
    entry = server.entries // 2
    return [
        ("overview", "/ui/"),
        ("timeline, a namespace, a day", f"/ui/timeline?namespace={ns}&from={mid}T00:00:00Z&to={mid}T23:59:59Z"),
        ("timeline, a namespace, all history", f"/ui/timeline?namespace={ns}"),
        ("state at T, a namespace", f"/ui/state?at={at}&namespace={ns}"),
        ("state at T, whole cluster (first page)", f"/ui/state?at={at}"),
        ("state at T, compare 1 h, a namespace", f"/ui/state?at={mid}T11:00:00Z&compare={at}&namespace={ns}"),
        ("who had this IP", f"/ui/ip/{ip}?at={at}"),
        ("provenance of a pod", f"/ui/object/pods/{ns}/{pod['name']}"),
        ("search, busiest user, by verb", f"/ui/search?user={urllib.parse.quote(user)}&group_by=verb"),
        ("search, a namespace, by user", f"/ui/search?namespace={ns}&group_by=user"),
        ("one entry", f"/ui/entry/{entry}"),
    ]


def new_browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,1000",
              "--user-data-dir=" + tempfile.mkdtemp(prefix="chromium-bench-")):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def load(browser, url):
    browser.get(url)
    WebDriverWait(browser, 300, poll_frequency=0.02).until(
        lambda d: d.execute_script("return document.getElementById('main').dataset.ready === 'true'"))
    return browser.execute_script("""
      const m = performance.getEntriesByName('annals-ready').pop();
      const a = performance.getEntriesByName('annals-answer')[0] || m;
      const api = performance.getEntriesByType('resource').filter((r) => new URL(r.name).pathname.startsWith('/v1/') || new URL(r.name).pathname.startsWith('/log/'));
      return { ms: m ? m.startTime : -1, answer_ms: a ? a.startTime : -1, requests: api.length,
               bytes: api.reduce((s, r) => s + (r.encodedBodySize || 0), 0),
               rows: document.querySelectorAll('main tbody tr').length,
               failed: document.querySelectorAll('[data-verified=failed], .error').length,
               error: (document.querySelector('.error') || {}).textContent || '' };
    """)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="an annals data directory (e.g. questions_bench --keep's)")
    ap.add_argument("--annals", default="build/annals")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each load (root)")
    a = ap.parse_args()

    bound = disk_bound(a.data)
    server = Server(a.annals, a.data)
    print(f"cores {os.cpu_count()}; disk bound {bound / 1e6:.0f} MB/s; {server.entries} entries; "
          f"server ready in {server.ready_s:.1f} s, projections caught up in {server.projected_s:.1f} s")
    browser = new_browser()
    try:
        qs = questions(server)
        load(browser, server.url + "/ui/")  # the browser's own start, not counted
        print(f"{'view':42} {'answer':>7} {'min':>7} {'median':>7} {'max':>7}  {'API bytes':>10} {'requests':>8} {'rows':>6}")
        answers, medians = [], []
        for name, path in qs:
            runs = []
            for _ in range(a.runs):
                if a.cold:
                    subprocess.run(["sync"], check=True)
                    with open("/proc/sys/vm/drop_caches", "w") as f:
                        f.write("3\n")
                r = load(browser, server.url + path)
                if r["failed"]:
                    print(f"{name}: the page shows a failure: {r['error'][:200]}", file=sys.stderr)
                runs.append(r)
            ms = sorted(r["ms"] for r in runs)
            answer = statistics.median(r["answer_ms"] for r in runs)
            answers.append(answer)
            medians.append(statistics.median(ms))
            last = runs[-1]
            print(f"{name:42} {answer:7.0f} {ms[0]:7.0f} {statistics.median(ms):7.0f} {ms[-1]:7.0f}  "
                  f"{last['bytes']:10d} {last['requests']:8d} {last['rows']:6d}   {path}")
        cache = "cold" if a.cold else "warm"
        print(f"answer = median ms to the view's answer on the page (a search's table and histogram); min/median/max = "
              f"ms to everything (a search's group-by too); {a.runs} loads each, {cache} page cache")
        print(f"slowest view: answer {max(answers):.0f} ms, complete {max(medians):.0f} ms")
    finally:
        browser.quit()
        server.stop()


if __name__ == "__main__":
    main()
