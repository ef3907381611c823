#!/usr/bin/env python3
"""The Kubernetes manifests (deploy/, issue 22): every kustomization is
rendered by the real `kubectl kustomize`, and every object is checked
against the Kubernetes API schema of its version (Debian's
python3-kubernetes models: unknown fields, types, required fields) or, for
cert-manager's and the Prometheus Operator's kinds, against their fields;
then what must hold between the objects (selectors, ports, volumes,
Secrets, least privilege, non-root and read-only root filesystems). The
ledger's container arguments and the rendered auth config are run by the
real annals (paths moved to a temporary directory) and answer over TLS as
the auth config says. The kube-apiserver's files (deploy/apiserver) agree
with each other and with the Service.

Environment: ANNALS_BINARY, ANNALS_SOURCE_DIR.
"""
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import kubernetes.client
import yaml

ANNALS = os.environ["ANNALS_BINARY"]
SOURCE = os.environ["ANNALS_SOURCE_DIR"]
DEPLOY = os.path.join(SOURCE, "deploy")
KUSTOMIZATIONS = ["", "base", "base/ledger", "base/collector", "overlays/cert-manager", "overlays/monitoring"]

# Fields of the custom resources used (cert-manager.io/v1, monitoring.coreos.com/v1), as their CRDs define them.
CRD_FIELDS = {
    ("cert-manager.io/v1", "Issuer"): {"spec": {"selfSigned", "ca", "acme", "vault", "venafi"}},
    ("cert-manager.io/v1", "Certificate"): {"spec": {
        "secretName", "commonName", "dnsNames", "ipAddresses", "uris", "emailAddresses", "duration", "renewBefore",
        "isCA", "usages", "privateKey", "issuerRef", "subject", "secretTemplate", "keystores",
        "revisionHistoryLimit", "literalSubject", "encodeUsagesInRequest", "additionalOutputFormats"}},
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {"spec": {
        "selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels", "podTargetLabels", "sampleLimit",
        "targetLimit", "labelLimit", "attachMetadata"}},
}
CERT_USAGES = {"server auth", "client auth", "digital signature", "key encipherment", "signing", "cert sign"}
ENDPOINT_FIELDS = {"port", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout", "tlsConfig",
                   "bearerTokenFile", "bearerTokenSecret", "authorization", "honorLabels", "honorTimestamps",
                   "basicAuth", "oauth2", "metricRelabelings", "relabelings", "proxyUrl", "followRedirects",
                   "enableHttp2", "filterRunning"}


def render(rel):
    r = subprocess.run(["kubectl", "kustomize", os.path.join(DEPLOY, rel)], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"kubectl kustomize deploy/{rel}: {r.stderr}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def model_for(api_version, kind):
    version = api_version.split("/")[-1]
    name = version[0].upper() + version[1:] + kind
    return getattr(kubernetes.client, name, None)


def check_type(value, t, path, errors):
    """value against an openapi type string of the python client."""
    if value is None:
        return
    if t.startswith("list["):
        if not isinstance(value, list):
            errors.append(f"{path}: want a list")
            return
        for i, v in enumerate(value):
            check_type(v, t[5:-1], f"{path}[{i}]", errors)
    elif t.startswith("dict("):
        if not isinstance(value, dict):
            errors.append(f"{path}: want a map")
            return
        inner = t[5:-1].split(", ", 1)[1]
        for k, v in value.items():
            check_type(v, inner, f"{path}.{k}", errors)
    elif t == "str":
        if not isinstance(value, str):
            errors.append(f"{path}: want a string, got {value!r}")
    elif t == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: want an integer, got {value!r}")
    elif t == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: want a boolean, got {value!r}")
    elif t in ("object", "datetime", "float"):
        pass
    else:
        cls = getattr(kubernetes.client, t, None)
        if cls is None:
            errors.append(f"{path}: unknown type {t}")
        elif not isinstance(value, dict):
            errors.append(f"{path}: want an object of {t}")
        else:
            check_model(value, cls, path, errors)


def check_model(obj, cls, path, errors):
    by_json = {v: k for k, v in cls.attribute_map.items()}
    for key, value in obj.items():
        if key not in by_json:
            errors.append(f"{path}.{key}: not a field of {cls.__name__}")
            continue
        check_type(value, cls.openapi_types[by_json[key]], f"{path}.{key}", errors)


def schema_errors(doc):
    """What is wrong with one object against its API version's schema."""
    errors = []
    av, kind = doc.get("apiVersion"), doc.get("kind")
    name = f"{kind}/{doc.get('metadata', {}).get('name')}"
    crd = CRD_FIELDS.get((av, kind))
    if crd:
        for key in doc:
            if key not in ("apiVersion", "kind", "metadata", "spec"):
                errors.append(f"{name}: unknown top-level field {key}")
        check_model(doc.get("metadata", {}), kubernetes.client.V1ObjectMeta, name + ".metadata", errors)
        for key in doc.get("spec", {}):
            if key not in crd["spec"]:
                errors.append(f"{name}.spec.{key}: not a field of {av} {kind}")
        if kind == "Certificate":
            spec = doc["spec"]
            if not spec.get("secretName") or not spec.get("issuerRef", {}).get("name"):
                errors.append(f"{name}: secretName and issuerRef.name are required")
            for u in spec.get("usages", []):
                if u not in CERT_USAGES:
                    errors.append(f"{name}: unknown usage {u}")
        if kind == "ServiceMonitor":
            for i, ep in enumerate(doc["spec"].get("endpoints", [])):
                for key in ep:
                    if key not in ENDPOINT_FIELDS:
                        errors.append(f"{name}.spec.endpoints[{i}].{key}: not a field")
        return errors
    cls = model_for(av, kind)
    if cls is None:
        return [f"{name}: no schema for {av} {kind}"]
    check_model(doc, cls, name, errors)
    # Required fields: the models refuse to be built without them.
    try:
        kubernetes.client.ApiClient()._ApiClient__deserialize(doc, cls.__name__)
    except ValueError as e:
        errors.append(f"{name}: {e}")
    return errors


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def pod_specs(docs):
    for d in docs:
        if d["kind"] in ("StatefulSet", "Deployment"):
            yield d, d["spec"]["template"]["spec"]


class ManifestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rendered = {rel: render(rel) for rel in KUSTOMIZATIONS}

    def test_every_object_of_every_kustomization_fits_its_schema(self):
        kinds = set()
        for rel, docs in self.rendered.items():
            self.assertTrue(docs, rel)
            for d in docs:
                kinds.add(d["kind"])
                self.assertEqual(schema_errors(d), [], f"deploy/{rel}")
        for kind in ("Namespace", "StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap",
                     "ClusterRole", "ClusterRoleBinding", "ServiceAccount", "Deployment", "PersistentVolumeClaim",
                     "Certificate", "Issuer", "ServiceMonitor"):
            self.assertIn(kind, kinds)

    def test_the_schema_check_catches_what_it_should(self):
        sts = json.loads(json.dumps(one(self.rendered[""], "StatefulSet", "annals")))
        sts["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
        self.assertTrue(any("imagePullPolcy" in e for e in schema_errors(sts)))
        sts = json.loads(json.dumps(one(self.rendered[""], "StatefulSet", "annals")))
        sts["spec"]["replicas"] = "1"
        self.assertTrue(any("want an integer" in e for e in schema_errors(sts)))
        sts = json.loads(json.dumps(one(self.rendered[""], "StatefulSet", "annals")))
        del sts["spec"]["selector"]
        self.assertTrue(schema_errors(sts))
        cert = json.loads(json.dumps(one(self.rendered["overlays/cert-manager"], "Certificate", "annals-tls")))
        cert["spec"]["dnsName"] = ["x"]
        self.assertTrue(schema_errors(cert))

    def test_the_objects_fit_together(self):
        docs = self.rendered["overlays/cert-manager"]
        sts = one(docs, "StatefulSet", "annals")
        labels = sts["spec"]["template"]["metadata"]["labels"]
        svc = one(docs, "Service", "annals")
        self.assertEqual(sts["spec"]["serviceName"], svc["metadata"]["name"])
        self.assertTrue(selects(svc["spec"]["selector"], labels))
        self.assertTrue(selects(sts["spec"]["selector"]["matchLabels"], labels))
        self.assertTrue(selects(one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], labels))
        netpol = one(docs, "NetworkPolicy")
        self.assertTrue(selects(netpol["spec"]["podSelector"]["matchLabels"], labels))
        port = svc["spec"]["ports"][0]
        container = sts["spec"]["template"]["spec"]["containers"][0]
        self.assertIn(port["targetPort"], [p["name"] for p in container["ports"]])
        self.assertIn(port["port"], [p["port"] for r in netpol["spec"]["ingress"] for p in r["ports"]])
        listen = next(a for a in container["args"] if a.startswith("--listen="))
        self.assertTrue(listen.endswith(":" + str(container["ports"][0]["containerPort"])))
        # The collector sends to that Service and port.
        collector = one(docs, "Deployment", "annals-collector")["spec"]["template"]["spec"]["containers"][0]
        url = next(a for a in collector["args"] if a.startswith("--url="))
        self.assertEqual(url.split("=", 1)[1], f"https://{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc:{port['port']}")
        # Every Secret a pod mounts is made by a Certificate, every ConfigMap by the generator.
        secrets = {c["spec"]["secretName"] for c in by_kind(docs, "Certificate")}
        configmaps = {c["metadata"]["name"] for c in by_kind(docs, "ConfigMap")}
        for owner, spec in pod_specs(docs):
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            claims = {c["metadata"]["name"] for c in owner["spec"].get("volumeClaimTemplates", [])}
            for c in spec["containers"]:
                for m in c.get("volumeMounts", []):
                    self.assertTrue(m["name"] in volumes or m["name"] in claims, m["name"])
            for v in volumes.values():
                if "secret" in v:
                    self.assertIn(v["secret"]["secretName"], secrets)
                if "configMap" in v:
                    self.assertIn(v["configMap"]["name"], configmaps)
                if "persistentVolumeClaim" in v:
                    one(docs, "PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"])
        # The ServiceMonitor scrapes that Service's port.
        sm = one(self.rendered["overlays/monitoring"], "ServiceMonitor")
        self.assertTrue(selects(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]))
        self.assertEqual(sm["spec"]["endpoints"][0]["port"], port["name"])

    def test_least_privilege_non_root_and_read_only(self):
        docs = self.rendered[""]
        for owner, spec in pod_specs(docs):
            pod_sc = spec.get("securityContext", {})
            for c in spec["containers"]:
                sc = c.get("securityContext", {})
                name = owner["metadata"]["name"]
                self.assertTrue(sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")), name)
                self.assertNotEqual(sc.get("runAsUser", pod_sc.get("runAsUser")), 0, name)
                self.assertTrue(sc.get("readOnlyRootFilesystem"), name)
                self.assertIs(sc.get("allowPrivilegeEscalation"), False, name)
        collector = one(docs, "ClusterRole", "annals-collector")
        for rule in collector["rules"]:
            self.assertEqual(sorted(rule["verbs"]), ["get", "list", "watch"])
            self.assertNotIn("secrets", rule["resources"])
            self.assertNotIn("*", rule["resources"])
        review = one(docs, "ClusterRole", "annals-tokenreview")
        self.assertEqual(review["rules"], [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"],
                                            "verbs": ["create"]}])
        for b in by_kind(docs, "ClusterRoleBinding"):
            for s in b["subjects"]:
                one(docs, "ServiceAccount", s["name"])
                self.assertEqual(s["namespace"], "annals")


class LedgerArgsTest(unittest.TestCase):
    """The StatefulSet's arguments and the rendered auth config, run."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="annals-deploy-")
        self.proc = None

    def tearDown(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.dir)

    def test_the_ledger_starts_with_the_manifest_arguments_and_its_auth_config(self):
        docs = render("")
        sts = one(docs, "StatefulSet", "annals")
        container = sts["spec"]["template"]["spec"]["containers"][0]
        auth = one(docs, "ConfigMap")["data"]["auth.json"]
        # The mounts, in a temporary directory.
        mounts = {m["mountPath"]: os.path.join(self.dir, m["name"]) for m in container["volumeMounts"]}
        for p in mounts.values():
            os.makedirs(p)
        with open(os.path.join(mounts["/etc/annals/auth"], "auth.json"), "w") as f:
            f.write(auth)
        tls = mounts["/etc/annals/tls"]
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                     "-subj", "/CN=annals-ca", "-keyout", "ca.key", "-out", os.path.join(tls, "ca.crt"))
        self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=annals",
                     "-keyout", os.path.join(tls, "tls.key"), "-out", "tls.csr")
        with open(os.path.join(self.dir, "san.ext"), "w") as f:
            f.write("subjectAltName=DNS:annals.annals.svc,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        self.openssl("x509", "-req", "-in", "tls.csr", "-CA", os.path.join(tls, "ca.crt"), "-CAkey", "ca.key",
                     "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", os.path.join(tls, "tls.crt"))
        args = []
        for a in container["args"]:
            if a.startswith("--token-review"):
                continue  # in-cluster only: no API server here
            if a.startswith("--listen="):
                a = "--listen=127.0.0.1:0"
            for path, local in mounts.items():
                a = a.replace("=" + path, "=" + local)
            args.append(a)
        self.proc = subprocess.Popen([ANNALS, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        url = None
        output = ""
        while url is None:
            line = self.proc.stdout.readline()
            if not line:
                self.fail("annals did not start with " + " ".join(args) + ":\n" + output)
            output += line
            if line.startswith("url: "):
                url = line[5:].strip()
        self.assertTrue(url.startswith("https://"), url)
        ctx = ssl.create_default_context(cafile=os.path.join(tls, "ca.crt"))
        probe = container["readinessProbe"]["httpGet"]["path"]

        def status(path):
            try:
                with urllib.request.urlopen(url + path, context=ctx, timeout=10) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        deadline = time.time() + 30
        while status(probe) != 200 and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(status(probe), 200)
        self.assertEqual(status(container["livenessProbe"]["httpGet"]["path"]), 200)
        # The auth config is in force: anonymous callers may verify, not read or scrape.
        self.assertEqual(status("/log/checkpoint"), 200)
        self.assertIn(status("/metrics"), (401, 403))
        self.assertIn(status("/v1/state?at=2030-01-01T00:00:00Z"), (401, 403))


class ApiServerFilesTest(unittest.TestCase):
    """deploy/apiserver: the kubeconfig, the policy, kubeadm and kind."""

    def load(self, name):
        with open(os.path.join(DEPLOY, "apiserver", name)) as f:
            return yaml.safe_load(f)

    def test_the_webhook_kubeconfig_points_at_the_ledger_service(self):
        kc = self.load("annals-webhook.kubeconfig")
        self.assertEqual((kc["apiVersion"], kc["kind"]), ("v1", "Config"))
        ctx = next(c["context"] for c in kc["contexts"] if c["name"] == kc["current-context"])
        cluster = next(c["cluster"] for c in kc["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in kc["users"] if u["name"] == ctx["user"])
        svc = one(render(""), "Service", "annals")
        self.assertEqual(cluster["server"],
                         f"https://annals.annals.svc:{svc['spec']['ports'][0]['port']}/v1/ingest/k8s-audit")
        for path in (cluster["certificate-authority"], user["client-certificate"], user["client-key"]):
            self.assertTrue(path.startswith("/etc/kubernetes/audit/"), path)

    def test_the_audit_policy_is_well_formed(self):
        p = self.load("audit-policy.yaml")
        self.assertEqual((p["apiVersion"], p["kind"]), ("audit.k8s.io/v1", "Policy"))
        self.assertEqual(set(p) - {"apiVersion", "kind", "omitStages", "omitManagedFields", "rules"}, set())
        rule_fields = {"level", "users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs",
                       "omitStages", "omitManagedFields"}
        self.assertGreaterEqual(len(p["rules"]), 6)
        for r in p["rules"]:
            self.assertEqual(set(r) - rule_fields, set(), r)
            self.assertIn(r["level"], ("None", "Metadata", "Request", "RequestResponse"))
            for g in r.get("resources", []):
                self.assertEqual(set(g) - {"group", "resources", "resourceNames"}, set(), g)
        self.assertEqual(p["rules"][-1], {"level": "Metadata"})
        # Secrets never at a level that records their bodies.
        for r in p["rules"]:
            if any("secrets" in g.get("resources", []) for g in r.get("resources", [])):
                self.assertIn(r["level"], ("None", "Metadata"))

    def test_kubeadm_and_kind_mount_what_the_flags_name(self):
        docs_flags = set(re.findall(r"^--(audit-[a-z-]+)=", open(os.path.join(SOURCE, "docs", "kubernetes.md")).read(),
                                    re.M))
        kubeadm = self.load("kubeadm-config.yaml")
        self.assertEqual((kubeadm["apiVersion"], kubeadm["kind"]), ("kubeadm.k8s.io/v1beta3", "ClusterConfiguration"))
        kind = self.load("kind-config.yaml")
        self.assertEqual((kind["apiVersion"], kind["kind"]), ("kind.x-k8s.io/v1alpha4", "Cluster"))
        patch = yaml.safe_load(kind["nodes"][0]["kubeadmConfigPatches"][0])
        for api in (kubeadm["apiServer"], patch["apiServer"]):
            args = api["extraArgs"]
            self.assertTrue(set(args) <= docs_flags, set(args) - docs_flags)
            self.assertTrue(all(isinstance(v, str) for v in args.values()), args)
            mount = api["extraVolumes"][0]
            self.assertEqual(set(mount) - {"name", "hostPath", "mountPath", "readOnly", "pathType"}, set())
            for flag in ("audit-policy-file", "audit-webhook-config-file"):
                self.assertEqual(os.path.dirname(args[flag]), mount["mountPath"])
        self.assertEqual(kind["nodes"][0]["extraMounts"][0]["containerPath"], patch["apiServer"]["extraVolumes"][0]["hostPath"])


class DistTest(unittest.TestCase):
    """`make dist` (scripts/dist.sh): reproducible archives, their checksums,
    and a krew manifest that krew's own validation rules accept
    (sigs.k8s.io/krew pkg/index/validation), installed as krew would and
    run through the real kubectl."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="annals-dist-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def dist(self, out):
        r = subprocess.run(["sh", os.path.join(SOURCE, "scripts", "dist.sh"), os.path.dirname(ANNALS), out, "0.1.0"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_archives_checksums_and_the_krew_manifest(self):
        a, b = os.path.join(self.dir, "a"), os.path.join(self.dir, "b")
        self.dist(a)
        self.dist(b)
        for name in sorted(os.listdir(a)):
            with open(os.path.join(a, name), "rb") as x, open(os.path.join(b, name), "rb") as y:
                self.assertEqual(x.read(), y.read(), name + " differs between two builds")
        r = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=a, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.count(": OK"), 2)

        with open(os.path.join(a, "plugin.yaml")) as f:
            p = yaml.safe_load(f)
        # krew's ValidatePlugin, rule by rule.
        self.assertEqual(p["apiVersion"], "krew.googlecontainertools.github.com/v1alpha2")
        self.assertEqual(p["kind"], "Plugin")
        self.assertRegex(p["metadata"]["name"], r"^[\w-]+$")
        self.assertEqual(p["metadata"]["name"], "audit")  # kubectl audit
        self.assertTrue(p["spec"]["shortDescription"])
        self.assertRegex(p["spec"]["version"], r"^v\d+\.\d+\.\d+$")
        self.assertEqual(set(p["spec"]) - {"version", "homepage", "shortDescription", "description", "caveats",
                                          "platforms"}, set())
        self.assertEqual(len(p["spec"]["platforms"]), 1)
        pl = p["spec"]["platforms"][0]
        self.assertEqual(set(pl) - {"selector", "uri", "sha256", "files", "bin"}, set())
        self.assertTrue(pl["uri"].startswith("https://") and pl["uri"].endswith(".tar.gz"))
        self.assertRegex(pl["sha256"], r"^[a-f0-9]{64}$")
        archive = os.path.join(a, os.path.basename(pl["uri"]))
        self.assertEqual(pl["sha256"], subprocess.run(["sha256sum", archive], capture_output=True, text=True,
                                                      check=True).stdout.split()[0])
        self.assertEqual(pl["selector"], {"matchLabels": {"os": "linux", "arch": "amd64"}})
        self.assertTrue(pl["bin"] and pl["files"])
        # Installed as krew does: unpack, copy `files`, link `bin` onto the PATH.
        unpacked, installed = os.path.join(self.dir, "unpacked"), os.path.join(self.dir, "installed")
        os.makedirs(unpacked)
        os.makedirs(installed)
        subprocess.run(["tar", "xzf", archive, "-C", unpacked], check=True)
        for f in pl["files"]:
            shutil.copy(os.path.join(unpacked, f["from"]), os.path.join(installed, f["to"]))
        binary = os.path.join(installed, pl["bin"])
        self.assertTrue(os.access(binary, os.X_OK))
        env = dict(os.environ, PATH=installed + ":/usr/bin:/bin")
        plugins = subprocess.run(["kubectl", "plugin", "list"], capture_output=True, text=True, env=env)
        self.assertIn(binary, plugins.stdout)
        run = subprocess.run(["kubectl", "audit", "--help"], capture_output=True, text=True, env=env)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("--url", run.stdout + run.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
