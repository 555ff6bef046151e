#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""No acknowledged message lost across a node kill (issue 11, "Forwarding", "Tests"):

- subscriber's node killed: a persistent subscriber (3.1.1 Clean Session 0, or 5.0 Session
  Expiry 3600) on node b; b is SIGKILLed; a publisher on node a sends QoS 1/2 messages while b
  is down (a acknowledges them once they are in its durable outbox for b); b restarts on the same
  data dir; the subscriber reconnects to b and receives every acknowledged message, in order,
  QoS 2 exactly once;
- subscriber's node stopped with SIGTERM (a rolling restart): b drains, handing the session to a
  (issue 12); the messages wait in the session on a; b restarts, rejoins, and the subscriber
  reconnecting to b takes its session back with every message;
- publisher's node killed mid-stream: the subscriber on b consumes online while node a, where
  the publisher is, is SIGKILLed at a random moment and restarted; the publisher reconnects
  and resends what was not acknowledged [MQTT-4.4.0-1]; every acknowledged message reaches the
  subscriber, in order, QoS 2 exactly once (check_stream in harness_persist).

The publisher and subscribers are the persistence tests' own clients (exact packet control);
real mosquitto/paho clients are exercised in 52_forward.py."""

import json
import os
import subprocess
import time
import unittest

from harness_cluster import ClusterNode, unique, wait_until
from harness_persist import (RESTART_WAIT, Publisher, Subscriber, check_stream, seeded_rng,
                             skip_under_mosquitto)

MQTTCTL = os.environ.get("MQTTCTL_BIN", "")
WAIT_S = 15.0
N = int(os.environ.get("FORWARD_N", "300"))


def mqttctl_json(node, *args):
    out = subprocess.run([MQTTCTL, "--server", node.cluster_address, "--json"] + list(args),
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError("mqttctl %s: exit %d\n%s" % (args, out.returncode, out.stderr))
    return json.loads(out.stdout)


def member_state(node, name):
    for m in mqttctl_json(node, "members").get("members", []):
        if m["nodeId"] == name:
            return m["state"]
    return None


def wait_route(node, origin, topic_filter, persistent):
    def held():
        for r in mqttctl_json(node, "routes").get("routes", []):
            if (r["nodeId"], r["filter"], r["persistent"]) == (origin, topic_filter, persistent):
                return True
        return False
    wait_until(held, WAIT_S, "%s holds %s's route %s" % (node.name, origin, topic_filter))


@skip_under_mosquitto("mqttd's cluster")
class ForwardKill(unittest.TestCase):

    def setUp(self):
        if not MQTTCTL or not os.path.exists(MQTTCTL):
            self.skipTest("MQTTCTL_BIN not set (run through ctest)")
        prefix = unique("fk")
        self.a = ClusterNode(prefix + "-a")
        self.addCleanup(self.a.cleanup)
        self.a.start()
        self.b = ClusterNode(prefix + "-b", seeds=[self.a.cluster_address])
        self.addCleanup(self.b.cleanup)
        self.b.start()
        wait_until(lambda: member_state(self.a, self.b.name) == "alive"
                   and member_state(self.b, self.a.name) == "alive", WAIT_S, "a and b alive")
        self.topic = unique("fk/t")

    def subscriber_on_b(self, qos, version, online):
        sub = Subscriber(self.b, self.topic, qos, version=version, ack_lag=3 if online else 0)
        self.addCleanup(sub.close)
        sub.subscribe()
        wait_route(self.a, self.b.name, self.topic, True)
        if online:
            sub.start()
            self.addCleanup(sub.stop)
        else:
            sub.go_offline()
        return sub

    def subscriber_node_killed(self, qos, version, graceful=False):
        sub = self.subscriber_on_b(qos, version, online=False)
        if graceful:
            self.assertEqual(self.b.stop(), 0, self.b.log_tail())
        else:
            self.b.crash()
        # Its persistent route stays while b is dead: the messages wait in a's outbox. A
        # SIGTERM drains b: the session itself is on a, and b has left.
        state = "left" if graceful else "dead"
        wait_until(lambda: member_state(self.a, self.b.name) == state, WAIT_S,
                   "b %s on a" % state)
        if graceful:
            self.assertIn("drain: 1 sessions: 1 moved", self.b.logs)
        else:
            wait_route(self.a, self.b.name, self.topic, True)
        pub = Publisher(self.a, self.topic, N, qos, window=20, pad=b"-" + self.topic.encode())
        self.addCleanup(pub.stop)
        pub.start()
        pub.join(WAIT_S * 4)
        if pub.error:
            raise pub.error
        self.assertEqual(pub.completed, N, "publisher did not finish\n" + self.a.log_tail())
        acked = set(pub.acked)
        self.b.start()
        sub.reconnect(time.monotonic() + RESTART_WAIT)
        try:
            sub.drain(acked, WAIT_S * 2)
        except AssertionError as e:
            raise AssertionError("%s\na:\n%s\nb:\n%s" % (e, self.a.log_tail(), self.b.log_tail()))
        sub.quiet(1.0)  # anything more (a duplicate) arrives within this bounded time
        problems = check_stream(sub.got, acked, qos, resent=set(), redelivery_allowed=False)
        self.assertEqual(problems, [], "b:\n" + self.b.log_tail())

    def publisher_node_killed(self, qos, version):
        rng = seeded_rng(self)
        sub = self.subscriber_on_b(qos, version, online=True)
        pub = Publisher(self.a, self.topic, N, qos, window=20, pad=b"-" + self.topic.encode())
        self.addCleanup(pub.stop)
        pub.start()
        point = rng.randrange(N // 5, N * 3 // 5)
        self.assertTrue(pub.wait_acked(point, WAIT_S * 2), "publisher stalled\n" +
                        self.a.log_tail())
        time.sleep(rng.uniform(0, 0.01))  # places the kill at a random moment, not a sync
        killed_at = pub.acked_count()
        self.a.crash()
        self.a.start()
        pub.join(WAIT_S * 4)
        if pub.error:
            raise pub.error
        self.assertEqual(pub.completed, N, "publisher did not finish\n" + self.a.log_tail())
        acked = set(pub.acked)
        if not sub.wait_seen(acked, WAIT_S * 2):
            missing = sorted(acked - sub.seen)
            self.fail("%d acknowledged messages never delivered (first %r), killed at %d\n"
                      "a:\n%s\nb:\n%s" % (len(missing), missing[:20], killed_at,
                                          self.a.log_tail(), self.b.log_tail()))
        time.sleep(1.0)  # a negative check after the positive barrier above: duplicates
        if sub.error:
            raise sub.error
        resent = {seq for seq, sends in enumerate(pub.sends) if sends > 1}
        problems = check_stream(sub.got, acked, qos, resent=resent, redelivery_allowed=False)
        self.assertEqual(problems, [], "killed at %d" % killed_at)

    def test_subscriber_node_killed_qos1_v311(self):
        self.subscriber_node_killed(1, 4)

    def test_subscriber_node_killed_qos2_v5(self):
        self.subscriber_node_killed(2, 5)

    def test_subscriber_node_stopped_gracefully_qos1_v5(self):
        self.subscriber_node_killed(1, 5, graceful=True)

    def test_publisher_node_killed_qos1_v5(self):
        self.publisher_node_killed(1, 5)

    def test_publisher_node_killed_qos2_v311(self):
        self.publisher_node_killed(2, 4)


if __name__ == "__main__":
    unittest.main(verbosity=2)
