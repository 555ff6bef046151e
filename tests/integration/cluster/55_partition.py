#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A network partition made with namespaces, then healed (issue 11): "no crash, ... membership,
routes ... converge after the heal". Three real mqttd nodes, each in its own network namespace
behind one bridge (netns.py); the test talks to them from the root namespace (paho, mqttctl).

isolate: node 2's link goes down. Nodes 0 and 1 see it suspect, then dead, and drop its
    (non-persistent) route; node 2 sees both others dead; nothing crashes. Healed: all three see
    three alive members again and node 2's route (its subscriber reconnects) is on every node.
cut: only nodes 0 and 1 cannot reach each other; node 2 reaches both (SWIM's indirect probes go
    through it). After the cut is undone: three alive members everywhere, routes as before.

Needs root and iproute2: without them the test fails (it does not skip): CI runs as root.
"""

import calendar
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

import paho.mqtt.client as paho

from harness_cluster import SUSPECT_MS, unique, wait_until
from harness_persist import Publisher, check_stream, skip_under_mosquitto
from harness_persist import Subscriber as PersistentSubscriber
import netns

MQTTCTL = os.environ.get("MQTTCTL_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "build", "release", "node",
    "mqttctl")

DEADLINE_S = 55           # each test, hard (SIGALRM); ctest's TIMEOUT (120 s) is for the file
JOIN_S = 15.0             # three nodes see each other alive
# Detection (a few probe periods, indirect probes) + the suspect timeout + CI slack.
DEAD_S = SUSPECT_MS / 1000.0 + 5.0
HEAL_S = 15.0             # after the heal: membership and routes converge
CUT_S = 3.0               # how long the 0-1 cut lasts (many probe periods and suspect timeouts)


class Deadline(BaseException):
    pass


def _on_alarm(signum, frame):
    raise Deadline("55_partition: the test's deadline of %ds passed" % DEADLINE_S)


def log_time(line):
    """Unix time of an mqttd log line (`2026-01-02T03:04:05.678Z info ...`)."""
    stamp = line.split()[0]
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + \
        float("0" + stamp[19:].rstrip("Z"))


class Subscriber:
    """paho, clean session, QoS 1 on one filter; re-subscribes on every (re)connect."""

    def __init__(self, host, port, topic):
        self.topic = topic
        self.connects = 0
        self.subscribed = threading.Event()
        self.client = paho.Client(client_id=unique("psub"), clean_session=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_disconnect = lambda *a: self.subscribed.clear()
        self.client.connect_async(host, port, keepalive=2)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, rc):
        if rc == 0:
            self.connects += 1
            client.subscribe(self.topic, qos=1)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@skip_under_mosquitto("mqttd's cluster in network namespaces")
class Partition(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        signal.signal(signal.SIGALRM, _on_alarm)
        cls.report = []

    @classmethod
    def tearDownClass(cls):
        sys.stderr.write("\n".join(["---- partition report ----"] + cls.report) + "\n")

    def setUp(self):
        try:
            netns.require_netns()
            problem = None
        except netns.NetnsUnavailable as e:
            problem = str(e)
        if problem:  # a failure, not a skip: CI runs as root and must run this
            self.fail("cannot build the partition topology: %s" % problem)
        self.assertTrue(os.path.exists(MQTTCTL), "mqttctl not found at %s (MQTTCTL_BIN)" % MQTTCTL)
        self.topo = None
        self.nodes = []
        self.subs = []
        signal.alarm(DEADLINE_S)

    def tearDown(self):
        signal.alarm(0)
        try:
            for sub in self.subs:
                sub.close()
        finally:
            if self.topo is not None:
                self.topo.cleanup()  # the nodes too (kill, directories), then the namespaces

    # -- helpers -----------------------------------------------------------------------
    def start_cluster(self):
        self.topo = netns.Topology(3)
        prefix = unique("p")
        t = self.topo
        names = ["%s-%d" % (prefix, i) for i in range(3)]
        for i in range(3):
            seeds = [t.cluster_address(j) for j in range(3) if j != i]
            self.nodes.append(t.node(i, names[i], seeds=seeds,
                                     extra_args=["--cluster-bootstrap-members", ",".join(names)]))
        netns.start_all(self.nodes)
        for node in self.nodes:
            # `ip netns exec` execs mqttd: the pid we signal is mqttd's own.
            exe = os.readlink("/proc/%d/exe" % node.proc.pid)
            self.assertEqual(os.path.basename(exe), "mqttd", exe)
        self.names = [n.name for n in self.nodes]
        return self.nodes

    def mqttctl(self, i, *args, inside=False):
        """The JSON answer of node i, or None if it cannot be reached. inside: run mqttctl in
        node i's namespace (an isolated node is reachable only from there)."""
        cmd = [MQTTCTL, "--server", self.topo.cluster_address(i), "--json"] + list(args)
        if inside:
            out = self.topo.run_in(i, cmd)
        else:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            return None
        return json.loads(out.stdout)

    def members(self, i, inside=False):
        """{node_id: state} as node i sees it, or None."""
        answer = self.mqttctl(i, "members", inside=inside)
        if answer is None:
            return None
        return {m["nodeId"]: m["state"] for m in answer.get("members", [])}

    def routes(self, i, topic, inside=False):
        """[origin node ids of routes for topic] as node i sees them, or None."""
        answer = self.mqttctl(i, "routes", "--filter", topic, inside=inside)
        if answer is None:
            return None
        return sorted(r["nodeId"] for r in answer.get("routes", []))

    def views(self, topic=None):
        lines = []
        for i in range(3):
            inside = not self.reachable(i)
            lines.append("node %d members: %r" % (i, self.members(i, inside=inside)))
            if topic:
                lines.append("node %d routes: %r" % (i, self.routes(i, topic, inside=inside)))
        for node in self.nodes:
            lines.append("---- %s log tail ----\n%s" % (node.name, node.log_tail(15)))
        return "\n".join(lines)

    def reachable(self, i):
        return i not in getattr(self, "isolated", set())

    def all_alive(self, i, inside=False):
        view = self.members(i, inside=inside)
        return view is not None and len(view) == 3 and \
            all(view.get(n) == "alive" for n in self.names)

    def wait_converged(self, timeout, what, topic=None):
        """Every node sees 3 alive members (and, with topic, exactly node 2's route)."""
        def ok():
            if not all(self.all_alive(i) for i in range(3)):
                return False
            if topic is not None:
                return all(self.routes(i, topic) == [self.names[2]] for i in range(3))
            return True
        t0 = time.monotonic()
        wait_until(ok, timeout, what, lambda: self.views(topic))
        return time.monotonic() - t0

    def assert_running(self):
        for node in self.nodes:
            self.assertTrue(node.alive(), "%s exited with %s\n%s"
                            % (node.name, node.proc.returncode, node.log_tail(40)))

    def transitions(self, observer, since):
        """[(member, change)] from observer's log since a mark."""
        return re.findall(r"cluster: \S+ sees (\S+) (\w+) at", observer.logs[since:])

    def subscribe_on_2(self, topic):
        sub = Subscriber(self.topo.addr(2), netns.MQTT_PORT, topic)
        self.subs.append(sub)
        self.assertTrue(sub.subscribed.wait(10), "subscriber on node 2 never subscribed\n%s" % self.views())
        return sub

    # -- scenarios ---------------------------------------------------------------------
    def test_isolate_node_then_heal(self):
        t0 = time.monotonic()
        self.isolated = set()
        nodes = self.start_cluster()
        a, b, c = nodes
        self.wait_converged(JOIN_S, "3 alive members on every node")

        topic = "part/%s/+" % unique("iso")
        sub = self.subscribe_on_2(topic)
        wait_until(lambda: all(self.routes(i, topic) == [c.name] for i in range(3)), JOIN_S,
                   "node 2's route on every node", lambda: self.views(topic))

        # Node 2 cut off from everyone (its link on the hub down).
        marks = [n.log_mark() for n in nodes]
        self.topo.isolate(2)
        self.isolated.add(2)
        t_iso, wall_iso = time.monotonic(), time.time()
        times = {}

        def at(node, pattern, since):
            line = node.wait_log(pattern, DEAD_S, since=since)
            return "%.2fs" % (log_time(line) - wall_iso)
        for i, node in ((0, a), (1, b)):
            times["%d sees 2 suspect" % i] = at(node, r"sees %s suspect" % c.name, marks[i])
            times["%d sees 2 dead" % i] = at(node, r"sees %s dead" % c.name, marks[i])
        for j, other in ((0, a), (1, b)):
            times["2 sees %d dead" % j] = at(c, r"sees %s dead" % other.name, marks[2])
        for i in (0, 1):
            view = self.members(i)
            self.assertEqual(view.get(c.name), "dead", view)
        # 0 and 1 still reach each other: alive to each other (after a false suspicion, if any).
        wait_until(lambda: (self.members(0) or {}).get(b.name) == "alive" and
                   (self.members(1) or {}).get(a.name) == "alive", DEAD_S,
                   "nodes 0 and 1 see each other alive during the isolation of node 2",
                   lambda: self.views(topic))
        # Node 2's route was not persistent: gone with node 2.
        wait_until(lambda: all(self.routes(i, topic) == [] for i in (0, 1)), DEAD_S,
                   "node 2's route dropped on nodes 0 and 1", lambda: self.views(topic))
        times["route gone on 0 and 1 (polled)"] = "%.2fs" % (time.monotonic() - t_iso)
        view = self.members(2, inside=True)
        self.assertEqual(view, {c.name: "alive", a.name: "dead", b.name: "dead"}, view)
        # The partition is real: nobody reaches node 2, node 2 reaches nobody.
        self.assertFalse(self.topo.can_connect(None, 2), "node 2 reachable from the root namespace")
        self.assertFalse(self.topo.can_connect(0, 2), "node 2 reachable from node 0")
        self.assertFalse(self.topo.can_connect(2, 1), "node 1 reachable from node 2")
        self.assertTrue(self.topo.can_connect(0, 1), "node 1 unreachable from node 0")
        # The subscriber's connection dies (keep alive 2 s on both sides): its clean session
        # and node 2's local route end with it; after the heal it has to come back.
        wait_until(lambda: not sub.subscribed.is_set(), 10.0,
                   "the subscriber noticed that node 2 is unreachable")
        wait_until(lambda: self.routes(2, topic, inside=True) == [], 10.0,
                   "node 2 dropped the route of its timed-out subscriber",
                   lambda: self.views(topic))
        self.assert_running()
        flaps = {n.name: self.transitions(n, m) for n, m in zip((a, b), marks)}
        self.report.append("isolate node 2 (%.1fs): %s; subscriber connects %d" % (
            time.monotonic() - t_iso, ", ".join("%s %s" % kv for kv in times.items()),
            sub.connects))
        for name, events in flaps.items():
            self.report.append("  during isolation %s saw: %s" % (name, events))

        # Heal: the same membership and the same routes again.
        marks = [n.log_mark() for n in nodes]
        self.topo.heal(2)
        self.isolated.discard(2)
        t_heal = time.monotonic()
        times = {}
        try:
            self.wait_converged(HEAL_S, "3 alive members on every node after the heal (each "
                                "side sees the other dead: someone must contact a dead "
                                "member or a seed again)")
            times["members"] = time.monotonic() - t_heal
            wait_until(lambda: all(self.routes(i, topic) == [c.name] for i in range(3)),
                       HEAL_S, "node 2's route on every node after the heal",
                       lambda: self.views(topic))
            times["routes"] = time.monotonic() - t_heal
            self.assertTrue(sub.subscribed.is_set())
            self.assert_running()
        finally:
            during = {n.name: self.transitions(n, m) for n, m in zip(nodes, marks)}
            self.report.append("heal: converged %s; subscriber connects %d; total %.1fs" % (
                ", ".join("%s %.2fs" % kv for kv in times.items()) or "never", sub.connects,
                time.monotonic() - t0))
            for name, events in during.items():
                self.report.append("  after heal, %s saw: %s" % (name, events))

    def test_acknowledged_messages_for_an_isolated_persistent_subscriber(self):
        """QoS 1 published on node 0 while node 2, where a persistent subscriber's session
        lives, is cut off: node 0 acknowledges them once they are in its durable outbox for
        node 2 (the persistent route stays while node 2 is dead); after the heal every one of
        them reaches the subscriber on node 2, in order."""
        self.isolated = set()
        nodes = self.start_cluster()
        a, _b, c = nodes
        self.wait_converged(JOIN_S, "3 alive members on every node")
        topic = "part/%s" % unique("dur")
        sub = PersistentSubscriber(c, topic, 1, version=5)
        self.subs.append(sub)
        sub.subscribe()
        wait_until(lambda: self.routes(0, topic) == [c.name], JOIN_S,
                   "node 2's persistent route on node 0", lambda: self.views(topic))
        sub.go_offline()
        self.topo.isolate(2)
        self.isolated.add(2)
        wait_until(lambda: (self.members(0) or {}).get(c.name) == "dead", DEAD_S,
                   "node 0 sees node 2 dead", lambda: self.views(topic))
        self.assertEqual(self.routes(0, topic), [c.name], "the persistent route must stay")
        pub = Publisher(a, topic, 200, 1, window=20)
        pub.start()
        pub.join(DEAD_S * 3)
        if pub.error:
            raise pub.error
        self.assertEqual(pub.completed, 200, "node 0 did not acknowledge every publish")
        # A retained message set during the partition reaches node 2 after the heal.
        retained_topic = topic + "/retained"
        subprocess.run(["mosquitto_pub", "-h", a.host, "-p", str(a.port), "-t", retained_topic,
                        "-m", "during", "-q", "1", "-r"], check=True, timeout=30)
        self.topo.heal(2)
        self.isolated.discard(2)
        self.wait_converged(HEAL_S, "3 alive members on every node after the heal")

        def retained_on_2():
            answer = self.mqttctl(2, "retained", "--topic", retained_topic)
            return answer is not None and [e["topic"] for e in answer.get("entries", [])
                                           if not e["tombstone"]] == [retained_topic]
        wait_until(retained_on_2, HEAL_S, "the retained message set during the partition "
                   "on node 2 after the heal", lambda: self.views(topic))
        sub.reconnect(time.monotonic() + HEAL_S)
        sub.drain(set(pub.acked), HEAL_S)
        sub.quiet(0.5)
        problems = check_stream(sub.got, set(pub.acked), 1, resent=set(),
                                redelivery_allowed=False)
        self.assertEqual(problems, [], self.views(topic))
        self.assert_running()

    def test_cut_between_two_nodes_then_uncut(self):
        t0 = time.monotonic()
        self.isolated = set()
        nodes = self.start_cluster()
        a, b, c = nodes
        self.wait_converged(JOIN_S, "3 alive members on every node")
        topic = "part/%s/+" % unique("cut")
        self.subscribe_on_2(topic)
        self.wait_converged(JOIN_S, "node 2's route on every node", topic=topic)

        # A silent drop (like a broken link), then an immediate local error (ICMP-like).
        for kind in ("drop", "prohibit"):
            marks = [n.log_mark() for n in nodes]
            self.topo.cut(0, 1, kind=kind)
            # The cut is real (0 and 1 cannot reach each other) and partial (2 reaches both).
            self.assertFalse(self.topo.can_connect(0, 1), "node 1 reachable from node 0")
            self.assertFalse(self.topo.can_connect(1, 0), "node 0 reachable from node 1")
            for i, j in ((0, 2), (2, 0), (1, 2), (2, 1)):
                self.assertTrue(self.topo.can_connect(i, j), "node %d cannot reach %d" % (i, j))
            t_cut = time.monotonic()
            # A subscription made on node 0 during the cut: its route can reach node 1 only
            # through node 2 (digests); it must be everywhere once the cut is undone.
            topic0 = "part/%s/+" % unique("cut0")
            sub0 = Subscriber(self.topo.addr(0), netns.MQTT_PORT, topic0)
            self.subs.append(sub0)
            self.assertTrue(sub0.subscribed.wait(10), "subscriber on node 0 never subscribed")
            # Sample what 0 and 1 think of each other while the cut lasts.
            samples = []
            route0_on = {}
            while time.monotonic() - t_cut < CUT_S:
                samples.append((self.members(0) or {}).get(b.name))
                samples.append((self.members(1) or {}).get(a.name))
                for i in (1, 2):
                    if i not in route0_on and self.routes(i, topic0) == [a.name]:
                        route0_on[i] = "%.2fs" % (time.monotonic() - t_cut)
            self.assert_running()
            during = {n.name: self.transitions(n, m) for n, m in zip(nodes, marks)}
            # Node 2 reaches both: both see it alive (after a false suspicion, if any).
            wait_until(lambda: all((self.members(i) or {}).get(c.name) == "alive"
                                   for i in (0, 1)), DEAD_S,
                       "nodes 0 and 1 see node 2 alive during the cut", self.views)

            marks = [n.log_mark() for n in nodes]
            self.topo.uncut(0, 1)
            t_uncut = time.monotonic()
            took = self.wait_converged(HEAL_S, "3 alive members and node 2's route on every "
                                       "node after the %s cut is undone" % kind, topic=topic)
            wait_until(lambda: all(self.routes(i, topic0) == [a.name] for i in range(3)),
                       HEAL_S, "node 0's route (subscribed during the cut) on every node after "
                       "the cut is undone", lambda: self.views(topic0))
            took0 = time.monotonic() - t_uncut
            self.assert_running()
            after = {n.name: self.transitions(n, m) for n, m in zip(nodes, marks)}
            counts = {s: samples.count(s) for s in set(samples)}
            self.report.append("cut(0,1) %s for %.1fs: 0<->1 states sampled %r; route made on 0 "
                               "during the cut seen on %r (node: time), everywhere %.2fs after "
                               "uncut; converged %.2fs after uncut"
                               % (kind, CUT_S, counts, route0_on, took0, took))
            for name in during:
                self.report.append("  %s during cut saw: %s; after uncut: %s"
                                   % (name, during[name], after[name]))
        self.report.append("cut scenario total %.1fs" % (time.monotonic() - t0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
