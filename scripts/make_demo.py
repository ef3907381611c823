#!/usr/bin/env python3
"""Regenerates demo/audit.jsonl (what `annals serve --demo` loads) from the
shared corpus: real public Kubernetes audit events and a short timeline of
audit events built around real Pod and Service objects, as a kube-apiserver
audit log (one event per line). Beside it, demo/eventlist.json: the
README's webhook example, an EventList of one Secret create whose body
redaction takes out. Sources and licences: demo/SOURCES.md.
  scripts/make_demo.py ../shared/corpus demo/audit.jsonl
"""
import copy
import glob
import json
import os
import sys
import uuid

corpus, out = sys.argv[1], sys.argv[2]
events = []
# 1. audit2rbac's demo cluster: 37 Metadata-level events (impersonation, 403s).
with open(os.path.join(corpus, "k8s-audit", "audit2rbac-demo.jsonl")) as f:
    events += [json.loads(l) for l in f if l.strip()]
# 2. Falco's minikube traces: RequestResponse events (pods, RBAC, configmaps, exec).
for path in sorted(glob.glob(os.path.join(corpus, "k8s-audit", "falco", "*.json"))):
    with open(path) as f:
        text = f.read()
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError:
        docs = [json.loads(l) for l in text.splitlines() if l.strip()]
    for d in docs:
        if isinstance(d, dict) and d.get("auditID"):
            events.append(d)


# 3. k9s's Pod default/nginx (podIP 172.17.0.6) and Service default/dictionary1
#    on a timeline: the Service at :05, the pod created at :10 by alice,
#    labelled app=dictionary1 at :20 by bob, deleted at :40; nginx-2 (same IP,
#    another uid) created at :50. So `whois 172.17.0.6` has two answers.
def k9s(name):
    with open(os.path.join(corpus, "k8s-objects", "k9s", name)) as f:
        return json.load(f)


def audit(verb, obj, second, user, resource="pods", response=None):
    m = obj["metadata"]
    ts = f"2024-03-01T10:00:{second:02d}.000000Z"
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"annals-demo/{verb}/{m['name']}/{second}")),
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/{m['namespace']}/{resource}/{m['name']}", "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]}, "sourceIPs": ["10.0.0.7"],
        "userAgent": "kubectl/v1.29.0",
        "objectRef": {"resource": resource, "namespace": m["namespace"], "name": m["name"], "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201 if verb == "create" else 200},
        "responseObject": response if response is not None else obj,
        "requestReceivedTimestamp": ts, "stageTimestamp": ts,
    }


svc, pod = k9s("svc.json"), k9s("po.json")
labelled = copy.deepcopy(pod)
labelled["metadata"]["labels"] = {"app": "dictionary1"}
second = copy.deepcopy(pod)
second["metadata"]["name"] = "nginx-2"
second["metadata"]["uid"] = "0b1e2a7c-5d5e-4f7e-9a43-2b7f3c1d9e01"
deleted = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
           "details": {"name": "nginx", "kind": "pods", "uid": pod["metadata"]["uid"]}}
events += [
    audit("create", svc, 5, "alice", resource="services"),
    audit("create", pod, 10, "alice"),
    audit("patch", labelled, 20, "bob"),
    audit("delete", pod, 40, "alice", response=deleted),
    audit("create", second, 50, "alice"),
]
with open(out, "w") as f:
    for e in events:
        f.write(json.dumps(e, separators=(",", ":"), sort_keys=True) + "\n")
print(f"{out}: {len(events)} events")

# 4. The README's EventList: Falco's create of default/example-secret, at
#    Request level with the Secret kubectl sends (password "hunter2"), as the
#    kube-apiserver's webhook posts it.
with open(os.path.join(corpus, "k8s-audit", "falco", "create_secret.json")) as f:
    secret_event = json.load(f)
secret_event["level"] = "Request"
secret_event["requestObject"] = {
    "kind": "Secret", "apiVersion": "v1", "type": "Opaque",
    "metadata": {"name": "example-secret", "namespace": "default", "creationTimestamp": None},
    "data": {"password": "aHVudGVyMg=="},
}
eventlist = os.path.join(os.path.dirname(out), "eventlist.json")
with open(eventlist, "w") as f:
    json.dump({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": [secret_event]},
              f, separators=(",", ":"), sort_keys=True)
    f.write("\n")
print(f"{eventlist}: 1 event")
