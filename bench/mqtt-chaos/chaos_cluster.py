# SPDX-License-Identifier: Apache-2.0
"""The cluster under test for mqtt-chaos: started here (loopback or network namespaces) or an
existing one reached by address.

Started clusters reuse the integration tests' harness by path (tests/integration/cluster:
harness_cluster.ClusterNode for one restartable mqttd, netns.Topology for namespaces and
partitions); nothing is copied. Every node a LocalCluster starts is killed and its temporary
directory removed by close(), which also runs at exit and on SIGTERM / SIGHUP (netns.Topology
deletes its namespaces and veths the same way).

Threading: one object, driven by the main thread (faults); clients only read
`address(i)`, which is safe at any time (a tuple read).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTS_CLUSTER = os.path.join(REPO, "tests", "integration", "cluster")
TESTS = os.path.dirname(TESTS_CLUSTER)
for _path in (os.path.join(TESTS, "v5"), TESTS, os.path.join(TESTS, "persistence"),
              TESTS_CLUSTER):
    sys.path.insert(0, _path)  # harness, harness5, harness_persist, harness_cluster, netns

PROBE_MS, SUSPECT_MS = 100, 500  # harness_cluster's short SWIM timings


class Refused(RuntimeError):
    """A fault this cluster cannot inject (e.g. SIGKILL of a node we did not start)."""


def _split_addresses(text):
    out = []
    for item in [x for x in text.split(",") if x.strip()]:
        host, _, port = item.strip().rpartition(":")
        out.append((host, int(port)))
    return out


class Cluster:
    """Common part: mqttctl against node i's cluster (admin) address."""

    controls_processes = False
    partitions = False

    def __init__(self, mqttctl):
        self.mqttctl_bin = mqttctl

    def size(self):
        raise NotImplementedError

    def mqttctl(self, i, *args, timeout=20):
        """(returncode, stdout, stderr) of `mqttctl --server ADMIN(i) ARGS`; rc 127 when node i
        has no admin address."""
        admin = self.admin_address(i)
        if admin is None or not self.mqttctl_bin:
            return 127, "", "no admin address for node %d" % i
        cmd = [self.mqttctl_bin, "--server", admin] + list(args)
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, "", "mqttctl timed out"
        return out.returncode, out.stdout, out.stderr

    def mqttctl_json(self, i, *args):
        rc, out, _err = self.mqttctl(i, "--json", *args)
        if rc != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    def has_admin(self):
        return any(self.admin_address(i) for i in range(self.size()))

    def drain_available(self):
        """Whether this mqttctl has a `drain` command (its usage lists it)."""
        if not self.mqttctl_bin:
            return False
        out = subprocess.run([self.mqttctl_bin, "help"], capture_output=True, text=True,
                             timeout=20)
        usage = out.stdout + out.stderr
        return any(line.strip().startswith("drain") for line in usage.splitlines())

    def sessions(self):
        """Every alive member's sessions as one node lists them ([dict]), asked of the first
        node that answers; None if none does."""
        for i in range(self.size()):
            if not self.up(i):
                continue
            answer = self.mqttctl_json(i, "sessions", "--limit", "100000")
            if answer is not None:
                return answer.get("sessions", [])
        return None

    def routes_hold(self, i, topic_filter, node_names):
        answer = self.mqttctl_json(i, "routes", "--filter", topic_filter)
        if answer is None:
            return False
        return set(node_names) <= {r["nodeId"] for r in answer.get("routes", [])}

    def up(self, i):
        return True

    def close(self):
        pass


class ExternalCluster(Cluster):
    """An existing cluster: MQTT addresses, optional admin (cluster) addresses for mqttctl.
    Faults that need process or network control are refused (Refused)."""

    def __init__(self, nodes, admin, mqttctl):
        super().__init__(mqttctl)
        self.nodes = _split_addresses(nodes)
        self.admins = ["%s:%d" % a for a in _split_addresses(admin)] if admin else []
        if self.admins and len(self.admins) != len(self.nodes):
            raise ValueError("--admin needs one address per --nodes address")
        self.names = ["node%d" % i for i in range(len(self.nodes))]  # until start()

    def size(self):
        return len(self.nodes)

    def address(self, i):
        return self.nodes[i]

    def admin_address(self, i):
        return self.admins[i] if self.admins else None

    def describe(self):
        return "existing cluster %s" % ",".join("%s:%d" % a for a in self.nodes)

    def start(self, timeout=10):
        """Checks that every node accepts TCP connections (raises OSError naming it if not)
        and, with admin addresses, learns the node ids (`mqttctl status`)."""
        for host, port in self.nodes:
            try:
                socket.create_connection((host, port), timeout=timeout).close()
            except OSError as e:
                raise OSError("%s:%d does not accept connections: %s" % (host, port, e))
        for i in range(len(self.admins)):
            status = self.mqttctl_json(i, "status")
            if status is None or not status.get("nodeId"):
                raise OSError("mqttctl status of %s did not answer" % self.admins[i])
            self.names[i] = status["nodeId"]


class LocalCluster(Cluster):
    """N mqttd nodes started here, each joining node 0. netns: each node in its own network
    namespace (netns.Topology), so that partition() can cut one off; else on 127.0.0.1."""

    controls_processes = True

    def __init__(self, n, mqttd, mqttctl, netns_mode, prefix, extra_args=(), log=print):
        super().__init__(mqttctl)
        os.environ["MQTTD_BIN"] = mqttd
        os.environ["MQTTCTL_BIN"] = mqttctl
        import harness_cluster  # noqa: E402 (path set above; reads MQTTD_BIN when started)
        self._hc = harness_cluster
        self.n, self.prefix, self.extra_args, self.log = n, prefix, list(extra_args), log
        self.topo = None
        self.nodes = []
        self.generation = [0] * n
        self.retired_logs = []  # (name, log text) of nodes replaced after a drain
        self.partitions = netns_mode
        self.cut_off = set()
        if netns_mode:
            import netns  # noqa: E402
            self.topo = netns.Topology(n, prefix="mqch")

    def _make_node(self, i):
        name = "%s-%d" % (self.prefix, i)
        if self.generation[i]:
            name += "g%d" % self.generation[i]
        seeds = [self.cluster_address(0)] if i else []
        if i == 0 and self.nodes:  # node 0 coming back (fresh, after a drain) joins node 1
            seeds = [self.cluster_address(1)]
        if self.topo is not None:
            return self.topo.node(i, name, seeds=seeds, extra_args=self.extra_args)
        return self._hc.ClusterNode(name, seeds=seeds, extra_args=self.extra_args)

    def start(self, timeout=60):
        for i in range(self.n):
            node = self._make_node(i)
            self.nodes.append(node)
            node.start()
        self._hc.wait_members_alive(self.nodes, timeout)

    def size(self):
        return self.n

    @property
    def names(self):
        return [node.name for node in self.nodes]

    def address(self, i):
        node = self.nodes[i]
        return node.host, node.port

    def cluster_address(self, i):
        return self.nodes[i].cluster_address

    def admin_address(self, i):
        return self.cluster_address(i)

    def up(self, i):
        return self.nodes[i].alive()

    def describe(self):
        where = "network namespaces (subnet %s)" % self.topo.subnet if self.topo else "loopback"
        return "%d mqttd nodes started here on %s" % (self.n, where)

    # -- faults -----------------------------------------------------------------------
    def kill(self, i):
        self.nodes[i].kill()

    def restart(self, i, timeout=60):
        self.nodes[i].start(timeout)

    def partition(self, i):
        """Node i cut off from every other node (packets silently dropped); clients in the
        root namespace still reach every node."""
        if self.topo is None:
            raise Refused("partition needs the nodes in network namespaces (run as root, "
                          "without --netns no)")
        for j in range(self.n):
            if j != i:
                self.topo.cut(i, j)
        self.cut_off.add(i)

    def heal(self, i):
        for j in range(self.n):
            if j != i:
                self.topo.uncut(i, j)
        self.cut_off.discard(i)

    def drain(self, i, timeout=120):
        """`mqttctl --server NODE drain`, then waits for the node to exit 0. Returns
        (ok, message)."""
        rc, out, err = self.mqttctl(i, "drain", timeout=timeout)
        if rc != 0:
            return False, "mqttctl drain exit %d: %s" % (rc, (err or out).strip())
        proc = self.nodes[i].proc
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False, "node %s still running %ds after drain" % (self.nodes[i].name, timeout)
        return code == 0, "node exited %d" % code

    def replace_fresh(self, i, timeout=60):
        """Starts node i again as a new member (new name, fresh data dir) after a drain."""
        old = self.nodes[i]
        self.retired_logs.append((old.name, old.logs))  # the drained node's log is the one to read
        old.cleanup()
        self.generation[i] += 1
        node = self._make_node(i)
        self.nodes[i] = node
        node.start(timeout)
        self._hc.wait_members_alive([n for n in self.nodes if n.alive()], timeout)

    def wait_members(self, timeout):
        self._hc.wait_members_alive([n for n in self.nodes if n.alive()], timeout)

    def save_logs(self, directory):
        os.makedirs(directory, exist_ok=True)
        for name, text in self._all_logs():
            with open(os.path.join(directory, name + ".log"), "w") as f:
                f.write(text)

    def _all_logs(self):
        return self.retired_logs + [(node.name, node.logs) for node in self.nodes]

    def log_lines(self, pattern_words, limit=20):
        """Log lines of every node containing any of pattern_words (for the report)."""
        hits = []
        for name, text in self._all_logs():
            for line in text.splitlines():
                if any(w in line for w in pattern_words):
                    hits.append("%s: %s" % (name, line))
        return hits[-limit:]

    def close(self):
        for i in sorted(self.cut_off):
            try:
                self.heal(i)
            except Exception:  # noqa: BLE001 (the namespaces go anyway)
                pass
        for node in self.nodes:
            try:
                node.cleanup()
            except Exception:  # noqa: BLE001
                shutil.rmtree(node.root, ignore_errors=True)
        if self.topo is not None:
            self.topo.cleanup()
        self.nodes = []


def wait_until(predicate, timeout, step=0.1):
    """predicate()'s first truthy value within timeout, else None (polling other processes)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)
