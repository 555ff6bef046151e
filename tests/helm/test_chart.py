#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The Helm chart helm/mqttd, checked without helm.

Builds render.go (Helm's template engine: Go text/template + sprig, see its header) with
Debian's Go, renders the chart for the default values and for non-default ones, and checks the
manifests: kinds, the StatefulSet's pod spec, Services and ports, the PDB, the config file, the
--cluster-bootstrap-members rule, failures for missing required or invalid values, --pod-spec,
and yamllint on values.yaml, Chart.yaml and every rendered stream. Every render of the chart
also checks that each key of the rendered mqttd.yaml is a key of mqttd: one of the key table in
docs/configuration.md (generated from mqttd's option table). Exits 77 (ctest: skipped) when no
Go toolchain is installed.

    /usr/bin/python3 tests/helm/test_chart.py [--build-dir DIR] [unittest options]
"""
import argparse
import base64
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(ROOT, "helm", "mqttd")
SEMANTICS = os.path.join(HERE, "testdata", "semantics")
LINT_CONFIG = os.path.join(HERE, "yamllint.yaml")
CONFIG_DOC = os.path.join(ROOT, "docs", "configuration.md")
GOPATH = "/usr/share/gocode"  # Debian's golang-*-dev packages
SKIP = 77
RENDER = None  # path of the built renderer, set by main()

PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIEfake\n-----END PRIVATE KEY-----\n"


def build_renderer(build_dir):
    """go build render.go offline: GOPATH mode on Debian's /usr/share/gocode (no module proxy)."""
    go = shutil.which("go") or ("/usr/lib/go/bin/go" if os.access("/usr/lib/go/bin/go", os.X_OK) else None)
    if go is None:
        print("SKIP: no Go toolchain (apt-get install golang-go)")
        sys.exit(SKIP)
    for pkg, deb in (("github.com/Masterminds/sprig", "golang-github-masterminds-sprig-dev"),
                     ("gopkg.in/yaml.v3", "golang-gopkg-yaml.v3-dev")):
        if not os.path.isdir(os.path.join(GOPATH, "src", pkg)):
            sys.exit(f"missing Go package {pkg}: apt-get install {deb} (deploy/install-deps.sh)")
    os.makedirs(build_dir, exist_ok=True)
    out = os.path.join(build_dir, "render")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="", GOPROXY="off",
               GOENV="off", GOTOOLCHAIN="local", CGO_ENABLED="0",
               GOCACHE=os.path.join(build_dir, "go-cache"))
    sources = sorted(glob.glob(os.path.join(HERE, "*.go")))
    subprocess.run([go, "build", "-o", out] + sources, cwd=HERE, env=env, check=True)
    return out


# Keys the chart renders (auth.enabled) that mqttd does not have yet: the password and ACL files
# come with the security issue (issue 14); README.md says to leave auth off until then.
PENDING_KEYS = {"auth.password_file", "auth.acl_file"}

_DOCUMENTED_KEYS = None


def documented_keys():
    """The key paths of mqttd's key table in docs/configuration.md (between its generated
    markers: the output of `mqttd --print-config-reference`)."""
    global _DOCUMENTED_KEYS
    if _DOCUMENTED_KEYS is None:
        with open(CONFIG_DOC) as f:
            text = f.read()
        m = re.search(r"<!-- BEGIN mqttd --print-config-reference -->\n(.*?)"
                      r"<!-- END mqttd --print-config-reference -->", text, re.S)
        assert m, f"{CONFIG_DOC}: no generated key table (BEGIN/END mqttd --print-config-reference)"
        keys = set(re.findall(r"^\| `([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*)` \|", m.group(1), re.M))
        assert {"node_id", "listeners", "limits.max_inflight", "cluster.listen"} <= keys, \
            f"{CONFIG_DOC}: key table not recognised: {sorted(keys)}"
        _DOCUMENTED_KEYS = frozenset(keys)
    return _DOCUMENTED_KEYS


def config_leaf_keys(cfg, prefix=""):
    """Dotted key paths of a config file: maps are walked, anything else (a list included, as
    `listeners` and `cluster.join` are single keys) is a leaf. An empty map is its own path."""
    if not isinstance(cfg, dict) or not cfg:
        return [prefix.rstrip(".")]
    out = []
    for k, v in cfg.items():
        out += config_leaf_keys(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [prefix + str(k)]
    return out


def unknown_config_keys(cfg):
    """Key paths of a rendered mqttd.yaml that mqttd does not know (nor PENDING_KEYS)."""
    known = documented_keys() | PENDING_KEYS
    bad = []
    for key in config_leaf_keys(cfg):
        if key in known:
            continue
        if any(k.startswith(key + ".") for k in known):  # an empty section (`limits: {}`)
            continue
        bad.append(key)
    return bad


def rendered_config_files(stdout, args):
    """The mqttd.yaml texts in a render's output: the ConfigMap's, or --pod-spec's file."""
    if "--notes" in args:
        return []
    if "--pod-spec" in args:
        return [json.loads(stdout)["files"]["/etc/mqttd/mqttd.yaml"]]
    return [d["data"]["mqttd.yaml"] for d in yaml.safe_load_all(stdout)
            if d and d.get("kind") == "ConfigMap" and "mqttd.yaml" in (d.get("data") or {})]


def run_render(args, values=None, chart=CHART):
    """Runs the renderer; values (a dict) is passed as an -f file. Returns CompletedProcess.
    A successful render of the chart must give a config file of keys mqttd knows (every test's
    values, not only the scenarios, go through here)."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [RENDER]
        if values is not None:
            path = os.path.join(tmp, "values.yaml")
            with open(path, "w") as f:
                yaml.safe_dump(values, f)
            argv += ["-f", path]
        argv += list(args) + [chart]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if chart == CHART and p.returncode == 0:
        for text in rendered_config_files(p.stdout, args):
            bad = unknown_config_keys(yaml.safe_load(text))
            if bad:
                raise AssertionError(f"mqttd.yaml rendered for values {values} and {list(args)} has keys "
                                     f"that are not in docs/configuration.md's key table: {bad}")
    return p


class Rendered:
    """One rendered stream: the text and its documents by kind and name."""

    def __init__(self, text):
        self.text = text
        self.docs = [d for d in yaml.safe_load_all(text) if d is not None]

    def kinds(self):
        return sorted(d["kind"] for d in self.docs)

    def all(self, kind):
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind, name=None):
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"want one {kind} {name or ''}, got {len(found)}"
        return found[0]

    def sts(self):
        return self.one("StatefulSet")

    def container(self):
        (c,) = [c for c in self.sts()["spec"]["template"]["spec"]["containers"] if c["name"] == "mqttd"]
        return c

    def args(self):
        """The container's args as {flag: value}."""
        return dict(a.split("=", 1) for a in self.container()["args"])

    def config(self):
        cm = self.one("ConfigMap")
        return yaml.safe_load(cm["data"]["mqttd.yaml"])


# Non-default values the tests render; yamllint checks every one's output.
SCENARIOS = {
    "defaults": None,
    "load_balancer": {"service": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"]}},
    "tls_ws": {"listeners": {"mqtts": {"enabled": True}, "ws": {"enabled": True}, "wss": {"enabled": True}},
               "tls": {"cert": PEM_CERT, "key": PEM_KEY, "ca": PEM_CERT}},
    "service_monitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    "cluster_tls": {"cluster": {"tls": {"enabled": True, "cert": PEM_CERT, "key": PEM_KEY, "ca": PEM_CERT}}},
    "replicas_5": {"replicas": 5},
    "replicas_1": {"replicas": 1},
    "bootstrap_5": {"replicas": 5, "fullnameOverride": "broker",
                    "cluster": {"bootstrapMembers": [f"broker-{i}" for i in range(5)]}},
    "existing_secrets": {"listeners": {"mqtts": {"enabled": True}}, "tls": {"existingSecret": "my-tls"},
                         "auth": {"enabled": True, "existingSecret": "my-auth"}},
    "inline_auth": {"auth": {"enabled": True, "passwordFile": "a:b\n", "aclFile": "topic #\n"}},
    "hard_anti_affinity_no_persistence": {"podAntiAffinity": {"type": "hard"},
                                          "persistence": {"enabled": False}},
    "extras": {"extraArgs": ["--workers=4"], "extraEnv": [{"name": "A", "value": "b"}],
               "tolerations": [{"key": "k", "operator": "Exists"}], "podAnnotations": {"a": "b"},
               "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                              "whenUnsatisfiable": "ScheduleAnyway"}]},
}


class ChartTestCase(unittest.TestCase):
    maxDiff = None

    def render(self, values=None, *args):
        p = run_render(args, values)
        self.assertEqual(p.returncode, 0, p.stderr)
        return Rendered(p.stdout)

    def render_fails(self, values, message, *args):
        p = run_render(args, values)
        self.assertNotEqual(p.returncode, 0, f"rendered although {message!r} was expected")
        self.assertIn(message, p.stderr)
        self.assertEqual(p.stdout, "")

    def ports(self, ports, key="port"):
        return {p["name"]: p[key] for p in ports}


class DefaultsTest(ChartTestCase):
    @classmethod
    def setUpClass(cls):
        p = run_render(["--release", "mqttd", "--namespace", "mq"])
        assert p.returncode == 0, p.stderr
        cls.r = Rendered(p.stdout)

    def test_kinds_in_install_order(self):
        self.assertEqual([d["kind"] for d in self.r.docs],
                         ["PodDisruptionBudget", "ServiceAccount", "ConfigMap", "Service", "Service",
                          "StatefulSet"])
        self.assertEqual(len(re.findall(r"^# Source: mqttd/templates/\S+$", self.r.text, re.M)), 6)

    def test_statefulset(self):
        sts = self.r.sts()
        spec = sts["spec"]
        self.assertEqual(sts["metadata"]["name"], "mqttd")
        self.assertEqual(spec["replicas"], 3)
        self.assertEqual(spec["serviceName"], "mqttd-headless")
        self.assertEqual(spec["podManagementPolicy"], "Parallel")
        labels = spec["template"]["metadata"]["labels"]
        for k, v in spec["selector"]["matchLabels"].items():
            self.assertEqual(labels[k], v)
        (vct,) = spec["volumeClaimTemplates"]
        self.assertEqual(vct["metadata"]["name"], "data")
        self.assertEqual(vct["spec"]["accessModes"], ["ReadWriteOnce"])
        self.assertEqual(vct["spec"]["resources"]["requests"]["storage"], "10Gi")
        self.assertNotIn("storageClassName", vct["spec"])
        annotations = spec["template"]["metadata"]["annotations"]
        self.assertRegex(annotations["checksum/config"], r"^[0-9a-f]{64}$")

    def test_pod_security(self):
        pod = self.r.sts()["spec"]["template"]["spec"]
        self.assertEqual(pod["securityContext"]["runAsNonRoot"], True)
        self.assertEqual(pod["securityContext"]["runAsUser"], 10001)
        self.assertEqual(pod["securityContext"]["fsGroup"], 10001)
        self.assertFalse(pod["automountServiceAccountToken"])
        sc = self.r.container()["securityContext"]
        self.assertEqual(sc["readOnlyRootFilesystem"], True)
        self.assertEqual(sc["allowPrivilegeEscalation"], False)
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertEqual(sc["runAsNonRoot"], True)

    def test_soft_anti_affinity(self):
        aff = self.r.sts()["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        (term,) = aff["preferredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(term["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname")
        self.assertEqual(term["podAffinityTerm"]["labelSelector"]["matchLabels"],
                         self.r.sts()["spec"]["selector"]["matchLabels"])
        self.assertNotIn("requiredDuringSchedulingIgnoredDuringExecution", aff)

    def test_args_and_env(self):
        c = self.r.container()
        self.assertEqual(c["command"], ["mqttd"])
        self.assertEqual(self.r.args(), {
            "--config": "/etc/mqttd/mqttd.yaml",
            "--node-id": "$(POD_NAME)",
            "--data-dir": "/data",
            "--cluster-listen": "0.0.0.0:7946",
            "--cluster-advertise": "$(POD_NAME).mqttd-headless.mq.svc.cluster.local:7946",
            "--cluster-raft-listen": "0.0.0.0:7947",
            "--cluster-bootstrap-members": "mqttd-0,mqttd-1,mqttd-2",
            "--http-listen": "0.0.0.0:8080",
        })
        env = {e["name"]: e for e in c["env"]}
        self.assertEqual(env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name")
        self.assertEqual(c["image"], "mqttd:0.1.0")

    def test_ports_probes_and_prestop(self):
        c = self.r.container()
        self.assertEqual(self.ports(c["ports"], "containerPort"),
                         {"mqtt": 1883, "cluster": 7946, "raft": 7947, "http": 8080})
        self.assertEqual(c["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "http"})
        self.assertEqual(c["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "http"})
        self.assertEqual(c["startupProbe"]["httpGet"], {"path": "/healthz", "port": "http"})
        self.assertEqual(c["lifecycle"]["preStop"]["exec"]["command"],
                         ["mqttctl", "--server", "127.0.0.1:7946", "drain", "--timeout", "130"])
        grace = self.r.sts()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        self.assertGreaterEqual(grace, 120)  # drain.timeoutSeconds
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        self.assertEqual(mounts["/etc/mqttd/mqttd.yaml"]["subPath"], "mqttd.yaml")
        self.assertEqual(mounts["/data"]["name"], "data")
        self.assertIn("/tmp", mounts)  # writable scratch on a read-only root
        self.assertEqual(c["resources"]["requests"], {"cpu": "500m", "memory": "512Mi"})

    def test_services(self):
        headless = self.r.one("Service", "mqttd-headless")["spec"]
        self.assertEqual(headless["clusterIP"], "None")
        self.assertIs(headless["publishNotReadyAddresses"], True)
        self.assertEqual(self.ports(headless["ports"]), {"cluster": 7946, "raft": 7947, "http": 8080})
        client = self.r.one("Service", "mqttd")["spec"]
        self.assertEqual(client["type"], "ClusterIP")
        self.assertEqual(self.ports(client["ports"]), {"mqtt": 1883})
        self.assertEqual(client["ports"][0]["targetPort"], "mqtt")
        self.assertEqual(client["selector"], self.r.sts()["spec"]["selector"]["matchLabels"])

    def test_pdb(self):
        pdb = self.r.one("PodDisruptionBudget")
        self.assertEqual(pdb["apiVersion"], "policy/v1")
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        self.assertEqual(pdb["spec"]["selector"]["matchLabels"],
                         self.r.sts()["spec"]["selector"]["matchLabels"])

    def test_config_file(self):
        cfg = self.r.config()
        self.assertEqual(sorted(cfg), ["cluster", "limits", "listeners", "log", "shared_subscriptions",
                                       "shutdown_timeout", "storage"])
        self.assertEqual(cfg["log"], {"level": "info", "format": "text"})
        self.assertEqual(cfg["listeners"], [{"protocol": "mqtt", "address": "0.0.0.0:1883"}])
        for key in ("max_inflight", "max_queued_messages", "max_queued_bytes", "max_packet_size"):
            self.assertIsInstance(cfg["limits"][key], int, key)
        self.assertEqual(cfg["limits"]["max_queued_bytes"], 67108864)  # not 6.7108864e+07
        self.assertEqual(cfg["shared_subscriptions"], {"strategy": "round_robin", "prefer_local": False})
        self.assertEqual(cfg["storage"], {"persistence": True, "fsync": False, "wal_budget": 67108864})
        self.assertEqual(cfg["cluster"]["name"], "mqttd")  # the release's full name
        self.assertEqual(cfg["cluster"]["listen"], "0.0.0.0:7946")
        self.assertEqual(cfg["cluster"]["join_dns"], "mqttd-headless.mq.svc.cluster.local:7946")
        self.assertEqual(cfg["cluster"]["probe_interval_ms"], 1000)
        self.assertEqual(cfg["cluster"]["suspect_timeout_ms"], 5000)
        self.assertNotIn("auth", cfg)
        self.assertEqual(unknown_config_keys(cfg), [])
        self.assertEqual([k for k in config_leaf_keys(cfg) if k in PENDING_KEYS], [])

    def test_no_optional_objects(self):
        self.assertEqual(self.r.all("Secret"), [])
        self.assertEqual(self.r.all("ServiceMonitor"), [])


class ValuesTest(ChartTestCase):
    def test_load_balancer(self):
        r = self.render({"service": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"],
                                     "externalTrafficPolicy": "Local",
                                     "annotations": {"example.com/lb": "internal"}}})
        svc = r.one("Service", "mqttd")
        self.assertEqual(svc["spec"]["type"], "LoadBalancer")
        self.assertEqual(svc["spec"]["loadBalancerSourceRanges"], ["10.0.0.0/8"])
        self.assertEqual(svc["spec"]["externalTrafficPolicy"], "Local")
        self.assertEqual(svc["metadata"]["annotations"], {"example.com/lb": "internal"})
        self.assertEqual(r.one("Service", "mqttd-headless")["spec"]["clusterIP"], "None")

    def test_tls_and_websocket_listeners(self):
        r = self.render({"listeners": {"mqtts": {"enabled": True}, "ws": {"enabled": True},
                                       "wss": {"enabled": True, "port": 9443}},
                         "tls": {"cert": PEM_CERT, "key": PEM_KEY, "ca": PEM_CERT}})
        svc = r.one("Service", "mqttd")["spec"]
        self.assertEqual(self.ports(svc["ports"]), {"mqtt": 1883, "mqtts": 8883, "ws": 8083, "wss": 9443})
        self.assertEqual(self.ports(r.container()["ports"], "containerPort"),
                         {"mqtt": 1883, "mqtts": 8883, "ws": 8083, "wss": 9443, "cluster": 7946,
                          "raft": 7947, "http": 8080})
        secret = r.one("Secret", "mqttd-tls")
        self.assertEqual(secret["type"], "kubernetes.io/tls")
        self.assertEqual(base64.b64decode(secret["data"]["tls.crt"]).decode(), PEM_CERT)
        self.assertEqual(base64.b64decode(secret["data"]["tls.key"]).decode(), PEM_KEY)
        self.assertIn("ca.crt", secret["data"])
        tls_files = {"cert_file": "/etc/mqttd/tls/tls.crt", "key_file": "/etc/mqttd/tls/tls.key",
                     "ca_file": "/etc/mqttd/tls/ca.crt"}
        self.assertEqual(r.config()["listeners"], [
            {"protocol": "mqtt", "address": "0.0.0.0:1883"},
            dict({"protocol": "mqtts", "address": "0.0.0.0:8883"}, **tls_files),
            {"protocol": "ws", "address": "0.0.0.0:8083", "path": "/mqtt"},
            dict({"protocol": "wss", "address": "0.0.0.0:9443", "path": "/mqtt"}, **tls_files),
        ])
        pod = r.sts()["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        self.assertEqual(volumes["tls"]["secret"]["secretName"], "mqttd-tls")
        mounts = {m["name"]: m["mountPath"] for m in r.container()["volumeMounts"]}
        self.assertEqual(mounts["tls"], "/etc/mqttd/tls")

    def test_cluster_tls(self):
        r = self.render(SCENARIOS["cluster_tls"])
        secret = r.one("Secret", "mqttd-cluster-tls")
        self.assertEqual(secret["type"], "kubernetes.io/tls")
        self.assertEqual(base64.b64decode(secret["data"]["tls.crt"]).decode(), PEM_CERT)
        self.assertEqual(base64.b64decode(secret["data"]["tls.key"]).decode(), PEM_KEY)
        self.assertEqual(base64.b64decode(secret["data"]["ca.crt"]).decode(), PEM_CERT)
        args = r.args()
        self.assertEqual(args["--cluster-tls-cert"], "/etc/mqttd/cluster-tls/tls.crt")
        self.assertEqual(args["--cluster-tls-key"], "/etc/mqttd/cluster-tls/tls.key")
        self.assertEqual(args["--cluster-tls-ca"], "/etc/mqttd/cluster-tls/ca.crt")
        self.assertEqual(args["--cluster-tls-server-name"], "mqttd-cluster")
        c = r.container()
        self.assertEqual(c["lifecycle"]["preStop"]["exec"]["command"],
                         ["mqttctl", "--server", "127.0.0.1:7946",
                          "--tls-cert=/etc/mqttd/cluster-tls/tls.crt",
                          "--tls-key=/etc/mqttd/cluster-tls/tls.key",
                          "--tls-ca=/etc/mqttd/cluster-tls/ca.crt",
                          "--tls-server-name=mqttd-cluster", "drain", "--timeout", "130"])
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        self.assertEqual(mounts["cluster-tls"]["mountPath"], "/etc/mqttd/cluster-tls")
        self.assertTrue(mounts["cluster-tls"]["readOnly"])
        volumes = {v["name"]: v for v in r.sts()["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["cluster-tls"]["secret"]["secretName"], "mqttd-cluster-tls")
        policy = r.one("NetworkPolicy", "mqttd-raft")["spec"]
        self.assertEqual(policy["podSelector"]["matchLabels"],
                         r.sts()["spec"]["selector"]["matchLabels"])
        open_rule, raft_rule = policy["ingress"]
        self.assertEqual(sorted(p["port"] for p in open_rule["ports"]), [1883, 7946, 8080])
        self.assertNotIn("from", open_rule)
        self.assertEqual([p["port"] for p in raft_rule["ports"]], [7947])
        self.assertEqual(raft_rule["from"][0]["podSelector"]["matchLabels"],
                         r.sts()["spec"]["selector"]["matchLabels"])

    def test_cluster_tls_existing_secret_without_policy(self):
        r = self.render({"cluster": {"tls": {"enabled": True, "existingSecret": "peers",
                                             "raftNetworkPolicy": False}}})
        self.assertEqual(r.all("Secret"), [])
        self.assertEqual(r.all("NetworkPolicy"), [])
        volumes = {v["name"]: v for v in r.sts()["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["cluster-tls"]["secret"]["secretName"], "peers")

    def test_required_cluster_tls_certificate(self):
        self.render_fails({"cluster": {"tls": {"enabled": True}}},
                          "cluster.tls.cert (or cluster.tls.existingSecret) is required when "
                          "cluster.tls.enabled")

    def test_service_monitor(self):
        r = self.render({"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}})
        sm = r.one("ServiceMonitor")
        self.assertEqual(sm["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(sm["metadata"]["labels"]["release"], "prom")
        (ep,) = sm["spec"]["endpoints"]
        self.assertEqual((ep["port"], ep["path"], ep["interval"]), ("http", "/metrics", "30s"))
        headless = r.one("Service", "mqttd-headless")
        for k, v in sm["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(headless["metadata"]["labels"].get(k), v, k)
        client = r.one("Service", "mqttd")
        self.assertNotEqual(client["metadata"]["labels"]["app.kubernetes.io/component"],
                            sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"])

    def test_five_replicas(self):
        r = self.render({"replicas": 5})
        self.assertEqual(r.sts()["spec"]["replicas"], 5)
        self.assertEqual(r.args()["--cluster-bootstrap-members"], "mqttd-0,mqttd-1,mqttd-2")
        self.assertEqual(r.one("PodDisruptionBudget")["spec"]["maxUnavailable"], 1)

    def test_bootstrap_members_default(self):
        # 1 voter for 1-2 replicas (2 voters tolerate no failure), 3 from 3 replicas on; never 5.
        want = {1: ["mqttd-0"], 2: ["mqttd-0"], 3: ["mqttd-0", "mqttd-1", "mqttd-2"],
                4: ["mqttd-0", "mqttd-1", "mqttd-2"], 7: ["mqttd-0", "mqttd-1", "mqttd-2"]}
        for replicas, members in want.items():
            with self.subTest(replicas=replicas):
                r = self.render({"replicas": replicas})
                self.assertEqual(r.args()["--cluster-bootstrap-members"].split(","), members)
        r = self.render(None, "--set", "replicas=2")  # --set gives an int64, -f a float64
        self.assertEqual(r.args()["--cluster-bootstrap-members"], "mqttd-0")
        r = self.render({"replicas": 4}, "--release", "prod")  # pod names follow the full name
        self.assertEqual(r.args()["--cluster-bootstrap-members"], "prod-mqttd-0,prod-mqttd-1,prod-mqttd-2")
        r = self.render({"replicas": 1, "fullnameOverride": "broker"})
        self.assertEqual(r.args()["--cluster-bootstrap-members"], "broker-0")

    def test_bootstrap_members_explicit(self):
        five = [f"mqttd-{i}" for i in range(5)]
        r = self.render({"replicas": 5, "cluster": {"bootstrapMembers": five}})
        self.assertEqual(r.args()["--cluster-bootstrap-members"], ",".join(five))
        r = self.render({"replicas": 7, "cluster": {"bootstrapMembers": ["mqttd-2", "mqttd-4", "mqttd-6"]}})
        self.assertEqual(r.args()["--cluster-bootstrap-members"], "mqttd-2,mqttd-4,mqttd-6")
        r = self.render({"replicas": 3, "cluster": {"bootstrapMembers": ["mqttd-1"]}})
        self.assertEqual(r.args()["--cluster-bootstrap-members"], "mqttd-1")
        self.assertNotIn("bootstrap_members", r.config()["cluster"])  # a flag, not a file key
        # The list is in the pod template: every pod gets the same one.
        for ordinal in range(5):
            p = run_render(["--pod-spec", str(ordinal)], {"replicas": 5, "cluster": {"bootstrapMembers": five}})
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("--cluster-bootstrap-members=" + ",".join(five), json.loads(p.stdout)["args"])

    def test_existing_secrets(self):
        r = self.render({"listeners": {"mqtts": {"enabled": True}},
                         "tls": {"existingSecret": "my-tls", "existingSecretHasCa": True},
                         "auth": {"enabled": True, "existingSecret": "my-auth"}})
        self.assertEqual(r.all("Secret"), [])
        volumes = {v["name"]: v for v in r.sts()["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["tls"]["secret"]["secretName"], "my-tls")
        self.assertEqual(volumes["auth"]["secret"]["secretName"], "my-auth")
        cfg = r.config()
        self.assertEqual(cfg["auth"], {"password_file": "/etc/mqttd/auth/passwd",
                                       "acl_file": "/etc/mqttd/auth/acl"})
        self.assertEqual(cfg["listeners"][1]["ca_file"], "/etc/mqttd/tls/ca.crt")

    def test_inline_auth(self):
        r = self.render({"auth": {"enabled": True, "passwordFile": "user:hash\n"}})
        secret = r.one("Secret", "mqttd-auth")
        self.assertEqual(base64.b64decode(secret["data"]["passwd"]).decode(), "user:hash\n")
        self.assertNotIn("acl", secret["data"])
        self.assertEqual(r.config()["auth"], {"password_file": "/etc/mqttd/auth/passwd"})
        mounts = {m["name"]: m["mountPath"] for m in r.container()["volumeMounts"]}
        self.assertEqual(mounts["auth"], "/etc/mqttd/auth")
        r2 = self.render({"auth": {"enabled": True, "passwordFile": "user:other\n"}})
        self.assertNotEqual(r.sts()["spec"]["template"]["metadata"]["annotations"]["checksum/secrets"],
                            r2.sts()["spec"]["template"]["metadata"]["annotations"]["checksum/secrets"])

    def test_anti_affinity_hard_and_none(self):
        r = self.render({"podAntiAffinity": {"type": "hard"}})
        aff = r.sts()["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        (term,) = aff["requiredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(term["topologyKey"], "kubernetes.io/hostname")
        r = self.render({"podAntiAffinity": {"type": "none"}})
        self.assertNotIn("affinity", r.sts()["spec"]["template"]["spec"])

    def test_persistence(self):
        r = self.render({"persistence": {"enabled": False}})
        self.assertNotIn("volumeClaimTemplates", r.sts()["spec"])
        volumes = {v["name"]: v for v in r.sts()["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["data"], {"name": "data", "emptyDir": {}})
        r = self.render({"persistence": {"storageClass": "-", "size": "50Gi"}})
        vct = r.sts()["spec"]["volumeClaimTemplates"][0]["spec"]
        self.assertEqual((vct["storageClassName"], vct["resources"]["requests"]["storage"]), ("", "50Gi"))
        r = self.render({"persistence": {"storageClass": "fast"}})
        self.assertEqual(r.sts()["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"], "fast")

    def test_config_is_generic(self):
        # Keys values.yaml does not have (limits.workers, auth.hmac_secret, cluster.join) pass
        # through as they are; run_render checks that they are mqttd's keys.
        r = self.render({"config": {"limits": {"max_inflight": 50, "max_packet_size": None, "workers": 4},
                                    "storage": {"wal_budget": 4000000000},
                                    "auth": {"hmac_secret": "s"},
                                    "cluster": {"join": ["seed:7946"]},
                                    "listeners": [{"protocol": "ignored"}]}})
        cfg = r.config()
        self.assertEqual(cfg["limits"]["max_inflight"], 50)
        self.assertNotIn("max_packet_size", cfg["limits"])  # null removes a default
        self.assertEqual(cfg["limits"]["max_queued_messages"], 1000)
        self.assertEqual(cfg["limits"]["workers"], 4)
        self.assertEqual(cfg["storage"]["wal_budget"], 4000000000)  # not 4e+09
        self.assertEqual(cfg["auth"], {"hmac_secret": "s"})
        self.assertEqual(cfg["cluster"]["join"], ["seed:7946"])
        self.assertEqual(cfg["listeners"], [{"protocol": "mqtt", "address": "0.0.0.0:1883"}])

    def test_unknown_config_key_is_caught(self):
        # What run_render does for every render: a key mqttd does not have fails the test.
        p = subprocess.run([RENDER, "--set", "config.cluster.probe_interval=1000", CHART],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        cfg = Rendered(p.stdout).config()
        self.assertEqual(unknown_config_keys(cfg), ["cluster.probe_interval"])
        with self.assertRaisesRegex(AssertionError, r"not in docs/configuration.md's key table: "
                                                    r"\['new_section.some_key'\]"):
            run_render([], {"config": {"new_section": {"some_key": "v"}}})
        self.assertEqual(unknown_config_keys({"limits": {}, "listeners": [], "cluster": {"join": []}}), [])

    def test_ports_follow_values(self):
        r = self.render({"cluster": {"port": 7000}, "listeners": {"mqtt": {"port": 1884}},
                         "http": {"port": 9090}})
        args = r.args()
        self.assertEqual(args["--cluster-raft-listen"], "0.0.0.0:7001")
        self.assertEqual(args["--http-listen"], "0.0.0.0:9090")
        self.assertEqual(r.container()["lifecycle"]["preStop"]["exec"]["command"][2], "127.0.0.1:7000")
        self.assertEqual(r.config()["cluster"]["join_dns"], "mqttd-headless.default.svc.cluster.local:7000")
        self.assertEqual(self.ports(r.one("Service", "mqttd")["spec"]["ports"]), {"mqtt": 1884})
        r = self.render({"cluster": {"raftPort": 9000}})
        self.assertEqual(r.args()["--cluster-raft-listen"], "0.0.0.0:9000")
        self.assertEqual(self.ports(r.one("Service", "mqttd-headless")["spec"]["ports"])["raft"], 9000)

    def test_names(self):
        r = self.render(None, "--release", "prod")
        self.assertEqual(r.sts()["metadata"]["name"], "prod-mqttd")
        self.assertEqual(r.sts()["spec"]["serviceName"], "prod-mqttd-headless")
        self.assertEqual(r.config()["cluster"]["name"], "prod-mqttd")
        r = self.render({"fullnameOverride": "broker"})
        self.assertEqual(r.args()["--cluster-advertise"],
                         "$(POD_NAME).broker-headless.default.svc.cluster.local:7946")
        self.assertEqual(r.config()["cluster"]["name"], "broker")

    def test_cluster_name(self):
        # Two releases are two clusters: each pod's config names its release (test_names), or
        # the value; the chart sets it over config.cluster.name, like cluster.listen.
        r = self.render({"cluster": {"name": "eu-prod.1"}, "config": {"cluster": {"name": "other"}}},
                        "--release", "prod")
        self.assertEqual(r.config()["cluster"]["name"], "eu-prod.1")
        self.assertEqual(r.sts()["metadata"]["name"], "prod-mqttd")
        longest = "n" * 64
        self.assertEqual(self.render({"cluster": {"name": longest}}).config()["cluster"]["name"], longest)
        for bad in ("eu prod", "a/b", "n" * 65):
            self.render_fails({"cluster": {"name": bad}},
                              'cluster.name: "%s" must be 1 to 64 characters of A-Z, a-z, 0-9' % bad)

    def test_drain_and_grace(self):
        r = self.render({"drain": {"timeoutSeconds": 300}})
        self.assertEqual(r.sts()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 330)
        # SIGTERM drains within the same time as the preStop hook, whose mqttctl waits 10 s
        # more for the node's report (it would report "Deadline Exceeded" at the same moment).
        self.assertEqual(r.config()["shutdown_timeout"], 300)
        self.assertEqual(r.container()["lifecycle"]["preStop"]["exec"]["command"][-2:],
                         ["--timeout", "310"])
        r = self.render({"drain": {"enabled": False}, "terminationGracePeriodSeconds": 20})
        self.assertNotIn("lifecycle", r.container())
        self.assertEqual(r.sts()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 20)

    def test_extras(self):
        r = self.render({"extraArgs": ["--workers=4"],
                         "extraEnv": [{"name": "MQTTD_LOG_LEVEL", "value": "debug"}],
                         "nodeSelector": {"disk": "ssd"}, "priorityClassName": "high",
                         "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                                        "whenUnsatisfiable": "ScheduleAnyway"}]})
        self.assertEqual(r.container()["args"][-1], "--workers=4")
        self.assertIn({"name": "MQTTD_LOG_LEVEL", "value": "debug"}, r.container()["env"])
        pod = r.sts()["spec"]["template"]["spec"]
        self.assertEqual((pod["nodeSelector"], pod["priorityClassName"]), ({"disk": "ssd"}, "high"))
        (tsc,) = pod["topologySpreadConstraints"]
        self.assertEqual(tsc["labelSelector"]["matchLabels"], r.sts()["spec"]["selector"]["matchLabels"])


class FailuresTest(ChartTestCase):
    def test_required_tls_certificate(self):
        self.render_fails({"listeners": {"mqtts": {"enabled": True}}},
                          "tls.cert (or tls.existingSecret) is required when listeners.mqtts or "
                          "listeners.wss is enabled")
        self.render_fails({"listeners": {"wss": {"enabled": True}}, "tls": {"cert": PEM_CERT}},
                          "tls.key (or tls.existingSecret) is required")

    def test_required_password_file(self):
        self.render_fails({"auth": {"enabled": True}},
                          "auth.passwordFile (or auth.existingSecret) is required when auth.enabled")

    def test_required_image(self):
        self.render_fails({"image": {"repository": ""}}, "image.repository is required")

    def test_invalid_bootstrap_members(self):
        odd = "cluster.bootstrapMembers must name 1, 3 or 5 nodes (an odd number, at most 5); got "
        for members in ([], ["mqttd-0", "mqttd-1"], [f"mqttd-{i}" for i in range(4)],
                        [f"mqttd-{i}" for i in range(6)], [f"mqttd-{i}" for i in range(7)]):
            with self.subTest(members=members):
                self.render_fails({"replicas": 7, "cluster": {"bootstrapMembers": members}},
                                  odd + str(len(members)))
        self.render_fails({"cluster": {"bootstrapMembers": "mqttd-0"}},
                          "cluster.bootstrapMembers must be a list of pod names (or null)")
        self.render_fails({"cluster": {"bootstrapMembers": ["mqttd-0", "mqttd-1", "mqttd-0"]}},
                          'cluster.bootstrapMembers names "mqttd-0" twice')
        self.render_fails({"cluster": {"bootstrapMembers": ["node-0"]}},
                          'cluster.bootstrapMembers: "node-0" is not a pod of the StatefulSet (mqttd-0, mqttd-1, ...)')
        self.render_fails({"cluster": {"bootstrapMembers": ["mqttd-01"]}}, '"mqttd-01" is not a pod')

    def test_invalid_values(self):
        self.render_fails({"replicas": 0}, "replicas must be at least 1")
        self.render_fails({"service": {"type": "ExternalName"}}, "service.type must be ClusterIP")
        self.render_fails({"podAntiAffinity": {"type": "sometimes"}}, "podAntiAffinity.type must be")
        self.render_fails({"terminationGracePeriodSeconds": 30},
                          "terminationGracePeriodSeconds (30) must be >= drain.timeoutSeconds (120)")

    def test_kube_version(self):
        self.render_fails(None, "incompatible with Kubernetes v1.20.0", "--kube-version", "v1.20.0")


class PodSpecTest(ChartTestCase):
    def pod_spec(self, ordinal, values=None, *args):
        p = run_render(["--pod-spec", str(ordinal)] + list(args), values)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_pod_spec_of_each_ordinal(self):
        for ordinal in (0, 4):
            spec = self.pod_spec(ordinal, {"replicas": 5}, "--release", "demo", "--namespace", "mq")
            pod = f"demo-mqttd-{ordinal}"
            self.assertEqual(spec["pod"], pod)
            self.assertEqual(spec["subdomain"], "demo-mqttd-headless")
            self.assertEqual(spec["command"], ["mqttd"])
            self.assertEqual(spec["args"], [
                "--config=/etc/mqttd/mqttd.yaml",
                f"--node-id={pod}",
                "--data-dir=/data",
                "--cluster-listen=0.0.0.0:7946",
                f"--cluster-advertise={pod}.demo-mqttd-headless.mq.svc.cluster.local:7946",
                "--cluster-raft-listen=0.0.0.0:7947",
                "--cluster-bootstrap-members=demo-mqttd-0,demo-mqttd-1,demo-mqttd-2",
                "--http-listen=0.0.0.0:8080",
            ])
            self.assertEqual(spec["env"], {"POD_NAME": pod, "POD_NAMESPACE": "mq"})
            self.assertEqual(spec["env_unresolved"], {})
            self.assertEqual(spec["ports"], {"mqtt": 1883, "cluster": 7946, "raft": 7947, "http": 8080})
            self.assertEqual(spec["dirs"], {"/data": "volumeClaimTemplate data", "/tmp": "emptyDir"})
            cfg = yaml.safe_load(spec["files"]["/etc/mqttd/mqttd.yaml"])
            self.assertEqual(cfg["cluster"]["join_dns"], "demo-mqttd-headless.mq.svc.cluster.local:7946")
            self.assertEqual(cfg["cluster"]["name"], "demo-mqttd")

    def test_pod_spec_env_and_secret_files(self):
        spec = self.pod_spec(1, {
            "auth": {"enabled": True, "passwordFile": "u:h\n", "aclFile": "topic #\n"},
            "extraEnv": [
                {"name": "NODE_LABEL", "value": "node $(POD_NAME) $$(POD_NAME)"},
                {"name": "MQTTD_AUTH_HMAC_SECRET",
                 "valueFrom": {"secretKeyRef": {"name": "mqttd-auth", "key": "passwd"}}},
                {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            ],
            "extraArgs": ["--log-level=$(LEVEL)"]})
        self.assertEqual(spec["env"]["NODE_LABEL"], "node mqttd-1 $(POD_NAME)")
        self.assertEqual(spec["env"]["MQTTD_AUTH_HMAC_SECRET"], "u:h\n")
        self.assertIn("status.hostIP", spec["env_unresolved"]["HOST_IP"])
        self.assertEqual(spec["args"][-1], "--log-level=$(LEVEL)")  # unknown: kept, as Kubernetes does
        self.assertEqual(spec["files"]["/etc/mqttd/auth/passwd"], "u:h\n")
        self.assertEqual(spec["files"]["/etc/mqttd/auth/acl"], "topic #\n")

    def test_pod_spec_out_of_range(self):
        p = run_render(["--pod-spec", "3"])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--pod-spec 3: the StatefulSet has 3 replicas", p.stderr)


class NotesTest(ChartTestCase):
    def test_notes(self):
        p = run_render(["--notes", "--release", "demo"], {"service": {"type": "LoadBalancer"},
                                                          "listeners": {"ws": {"enabled": True}}})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("kubectl -n default get service demo-mqttd", p.stdout)
        self.assertIn("mqttctl --server 127.0.0.1:7946 members", p.stdout)
        self.assertIn("ws    8083", p.stdout)
        self.assertIn("formed on the first start by demo-mqttd-0,demo-mqttd-1,demo-mqttd-2\n", p.stdout)
        self.assertNotIn("<no value>", p.stdout)


class RendererTest(unittest.TestCase):
    """render.go itself, on testdata/semantics: what Helm 3 prints for the same chart."""

    def test_helm_semantics(self):
        p = run_render(["--release", "rel", "--set", "setme=5", "--set", "nested.drop=null"],
                       chart=SEMANTICS)
        self.assertEqual(p.returncode, 0, p.stderr)
        (cm,) = [d for d in yaml.safe_load_all(p.stdout) if d]
        self.assertEqual(cm["metadata"]["name"], "rel-semantics")
        self.assertEqual(cm["data"], {
            "big": "1e+06",  # values are float64: Helm's well-known 1e+06
            "bigInt": "1000000",
            "port": "1883",
            "portKind": "float64",
            "setKind": "int64",  # --set integers are int64
            "tpl": "hello rel",
            "missing": "",  # "<no value>" erased
            "hasDrop": "false",  # a null removes the default
            "nested": "keep: 1\n",
            "fromYamlKind": "float64",
            "template": "semantics/templates/configmap.yaml",
            "basePath": "semantics/templates",
            "appsV1": "true",
            "kubeMinor": "28",
        })
        self.assertTrue(p.stdout.startswith("---\n# Source: semantics/templates/configmap.yaml\n"))

    def test_required_fails_with_its_message(self):
        p = run_render(["--set", "needIt.other=1"], chart=SEMANTICS)
        self.assertEqual(p.returncode, 1)
        self.assertIn("needIt.value is required", p.stderr)

    def test_notes_only_on_request(self):
        p = run_render(["--release", "rel"], chart=SEMANTICS)
        self.assertNotIn("notes of", p.stdout)
        p = run_render(["--notes", "--release", "rel"], chart=SEMANTICS)
        self.assertEqual(p.stdout.strip(), "notes of rel-semantics")

    def test_bad_yaml_output_fails(self):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(SEMANTICS, os.path.join(tmp, "c"))
            with open(os.path.join(tmp, "c", "templates", "bad.yaml"), "w") as f:
                f.write("kind: ConfigMap\nmetadata: {name: x\n")
            p = run_render([], chart=os.path.join(tmp, "c"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("YAML parse error on semantics/templates/bad.yaml", p.stderr)


class FilesTest(unittest.TestCase):
    """The chart's files: yamllint, every value documented and commented, SPDX lines."""

    def yamllint(self, paths):
        p = subprocess.run(["yamllint", "--strict", "-c", LINT_CONFIG] + paths,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_yamllint_sources(self):
        self.yamllint([os.path.join(CHART, "values.yaml"), os.path.join(CHART, "Chart.yaml"), LINT_CONFIG])

    def test_yamllint_rendered(self):
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for name, values in SCENARIOS.items():
                p = run_render(["--release", "lint"], values)
                self.assertEqual(p.returncode, 0, f"{name}: {p.stderr}")
                paths.append(os.path.join(tmp, f"{name}.yaml"))
                with open(paths[-1], "w") as f:
                    f.write(p.stdout)
            self.yamllint(paths)

    def test_config_keys_are_mqttd_keys(self):
        """Every key path of the rendered mqttd.yaml, for every scenario, is in the key table of
        docs/configuration.md (run_render checks the other tests' renders the same way)."""
        bad = {}
        for name, values in SCENARIOS.items():
            p = run_render(["--release", "keys"], values)
            self.assertEqual(p.returncode, 0, f"{name}: {p.stderr}")
            (cm,) = [d for d in yaml.safe_load_all(p.stdout) if d and d["kind"] == "ConfigMap"]
            unknown = unknown_config_keys(yaml.safe_load(cm["data"]["mqttd.yaml"]))
            if unknown:
                bad[name] = unknown
        self.assertEqual(bad, {})

    def test_every_value_documented(self):
        with open(os.path.join(CHART, "values.yaml")) as f:
            values = yaml.safe_load(f)
        with open(os.path.join(CHART, "README.md")) as f:
            documented = set(re.findall(r"^\| `([^`]+)` \|", f.read(), re.M))
        missing = [k for k in leaf_keys(values) if k not in documented]
        self.assertEqual(missing, [], "values without a row in helm/mqttd/README.md")
        unknown = sorted(k for k in documented if k not in set(leaf_keys(values)))
        self.assertEqual(unknown, [], "README rows for keys values.yaml does not have")

    def test_every_value_commented(self):
        with open(os.path.join(CHART, "values.yaml")) as f:
            lines = f.read().splitlines()
        bare = []
        for i, line in enumerate(lines):
            if re.match(r"^\s*[A-Za-z_][\w.-]*:", line):
                prev = next((p for p in reversed(lines[:i]) if p.strip()), "")
                if not prev.strip().startswith("#") and " # " not in line:
                    bare.append(f"values.yaml:{i + 1}: {line.strip()}")
        self.assertEqual(bare, [])

    def test_spdx_lines(self):
        files = [f for f in glob.glob(os.path.join(CHART, "**", "*"), recursive=True)
                 if os.path.isfile(f) and not f.endswith(".md")]
        files += [f for f in glob.glob(os.path.join(HERE, "**", "*"), recursive=True)
                  if os.path.isfile(f) and not f.endswith(".md")]
        for f in files:
            with open(f) as fh:
                head = fh.read(300)
            self.assertIn("SPDX-License-Identifier: Apache-2.0", head, f)


def leaf_keys(values, prefix=""):
    """Dotted paths of values.yaml; a map or list value that is empty by default is one leaf, and
    so are the open maps the chart passes through whole (config.*, resources.* stay leaves)."""
    out = []
    for k, v in values.items():
        key = prefix + k
        if isinstance(v, dict) and v:
            out += leaf_keys(v, key + ".")
        else:
            out.append(key)
    return out


def main():
    global RENDER
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--build-dir", default=os.path.join(tempfile.gettempdir(), "mqttd-helm-render"))
    opts, rest = parser.parse_known_args()
    RENDER = build_renderer(opts.build_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
