#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Draining a node (issue 12 "Drain, leave, scale in"; docs/cluster-sessions.md "Drain"), with
real nodes on loopback:
- `mqttctl drain` on a node holding 1,000 offline persistent sessions, each with a queued QoS 1
  message: the node disconnects its connected clients (5.0: DISCONNECT 0x9C Use another server
  with its Server Reference [MQTT-3.14.2-1]), hands every session to the other two nodes (both
  get a share), answers, leaves and exits 0; every client then reconnects to another node with
  Session Present 1 [MQTT-3.2.2-2] and gets its queued message and one published after the drain;
- SIGTERM does the same: a persistent subscriber's queued messages survive the node's stop."""

import json
import os
import subprocess
import sys
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness_cluster import HERE, mqttctl_json, start_chain, unique, wait_until
from harness_persist import skip_under_mosquitto

from harness import RawClient  # noqa: E402 (on the path harness_cluster sets)

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "v5"))
from harness5 import SERVER_REFERENCE, RawClient5  # noqa: E402

MQTTCTL = os.environ.get("MQTTCTL_BIN", "")
WAIT_S = 15.0
N = int(os.environ.get("DRAIN_N", "1000"))
REFERENCE = "mqtt.example.com:1883"
RC_USE_ANOTHER_SERVER = 0x9C


def in_parallel(fn, items, workers=8):
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def persistent_sessions(node):
    """client id -> node id of the persistent sessions `mqttctl sessions` lists cluster-wide."""
    listed = mqttctl_json(node, "sessions", "--limit", str(10 * N + 100))
    return {s["clientId"]: s["nodeId"] for s in listed.get("sessions", [])
            if s.get("persistent")}


@skip_under_mosquitto("mqttd's cluster")
class Drain(unittest.TestCase):

    def setUp(self):
        if not MQTTCTL or not os.path.exists(MQTTCTL):
            self.skipTest("MQTTCTL_BIN not set (run through ctest)")
        self.nodes = []
        self.addCleanup(lambda: [n.cleanup() for n in self.nodes])
        start_chain(unique("dr"), 3, self.nodes.append, WAIT_S,
                    lambda i: ["--server-reference", REFERENCE] if i == 2 else [])
        self.a, self.b, self.c = self.nodes
        self.prefix = unique("dr")

    def logs(self):
        return "\n".join("%s:\n%s" % (n.name, n.log_tail()) for n in self.nodes)

    def client_id(self, i):
        return "%s-%d" % (self.prefix, i)

    def topic(self, i):
        return "%s/%d" % (self.prefix, i)

    def make_offline_session(self, i):
        c = RawClient(self.c)
        try:
            c.connect(self.client_id(i), clean=False)
            self.assertEqual(c.subscribe([(self.topic(i), 1)]), [1])
        finally:
            c.disconnect()

    def reconnect_and_receive(self, i):
        """Reconnects client i to a or b; returns the payloads it gets (two expected, in
        publish order)."""
        c = RawClient(self.a if i % 2 else self.b)
        try:
            present, _ = c.connect(self.client_id(i), clean=False)
            if not present:
                return "no session"
            return [c.recv_publish(WAIT_S).payload for _ in range(2)]
        except (AssertionError, TimeoutError, OSError) as e:
            return "error: %r" % e
        finally:
            c.disconnect()

    def drain(self, node):
        out = subprocess.run([MQTTCTL, "--server", node.cluster_address, "--json", "drain",
                              "--timeout", "120"], capture_output=True, text=True, timeout=150)
        self.assertEqual(out.returncode, 0, "mqttctl drain: %s\n%s" % (out.stderr, self.logs()))
        return json.loads(out.stdout)

    def test_drain_hands_1000_sessions_to_the_other_nodes(self):
        in_parallel(self.make_offline_session, range(N))
        publisher = RawClient(self.c)
        publisher.connect(unique("pub"))
        for i in range(N):
            publisher.publish(self.topic(i), b"before", qos=1, pid=i % 65000 + 1)
        publisher.disconnect()
        # Connected while the node drains: a 5.0 client is sent elsewhere, a 3.1.1 one closed.
        v5 = RawClient5(self.c)
        v5.connect5(unique("v5"))
        v3 = RawClient(self.c)
        v3.connect(unique("v3"))

        started = time.monotonic()
        report = self.drain(self.c)
        took = time.monotonic() - started
        sys.stderr.write("drain of %d sessions: %.2f s (node: %s ms)\n"
                         % (N, took, report.get("tookMs")))
        self.assertEqual(int(report["sessions"]), N, report)
        self.assertEqual(int(report["moved"]), N, report)
        self.assertEqual(int(report["kept"]), 0, report)
        props = v5.expect_disconnect(RC_USE_ANOTHER_SERVER)
        self.assertEqual(props.get(SERVER_REFERENCE), REFERENCE)
        self.assertEqual(v3.wait_closed(), [])
        self.assertEqual(self.c.proc.wait(WAIT_S), 0, self.c.log_tail())

        remaining = [self.a, self.b]

        def c_alive_for(node):
            return any(m["nodeId"] == self.c.name and m["state"] == "alive"
                       for m in mqttctl_json(node, "members")["members"])
        wait_until(lambda: not any(c_alive_for(n) for n in remaining), WAIT_S,
                   "the others see the drained node gone")
        where = persistent_sessions(self.a)
        mine = {self.client_id(i) for i in range(N)}
        self.assertEqual(mine - set(where), set(), "sessions missing after the drain")
        share = {n.name: sum(1 for cid in mine if where[cid] == n.name) for n in remaining}
        self.assertEqual(sum(share.values()), N, share)
        for name, count in share.items():
            self.assertGreater(count, N // 4, "uneven spread %r" % share)

        publisher = RawClient(self.a)
        publisher.connect(unique("pub"))
        for i in range(N):
            publisher.publish(self.topic(i), b"after", qos=1, pid=i % 65000 + 1)
        publisher.disconnect()
        results = in_parallel(self.reconnect_and_receive, range(N))
        bad = {self.client_id(i): r for i, r in enumerate(results) if r != [b"before", b"after"]}
        self.assertEqual(bad, {}, "clients without their messages (%d of %d)\n%s"
                         % (len(bad), N, self.logs()))

    def test_sigterm_drains_too(self):
        self.make_offline_session(0)
        publisher = RawClient(self.c)
        publisher.connect(unique("pub"))
        for pid in (1, 2):
            publisher.publish(self.topic(0), b"before", qos=1, pid=pid)
        publisher.disconnect()
        self.assertEqual(self.c.stop(timeout=60), 0, self.c.log_tail())
        self.assertIn("drain: 1 sessions: 1 moved", self.c.logs)
        c = RawClient(self.a)
        self.addCleanup(c.close)
        present, _ = c.connect(self.client_id(0), clean=False)
        self.assertEqual(present, 1, self.logs())
        self.assertEqual([c.recv_publish(WAIT_S).payload for _ in range(2)],
                         [b"before", b"before"])


if __name__ == "__main__":
    unittest.main()
