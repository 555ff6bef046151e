#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Owner node down, and back (issue 12, invariant 3; docs/cluster-sessions.md "Owner node
down"), with three real nodes on loopback:

A persistent subscriber (3.1.1 Clean Session 0, or 5.0 Session Expiry 3600) on node a goes
offline; a publisher on node c sends a first batch of QoS 1/2 messages, queued in the session on
a. Node a is SIGKILLed. The subscriber reconnects to node b: a is down, so b starts a new session
(Session Present 0, [MQTT-3.2.2-3]); the subscriber subscribes again and receives a second batch
published on c (c also keeps it for a: a's persistent route stays while a is dead). Node a
restarts on its data dir. Without any client going back to a:
- every acknowledged message of the first batch reaches the subscriber on b (a hands its copy
  of the session over to the node the registry names), each batch in its publisher's order;
- nothing arrives twice at QoS 2 [MQTT-4.3.3], nor at QoS 1 (the second batch comes to a too,
  from c's outbox: b drops what it delivered already);
- a deletes its copy (mqttctl sessions on a no longer lists the client)."""

import json
import os
import signal
import subprocess
import time
import unittest

from harness_cluster import mqttctl_json, start_chain, unique, wait_until
from harness_persist import (RESTART_WAIT, Publisher, Subscriber, check_stream, seq_payload,
                             skip_under_mosquitto)
from harness import Closed, publish_packet  # on the path harness_persist sets

WAIT_S = 15.0
N = int(os.environ.get("OWNER_RETURN_N", "100"))
SECOND = 1000  # the second batch's first sequence number
# a offers its copy 10-15 s after it sees it is stale (Shard::kStaleGraceMs, kStaleCheckMs).
COLLECT_WAIT_S = 45.0


class OffsetPublisher(Publisher):
    """A Publisher whose payloads carry seq + offset, so that two batches are told apart."""

    def __init__(self, *args, offset=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.offset = offset

    def _send_publish(self, seq, dup=False):
        self.sends[seq] += 1
        self._c.send(publish_packet(self.topic, seq_payload(seq + self.offset, self.pad),
                                    self.qos, dup=dup, pid=self.pid_of(seq)))


def member_state(node, name):
    for m in mqttctl_json(node, "members").get("members", []):
        if m["nodeId"] == name:
            return m["state"]
    return None


def routes_to(node, origin, topic_filter):
    return any((r["nodeId"], r["filter"], r["persistent"]) == (origin, topic_filter, True)
               for r in mqttctl_json(node, "routes").get("routes", []))


def session_ids(node):
    """The client ids of the sessions `node` holds (mqttctl asks every member)."""
    return {s["clientId"] for s in mqttctl_json(node, "sessions").get("sessions", [])
            if s["nodeId"] == node.name}


def in_order(seqs):
    return all(x < y for x, y in zip(seqs, seqs[1:]))


@skip_under_mosquitto("mqttd's cluster")
class OwnerReturn(unittest.TestCase):

    def setUp(self):
        if not os.environ.get("MQTTCTL_BIN"):
            self.skipTest("MQTTCTL_BIN not set (run through ctest)")
        nodes = []
        try:
            start_chain(unique("or"), 3, nodes.append, WAIT_S)
        finally:
            for node in nodes:
                self.addCleanup(node.cleanup)
        self.a, self.b, self.c = nodes
        self.topic = unique("or/t")

    def logs(self):
        return "\n".join("%s:\n%s" % (n.name, n.log_tail(25)) for n in (self.a, self.b, self.c))

    def publish_on_c(self, qos, offset):
        pub = OffsetPublisher(self.c, self.topic, N, qos, window=20, offset=offset,
                              pad=b"-" + self.topic.encode())
        self.addCleanup(pub.stop)
        pub.start()
        pub.join(WAIT_S * 4)
        if pub.error:
            raise pub.error
        self.assertEqual(pub.completed, N, "publisher did not finish\n" + self.logs())
        return {seq + offset for seq in pub.acked}

    def subscribe_new_session(self, sub, node):
        """Connects `sub` to `node` and subscribes: Session Present 0 is required. Retried
        while the registry elects a new leader (CONNACK 3 / 0x88 meanwhile)."""
        sub.node = node
        deadline = time.monotonic() + RESTART_WAIT
        while True:
            try:
                sub.subscribe()
                return
            except (AssertionError, OSError, Closed):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # the registry's election, not a synchronisation

    def offline_on_a_with_queue(self, qos, version):
        """A persistent subscriber on a, offline, with a first batch published on c queued for
        it there; (subscriber, acknowledged sequence numbers)."""
        sub = Subscriber(self.a, self.topic, qos, version=version)
        self.addCleanup(sub.close)
        sub.subscribe()
        wait_until(lambda: routes_to(self.c, self.a.name, self.topic), WAIT_S,
                   "c holds a's persistent route")
        sub.go_offline()
        return sub, self.publish_on_c(qos, 0)

    def owner_down_and_back(self, qos, version):
        sub, first = self.offline_on_a_with_queue(qos, version)

        self.a.crash()
        wait_until(lambda: member_state(self.b, self.a.name) == "dead"
                   and member_state(self.c, self.a.name) == "dead", WAIT_S, "a dead")
        self.subscribe_new_session(sub, self.b)  # owner down: a new session at once
        wait_until(lambda: routes_to(self.c, self.b.name, self.topic), WAIT_S,
                   "c holds b's route")
        second = self.publish_on_c(qos, SECOND)
        try:
            sub.drain(second, WAIT_S * 2)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.logs()))

        self.a.start()
        try:
            sub.drain(first | second, COLLECT_WAIT_S, idle=COLLECT_WAIT_S)
        except AssertionError as e:
            raise AssertionError("a's copy was not delivered to b: %s\n%s" % (e, self.logs()))
        sub.quiet(3.0)  # what a still relays after the copy (duplicates) arrives by then
        # The batches come from two publishers; each keeps its order [MQTT-4.6.0-6]. The first
        # arrives after the second (it waited on a), which the spec does not order.
        problems = [p for p in check_stream(sub.got, first | second, qos, resent=set(),
                                            redelivery_allowed=False)
                    if not p.startswith("out of order")]
        self.assertEqual(problems, [], self.logs())
        firsts = []
        for seq, _dup in sub.got:
            if seq not in firsts:
                firsts.append(seq)
        self.assertTrue(in_order([s for s in firsts if s < SECOND]), firsts)
        self.assertTrue(in_order([s for s in firsts if s >= SECOND]), firsts)
        wait_until(lambda: sub.client_id not in session_ids(self.a), WAIT_S,
                   "a deleted its copy of the session", self.logs)
        self.assertIn(sub.client_id, session_ids(self.b))

    def test_drained_owner_hands_its_copy_to_the_new_holder_qos2_v5(self):
        """The owner node only seemed down (frozen with SIGSTOP, so the others saw it dead): the
        subscriber started a new session on b. Then a is drained: its drain finds the client id
        held by b and has b collect the copy before a exits (the loss checker's drain fault
        lost the queued messages of such a copy, 2026-12-04)."""
        qos = 2
        sub, first = self.offline_on_a_with_queue(qos, 5)

        os.kill(self.a.proc.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: member_state(self.b, self.a.name) == "dead", WAIT_S,
                       "b sees the frozen a dead")
            self.subscribe_new_session(sub, self.b)
        finally:
            os.kill(self.a.proc.pid, signal.SIGCONT)
        wait_until(lambda: member_state(self.b, self.a.name) == "alive", WAIT_S,
                   "b sees a alive again")
        out = subprocess.run([os.environ["MQTTCTL_BIN"], "--server", self.a.cluster_address,
                              "--json", "drain", "--timeout", "60"],
                             capture_output=True, text=True, timeout=90)
        self.assertEqual(out.returncode, 0, "mqttctl drain: %s\n%s" % (out.stderr, self.logs()))
        self.assertEqual(int(json.loads(out.stdout).get("followed", 0)), 1, out.stdout)
        self.assertIsNotNone(self.a.proc.wait(30))  # a exited: nothing can come from it later
        try:
            sub.drain(first, WAIT_S * 2)
        except AssertionError as e:
            raise AssertionError("a's copy was not collected by b: %s\n%s" % (e, self.logs()))
        sub.quiet(1.0)
        self.assertEqual(check_stream(sub.got, first, qos, resent=set(),
                                      redelivery_allowed=False), [], self.logs())

    def test_owner_down_and_back_qos1_v311(self):
        self.owner_down_and_back(1, 4)

    def test_owner_down_and_back_qos2_v5(self):
        self.owner_down_and_back(2, 5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
