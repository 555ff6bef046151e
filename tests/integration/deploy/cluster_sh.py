#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""deploy/cluster.sh end to end: `up 3` on free loopback ports with a state dir of its own, then
through HAProxy:
  - 300 clients spread over the nodes (each node's own count, from `mqttctl --json members`,
    within TOLERANCE of an even share, and none empty);
  - subscribers and publishers that land on different nodes (HAProxy's `show sess` says which
    node each client's connection went to): every message reaches every subscriber once;
  - SIGKILL of one node (its pid from the state dir): new connections still succeed, at once
    (HAProxy retries another node) and after HAProxy marks it DOWN; its clients reconnect and
    land on the other nodes, and delivery works again;
  - `cluster.sh down` (in a cleanup that always runs, also on SIGTERM/SIGINT/SIGHUP) leaves no
    process whose command line names the state dir.
MQTTD_BIN / MQTTCTL_BIN name the binaries (ctest sets them); haproxy must be installed.
"""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import paho.mqtt.client as paho

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CLUSTER_SH = os.path.join(REPO, "deploy", "cluster.sh")

NODES = 3
CLIENTS = 300
TOLERANCE = 100  # a node's client count may differ from CLIENTS / NODES by at most this
SUBSCRIBERS = 6
PUBLISHERS = 3
MESSAGES = 10  # per publisher and round
WAIT = 20.0  # deadline for anything that must happen (2 shared cores)
QUIET = 0.5  # after a barrier, how long to wait for duplicates that must not come
TOPIC = "deploy/%s" % uuid.uuid4().hex[:8]


def free_ports(n):
    """n distinct free loopback ports (all bound at once, so no two are the same)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def refused(port):
    """Whether a TCP connect to the loopback port is refused (nothing listens any more)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def wait_until(predicate, timeout, what):
    """predicate()'s first truthy value, polled every 100 ms; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
        except (OSError, ValueError, subprocess.SubprocessError) as e:  # a node mid-restart
            value, last = None, e
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("not within %.0fs: %s%s" % (
                timeout, what, " (last error: %s)" % last if last else ""))
        time.sleep(0.1)  # polling other processes' views, not synchronisation


class Cluster:
    """deploy/cluster.sh with its own state dir and ports, and what it leaves there."""

    def __init__(self, n):
        self.n = n
        self.state_dir = tempfile.mkdtemp(prefix="mqttd-cluster-sh-")
        ports = free_ports(1 + 3 * n)
        self.lb_port = ports[0]
        self.mqtt_ports = ports[1:1 + n]
        self.cluster_ports = ports[1 + n:1 + 2 * n]
        self.raft_ports = ports[1 + 2 * n:]
        self.env = dict(os.environ,
                        STATE_DIR=self.state_dir,
                        LB_ADDR="127.0.0.1:%d" % self.lb_port,
                        MQTT_PORTS=" ".join(map(str, self.mqtt_ports)),
                        CLUSTER_PORTS=" ".join(map(str, self.cluster_ports)),
                        RAFT_PORTS=" ".join(map(str, self.raft_ports)),
                        MQTTD_ARGS="--workers 1 --cluster-probe-interval 200 "
                                   "--cluster-suspect-timeout 1000")
        self.mqttctl = os.environ.get("MQTTCTL_BIN") or os.path.join(
            REPO, "build", "release", "node", "mqttctl")

    def run(self, *args, timeout=90):
        out = subprocess.run([CLUSTER_SH] + list(args), env=self.env, capture_output=True,
                             text=True, timeout=timeout)
        sys.stderr.write("$ cluster.sh %s -> %d\n%s%s" % (" ".join(args), out.returncode,
                                                          out.stdout, out.stderr))
        return out

    def name(self, i):
        return "node-%d" % i

    def pid(self, i):
        with open(os.path.join(self.state_dir, self.name(i), "pid")) as f:
            return int(f.read())

    def log_tail(self, i, lines=20):
        try:
            with open(os.path.join(self.state_dir, self.name(i), "mqttd.log")) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def haproxy(self, command):
        """The answer of HAProxy's stats socket to `command`."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(os.path.join(self.state_dir, "haproxy.sock"))
        s.sendall(command.encode() + b"\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        return data.decode()

    def sessions(self):
        """{client source port: node name} for HAProxy's sessions to the MQTT backend."""
        out = {}
        for line in self.haproxy("show sess").splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if fields.get("be") == "mqttd" and fields.get("src", "").startswith("127.0.0.1:"):
                out[int(fields["src"].rsplit(":", 1)[1])] = fields.get("srv")
        return out

    def server_status(self):
        """{node name: HAProxy's status of it (UP, DOWN, ...)}."""
        rows = self.haproxy("show stat").splitlines()
        header = rows[0].lstrip("# ").split(",")
        out = {}
        for row in rows[1:]:
            f = dict(zip(header, row.split(",")))
            if f.get("pxname") == "mqttd" and f.get("svname") not in ("BACKEND", None):
                out[f["svname"]] = f["status"]
        return out

    def members(self, i):
        """{node id: (state, clients)} as node i sees them (`mqttctl --json members`)."""
        out = subprocess.run([self.mqttctl, "--server", "127.0.0.1:%d" % self.cluster_ports[i],
                              "--json", "members"], capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            raise ValueError("mqttctl members: %s" % out.stderr.strip())
        return {m["nodeId"]: (m["state"], int(m.get("clients", 0)))
                for m in json.loads(out.stdout).get("members", [])}

    def routes(self, i):
        out = subprocess.run([self.mqttctl, "--server", "127.0.0.1:%d" % self.cluster_ports[i],
                              "--json", "routes"], capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            raise ValueError("mqttctl routes: %s" % out.stderr.strip())
        return {(r["nodeId"], r["filter"]) for r in json.loads(out.stdout).get("routes", [])}

    def leftovers(self):
        """pids of processes whose command line names the state dir."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    if self.state_dir.encode() + b"/" in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
        return pids

    def down(self):
        """cluster.sh down --purge; kills (and returns) whatever it left behind."""
        self.run("down", "--purge", timeout=60)
        left = self.leftovers()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return left


class RawClient:
    """An MQTT 3.1.1 connection with clean session and no keep alive: CONNECT, CONNACK, then
    it only has to stay open. Cheap enough for hundreds."""

    def __init__(self, port, client_id):
        self.client_id = client_id
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        cid = client_id.encode()
        body = struct.pack("!H4sBBH", 4, b"MQTT", 4, 0x02, 0) + struct.pack("!H", len(cid)) + cid
        self.sock.sendall(bytes([0x10, len(body)]) + body)
        connack = b""
        while len(connack) < 4:
            chunk = self.sock.recv(4 - len(connack))
            if not chunk:
                raise ConnectionError("%s: closed before CONNACK" % client_id)
            connack += chunk
        if connack != b"\x20\x02\x00\x00":
            raise ConnectionError("%s: CONNACK %r" % (client_id, connack))
        self.sock.settimeout(None)
        self.local_port = self.sock.getsockname()[1]

    def closed(self):
        """Whether the other side has closed the connection (non-blocking)."""
        self.sock.setblocking(False)
        try:
            return self.sock.recv(1) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self.sock.setblocking(True)

    def close(self):
        self.sock.close()


class PahoClient:
    """paho (3.1.1, clean session) through the balancer, reconnecting on its own; subscribes
    TOPIC/# (QoS 1) on every connect when `subscribe`, and records what arrives."""

    def __init__(self, port, client_id, subscribe):
        self.client_id, self.subscribe = client_id, subscribe
        self.lock = threading.Lock()
        self.received = []
        self.subscribed = threading.Event()
        self.connects = self.subacks = 0
        self.client = paho.Client(client_id=client_id, clean_session=True,
                                  protocol=paho.MQTTv311)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, rc):
        if rc == 0:
            with self.lock:
                self.connects += 1
            if self.subscribe:
                client.subscribe(TOPIC + "/#", qos=1)
            else:
                self.subscribed.set()

    def _on_subscribe(self, client, userdata, mid, granted_qos):
        with self.lock:
            self.subacks += 1
        self.subscribed.set()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.received.append(msg.payload.decode())

    def local_port(self):
        sock = self.client.socket()
        return sock.getsockname()[1] if sock else None

    def messages(self):
        with self.lock:
            return list(self.received)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class ClusterShTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(NODES)
        self.raw, self.paho = [], []
        self.addCleanup(self.tear_down)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        self.cluster.down()
        os._exit(128 + signum)

    def tear_down(self):
        for c in self.paho:
            c.close()
        for c in self.raw:
            c.close()
        left = self.cluster.down()
        self.assertEqual(left, [], "processes left behind by cluster.sh down")

    # ---- helpers ----
    def node_of(self, port, timeout=WAIT):
        """The node HAProxy connected the client with source port `port` to."""
        return wait_until(lambda: self.cluster.sessions().get(port), timeout,
                          "HAProxy session of client port %d" % port)

    def counts(self, via):
        """{node: clients} of the alive members, as node `via` sees them."""
        return {n: c for n, (state, c) in self.cluster.members(via).items() if state == "alive"}

    def wait_counts(self, via, total, nodes):
        def settled():
            c = self.counts(via)
            return c if set(c) == set(nodes) and sum(c.values()) == total else None
        return wait_until(settled, WAIT, "nodes %s hold %d clients in all (mqttctl members "
                          "via node-%d)" % (sorted(nodes), total, via))

    def connect_raw(self, count, prefix):
        clients = [RawClient(self.cluster.lb_port, "%s-%d" % (prefix, i)) for i in range(count)]
        self.raw += clients
        return clients

    def publish_round(self, publishers, subscribers, label):
        """Each publisher sends MESSAGES QoS 1 messages; every subscriber must get each once."""
        expected = []
        for p in publishers:
            for k in range(MESSAGES):
                payload = "%s-%s-%d" % (label, p.client_id, k)
                info = p.client.publish("%s/%s" % (TOPIC, p.client_id), payload, qos=1)
                info.wait_for_publish(timeout=WAIT)
                self.assertTrue(info.is_published(), "%s: %s acknowledged" % (p.client_id, payload))
                expected.append(payload)
        for s in subscribers:
            wait_until(lambda: set(expected) <= set(s.messages()), WAIT,
                       "%s gets the %d messages of round %s (has %d)" % (
                           s.client_id, len(expected), label,
                           len([m for m in s.messages() if m.startswith(label + "-")])))
        time.sleep(QUIET)  # after the barrier: room for duplicates that must not come
        for s in subscribers:
            got = [m for m in s.messages() if m.startswith(label + "-")]
            self.assertEqual(sorted(got), sorted(expected), "%s: each message once" % s.client_id)

    def wait_routes(self, nodes, subscriber_nodes):
        want = {(n, TOPIC + "/#") for n in subscriber_nodes}
        for i in nodes:
            wait_until(lambda: want <= self.cluster.routes(i), WAIT,
                       "node-%d holds the routes %s" % (i, sorted(want)))

    # ---- the scenario ----
    def test_up_spread_delivery_failover_down(self):
        c = self.cluster
        up = c.run("up", str(NODES))
        self.assertEqual(up.returncode, 0, "cluster.sh up failed")
        names = [c.name(i) for i in range(NODES)]
        wait_until(lambda: all(s == "UP" for s in c.server_status().values())
                   and len(c.server_status()) == NODES, WAIT, "HAProxy sees every node UP")
        status = c.run("status")
        self.assertEqual(status.returncode, 0)
        for name in names:
            self.assertRegex(status.stdout, r"%s\s+\d+\s+\d+\s+\d+\s+\d+\s+yes" % name)

        # 1. spread of CLIENTS connections through the balancer
        spread = self.connect_raw(CLIENTS, "spread")
        counts = self.wait_counts(0, CLIENTS, names)
        sys.stderr.write("clients per node after %d connects: %s\n" % (CLIENTS, counts))
        share = CLIENTS / NODES
        for name, count in counts.items():
            self.assertGreater(count, 0, "%s got no client: %s" % (name, counts))
            self.assertLessEqual(abs(count - share), TOLERANCE, "spread %s" % counts)
        spread_nodes = c.sessions()
        via_haproxy = {}
        for node in spread_nodes.values():
            via_haproxy[node] = via_haproxy.get(node, 0) + 1
        self.assertEqual(via_haproxy, counts, "HAProxy's sessions agree with the nodes' counts")

        # 2. cross-node delivery: subscribers and publishers through the balancer
        subs = [PahoClient(c.lb_port, "sub-%d" % i, True) for i in range(SUBSCRIBERS)]
        self.paho += subs
        pubs = [PahoClient(c.lb_port, "pub-%d" % i, False) for i in range(PUBLISHERS)]
        self.paho += pubs
        for p in subs + pubs:
            self.assertTrue(p.subscribed.wait(WAIT), "%s connected (and subscribed)" % p.client_id)
        where = {p.client_id: self.node_of(p.local_port()) for p in subs + pubs}
        sys.stderr.write("paho clients per node: %s\n" % where)
        sub_nodes = {where[s.client_id] for s in subs}
        pub_nodes = {where[p.client_id] for p in pubs}
        self.assertGreaterEqual(len(sub_nodes), 2, "subscribers on several nodes: %s" % where)
        self.assertTrue(any(pn != sn for pn in pub_nodes for sn in sub_nodes),
                        "a publisher on another node than a subscriber: %s" % where)
        self.wait_routes(range(NODES), sub_nodes)
        self.publish_round(pubs, subs, "before")

        # 3. one node killed behind HAProxy: a node holding subscribers, not the seed if possible
        victim = max(int(n.split("-")[1]) for n in sub_nodes)
        victim_name = c.name(victim)
        survivors = [i for i in range(NODES) if i != victim]
        os.kill(c.pid(victim), signal.SIGKILL)
        sys.stderr.write("killed %s (pid %d)\n" % (victim_name, c.pid(victim)))
        wait_until(lambda: refused(c.mqtt_ports[victim]), WAIT,
                   "%s's MQTT port refuses connections" % victim_name)
        at_once = self.connect_raw(30, "at-once")  # before HAProxy's check notices
        sys.stderr.write("HAProxy's view after the at-once connects: %s\n" % c.server_status())
        wait_until(lambda: c.server_status().get(victim_name) == "DOWN", WAIT,
                   "HAProxy marks %s DOWN" % victim_name)
        status = c.run("status")
        self.assertRegex(status.stdout, r"%s\s+\d+\s+\d+\s+\d+\s+\d+\s+no\s+DOWN" % victim_name)
        after = self.connect_raw(30, "after-down")
        for client in at_once + after:
            self.assertNotEqual(self.node_of(client.local_port), victim_name,
                                "%s landed on the killed node" % client.client_id)

        # its clients were disconnected: they reconnect through the balancer, elsewhere
        orphans = [r for r in spread if spread_nodes[r.local_port] == victim_name]
        self.assertEqual(len(orphans), counts[victim_name])
        wait_until(lambda: all(r.closed() for r in orphans), WAIT,
                   "the killed node's clients see their connection closed")
        kept = [r for r in spread if r not in orphans]
        self.assertFalse(any(r.closed() for r in kept), "other nodes' clients stay connected")
        for r in orphans:
            r.close()
            self.raw.remove(r)
        again = self.connect_raw(len(orphans), "reconnected")
        for client in again:
            self.assertNotEqual(self.node_of(client.local_port), victim_name)
        moved = [p for p in subs + pubs if where[p.client_id] == victim_name]
        for p in moved:  # paho reconnects by itself (and subscribes again)
            wait_until(lambda: p.connects >= 2 and p.local_port() and
                       c.sessions().get(p.local_port()) in [c.name(i) for i in survivors],
                       WAIT, "%s reconnects to a remaining node" % p.client_id)
            if p.subscribe:
                wait_until(lambda: p.subacks >= 2, WAIT, "%s subscribes again" % p.client_id)
        now = {p.client_id: c.sessions().get(p.local_port()) for p in subs + pubs}
        sys.stderr.write("paho clients per node after the kill: %s\n" % now)
        self.wait_routes(survivors, {now[s.client_id] for s in subs})
        self.publish_round(pubs, subs, "after")

        total = CLIENTS + 60 + SUBSCRIBERS + PUBLISHERS
        final = self.wait_counts(survivors[0], total, [c.name(i) for i in survivors])
        sys.stderr.write("clients per remaining node: %s\n" % final)
        for name, count in final.items():
            self.assertGreater(count, 0, "%s holds no client: %s" % (name, final))


if __name__ == "__main__":
    unittest.main(verbosity=2)
