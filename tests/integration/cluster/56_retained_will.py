#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Retained messages and wills across nodes, and mqttctl retained/status (issue 11):

- a retained message set on node a (mosquitto_pub -r) is held by b and c (`mqttctl retained`)
  and a new subscription on c gets it with RETAIN 1 [MQTT-3.3.1-6], [MQTT-3.3.1-8], answered from
  c's own copy; a delete (empty retained payload [MQTT-3.3.1-10]) made on b removes it
  everywhere; a node d that joins later holds what is set and not what was deleted;
- the will of a client connected to a, whose connection breaks, reaches a subscriber on b
  [MQTT-3.1.2-8];
- `mqttctl status` reports the node's clients and its forwarding outboxes; against a node
  that is down it fails with exit 1 and says it cannot reach it."""

import json
import os
import subprocess
import threading
import unittest

import paho.mqtt.client as paho

from harness_cluster import ClusterNode, unique, wait_until
from harness_persist import skip_under_mosquitto
import harness  # noqa: E402 (on the path once harness_persist is imported)

MQTTCTL = os.environ.get("MQTTCTL_BIN", "")
WAIT_S = 15.0


def mqttctl(node, *args, check=True):
    out = subprocess.run([MQTTCTL, "--server", node.cluster_address] + list(args),
                         capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise AssertionError("mqttctl %s: exit %d\n%s" % (args, out.returncode, out.stderr))
    return out


def retained_view(node, topic_filter):
    """{topic: "set" | "deleted"} that node holds for topic_filter."""
    answer = json.loads(mqttctl(node, "--json", "retained", "--topic", topic_filter).stdout)
    return {e["topic"]: ("deleted" if e["tombstone"] else "set")
            for e in answer.get("entries", [])}


def receive(node, topic_filter, count, version=paho.MQTTv5):
    """Subscribes on node and returns the first `count` messages [(topic, payload, retain)]."""
    got, done = [], threading.Event()
    client = paho.Client(client_id=unique("rw"), protocol=version)

    def on_message(_c, _u, msg):
        got.append((msg.topic, msg.payload.decode(), bool(msg.retain)))
        if len(got) >= count:
            done.set()
    client.on_message = on_message
    client.connect(node.host, node.port, keepalive=30)
    client.loop_start()
    client.subscribe(topic_filter, qos=1)
    done.wait(WAIT_S)
    client.loop_stop()
    client.disconnect()
    return got


@skip_under_mosquitto("mqttd's cluster")
class RetainedAndWills(unittest.TestCase):

    def setUp(self):
        if not MQTTCTL or not os.path.exists(MQTTCTL):
            self.skipTest("MQTTCTL_BIN not set (run through ctest)")
        self.prefix = unique("rw")

    def node(self, suffix, seeds=()):
        n = ClusterNode("%s-%s" % (self.prefix, suffix), seeds=seeds)
        self.addCleanup(n.cleanup)
        n.start()
        return n

    def test_retained_set_read_deleted_and_joined_later(self):
        a = self.node("a")
        b = self.node("b", [a.cluster_address])
        c = self.node("c", [a.cluster_address])
        base = "ret/%s" % self.prefix
        subprocess.run(["mosquitto_pub", "-h", a.host, "-p", str(a.port), "-t", base + "/x",
                        "-m", "vx", "-q", "1", "-r"], check=True, timeout=30)
        subprocess.run(["mosquitto_pub", "-h", a.host, "-p", str(a.port), "-t", base + "/y",
                        "-m", "vy", "-q", "1", "-r"], check=True, timeout=30)
        for n in (b, c):
            wait_until(lambda n=n: retained_view(n, base + "/#") == {base + "/x": "set",
                                                                       base + "/y": "set"},
                       WAIT_S, "%s holds both retained messages" % n.name)
        got = sorted(receive(c, base + "/#", 2))
        self.assertEqual(got, [(base + "/x", "vx", True), (base + "/y", "vy", True)])

        # Deleted on b: gone everywhere (kept as a tombstone until every member has it).
        subprocess.run(["mosquitto_pub", "-h", b.host, "-p", str(b.port), "-t", base + "/x",
                        "-n", "-q", "1", "-r"], check=True, timeout=30)
        for n in (a, c):
            wait_until(lambda n=n: retained_view(n, base + "/x").get(base + "/x") != "set",
                       WAIT_S, "the delete reached %s" % n.name)
        self.assertEqual(receive(a, base + "/#", 1), [(base + "/y", "vy", True)])

        # A node that joins later holds what is set, not what was deleted.
        d = self.node("d", [b.cluster_address])
        wait_until(lambda: retained_view(d, base + "/#").get(base + "/y") == "set", WAIT_S,
                   "the late node holds the retained message")
        self.assertNotEqual(retained_view(d, base + "/#").get(base + "/x"), "set")
        self.assertEqual(receive(d, base + "/#", 1, paho.MQTTv311), [(base + "/y", "vy", True)])

    def test_will_crosses_nodes_and_status(self):
        a = self.node("a")
        b = self.node("b", [a.cluster_address])
        will_topic = "will/%s" % self.prefix
        sub = subprocess.Popen(["mosquitto_sub", "-h", b.host, "-p", str(b.port), "-t",
                                will_topic, "-q", "1", "-C", "1", "-W", "30"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: sub.poll() is None and sub.kill())

        def route_on_a():
            routes = json.loads(mqttctl(a, "--json", "routes", "--filter", will_topic).stdout)
            return routes.get("routes")
        wait_until(route_on_a, WAIT_S, "b's route for the will topic on a")

        client = harness.RawClient(a)
        client.send(harness.connect_packet(unique("willer"), will=dict(
            topic=will_topic, payload=b"gone", qos=1)))
        client.expect(harness.CONNACK)
        status = json.loads(mqttctl(a, "--json", "status").stdout)
        self.assertEqual(status["nodeId"], a.name)
        self.assertGreaterEqual(int(status["clients"]), 1)
        self.assertEqual([o["nodeId"] for o in status["outboxes"]], [b.name])
        client.close()  # no DISCONNECT: the will is published [MQTT-3.1.2-8]
        out, err = sub.communicate(timeout=WAIT_S * 2)
        self.assertEqual(out.strip(), "gone", err)
        self.assertIn("FORWARDED", mqttctl(a, "status").stdout)

        b.kill()
        out = mqttctl(b, "status", check=False)
        self.assertEqual(out.returncode, 1)
        self.assertIn("cannot reach the node", out.stderr)
        wait_until(lambda: '"dead"' in mqttctl(a, "--json", "members").stdout, WAIT_S,
                   "b dead in a's `mqttctl members`")


if __name__ == "__main__":
    unittest.main(verbosity=2)
