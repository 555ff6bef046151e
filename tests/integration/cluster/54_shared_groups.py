#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Shared subscription groups that span the cluster (issue 11, "Shared groups span nodes"): three
real nodes on loopback; members of one group on different nodes, with clients of both protocol
versions (paho-mqtt 5.0 and 3.1.1, mosquitto_sub 3.1.1). For every run of N QoS 1 messages:
each message reaches exactly one member cluster-wide, none is lost and none duplicated (5.0
section 4.8.2: a message goes to one session of the shared subscription), each member receives
at its own granted QoS [MQTT-4.8.2-3], and with round robin every member gets some.

- publisher on a node without a member, then on a node with one; a plain subscriber on a member
  node still gets every message once (its plain copy travels apart from the group's);
- `--shared-subscription-prefer-local true` on the publisher's node: its local member gets all;
- `$queue/` filters form one group as well;
- a member node whose only member is offline (a persistent session, still a member) passes each
  copy on to a node with an online member, exactly once; nothing is queued for the offline one;
- a member node whose last member leaves while messages flow: nothing lost (a copy that reaches
  it after that is passed on to a node that has one), and later messages go to the others.
Filters use the $share/{ShareName}/{filter} form [MQTT-4.8.2-1], [MQTT-4.8.2-2]."""

import collections
import subprocess
import threading
import time
import unittest

import paho.mqtt.client as paho

from harness_cluster import SharedCluster, mqttctl_json, unique, wait_until
from harness_persist import skip_under_mosquitto

WAIT_S = 10.0
N = 60


def routes_of(node):
    routes = mqttctl_json(node, "routes")
    return {(r["nodeId"], r["filter"], r.get("sharedGroup", "")) for r in routes.get("routes", [])}


def wait_routes(node, want, present=True):
    """Until `node` holds (or, present=False, no longer holds) each (origin, filter, group)."""
    def held():
        have = routes_of(node)
        return set(want) <= have if present else not set(want) & have
    wait_until(held, WAIT_S, "%s %s routes %r" % (node.name, "holds" if present else "drops",
                                                  sorted(want)))


class Received:
    """What every member of one test received: payload -> [member name], and per member."""

    def __init__(self):
        self.cond = threading.Condition()
        self.by_member = collections.defaultdict(list)  # name -> [(payload, qos)]

    def add(self, member, payload, qos):
        with self.cond:
            self.by_member[member].append((payload, qos))
            self.cond.notify_all()

    def total(self):
        return sum(len(v) for v in self.by_member.values())

    def wait_total(self, n, timeout=WAIT_S):
        with self.cond:
            self.cond.wait_for(lambda: self.total() >= n, timeout)
            return self.total()

    def payloads(self, member=None):
        with self.cond:
            members = [member] if member else list(self.by_member)
            return [p for m in members for p, _ in self.by_member.get(m, [])]


class PahoMember:
    """A paho-mqtt client (5.0 or 3.1.1) subscribed to one filter, reporting to a Received."""

    def __init__(self, name, node, topic_filter, qos, received, protocol=paho.MQTTv5):
        self.name = name
        self.client = paho.Client(client_id=unique(name), protocol=protocol,
                                  **({} if protocol == paho.MQTTv5 else {"clean_session": True}))
        self.client.on_message = lambda _c, _u, msg: received.add(
            name, msg.payload.decode(), msg.qos)
        self.acked = threading.Event()
        self.client.on_subscribe = lambda *a, **k: self.acked.set()
        self.client.on_unsubscribe = lambda *a, **k: self.acked.set()
        self.client.connect(node.host, node.port, keepalive=30)
        self.client.loop_start()
        self.filter = topic_filter
        self.client.subscribe(topic_filter, qos=qos)
        if not self.acked.wait(WAIT_S):
            raise AssertionError("%s: no SUBACK" % name)

    def unsubscribe(self):
        self.acked.clear()
        self.client.unsubscribe(self.filter)
        if not self.acked.wait(WAIT_S):
            raise AssertionError("%s: no UNSUBACK" % self.name)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class MosquittoMember:
    """mosquitto_sub (3.1.1) on a shared filter; lines "topic payload" are read by a thread."""

    def __init__(self, name, node, topic_filter, qos, received):
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-h", node.host, "-p", str(node.port), "-V", "mqttv311",
             "-i", unique(name), "-t", topic_filter, "-q", str(qos), "-v"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, args=(name, qos, received), daemon=True)
        self.reader.start()

    def _read(self, name, qos, received):
        for line in self.proc.stdout:
            received.add(name, line.rstrip("\n").split(" ", 1)[1], qos)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


class Publisher:
    """A paho-mqtt 3.1.1 client publishing QoS 1 messages one after the other (each PUBACKed)."""

    def __init__(self, node):
        self.client = paho.Client(client_id=unique("pub"), protocol=paho.MQTTv311)
        self.client.connect(node.host, node.port, keepalive=30)
        self.client.loop_start()

    def publish(self, topic, payloads):
        for payload in payloads:
            info = self.client.publish(topic, payload, qos=1)
            info.wait_for_publish(WAIT_S)
            if not info.is_published():
                raise AssertionError("no PUBACK for %s" % payload)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@skip_under_mosquitto("mqttd's cluster")
class SharedGroupsAcrossNodes(SharedCluster):

    PREFIX = "share"

    @staticmethod
    def node_args(i):
        # Node 0 alone prefers its own members; 1 and 2 spread over the cluster.
        return ["--shared-subscription-prefer-local", "true"] if i == 0 else []

    def setUp(self):
        self.base = "sg/%s" % unique("t")
        self.received = Received()

    def paho(self, name, node, topic_filter, qos=1, protocol=paho.MQTTv5):
        member = PahoMember(name, node, topic_filter, qos, self.received, protocol)
        self.addCleanup(member.close)
        return member

    def mosquitto(self, name, node, topic_filter, qos=1):
        member = MosquittoMember(name, node, topic_filter, qos, self.received)
        self.addCleanup(member.close)
        return member

    def publisher(self, node):
        pub = Publisher(node)
        self.addCleanup(pub.close)
        return pub

    def expect_once_each(self, payloads, members, what):
        """Every payload reached exactly one of `members`, each some; returns the spread."""
        total = len(self.payloads_before) + len(payloads)
        got = self.received.wait_total(total)
        time.sleep(0.3)  # a negative check after the positive barrier: no extra copies
        got = self.received.total()
        new = collections.Counter(self.received.payloads()) - collections.Counter(
            self.payloads_before)
        self.assertEqual(sorted(new.elements()), sorted(payloads),
                         "%s: %d received in all for %d sent (lost or duplicated)"
                         % (what, got - len(self.payloads_before), len(payloads)))
        these = set(payloads)
        spread = {m: len([p for p in self.received.payloads(m) if p in these]) for m in members}
        self.payloads_before = self.received.payloads()
        return spread

    def test_round_robin_spans_nodes_publisher_with_and_without_member(self):
        n0, n1, n2 = self.nodes
        topic_filter = self.base + "/#"
        shared = "$share/rr/" + topic_filter
        self.mosquitto("b-mosq311-n2", n2, shared)
        for node in (n0, n1):
            wait_routes(node, {(n2.name, topic_filter, "rr")})
        self.paho("a-paho5-n1", n1, shared)
        self.paho("c-paho5-qos0-n2", n2, shared, qos=0)
        plain = collections.Counter()
        plain_lock = threading.Lock()
        plain_sub = paho.Client(client_id=unique("plain"), protocol=paho.MQTTv5)

        def on_plain(_c, _u, msg):
            with plain_lock:
                plain[msg.payload.decode()] += 1
        plain_sub.on_message = on_plain
        subscribed = threading.Event()
        plain_sub.on_subscribe = lambda *a, **k: subscribed.set()
        plain_sub.connect(n2.host, n2.port)
        plain_sub.loop_start()
        self.addCleanup(plain_sub.loop_stop)
        plain_sub.subscribe(topic_filter, qos=1)
        self.assertTrue(subscribed.wait(WAIT_S))
        for node in (n0, n1):
            wait_routes(node, {(n1.name, topic_filter, "rr"), (n2.name, topic_filter, ""),
                               (n2.name, topic_filter, "rr")})
        members = ["a-paho5-n1", "b-mosq311-n2", "c-paho5-qos0-n2"]
        self.payloads_before = []

        # From n0, which has no member: n0 alternates between nodes 1 and 2, and node 2
        # alternates between its two members.
        sent = ["n0-%d" % i for i in range(N)]
        self.publisher(n0).publish(self.base + "/x", sent)
        spread = self.expect_once_each(sent, members, "publisher on n0 (no member)")
        for m in members:
            self.assertGreater(spread[m], 0, "round robin left %s out: %r" % (m, spread))
        # Each member at its own granted QoS [MQTT-4.8.2-3] (min with the published QoS 1).
        with self.received.cond:
            qos0 = {q for _, q in self.received.by_member["c-paho5-qos0-n2"]}
            qos1 = {q for _, q in self.received.by_member["a-paho5-n1"]}
        self.assertEqual(qos0, {0})
        self.assertEqual(qos1, {1})

        # From n1, which has a member: round robin over its own member and node 2.
        sent1 = ["n1-%d" % i for i in range(N)]
        self.publisher(n1).publish(self.base + "/y", sent1)
        spread = self.expect_once_each(sent1, members, "publisher on n1 (member a)")
        for m in members:
            self.assertGreater(spread[m], 0, "round robin left %s out: %r" % (m, spread))

        # The plain subscriber on n2 got its own copy of every message, once.
        wait_until(lambda: sum(plain.values()) >= 2 * N, WAIT_S, "plain subscriber's copies")
        time.sleep(0.2)
        with plain_lock:
            self.assertEqual(plain, collections.Counter(sent + sent1))
        plain_sub.disconnect()

    def test_prefer_local_keeps_messages_on_the_publishers_node(self):
        n0, n1, n2 = self.nodes
        topic_filter = self.base + "/+"
        shared = "$share/pl/" + topic_filter
        self.paho("local-n0", n0, shared, protocol=paho.MQTTv311)
        self.paho("m-n1", n1, shared)
        self.paho("m-n2", n2, shared)
        want = {(n.name, topic_filter, "pl") for n in self.nodes}
        for node in self.nodes:
            wait_routes(node, want - {(node.name, topic_filter, "pl")})
        members = ["local-n0", "m-n1", "m-n2"]
        self.payloads_before = []

        sent = ["pl-%d" % i for i in range(N)]
        self.publisher(n0).publish(self.base + "/x", sent)
        spread = self.expect_once_each(sent, members, "prefer-local publisher on n0")
        self.assertEqual(spread, {"local-n0": N, "m-n1": 0, "m-n2": 0})

        # n2 does not prefer its own: the strategy spreads over all three nodes.
        sent2 = ["rr-%d" % i for i in range(N)]
        self.publisher(n2).publish(self.base + "/y", sent2)
        spread = self.expect_once_each(sent2, members, "publisher on n2")
        for m in members:
            self.assertGreater(spread[m], 0, "round robin left %s out: %r" % (m, spread))

    def test_queue_filters_form_one_group_across_nodes(self):
        n0, n1, n2 = self.nodes
        topic_filter = self.base + "/#"
        self.paho("q-n1", n1, "$queue/" + topic_filter)
        self.mosquitto("q-mosq-n2", n2, "$queue/" + topic_filter)
        wait_routes(n0, {(n1.name, topic_filter, "$queue"), (n2.name, topic_filter, "$queue")})
        self.payloads_before = []
        sent = ["q-%d" % i for i in range(N)]
        self.publisher(n0).publish(self.base + "/jobs", sent)
        spread = self.expect_once_each(sent, ["q-n1", "q-mosq-n2"], "$queue from n0")
        self.assertGreater(spread["q-n1"], 0, spread)
        self.assertGreater(spread["q-mosq-n2"], 0, spread)

    def test_member_node_with_only_an_offline_member_passes_copies_on(self):
        # A persistent session keeps its membership (and n2's route) while its client is away:
        # n0 still picks n2, which has no online member and passes each copy on, once, to n1.
        n0, n1, n2 = self.nodes
        topic_filter = self.base + "/#"
        shared = "$share/off/" + topic_filter
        client_id = unique("persistent")

        def persistent_member():
            c = paho.Client(client_id=client_id, clean_session=False, protocol=paho.MQTTv311)
            c.on_message = lambda _c, _u, msg: self.received.add(
                "offline-n2", msg.payload.decode(), msg.qos)
            acked = threading.Event()
            c.on_subscribe = lambda *a, **k: acked.set()
            c.on_connect = lambda *a, **k: acked.set()
            c.connect(n2.host, n2.port, keepalive=30)
            c.loop_start()
            return c, acked
        away, acked = persistent_member()
        self.assertTrue(acked.wait(WAIT_S))
        acked.clear()
        away.subscribe(shared, qos=1)
        self.assertTrue(acked.wait(WAIT_S))
        away.disconnect()
        away.loop_stop()
        self.paho("online-n1", n1, shared)
        wait_routes(n0, {(n1.name, topic_filter, "off"), (n2.name, topic_filter, "off")})
        wait_routes(n2, {(n1.name, topic_filter, "off")})
        self.payloads_before = []

        sent = ["off-%d" % i for i in range(N)]
        self.publisher(n0).publish(self.base + "/x", sent)
        spread = self.expect_once_each(sent, ["online-n1", "offline-n2"], "offline member on n2")
        self.assertEqual(spread, {"online-n1": N, "offline-n2": 0})
        # Nothing was queued for the persistent session either.
        back, acked = persistent_member()
        self.addCleanup(back.loop_stop)
        self.assertTrue(acked.wait(WAIT_S))
        time.sleep(0.5)  # a queued message would be sent right after CONNACK
        self.assertEqual(self.received.payloads("offline-n2"), [])
        back.unsubscribe(shared)
        back.disconnect()

    def test_member_node_losing_its_last_member_hands_over(self):
        n0, n1, n2 = self.nodes
        topic_filter = self.base + "/#"
        shared = "$share/lv/" + topic_filter
        stay = self.paho("stay-n1", n1, shared)
        leave = self.paho("leave-n2", n2, shared)
        wait_routes(n0, {(n1.name, topic_filter, "lv"), (n2.name, topic_filter, "lv")})
        wait_routes(n2, {(n1.name, topic_filter, "lv")})  # n2 can pass copies on to n1
        self.payloads_before = []
        pub = self.publisher(n0)

        # The member on n2 unsubscribes while messages flow (it stays connected, so what its
        # session holds already still reaches it): n0 may still pick n2 before it learns,
        # and n2 then passes the copy on to n1. Nothing may be lost or doubled.
        sent = ["lv-%d" % i for i in range(N)]
        done = threading.Event()

        def leave_midway():
            self.received.wait_total(N // 4)
            leave.unsubscribe()
            done.set()
        threading.Thread(target=leave_midway, daemon=True).start()
        for i in range(0, N, 10):
            pub.publish(self.base + "/x", sent[i:i + 10])
        self.assertTrue(done.wait(WAIT_S))
        self.expect_once_each(sent, ["stay-n1", "leave-n2"], "member leaving midway")

        # Once n0 knows, every later message goes to the remaining member.
        wait_routes(n0, {(n2.name, topic_filter, "lv")}, present=False)
        later = ["after-%d" % i for i in range(N)]
        pub.publish(self.base + "/y", later)
        spread = self.expect_once_each(later, ["stay-n1", "leave-n2"], "after the member left")
        self.assertEqual(spread, {"stay-n1": N, "leave-n2": 0})
        stay.unsubscribe()
        wait_routes(n2, {(n1.name, topic_filter, "lv")}, present=False)


if __name__ == "__main__":
    unittest.main(verbosity=2)
