#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""`mqttctl sessions` and `mqttctl kick` across a 3-node cluster (issue 12, "Drain, leave, scale
in"), with raw MQTT 3.1.1 and 5.0 clients:
- `sessions` asked of one node lists every member's sessions: node, protocol, connected or
  offline, persistent or clean, subscriptions, queued messages, expiry, registry epoch;
  `--client-id`, `--node` and `--limit` narrow it;
- an offline persistent session's queued count grows as messages are published to it;
- `kick` closes a client's connection on whichever node holds it (5.0: DISCONNECT 0x98
  Administrative action); a clean session ends, a persistent one stays offline; kicking a
  client that is not connected exits 1."""

import os
import signal
import struct
import subprocess
import unittest

from harness_cluster import (SharedCluster, mqttctl_json, unique, wait_members_alive,
                             wait_until)
from harness_persist import skip_under_mosquitto

import harness  # noqa: E402 (on the path harness_cluster sets)
from harness import CONNACK, RawClient, mstr, packet, varint  # noqa: E402

MQTTCTL = os.environ.get("MQTTCTL_BIN", "")
WAIT_S = 15.0
NEVER = 0xFFFFFFFF


def connect_v5_packet(client_id, clean=True, expiry=0):
    props = b"\x11" + struct.pack("!I", expiry) if expiry else b""
    body = (mstr("MQTT") + bytes([5, 0x02 if clean else 0]) + struct.pack("!H", 60)
            + varint(len(props)) + props)
    return packet(harness.CONNECT, 0, body + mstr(client_id))


def subscribe_v5_packet(pid, filters):
    body = struct.pack("!H", pid) + b"\x00"
    for f, qos in filters:
        body += mstr(f) + bytes([qos])
    return packet(harness.SUBSCRIBE, 0x02, body)


def run_mqttctl(node, *args):
    return subprocess.run([MQTTCTL, "--server", node.cluster_address] + list(args),
                          capture_output=True, text=True, timeout=60)


@skip_under_mosquitto("mqttd's cluster and mqttctl")
class Sessions(SharedCluster):
    PREFIX = "ses"

    def raw(self, node):
        client = RawClient(node.host, node.port)
        self.addCleanup(client.close)
        return client

    def v311(self, node, client_id, clean=True, filters=()):
        client = self.raw(node)
        client.connect(client_id, clean=clean)
        if filters:
            client.subscribe([(f, 1) for f in filters])
        return client

    def v5(self, node, client_id, clean=True, expiry=0, filters=()):
        client = self.raw(node)
        client.send(connect_v5_packet(client_id, clean, expiry))
        self.assertEqual(client.expect(CONNACK).body[1], 0)
        if filters:
            client.send(subscribe_v5_packet(1, [(f, 1) for f in filters]))
            client.wait_for(harness.SUBACK, 1)
        return client

    def sessions(self, node, *args):
        return {s["clientId"]: s for s in mqttctl_json(node, "sessions", *args).get("sessions", [])}

    def test_lists_every_members_sessions_with_their_state(self):
        n0, n1, n2 = self.nodes
        ids = {k: unique(k) for k in ("c311", "p311", "c5", "p5")}
        self.v311(n0, ids["c311"], clean=True, filters=["a/1"])
        self.v311(n1, ids["p311"], clean=False, filters=["b/1", "b/2"])
        self.v5(n2, ids["c5"], clean=True)
        self.v5(n1, ids["p5"], clean=True, expiry=600, filters=["c/1", "c/2", "c/3"])
        expected = {  # node, protocol, persistent, subscriptions, expiry (s), never expires
            "c311": (n0.name, "3.1.1", False, 1, 0, False),
            "p311": (n1.name, "3.1.1", True, 2, 7 * 24 * 3600, False),  # --max-session-expiry
            "c5": (n2.name, "5.0", False, 0, 0, False),
            "p5": (n1.name, "5.0", True, 3, 600, False),
        }
        listed = self.sessions(n2)
        for key, (node, protocol, persistent, subs, expiry, never) in expected.items():
            s = listed.get(ids[key])
            self.assertIsNotNone(s, "%s not listed: %r" % (key, sorted(listed)))
            self.assertEqual((s["nodeId"], s["protocolVersion"], s["persistent"],
                              s["subscriptions"], s["expiryInterval"], s["neverExpires"]),
                             (node, protocol, persistent, subs, expiry, never), key)
            self.assertTrue(s["connected"], key)
            self.assertEqual(int(s["queuedMessages"]), 0, key)
            self.assertGreater(int(s["registryEpoch"]), 0, key)
        order = [c for c in mqttctl_json(n2, "sessions")["sessions"]]
        self.assertEqual([s["clientId"] for s in order],
                         sorted(s["clientId"] for s in order), "sorted by client id")

        only = self.sessions(n0, "--client-id", ids["p5"])
        self.assertEqual(list(only), [ids["p5"]])
        self.assertEqual(self.sessions(n0, "--client-id", ids["p5"][:-1]), {}, "exact match")

        on_n1 = self.sessions(n0, "--node", n1.name)
        self.assertTrue({ids["p311"], ids["p5"]} <= set(on_n1))
        self.assertEqual({s["nodeId"] for s in on_n1.values()}, {n1.name})

        limited = mqttctl_json(n0, "sessions", "--limit", "1")
        self.assertEqual(len(limited["sessions"]), 1)
        self.assertTrue(limited["truncated"])

        table = run_mqttctl(n1, "sessions", "--client-id", ids["p311"])
        self.assertEqual(table.returncode, 0, table.stderr)
        lines = table.stdout.splitlines()
        self.assertEqual(lines[0].split()[:2], ["CLIENT", "ID"])
        self.assertEqual(lines[1].split()[:6],
                         [ids["p311"], n1.name, "connected", "3.1.1", "persistent", "2"])
        self.assertEqual(lines[1].split()[7], "604800s")  # --max-session-expiry

    def test_offline_persistent_session_counts_what_is_queued_for_it(self):
        n0, n1, _ = self.nodes
        client_id, topic = unique("off"), unique("q")
        sub = self.v311(n1, client_id, clean=False, filters=[topic + "/#"])
        sub.disconnect()
        wait_until(lambda: not self.sessions(n0, "--client-id", client_id)[client_id]["connected"],
                   WAIT_S, "listed offline")
        publisher = self.v311(n0, unique("pub"))
        for i in range(3):
            publisher.publish("%s/%d" % (topic, i), b"m", qos=1, pid=i + 1)
            wait_until(lambda: int(self.sessions(n0, "--client-id", client_id)[client_id]
                                   ["queuedMessages"]) == i + 1,
                       WAIT_S, "%d queued" % (i + 1))
        s = self.sessions(n0, "--client-id", client_id)[client_id]
        self.assertEqual((s["nodeId"], s["connected"], s["persistent"]), (n1.name, False, True))

    def kick(self, node, client_id):
        out = run_mqttctl(node, "kick", client_id)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_kick_of_a_5_0_clean_client_on_another_node(self):
        n0, _, n2 = self.nodes
        client_id = unique("k5c")
        client = self.v5(n2, client_id, clean=True, filters=["k/1"])
        self.assertIn("on %s" % n2.name, self.kick(n0, client_id))
        disconnect = client.expect(harness.DISCONNECT, WAIT_S)
        self.assertEqual(disconnect.body[0], 0x98, "reason: Administrative action")
        client.wait_closed(WAIT_S)
        wait_until(lambda: client_id not in self.sessions(n0), WAIT_S, "clean session gone")

    def test_kick_of_a_5_0_persistent_client_leaves_it_offline(self):
        n0, n1, _ = self.nodes
        client_id = unique("k5p")
        client = self.v5(n1, client_id, clean=True, expiry=600, filters=["k/2"])
        self.assertIn("on %s" % n1.name, self.kick(n0, client_id))
        self.assertEqual(client.expect(harness.DISCONNECT, WAIT_S).body[0], 0x98)
        client.wait_closed(WAIT_S)
        s = self.sessions(n0, "--client-id", client_id)[client_id]
        self.assertEqual((s["nodeId"], s["connected"], s["persistent"], s["subscriptions"]),
                         (n1.name, False, True, 1))
        again = run_mqttctl(n0, "kick", client_id)
        self.assertEqual(again.returncode, 1, "an offline session is not connected")

    def test_kick_of_a_3_1_1_client_closes_its_socket(self):
        _, n1, n2 = self.nodes
        client_id = unique("k311")
        client = self.v311(n1, client_id, clean=True)
        client.ping()
        self.assertIn("on %s" % n1.name, self.kick(n2, client_id))
        self.assertEqual(client.wait_closed(WAIT_S), [], "3.1.1 has no server DISCONNECT")
        wait_until(lambda: client_id not in self.sessions(n2), WAIT_S, "clean session gone")

    def test_kick_of_an_unknown_client_exits_1(self):
        out = run_mqttctl(self.nodes[0], "kick", unique("nobody"))
        self.assertEqual(out.returncode, 1)
        self.assertIn("not connected", out.stderr)

    def test_sessions_of_a_node_that_is_no_member_exits_1(self):
        out = run_mqttctl(self.nodes[0], "sessions", "--node", "no-such-node")
        self.assertEqual(out.returncode, 1)
        self.assertIn("no-such-node", out.stderr)

    def test_stopped_node_is_named_on_stderr(self):
        """A member that does not answer is named on stderr; exit 0 while another answered."""
        n0, n1, n2 = self.nodes
        client_id = unique("seen")
        self.v311(n1, client_id)
        os.kill(n2.proc.pid, signal.SIGSTOP)
        try:
            out = run_mqttctl(n0, "sessions", "--node", n2.name)
            self.assertEqual(out.returncode, 1, "the one node asked did not answer")
            self.assertIn(n2.name, out.stderr)
            both = run_mqttctl(n0, "--json", "sessions")  # n2 alive still, or already suspect
            self.assertEqual(both.returncode, 0, both.stderr)
            self.assertIn(client_id, both.stdout)
        finally:
            os.kill(n2.proc.pid, signal.SIGCONT)
        wait_members_alive(self.nodes, WAIT_S)

if __name__ == "__main__":
    unittest.main(verbosity=2)
