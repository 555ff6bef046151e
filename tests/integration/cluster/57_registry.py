#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One connected session per client id across the cluster (issue 12, invariant 1), through the
client-id registry (Raft, cluster/registry_node.h), with real nodes on loopback:
- a client connecting on another node takes the session over: the old connection is closed
  (5.0: DISCONNECT 0x8E Session taken over) [MQTT-3.1.4-2], at 3.1.1 and 5.0;
- 50 concurrent CONNECTs with one client id spread over 3 nodes end with exactly one connected,
  repeated;
- a node that cannot reach a registry majority refuses CONNECTs (3.1.1 return code 3, 5.0 reason
  0x88 Server unavailable) unless --cluster-allow-register-during-netsplit is on."""

import os
import re
import struct
import threading
import time
import unittest

from harness_cluster import (ClusterNode, free_port, mqttctl_json, start_chain, unique,
                             wait_until)
from harness_persist import skip_under_mosquitto

import harness  # noqa: E402 (on the path harness_cluster sets)
from harness import CONNACK, Closed, RawClient, connect_packet, mstr, packet  # noqa: E402

MQTTCTL = os.environ.get("MQTTCTL_BIN", "")
WAIT_S = 15.0


def connect_v5_packet(client_id, clean=True):
    body = mstr("MQTT") + bytes([5, 0x02 if clean else 0]) + struct.pack("!H", 60) + b"\x00"
    return packet(harness.CONNECT, 0, body + mstr(client_id))


def connected_clients(nodes):
    return sum(int(m.get("clients", 0)) for m in
               mqttctl_json(nodes[0], "members").get("members", []))


@skip_under_mosquitto("mqttd's cluster")
class Registry(unittest.TestCase):

    def setUp(self):
        if not MQTTCTL or not os.path.exists(MQTTCTL):
            self.skipTest("MQTTCTL_BIN not set (run through ctest)")
        self.prefix = unique("reg")

    def start_cluster(self, count=3):
        return start_chain(self.prefix, count, lambda n: self.addCleanup(n.cleanup), WAIT_S)

    def raw(self, node):
        client = RawClient(node.host, node.port)
        self.addCleanup(client.sock.close)
        return client

    def test_takeover_across_nodes_v311(self):
        """[MQTT-3.1.4-2]: the server closes the existing connection of that client id."""
        nodes = self.start_cluster()
        client_id = unique("take311")
        first = self.raw(nodes[0])
        first.connect(client_id)
        second = self.raw(nodes[1])
        second.connect(client_id)
        first.wait_closed(WAIT_S)
        second.ping()
        wait_until(lambda: connected_clients(nodes) == 1, WAIT_S, "one connected client")

    def test_takeover_across_nodes_v5(self):
        """5.0: the old connection gets DISCONNECT 0x8E (Session taken over) [MQTT-3.1.4-3]."""
        nodes = self.start_cluster()
        client_id = unique("take5")
        first = self.raw(nodes[0])
        first.send(connect_v5_packet(client_id))
        self.assertEqual(first.expect(CONNACK).body[1], 0)
        second = self.raw(nodes[2])
        second.send(connect_v5_packet(client_id))
        self.assertEqual(second.expect(CONNACK).body[1], 0)
        disconnect = first.expect(harness.DISCONNECT, WAIT_S)
        self.assertEqual(disconnect.body[0], 0x8E, "reason: Session taken over")
        first.wait_closed(WAIT_S)
        second.ping()

    def test_fifty_concurrent_connects_with_one_client_id(self):
        """Invariant 1: whatever the interleaving, exactly one stays connected."""
        nodes = self.start_cluster()
        for round_ in range(3):
            client_id = unique("race%d" % round_)
            clients = [self.raw(nodes[i % 3]) for i in range(50)]
            start = threading.Barrier(len(clients))
            outcomes = [None] * len(clients)

            def run(i):
                start.wait()
                try:
                    clients[i].send(connect_packet(client_id))
                    outcomes[i] = clients[i].expect(CONNACK, WAIT_S).body[1]
                except (Closed, TimeoutError, OSError) as e:
                    outcomes[i] = repr(e)
            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(WAIT_S * 2)
            self.assertNotIn(None, outcomes, "a CONNECT got no answer")
            wait_until(lambda: connected_clients(nodes) == 1, WAIT_S,
                       "exactly one connected client (round %d)" % round_,
                       lambda: "outcomes: %r" % outcomes)
            alive = []
            for i, client in enumerate(clients):
                if client.closed or outcomes[i] != 0:
                    continue
                try:
                    client.ping(2.0)
                    alive.append(i)
                except (Closed, TimeoutError, OSError):
                    pass
            self.assertEqual(len(alive), 1, "connections still answering: %r; outcomes %r"
                             % (alive, outcomes))
            for client in clients:
                client.sock.close()
            wait_until(lambda: connected_clients(nodes) == 0, WAIT_S, "all closed")

    def test_a_dead_voter_gives_its_vote_to_a_standby(self):
        """4 nodes: voters 0, 1, 2 (promoted as they join) and standby 3. Node 1 killed: the
        leader demotes it and promotes node 3, so killing node 2 as well still leaves a
        majority (0 and 3 of 3 voters) and CONNECTs keep registering."""
        nodes = self.start_cluster(4)
        logs_say = lambda pattern: any(re.search(pattern, n.logs) for n in nodes if n.alive())
        wait_until(lambda: logs_say(r"promote member %s" % re.escape(nodes[2].name)), WAIT_S,
                   "3 voters")
        nodes[1].kill()
        wait_until(lambda: logs_say(r"demote member %s" % re.escape(nodes[1].name)) and
                   logs_say(r"promote member %s" % re.escape(nodes[3].name)), WAIT_S,
                   "node 1 demoted, node 3 promoted")
        nodes[2].kill()
        for node in (nodes[0], nodes[3]):
            client = self.raw(node)
            client.connect(unique("after"))  # CONNACK 0: the registry still has a majority
            client.ping()

    def test_a_member_restarted_on_another_raft_address_votes_again(self):
        """A voter restarted with another Raft address (a Kubernetes pod gets a new IP; here a
        new port) is re-added at that address: with it, killing another voter still leaves a
        majority and CONNECTs keep registering (at its old address it could not vote)."""
        nodes = self.start_cluster(3)
        logs_say = lambda pattern, since=0: any(
            re.search(pattern, n.logs[since:]) for n in nodes if n.alive())
        wait_until(lambda: logs_say(r"promote member %s" % re.escape(nodes[2].name)), WAIT_S,
                   "3 voters")
        moved = nodes[2]
        moved.kill()
        old = "%s:%d" % (moved.host, moved.raft_port)
        moved.raft_port = free_port()
        moved.extra_args[moved.extra_args.index(old)] = "%s:%d" % (moved.host, moved.raft_port)
        marks = [len(n.logs) for n in nodes]
        moved.start()
        name = re.escape(moved.name)
        wait_until(lambda: all(re.search(p, "".join(n.logs[m:] for n, m in zip(nodes, marks)))
                               for p in (r"re-address member " + name,
                                         r"add member " + name,
                                         r"promote member " + name)),
                   WAIT_S * 2, "node 2 re-added at its new address and promoted",
                   lambda: "\n".join(n.log_tail(15) for n in nodes))
        nodes[1].kill()

        def registers(node):
            client = RawClient(node.host, node.port)
            try:
                _, rc = client.connect(unique("after"), expect_rc=None)
                return rc == 0
            except (OSError, Closed, TimeoutError):
                return False
            finally:
                client.sock.close()
        for node in (nodes[0], moved):  # a new leader may still be elected: retried
            wait_until(lambda: registers(node), WAIT_S * 2, "%s registers a CONNECT" % node.name)

    def lone_joiner(self, *extra):
        """A node whose only seed never answers: it is in no registry (no majority)."""
        node = ClusterNode(unique("alone"), seeds=["127.0.0.1:%d" % free_port()],
                           extra_args=["--cluster-sync-timeout", "1"] + list(extra))
        self.addCleanup(node.cleanup)
        node.start()
        return node

    def test_connect_refused_without_a_registry_majority(self):
        node = self.lone_joiner()
        client = self.raw(node)
        _, rc = client.connect(unique("v311"), expect_rc=None)
        self.assertEqual(rc, 3, "3.1.1: Connection Refused, Server unavailable")
        client.wait_closed(WAIT_S)
        client5 = self.raw(node)
        client5.send(connect_v5_packet(unique("v5")))
        self.assertEqual(client5.expect(CONNACK, WAIT_S).body[1], 0x88, "5.0: Server unavailable")

    def test_allow_register_during_netsplit_takes_the_connect(self):
        node = self.lone_joiner("--cluster-allow-register-during-netsplit", "true")
        client = self.raw(node)
        t0 = time.monotonic()
        client.connect(unique("avail"))
        client.ping()
        self.assertLess(time.monotonic() - t0, WAIT_S)
        node.wait_log("connected without registering", WAIT_S)


if __name__ == "__main__":
    unittest.main(verbosity=2)
