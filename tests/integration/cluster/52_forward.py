#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Cross-node publish/subscribe (issue 11, "Forwarding"): 3 and 5 real nodes on loopback, real
clients of both protocol versions on different nodes: mosquitto_pub (3.1.1) publishes on one
node at QoS 0, 1 and 2; mosquitto_sub (3.1.1, wildcard +) and paho-mqtt (5.0, wildcard #) on
other nodes receive each message once, at min(published, granted) QoS [MQTT-3.8.4-6], in
publish order [MQTT-4.6.0-6]; a subscriber on the publisher's own node still gets it locally.
A node without a matching route gets nothing (a topic no one subscribed to is not forwarded)."""

import os
import subprocess
import threading
import time
import unittest

import paho.mqtt.client as paho

from harness_cluster import mqttctl_json, start_chain, unique, wait_until
from harness_persist import skip_under_mosquitto

MQTTCTL = os.environ.get("MQTTCTL_BIN", "")
WAIT_S = 15.0


def wait_routes(node, want, timeout=WAIT_S):
    """Until `node` holds a route of each (origin, filter) in `want`."""
    def held():
        routes = mqttctl_json(node, "routes")
        have = {(r["nodeId"], r["filter"]) for r in routes.get("routes", [])}
        return set(want) <= have
    wait_until(held, timeout, "%s holds routes %r" % (node.name, sorted(want)))


class Paho5Collector:
    """A paho-mqtt 5.0 client that records (topic, payload, qos) of what it receives."""

    def __init__(self, node, topic_filter, qos):
        self.got = []
        self.cond = threading.Condition()
        self.client = paho.Client(client_id=unique("paho5"), protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a, **k: subscribed.set()
        self.client.connect(node.host, node.port, keepalive=30)
        self.client.loop_start()
        self.client.subscribe(topic_filter, qos=qos)
        if not subscribed.wait(WAIT_S):
            raise AssertionError("paho: no SUBACK")

    def _on_message(self, _client, _userdata, msg):
        with self.cond:
            self.got.append((msg.topic, msg.payload.decode(), msg.qos))
            self.cond.notify_all()

    def wait_count(self, n, timeout=WAIT_S):
        with self.cond:
            self.cond.wait_for(lambda: len(self.got) >= n, timeout)
            return list(self.got)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@skip_under_mosquitto("mqttd's cluster")
class Forwarding(unittest.TestCase):

    def setUp(self):
        if not MQTTCTL or not os.path.exists(MQTTCTL):
            self.skipTest("MQTTCTL_BIN not set (run through ctest)")
        self.prefix = unique("fwd")

    def start_cluster(self, count):
        return start_chain(self.prefix, count, lambda n: self.addCleanup(n.cleanup), WAIT_S)

    def mosquitto_sub(self, node, topic_filter, qos, count):
        proc = subprocess.Popen(
            ["mosquitto_sub", "-h", node.host, "-p", str(node.port), "-V", "mqttv311",
             "-t", topic_filter, "-q", str(qos), "-C", str(count), "-W", "30", "-v"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def mosquitto_pub(self, node, topic, payload, qos):
        subprocess.run(["mosquitto_pub", "-h", node.host, "-p", str(node.port), "-V",
                        "mqttv311", "-t", topic, "-m", payload, "-q", str(qos)],
                       check=True, timeout=30)

    def assert_same_in_topic_order(self, got, want, topic_of, what):
        """The same messages, and per topic in publish order. Order across topics is not
        promised [MQTT-4.6.0-6: per Topic and QoS], and clients do not keep it either: paho and
        libmosquitto hand a QoS 2 message to the application only on PUBREL, a round trip after
        it arrived, so a later QoS 0 message on another topic can overtake it."""
        self.assertEqual(sorted(got), sorted(want), what)
        for topic in {topic_of(m) for m in want}:
            self.assertEqual([m for m in got if topic_of(m) == topic],
                             [m for m in want if topic_of(m) == topic], "%s, %s" % (what, topic))

    def run_cluster(self, count):
        nodes = self.start_cluster(count)
        pub_node, plus_node, hash_node = nodes[0], nodes[1], nodes[-1]
        base = "fwd/%s" % self.prefix
        plus_filter, hash_filter = base + "/+/x", base + "/#"
        sub = self.mosquitto_sub(plus_node, plus_filter, 2, 6)
        paho5 = Paho5Collector(hash_node, hash_filter, 1)
        self.addCleanup(paho5.close)
        local = Paho5Collector(pub_node, hash_filter, 2)  # same node as the publisher
        self.addCleanup(local.close)
        wait_routes(pub_node, {(plus_node.name, plus_filter), (hash_node.name, hash_filter)})

        published = []
        for round_ in range(2):
            for qos in (0, 1, 2):
                topic = "%s/q%d/x" % (base, qos)
                payload = "m%d-q%d" % (round_, qos)
                self.mosquitto_pub(pub_node, topic, payload, qos)
                published.append((topic, payload, qos))
        # A topic only the # subscriber matches.
        self.mosquitto_pub(pub_node, base + "/other", "only-hash", 1)

        out, err = sub.communicate(timeout=WAIT_S * 2)
        self.assertEqual(sub.returncode, 0, "mosquitto_sub on %s: %s" % (plus_node.name, err))
        self.assert_same_in_topic_order(out.splitlines(),
                                        ["%s %s" % (t, p) for t, p, _ in published],
                                        lambda line: line.split(" ")[0],
                                        "mosquitto_sub (3.1.1, %s, QoS 2) on %s"
                                        % (plus_filter, plus_node.name))

        want5 = [(t, p, min(q, 1)) for t, p, q in published] + [(base + "/other", "only-hash", 1)]
        self.assert_same_in_topic_order(paho5.wait_count(len(want5)), want5, lambda m: m[0],
                                        "paho 5.0 (%s, QoS 1) on %s"
                                        % (hash_filter, hash_node.name))
        want_local = [(t, p, q) for t, p, q in published] + [(base + "/other", "only-hash", 1)]
        self.assert_same_in_topic_order(local.wait_count(len(want_local)), want_local,
                                        lambda m: m[0], "paho 5.0 on the publisher's node")
        time.sleep(0.5)  # a negative check after the positive barriers above: no extra copies
        self.assertEqual(len(paho5.got), len(want5), "duplicates at %s" % hash_node.name)
        self.assertEqual(len(local.got), len(want_local), "duplicates on the publisher's node")

        # The other direction: a publish on the # subscriber's node reaches the + subscriber.
        sub2 = self.mosquitto_sub(plus_node, plus_filter, 1, 1)
        wait_routes(hash_node, {(plus_node.name, plus_filter)})  # so it is subscribed
        self.mosquitto_pub(hash_node, base + "/back/x", "back", 1)
        out, _ = sub2.communicate(timeout=WAIT_S * 2)
        self.assertEqual(out.strip(), "%s/back/x back" % base)

    def test_three_nodes(self):
        self.run_cluster(3)

    def test_five_nodes(self):
        self.run_cluster(5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
