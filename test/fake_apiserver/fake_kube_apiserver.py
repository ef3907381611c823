#!/usr/bin/env python3
"""A small Kubernetes API server for the watch collector's integration tests.

Speaks the real wire protocol over HTTP/1.1: paginated lists (limit/continue),
chunked watch streams of JSON frames (ADDED/MODIFIED/DELETED/BOOKMARK/ERROR),
`410 Gone` as an ERROR frame (or as an HTTP 410 answer), bearer-token
authentication (401 with a metav1.Status otherwise), timeoutSeconds, and
TokenReviews (POST /apis/authentication.k8s.io/v1/tokenreviews, answered
201 from a table of tokens, with audiences checked as kube-apiserver does;
the caller must bring the accepted bearer token like any other client).
The test scripts it through /control/* (unauthenticated):

  POST /control/apply   {"path":"/api/v1/pods","type":"ADDED|MODIFIED|DELETED","object":{...}}
                        -> {"rv":"N"}; stamps metadata.resourceVersion
  POST /control/drop    {"partial":bool}  cut every open watch (optionally mid-frame)
  POST /control/garbage {"line":"..."}    send a raw line to every open watch
  POST /control/refuse  {"on":bool}       answer lists and watches with 503
  POST /control/compact {"http410":bool}  forget history: older resumes get 410
  POST /control/token   {"token":"..."}   the bearer token accepted from now on
  POST /control/tokenreview {"token":"...","username":"...","groups":[...],
                         "audiences":[...]}  a token TokenReviews vouch for
                         (audiences default to the API server's); with
                         "forget":true, no longer
  POST /control/review-delay {"seconds":S} answer TokenReviews S seconds late
  GET  /control/stats                     counters

Prints "port: N" on stdout once listening (with --tls-cert/--tls-key, the
same API is also served over TLS: "port: N tls: M"). Objects live in memory
only.
"""
import argparse
import http.server
import json
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

LOCK = threading.Condition()
STATE = {
    "rv": 1000,
    "objects": {},      # path -> {uid: (rv, bytes of the item)}
    "events": {},       # path -> [(rv, frame bytes)]
    "compacted": 0,     # resumes from below this get 410
    "http410": False,
    "refuse": False,
    "generation": 0,    # bumped by /control/drop
    "partial": False,
    "garbage": [],      # (generation, line)
    "stats": {"lists": 0, "watches": 0, "unauthorized": 0, "gone": 0, "open_watches": 0,
              "tokenreviews": 0},
    "reviews": {},      # token -> {"username", "groups", "audiences"}
    "review_delay": 0.0,
}
TOKENREVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
# The audience of projected ServiceAccount tokens by default, and what a
# TokenReview without spec.audiences checks against.
APISERVER_AUDIENCES = ["https://kubernetes.default.svc.cluster.local"]
TOKEN = None
GONE_BODY = None  # the body of HTTP 410 answers (--gone-body)
KINDS = {}  # path -> (kind, apiVersion)


def dumps(o):
    return json.dumps(o, separators=(",", ":")).encode()


def status_body(code, reason, message):
    return dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": message, "reason": reason, "code": code})


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Go's net/http (the real API server) sets TCP_NODELAY; without it a
    # reply's header and body writes wait on the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def send_json(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_POST(self):
        u = urllib.parse.urlparse(self.path)
        if u.path == TOKENREVIEWS:
            return self.token_review()
        req = self.read_body()
        with LOCK:
            if u.path == "/control/apply":
                path, typ, obj = req["path"], req["type"], req["object"]
                STATE["rv"] += 1
                rv = str(STATE["rv"])
                obj.setdefault("metadata", {})["resourceVersion"] = rv
                KINDS[path] = (obj.get("kind", ""), obj.get("apiVersion", ""))
                uid = obj["metadata"]["uid"]
                frame = dumps({"type": typ, "object": obj})
                item = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
                objs = STATE["objects"].setdefault(path, {})
                if typ == "DELETED":
                    objs.pop(uid, None)
                else:
                    objs[uid] = (int(rv), dumps(item))
                STATE["events"].setdefault(path, []).append((int(rv), frame))
                LOCK.notify_all()
                return self.send_json(200, dumps({"rv": rv}))
            if u.path == "/control/drop":
                STATE["generation"] += 1
                STATE["partial"] = bool(req.get("partial"))
                LOCK.notify_all()
                return self.send_json(200, b"{}")
            if u.path == "/control/garbage":
                STATE["garbage"].append((STATE["generation"], req["line"].encode()))
                LOCK.notify_all()
                return self.send_json(200, b"{}")
            if u.path == "/control/token":
                global TOKEN
                TOKEN = req["token"]
                return self.send_json(200, b"{}")
            if u.path == "/control/tokenreview":
                if req.get("forget"):
                    STATE["reviews"].pop(req["token"], None)
                else:
                    STATE["reviews"][req["token"]] = {
                        "username": req["username"], "groups": req.get("groups", []),
                        "audiences": req.get("audiences", APISERVER_AUDIENCES)}
                return self.send_json(200, b"{}")
            if u.path == "/control/review-delay":
                STATE["review_delay"] = float(req.get("seconds", 0))
                return self.send_json(200, b"{}")
            if u.path == "/control/refuse":
                STATE["refuse"] = bool(req.get("on"))
                return self.send_json(200, b"{}")
            if u.path == "/control/compact":
                STATE["compacted"] = STATE["rv"]
                STATE["http410"] = bool(req.get("http410"))
                for p in STATE["events"]:
                    STATE["events"][p] = [e for e in STATE["events"][p] if e[0] > STATE["compacted"]]
                return self.send_json(200, b"{}")
        self.send_json(404, status_body(404, "NotFound", "no such control endpoint"))

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path == "/control/stats":
            with LOCK:
                return self.send_json(200, dumps(STATE["stats"]))
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            with LOCK:
                STATE["stats"]["unauthorized"] += 1
            return self.send_json(401, status_body(401, "Unauthorized", "Unauthorized"))
        with LOCK:
            refuse = STATE["refuse"]
        if refuse:
            return self.send_json(503, status_body(503, "ServiceUnavailable", "refusing (test)"))
        if q.get("watch") in ("1", "true"):
            return self.watch(u.path, q)
        return self.list(u.path, q)

    def token_review(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            with LOCK:
                STATE["stats"]["unauthorized"] += 1
            return self.send_json(401, status_body(401, "Unauthorized", "Unauthorized"))
        with LOCK:
            refuse, delay = STATE["refuse"], STATE["review_delay"]
        if refuse:
            return self.send_json(503, status_body(503, "ServiceUnavailable", "refusing (test)"))
        try:
            tr = json.loads(raw)
            token = tr["spec"]["token"]
            assert tr.get("kind") == "TokenReview" and tr.get("apiVersion") == "authentication.k8s.io/v1"
            assert isinstance(token, str)
        except (ValueError, KeyError, TypeError, AssertionError):
            return self.send_json(400, status_body(400, "BadRequest", "not an authentication.k8s.io/v1 TokenReview"))
        wanted = tr["spec"].get("audiences") or APISERVER_AUDIENCES
        with LOCK:
            STATE["stats"]["tokenreviews"] += 1
            known = STATE["reviews"].get(token)
        if delay:
            time.sleep(delay)
        status = {"user": {}}
        if known is None:
            status["error"] = "[invalid bearer token, token lookup failed]"
        else:
            auds = [a for a in known["audiences"] if a in wanted]
            if not auds:
                status["error"] = "[invalid bearer token, token audiences %s is invalid for the target audiences %s]" % (
                    json.dumps(known["audiences"]), json.dumps(wanted))
            else:
                status = {"authenticated": True, "audiences": auds,
                          "user": {"username": known["username"], "uid": "uid-" + known["username"],
                                   "groups": known["groups"]}}
        tr["metadata"] = {"creationTimestamp": None}
        tr["status"] = status
        try:
            self.send_json(201, dumps(tr))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (review-delay)

    def list(self, path, q):
        with LOCK:
            STATE["stats"]["lists"] += 1
            items = sorted(STATE["objects"].get(path, {}).items())
            rv = STATE["rv"]
            kind, api_version = KINDS.get(path, ("", "v1"))
        limit = int(q.get("limit") or 0) or len(items) or 1
        start = 0
        if q.get("continue"):
            c = json.loads(urllib.parse.unquote(q["continue"]))
            if c["rv"] < STATE["compacted"]:
                return self.send_json(410, status_body(410, "Expired", "continue token expired"))
            start, rv = c["start"], c["rv"]
        page = items[start:start + limit]
        md = {"resourceVersion": str(rv)}
        if start + limit < len(items):
            md["continue"] = json.dumps({"start": start + limit, "rv": rv})
        body = (b'{"kind":' + dumps((kind or "Object") + "List") + b',"apiVersion":' + dumps(api_version) +
                b',"metadata":' + dumps(md) + b',"items":[' + b",".join(v[1][1] for v in page) + b"]}")
        self.send_json(200, body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, path, q):
        since = int(q.get("resourceVersion") or 0)
        timeout = float(q.get("timeoutSeconds") or 300)
        bookmarks = q.get("allowWatchBookmarks") == "true"
        with LOCK:
            STATE["stats"]["watches"] += 1
            if since < STATE["compacted"] and STATE["http410"]:
                STATE["stats"]["gone"] += 1
                return self.send_json(410, GONE_BODY or status_body(410, "Expired", "too old resource version: %d (%d)" % (since, STATE["compacted"])))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with LOCK:
            if since < STATE["compacted"]:
                STATE["stats"]["gone"] += 1
                frame = dumps({"type": "ERROR", "object": json.loads(status_body(
                    410, "Expired", "too old resource version: %d (%d)" % (since, STATE["compacted"])))})
                self.chunk(frame + b"\n")
                self.chunk(b"")
                return
            STATE["stats"]["open_watches"] += 1
            generation = STATE["generation"]
            garbage_seen = len(STATE["garbage"])
        deadline = time.time() + timeout
        last = since
        sent_bookmark = False
        try:
            while True:
                with LOCK:
                    pending = [e for e in STATE["events"].get(path, []) if e[0] > last]
                    garbage = STATE["garbage"][garbage_seen:]
                    garbage_seen = len(STATE["garbage"])
                    dropped = STATE["generation"] != generation
                    partial = STATE["partial"]
                    current = STATE["rv"]
                    kind, api_version = KINDS.get(path, ("", "v1"))
                    if not pending and not garbage and not dropped:
                        LOCK.wait(timeout=0.5)
                        continue_wait = True
                    else:
                        continue_wait = False
                if dropped:
                    if partial:
                        # Half a frame, then the connection dies without the
                        # chunked terminator.
                        self.wfile.write(b"40\r\n{\"type\":\"ADDED\",\"object\":{\"kind\":\"Po")
                        self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                for _, line in garbage:
                    self.chunk(line + b"\n")
                for rv, frame in pending:
                    self.chunk(frame + b"\n")
                    last = rv
                if continue_wait and bookmarks and not sent_bookmark:
                    bm = {"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version,
                          "metadata": {"resourceVersion": str(max(last, current))}}}
                    self.chunk(dumps(bm) + b"\n")
                    last = max(last, current)
                    sent_bookmark = True
                if time.time() > deadline:
                    self.chunk(b"")
                    return
        except (BrokenPipeError, ConnectionResetError, OSError):
            return
        finally:
            with LOCK:
                STATE["stats"]["open_watches"] -= 1


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global TOKEN, GONE_BODY
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", required=True)
    ap.add_argument("--gone-body", help="file whose bytes answer HTTP 410s")
    ap.add_argument("--tls-cert", help="PEM certificate: also serve over TLS")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = ap.parse_args()
    TOKEN = args.token
    if args.gone_body:
        with open(args.gone_body, "rb") as f:
            GONE_BODY = f.read()
    srv = Server(("127.0.0.1", args.port), Handler)
    line = "port: %d" % srv.server_address[1]
    if args.tls_cert:
        tls = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        threading.Thread(target=tls.serve_forever, daemon=True).start()
        line += " tls: %d" % tls.server_address[1]
    print(line, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
