#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The Helm chart's StatefulSet run for real: 3 pods, scaled to 5, scaled back to 3 (issue 13).

Each pod is a real mqttd started with exactly what `render --pod-spec N` (tests/helm/podspec.go)
says the StatefulSet's container runs in pod ordinal N, in its own network namespace with its own
address (tests/integration/cluster/netns.py: a bridge, one veth per pod, the test reaches every
pod from the root namespace as a Service would):

    ip netns exec <pod netns> unshare --mount --uts --propagation private \
      sh -c 'mount --bind HOSTS /etc/hosts && hostname POD && exec "$@"' \
      env -i PATH=... <pod env> MQTTD <rendered args>

Substitutions (every one; anything else is as rendered):
- the command `mqttd` (the image's binary on its PATH) is the built binary (MQTTD_BIN); the test
  fails if the rendered command is anything else;
- an argument's value that is a mounted file (`files`: the config file /etc/mqttd/mqttd.yaml,
  rendered from the ConfigMap) or a volume (`dirs`: /data, the volumeClaimTemplate) is the same
  path under the pod's temp dir (files written there with the rendered content, volumes as empty
  directories); paths are remapped, not bind-mounted, because /etc/mqttd and /data do not exist
  on the host to mount over. The config file must name no such path (checked). The /tmp
  emptyDir is not given (mqttd is passed no path in it);
- the environment is the pod spec's `env` exactly (POD_NAME, POD_NAMESPACE, from the downward
  API), plus what kubelet and the runtime add: PATH (as the image sets it), HOSTNAME (the pod
  name), the service links of the release's Services with a cluster IP and of `kubernetes`
  (MQTTD_SERVICE_HOST, MQTTD_PORT_1883_TCP, ...; made-up cluster IPs), and the sanitizer
  runtime's *SAN_OPTIONS when set;
- the process runs as root, not as the pod's runAsUser, on the host's (writable) root filesystem;
- the headless Service's DNS is a hosts file bind-mounted over /etc/hosts in each pod's mount
  namespace: `<pod>.<serviceName>.<ns>.svc.cluster.local <pod>` for every pod that exists, and
  one line per pod for `<serviceName>.<ns>.svc.cluster.local` (the headless Service's A records:
  its publishNotReadyAddresses lists pods before they are ready). mqttd resolves
  cluster.join_dns with getaddrinfo (cluster/node.cc ResolveSeeds: every address is a seed) and
  dials advertised names through gRPC's resolver, which reads /etc/hosts too. The file is
  rewritten in place (same inode, so the bind mounts see it) when pods come and go;
- kubelet's probes (rendered paths and port names, success = HTTP 200-399) are polled every
  0.2 s, not every periodSeconds, so that the test is quick;
- the client Service is the test choosing a ready pod for each client (client k: the k-th of
  the ready pods, modulo their number).

Scenario: render with replicas=3, start pods 0-2, startup probe /healthz then readiness /readyz
on each, `mqttctl members` on every pod shows the same 3 alive. SESSIONS persistent subscribers
(3.1.1, clean session 0, QoS 1) spread over the pods, each following one of PUBLISHERS
publishers that publish numbered QoS 1 messages all along. Scale to 5: render with replicas=5,
start pods 3 and 4 from it (pods 0-2 keep running their replicas=3 spec, as a StatefulSet
scale-up leaves them; the test checks that the two renders give pods 0-2 the same spec), one
cluster of 5; the subscribers and a publisher the Service would now send to pods 3 and 4 move
there (Session Present 1 [MQTT-3.2.2-2]), those on pod 3 then go offline (their sessions stay,
offline, on pod 3, queueing). Scale to 3: pod 4 then pod 3 as a StatefulSet scales in: the
rendered preStop exec (`mqttctl --server 127.0.0.1:7946 drain --timeout 130`) run in the pod's
network and mount namespaces (nsenter, as kubelet's exec), it must exit 0 (nothing kept on the
pod, nothing left in its outboxes); then SIGTERM if still running; the pod must be gone within
terminationGracePeriodSeconds with exit status 0. The clients the pod had, online or offline,
then reconnect to the remaining pods. At the end: one cluster of 3 on every pod, every pod live
and ready, every reconnect of every subscriber got Session Present 1, and every subscriber got
every message its publisher had acknowledged, with each message's first delivery in publish
order (duplicates allowed: QoS 1 redelivers after a reconnect [MQTT-4.3.2-1]).

Reconnects wait for the removed pod's preStop to return; SCALE_RECONNECT_AT_ONCE=1 (ctest
helm.scale_reconnect_at_once) makes the clients of a removed pod reconnect as soon as the drain
closes their connection, racing the drain's own hand-over of their sessions
(docs/cluster-sessions.md, "Claims in flight": 1 run in 3 lost a session before that fix).

Needs root (network and mount namespaces). Exits 77 (ctest: skipped) only when no Go toolchain
is installed (render is built with it, as in test_chart.py).

    MQTTD_BIN=... MQTTCTL_BIN=... /usr/bin/python3 tests/helm/test_scale.py [--build-dir DIR]
"""
import argparse
import atexit
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(ROOT, "helm", "mqttd")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "cluster"))
sys.path.insert(0, HERE)

import test_chart  # noqa: E402  (build_renderer: Go, exit 77 without it)
from harness_cluster import unique, wait_until  # noqa: E402  (also puts tests/integration on the path)
from harness import PUBACK, PUBLISH, Closed, RawClient, publish_packet  # noqa: E402
import netns  # noqa: E402

RELEASE = "mqttd"
NAMESPACE = "mq"
SESSIONS = int(os.environ.get("SCALE_SESSIONS", "50"))
PUBLISHERS = 3
PUBLISH_INTERVAL_S = 0.1
# Set: the clients a drain disconnects reconnect at once, not after the preStop, racing the
# drain's hand-over of their sessions (ctest helm.scale_reconnect_at_once).
RECONNECT_AT_ONCE = bool(os.environ.get("SCALE_RECONNECT_AT_ONCE"))
WAIT_S = 60.0  # any one step (a pod ready, a cluster formed, messages caught up)
SANITIZER_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")
POD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def log(msg):
    sys.stderr.write("[%7.2f] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


T0 = time.monotonic()


# -- the chart ----------------------------------------------------------------------------------

def render(render_bin, replicas, *args):
    p = subprocess.run([render_bin, "--release", RELEASE, "--namespace", NAMESPACE, "--set",
                        "replicas=%d" % replicas] + list(args) + [CHART],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("render %s: %s" % (args, p.stderr))
    return p.stdout


def service_links(services):
    """The variables kubelet gives every container for each Service with a cluster IP in the
    pod's namespace (enableServiceLinks, on by default; the chart does not turn it off), plus
    the API server's `kubernetes` Service; the cluster IPs are made up (10.96.0.x). For release
    `mqttd` they are MQTTD_SERVICE_HOST, MQTTD_PORT, ...: mqttd must ignore MQTTD_* variables
    that are no configuration key."""
    found = [("kubernetes", [{"name": "https", "port": 443, "protocol": "TCP"}])]
    found += [(svc["metadata"]["name"], svc["spec"]["ports"]) for svc in services
              if svc["spec"].get("clusterIP") != "None"]
    env = {}
    for k, (name, ports) in enumerate(found):
        ip, n = "10.96.0.%d" % (10 + k), name.upper().replace("-", "_")
        env[n + "_SERVICE_HOST"] = ip
        env[n + "_SERVICE_PORT"] = str(ports[0]["port"])
        env[n + "_PORT"] = "%s://%s:%d" % (ports[0].get("protocol", "TCP").lower(), ip, ports[0]["port"])
        for port in ports:
            proto = port.get("protocol", "TCP")
            if "name" in port:
                env["%s_SERVICE_PORT_%s" % (n, port["name"].upper().replace("-", "_"))] = str(port["port"])
            base = "%s_PORT_%d_%s" % (n, port["port"], proto)
            env[base] = "%s://%s:%d" % (proto.lower(), ip, port["port"])
            env[base + "_PROTO"] = proto.lower()
            env[base + "_PORT"] = str(port["port"])
            env[base + "_ADDR"] = ip
    return env


class Release:
    """The chart rendered for `replicas`: the StatefulSet and each ordinal's --pod-spec."""

    def __init__(self, render_bin, replicas):
        docs = [d for d in yaml.safe_load_all(render(render_bin, replicas)) if d]
        (self.sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
        self.pod = self.sts["spec"]["template"]["spec"]
        (self.container,) = [c for c in self.pod["containers"] if c["name"] == "mqttd"]
        self.specs = [json.loads(render(render_bin, replicas, "--pod-spec", str(i)))
                      for i in range(replicas)]
        self.service_env = service_links([d for d in docs if d["kind"] == "Service"])

    @property
    def pre_stop(self):
        return self.container["lifecycle"]["preStop"]["exec"]["command"]

    @property
    def grace_s(self):
        return int(self.pod["terminationGracePeriodSeconds"])

    def probe(self, kind):
        """(path, port name, timeoutSeconds) of the container's startupProbe / readinessProbe /
        livenessProbe (httpGet)."""
        p = self.container[kind]
        return p["httpGet"]["path"], p["httpGet"]["port"], int(p.get("timeoutSeconds", 1))


# -- pods ---------------------------------------------------------------------------------------

class Hosts:
    """The hosts file standing in for the cluster DNS of the headless Service."""

    def __init__(self, path, spec):
        self.path = path
        self.domain = "%s.%s.svc.cluster.local" % (spec["subdomain"], spec["namespace"])
        self.pods = {}  # pod name -> address
        self.write()

    def write(self):
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        for pod, addr in sorted(self.pods.items()):
            lines.append("%s\t%s.%s %s" % (addr, pod, self.domain, pod))
        for pod, addr in sorted(self.pods.items()):
            lines.append("%s\t%s" % (addr, self.domain))
        with open(self.path, "w") as f:  # O_TRUNC, same inode: the bind mounts see it
            f.write("\n".join(lines) + "\n")

    def add(self, pod, addr):
        self.pods[pod] = addr
        self.write()

    def remove(self, pod):
        self.pods.pop(pod, None)
        self.write()


class Pod:
    """Pod ordinal i: its spec, its namespace (topology node i), its process."""

    def __init__(self, topo, release, i, root, hosts):
        self.topo, self.release, self.i = topo, release, i
        self.spec = release.specs[i]
        self.name = self.spec["pod"]
        self.addr = topo.addr(i)
        self.root = os.path.join(root, self.name)
        self.hosts = hosts
        self.proc = None
        self.log_path = os.path.join(self.root, "mqttd.log")
        self.substitutions = []

    def port(self, name):
        return self.spec["ports"][name]

    def _local(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _remap(self, arg):
        flag, eq, value = arg.partition("=")
        if eq and (value in self.spec["files"] or value in self.spec["dirs"]):
            new = "%s=%s" % (flag, self._local(value))
            self.substitutions.append("%s -> %s" % (arg, new))
            return new
        return arg

    def argv(self, mqttd):
        spec = self.spec
        if spec["command"] != ["mqttd"]:
            raise AssertionError("rendered command %r: the test runs `mqttd` only" % spec["command"])
        if spec["env_unresolved"]:
            raise AssertionError("env the test cannot resolve: %r" % spec["env_unresolved"])
        env = ["PATH=" + POD_PATH, "HOSTNAME=" + self.name]
        env += ["%s=%s" % kv for kv in sorted(self.release.service_env.items())]
        env += ["%s=%s" % kv for kv in sorted(spec["env"].items())]
        env += ["%s=%s" % (k, os.environ[k]) for k in SANITIZER_ENV if k in os.environ]
        self.substitutions = ["mqttd -> " + mqttd]
        args = [self._remap(a) for a in spec["args"]]
        script = 'mount --bind "$0" /etc/hosts && hostname "$1" && shift && exec "$@"'
        return (self.topo.exec_prefix(self.i)
                + ["unshare", "--mount", "--uts", "--propagation", "private", "--",
                   "/bin/sh", "-c", script, self.hosts.path, self.name,
                   "/usr/bin/env", "-i"] + env + [mqttd] + args)

    def _write_volumes(self):
        for path, content in self.spec["files"].items():
            for other in list(self.spec["files"]) + list(self.spec["dirs"]):
                if other in content:
                    raise AssertionError("%s names %s, which the test remaps" % (path, other))
            os.makedirs(os.path.dirname(self._local(path)), exist_ok=True)
            with open(self._local(path), "w") as f:
                f.write(content)
        for path in self.spec["dirs"]:
            os.makedirs(self._local(path), exist_ok=True)

    def start(self, mqttd):
        os.makedirs(self.root, exist_ok=True)
        self._write_volumes()
        self.hosts.add(self.name, self.addr)  # the Service lists the pod once it has its IP
        argv = self.argv(mqttd)
        log("%s at %s: %s" % (self.name, self.addr, "; ".join(self.substitutions)))
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, env={"PATH": POD_PATH})

    def log_tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def http_status(self, kind):
        path, port, timeout = self.release.probe(kind)
        conn = http.client.HTTPConnection(self.addr, self.port(port), timeout=timeout)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        except OSError:
            return None
        finally:
            conn.close()

    def probe_ok(self, kind):
        status = self.http_status(kind)
        return status is not None and 200 <= status < 400

    def wait_started_and_ready(self):
        """startupProbe until it passes (bounded by its failureThreshold x periodSeconds, at
        most WAIT_S here), then readinessProbe; fails at once if mqttd exits."""
        for kind in ("startupProbe", "readinessProbe"):
            def ok():
                if self.proc.poll() is not None:
                    raise AssertionError("%s exited %s before its %s passed:\n%s"
                                         % (self.name, self.proc.returncode, kind, self.log_tail()))
                return self.probe_ok(kind)
            wait_until(ok, WAIT_S, "%s %s" % (self.name, kind), self.log_tail)

    def exec(self, cmd, timeout):
        """cmd in the container's network and mount namespaces with its environment, as
        kubelet's exec of a lifecycle hook; `mqttctl` is the built one (MQTTCTL_BIN)."""
        if cmd[0] == "mqttctl":
            cmd = [os.environ["MQTTCTL_BIN"]] + cmd[1:]
        env = dict(self.spec["env"], PATH=POD_PATH)
        env.update({k: os.environ[k] for k in SANITIZER_ENV if k in os.environ})
        return subprocess.run(["nsenter", "-t", str(self.proc.pid), "-n", "-m", "--"] + cmd,
                              capture_output=True, text=True, timeout=timeout, env=env)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def members(pod):
    out = subprocess.run([os.environ["MQTTCTL_BIN"], "--server", "%s:%d" % (pod.addr, pod.port("cluster")),
                          "--json", "members"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        return None
    return {m["nodeId"]: m["state"] for m in json.loads(out.stdout).get("members", [])}


def wait_one_cluster(pods):
    """Every pod's `mqttctl members` lists exactly `pods` alive (anything else: left/dead)."""
    want = sorted(p.name for p in pods)
    seen = {}

    def one_cluster():
        for p in pods:
            m = members(p)
            seen[p.name] = m
            if m is None or sorted(n for n, s in m.items() if s == "alive") != want:
                return False
        return True
    wait_until(one_cluster, WAIT_S, "one cluster of %s" % want, lambda: json.dumps(seen, indent=1))
    log("one cluster of %d: %s" % (len(pods), want))


# -- clients ------------------------------------------------------------------------------------

class Client(threading.Thread):
    """A connection the main thread steers: `target` is the pod (a Pod) the client should be
    connected to, None = offline (disconnected, session kept). A connection the broker closes
    is not reopened until the main thread gives another target (as a client reconnecting
    through the Service once the pod is gone)."""

    def __init__(self, client_id):
        super().__init__(daemon=True)
        self.client_id = client_id
        self.target = None
        self.on = None  # the pod connected to
        self.lost = None  # the pod that closed the connection
        self.conn = None
        self.connects = []  # (pod name, Session Present)
        self.errors = []
        self.halt = threading.Event()
        self.reroute = None  # SCALE_RECONNECT_AT_ONCE: () -> the pod to reconnect to at once

    def move(self, pod):
        self.target = pod
        self.lost = None

    def _open(self, pod):
        raise NotImplementedError

    def _step(self):
        raise NotImplementedError

    def run(self):
        while not self.halt.is_set():
            target = self.target
            if self.conn is not None and target is not self.on:
                self.conn.disconnect()  # DISCONNECT: the session stays
                self.conn, self.on = None, None
            if self.conn is None:
                if target is None or target is self.lost:
                    self.halt.wait(0.05)
                    continue
                try:
                    self.conn = RawClient(target.addr, target.port("mqtt"))
                    self.connects.append((target.name, self._open(self.conn)))
                    self.on = target
                except (OSError, AssertionError, Closed, TimeoutError) as e:
                    self.errors.append("%s: connect to %s: %r" % (self.client_id, target.name, e))
                    if self.conn is not None:
                        self.conn.close()
                    self.conn = None
                    self.halt.wait(0.2)
                continue
            try:
                self._step()
            except TimeoutError:
                continue
            except (Closed, OSError) as e:
                self.errors.append("%s: closed by %s: %r" % (self.client_id, self.on.name, e))
                self.lost = self.on
                if self.reroute is not None:
                    self.target, self.lost, self.reroute = self.reroute(), None, None
                self.conn.close()
                self.conn, self.on = None, None
        if self.conn is not None:
            self.conn.disconnect()


class Subscriber(Client):
    """A persistent session (clean session 0) subscribed at QoS 1 to one publisher's topic."""

    def __init__(self, client_id, topic):
        super().__init__(client_id)
        self.topic = topic
        self.seqs = []  # sequence numbers in delivery order

    def _open(self, c):
        present, _ = c.connect(self.client_id, clean=False, keepalive=0)
        if not self.connects:
            if c.subscribe([(self.topic, 1)]) != [1]:
                raise AssertionError("SUBACK refused")
        return present

    def _step(self):
        p = self.conn.recv(0.2)
        if p.type == PUBLISH:
            self.seqs.append(int(p.payload.decode()))
            self.conn.ack(p)


class Publisher(Client):
    """Numbered QoS 1 messages (payload: the decimal number), one at a time; `acked` is the
    highest the broker acknowledged. A message not acknowledged is sent again on reconnect."""

    def __init__(self, client_id, topic):
        super().__init__(client_id)
        self.topic = topic
        self.next = 1
        self.acked = 0
        self.paused = threading.Event()

    def _open(self, c):
        present, _ = c.connect(self.client_id, clean=True, keepalive=0)
        return present

    def _step(self):
        if self.paused.is_set():
            self.halt.wait(0.05)
            return
        pid = self.next % 65535 + 1
        self.conn.send(publish_packet(self.topic, str(self.next).encode(), qos=1, pid=pid))
        self.conn.wait_for(PUBACK, pid, timeout=10)
        self.acked = self.next
        self.next += 1
        self.halt.wait(PUBLISH_INTERVAL_S)


# -- the test -----------------------------------------------------------------------------------

class ScaleTest:
    def __init__(self, render_bin, workdir):
        self.render_bin = render_bin
        self.workdir = workdir
        self.mqttd = os.environ["MQTTD_BIN"]
        self.pods = {}  # ordinal -> Pod (running or stopped)
        self.clients = []
        self.figures = []

    def ready_pods(self):
        return [p for _, p in sorted(self.pods.items())
                if p.proc.poll() is None and p.probe_ok("readinessProbe")]

    def service_pick(self, k, ready):
        return ready[k % len(ready)]

    def describe(self):
        return "\n".join("--- %s (exit %s):\n%s" % (p.name, p.proc.poll(), p.log_tail())
                         for _, p in sorted(self.pods.items()))

    def run(self):
        self.topo = netns.Topology(5, prefix="mqsc")
        try:
            self._run()
        finally:
            self.cleanup()

    def cleanup(self):
        for c in self.clients:
            c.halt.set()
        for c in self.clients:
            c.join(5)
        for p in self.pods.values():
            p.kill()
        self.topo.cleanup()

    def start_pods(self, release, ordinals):
        for i in ordinals:
            self.pods[i] = Pod(self.topo, release, i, self.workdir, self.hosts)
            self.pods[i].start(self.mqttd)
        for i in ordinals:
            self.pods[i].wait_started_and_ready()
            log("%s started and ready" % self.pods[i].name)

    def _run(self):
        three = Release(self.render_bin, 3)
        self.hosts = Hosts(os.path.join(self.workdir, "hosts"), three.specs[0])
        self.start_pods(three, range(3))
        wait_one_cluster([self.pods[i] for i in range(3)])

        run = unique("sc")
        publishers = [Publisher("%s-pub-%d" % (run, j), "%s/%d" % (run, j)) for j in range(PUBLISHERS)]
        subscribers = [Subscriber("%s-sub-%d" % (run, k), publishers[k % PUBLISHERS].topic)
                       for k in range(SESSIONS)]
        self.clients = subscribers + publishers
        ready = self.ready_pods()
        for k, s in enumerate(subscribers):
            s.move(self.service_pick(k, ready))
            s.start()
        wait_until(lambda: all(s.on is not None for s in subscribers), WAIT_S,
                   "every subscriber connected", lambda: "\n".join(sum((s.errors for s in subscribers), [])))
        for j, p in enumerate(publishers):
            p.move(ready[j % len(ready)])
            p.start()
        self.wait_published(publishers, 20)

        # Scale out: pods 3 and 4 from the replicas=5 render; 0-2 keep their replicas=3 spec.
        five = Release(self.render_bin, 5)
        for i in range(3):
            if five.specs[i] != three.specs[i]:
                raise AssertionError("replicas=5 changes pod %d's spec (a scale-up would roll it):"
                                     "\n%s\n%s" % (i, three.specs[i], five.specs[i]))
        started = time.monotonic()
        self.start_pods(five, (3, 4))
        wait_one_cluster([self.pods[i] for i in range(5)])
        self.figures.append("scale 3 -> 5: %.1f s to one cluster of 5" % (time.monotonic() - started))

        # The Service spreads clients over 5 now: those it would send to pods 3 and 4 go there.
        ready = self.ready_pods()
        assert len(ready) == 5, [p.name for p in ready]
        movers = [s for k, s in enumerate(subscribers) if k % 5 in (3, 4)]
        for k, s in enumerate(subscribers):
            if k % 5 in (3, 4):
                s.move(self.pods[k % 5])
        publishers[-1].move(self.pods[4])
        wait_until(lambda: all(s.on is not None and s.on.i in (3, 4) for s in movers), WAIT_S,
                   "subscribers moved to pods 3 and 4")
        self.wait_published(publishers, 20)
        offline = [s for k, s in enumerate(subscribers) if k % 5 == 3]
        for s in offline:
            s.move(None)  # DISCONNECT: their sessions stay on pod 3, queueing
        wait_until(lambda: all(s.on is None for s in offline), WAIT_S, "pod 3's subscribers offline")
        self.wait_published(publishers, 20)

        # Scale in: pod 4, then pod 3, each drained by its preStop hook, then SIGTERM.
        for i in (4, 3):
            remaining = [self.pods[j] for j in range(i)]
            if RECONNECT_AT_ONCE:
                for k, c in enumerate(subscribers + publishers):
                    if c.target is self.pods[i]:
                        c.reroute = lambda k=k: self.service_pick(k, remaining)
            self.remove_pod(five, i)
            for k, c in enumerate(subscribers + publishers):
                if c.target is self.pods[i] or c.lost is self.pods[i] or (c in offline and i == 3):
                    c.move(self.service_pick(k, remaining))
            self.wait_published(publishers, 20)
        wait_one_cluster([self.pods[i] for i in range(3)])
        for i in range(3):
            for kind in ("livenessProbe", "readinessProbe"):
                if not self.pods[i].probe_ok(kind):
                    raise AssertionError("%s fails its %s at the end" % (self.pods[i].name, kind))

        for p in publishers:
            p.paused.set()
        time.sleep(0.5)  # let a publish in flight finish (its PUBACK sets acked)
        self.check_deliveries(subscribers, publishers)

    def wait_published(self, publishers, count):
        """Until each publisher had `count` more messages acknowledged."""
        goal = [p.acked + count for p in publishers]
        wait_until(lambda: all(p.acked >= g for p, g in zip(publishers, goal)), WAIT_S,
                   "publishers progress", lambda: "%s\n%s" % (
                       [(p.client_id, p.acked, p.errors[-3:]) for p in publishers], self.describe()))

    def remove_pod(self, release, i):
        """StatefulSet scale-in of pod i: the preStop exec, then SIGTERM, then the grace period."""
        pod = self.pods[i]
        if pod.spec != release.specs[i]:
            raise AssertionError("pod %d does not run the replicas=5 spec" % i)
        started = time.monotonic()
        out = pod.exec(release.pre_stop, timeout=release.grace_s + 30)
        log("%s preStop %s: exit %d: %s %s" % (pod.name, release.pre_stop, out.returncode,
                                              out.stdout.strip(), out.stderr.strip()))
        if out.returncode != 0:
            raise AssertionError("%s: preStop exited %d: %s %s\n%s" % (
                pod.name, out.returncode, out.stdout, out.stderr, self.describe()))
        moved = out.stdout.split(" persistent sessions: ")[-1].split(" moved")[0]
        followed = out.stdout.split(" moved, ")[-1].split(" followed")[0]
        if not moved.isdigit() or not followed.isdigit():
            raise AssertionError("%s: no drain report: %r" % (pod.name, out.stdout))
        # Clients that reconnect at once may take every session with them before the drain
        # pushes it ("followed their client"); otherwise the drain itself must move some.
        handed = int(moved) + (int(followed) if RECONNECT_AT_ONCE else 0)
        if handed == 0:
            raise AssertionError("%s: the drain moved no session: %r" % (pod.name, out.stdout))
        self.figures.append("%s: %s (preStop %.1f s)" % (pod.name, out.stdout.strip(),
                                                        time.monotonic() - started))
        if pod.proc.poll() is None:
            pod.proc.send_signal(signal.SIGTERM)
        try:
            code = pod.proc.wait(max(0.0, started + release.grace_s - time.monotonic()))
        except subprocess.TimeoutExpired:
            pod.kill()
            raise AssertionError("%s still running after terminationGracePeriodSeconds=%d"
                                 % (pod.name, release.grace_s))
        if code != 0:
            raise AssertionError("%s exited %d\n%s" % (pod.name, code, pod.log_tail()))
        self.hosts.remove(pod.name)
        log("%s gone (exit 0)" % pod.name)

    def check_deliveries(self, subscribers, publishers):
        acked = {p.topic: p.acked for p in publishers}

        def caught_up():
            return all(set(range(1, acked[s.topic] + 1)) <= set(s.seqs) for s in subscribers)
        try:
            wait_until(caught_up, WAIT_S, "every acknowledged message delivered")
        except AssertionError:
            pass  # reported below, per subscriber
        problems = []
        for s in subscribers:
            missing = sorted(set(range(1, acked[s.topic] + 1)) - set(s.seqs))
            firsts = list(dict.fromkeys(s.seqs))
            disorder = [(a, b) for a, b in zip(firsts, firsts[1:]) if b < a]
            presents = [sp for _, sp in s.connects]
            # The first connect makes the session; every later one must find it [MQTT-3.2.2-2].
            if presents[:1] != [0] or 0 in presents[1:]:
                problems.append("%s: Session Present per connect %s" % (s.client_id, s.connects))
            if missing:
                problems.append("%s: %d of %d acknowledged messages missing: %s" % (
                    s.client_id, len(missing), acked[s.topic], missing[:20]))
            if disorder:
                problems.append("%s: out of order: %s" % (s.client_id, disorder[:5]))
            if s.on is None:
                problems.append("%s: not connected at the end: %s" % (s.client_id, s.errors[-3:]))
        moved = sum(len(s.connects) - 1 for s in subscribers)
        self.figures.append("%d subscribers, %d reconnects with Session Present 1; publishers "
                            "acknowledged %s" % (len(subscribers), moved, sorted(acked.values())))
        if problems:
            raise AssertionError("\n".join(problems) + "\n" + self.describe())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.path.join(tempfile.gettempdir(), "mqttd-helm-render"))
    args = ap.parse_args()
    render_bin = test_chart.build_renderer(args.build_dir)
    for var in ("MQTTD_BIN", "MQTTCTL_BIN"):
        if not os.path.exists(os.environ.get(var, "")):
            sys.exit("%s must name the built binary (ctest sets it)" % var)
        os.environ[var] = os.path.abspath(os.environ[var])  # nsenter -m runs it from /
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            sys.exit("%s is missing (util-linux / iproute2)" % tool)
    try:
        netns.require_netns()
    except netns.NetnsUnavailable as e:
        sys.exit("helm.scale needs network namespaces: %s" % e)
    workdir = tempfile.mkdtemp(prefix="mqttd-scale-")
    if not os.environ.get("SCALE_KEEP_DIR"):  # set: the pods' logs and data dirs stay
        atexit.register(shutil.rmtree, workdir, True)
    log("pods' files under %s" % workdir)
    test = ScaleTest(render_bin, workdir)
    try:
        test.run()
    except AssertionError as e:
        log("FAIL: %s" % e)
        return 1
    for f in test.figures:
        log(f)
    log("OK: 3 -> 5 -> 3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
