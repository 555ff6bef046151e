#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A persistent session follows its client to another node (issue 12, invariant 2;
docs/cluster-sessions.md "Handover"), with real nodes on loopback:
- offline: a persistent subscriber (3.1.1 Clean Session 0, or 5.0 Session Expiry 3600) on node
  a goes offline, a publisher on node c sends QoS 1/2 messages, the subscriber reconnects to node
  b: Session Present 1 [MQTT-3.2.2-2], its subscription works there, and every acknowledged
  message arrives, in order, QoS 2 once;
- online: the subscriber consumes a stream published on c with acknowledgements held back (so
  that messages are in flight) and moves from a to b mid-stream: nothing acknowledged is lost,
  QoS 2 is delivered once [MQTT-4.3.3], QoS 1 again only as a re-delivery with DUP set
  [MQTT-4.4.0-1]; then it moves back to a (the order across a move is not checked: see
  online_move);
- a clean start on b discards the session a held (Session Present 0 [MQTT-3.2.2-1]) and no
  message queued for it on a is delivered."""

import os
import time
import unittest

from harness_cluster import SharedCluster, unique, wait_until
from harness_persist import (RESTART_WAIT, Publisher, Subscriber, check_stream,
                             skip_under_mosquitto)

WAIT_S = 15.0
N = int(os.environ.get("HANDOVER_N", "300"))


@skip_under_mosquitto("mqttd's cluster")
class Handover(SharedCluster):
    PREFIX = "ho"

    def setUp(self):
        self.a, self.b, self.c = self.nodes
        self.topic = unique("ho/t")

    def logs(self):
        return "\n".join("%s:\n%s" % (n.name, n.log_tail()) for n in self.nodes)

    def subscribe_on_a(self, qos, version, ack_lag=0):
        sub = Subscriber(self.a, self.topic, qos, version=version, ack_lag=ack_lag)
        self.addCleanup(sub.close)
        sub.subscribe()
        # The route reaches c before the publisher starts.
        self.publish_probe(sub)
        return sub

    def publish_probe(self, sub):
        """Waits until a message published on c reaches `sub` (so c routes to it)."""
        def reached():
            probe = Publisher(self.c, self.topic, 1, sub.qos)
            probe.start()
            probe.join(WAIT_S)
            try:
                sub.drain({0}, 0.5, idle=0.5)
                return True
            except AssertionError:
                return False
        wait_until(reached, WAIT_S, "c routes to the subscriber on a")
        sub.got.clear()
        sub.seen.clear()

    def publish_on_c(self, qos):
        pub = Publisher(self.c, self.topic, N, qos, window=20, pad=b"-" + self.topic.encode())
        self.addCleanup(pub.stop)
        pub.start()
        return pub

    def offline_move(self, qos, version):
        sub = self.subscribe_on_a(qos, version)
        sub.go_offline()
        pub = self.publish_on_c(qos)
        pub.join(WAIT_S * 4)
        if pub.error:
            raise pub.error
        self.assertEqual(pub.completed, N, "publisher did not finish\n" + self.logs())
        acked = set(pub.acked)
        sub.node = self.b
        sub.reconnect(time.monotonic() + RESTART_WAIT)  # asserts Session Present 1
        try:
            sub.drain(acked, WAIT_S * 2)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.logs()))
        sub.quiet(1.0)
        self.assertEqual(check_stream(sub.got, acked, qos, resent=set(),
                                      redelivery_allowed=False), [], self.logs())
        # The subscription moved with the session: a new message published on c arrives on b.
        more = Publisher(self.c, self.topic, 1, qos)
        more.start()
        more.join(WAIT_S)
        sub.got.clear()
        sub.seen.clear()
        sub.drain({0}, WAIT_S)

    def test_offline_queue_moves_qos1_v311(self):
        self.offline_move(1, 4)

    def test_offline_queue_moves_qos2_v5(self):
        self.offline_move(2, 5)

    def online_move(self, qos, version):
        sub = self.subscribe_on_a(qos, version, ack_lag=3)
        sub.start()
        self.addCleanup(sub.stop)
        pub = self.publish_on_c(qos)
        moves = [(N // 3, self.b), (2 * N // 3, self.a)]
        for i, (point, target) in enumerate(moves):
            self.assertTrue(pub.wait_acked(point, WAIT_S * 2), "publisher stalled\n" + self.logs())
            sub.node = target
            sub.sever()  # the subscriber's loop reconnects, to `target`
            wait_until(lambda: sub.reconnects > i or sub.error, WAIT_S, "reconnected")
        pub.join(WAIT_S * 4)
        if pub.error:
            raise pub.error
        self.assertEqual(pub.completed, N, "publisher did not finish\n" + self.logs())
        acked = set(pub.acked)
        if not sub.wait_seen(acked, WAIT_S * 2):
            missing = sorted(acked - sub.seen)
            self.fail("%d acknowledged messages never delivered (first %r)\n%s"
                      % (len(missing), missing[:20], self.logs()))
        time.sleep(1.0)  # a negative check after the positive barrier above: duplicates
        if sub.error:
            raise sub.error
        self.assertGreaterEqual(sub.reconnects, 2)
        # Loss and duplicates only: while a session moves, a message that reached the old node
        # is passed on to the new one and may arrive after a newer one that came straight from
        # the publisher's node (a known gap, docs/cluster-sessions.md "Order during a move").
        problems = [p for p in check_stream(sub.got, acked, qos, resent=set(),
                                            redelivery_allowed=True)
                    if not p.startswith("out of order")]
        self.assertEqual(problems, [], "%s\ndelivered: %r" % (self.logs(), sub.got))

    def test_online_move_qos1_v5(self):
        self.online_move(1, 5)

    def test_online_move_qos2_v311(self):
        self.online_move(2, 4)

    def test_clean_start_discards_the_session_elsewhere(self):
        """[MQTT-3.1.2-4]/[MQTT-3.2.2-1]: Clean Start on b ends the session a held."""
        sub = self.subscribe_on_a(1, 5)
        sub.go_offline()
        pub = Publisher(self.c, self.topic, 5, 1)
        pub.start()
        pub.join(WAIT_S)
        self.assertEqual(pub.completed, 5)
        sub.node = self.b
        from harness_persist import RawClient5, connect5_packet  # noqa: E402
        from harness import CONNACK  # noqa: E402
        c = RawClient5(self.b)
        self.addCleanup(c.close)
        c.send(connect5_packet(sub.client_id, clean_start=True))
        ack = c.expect(CONNACK)
        self.assertEqual(ack.body[0] & 1, 0, "Session Present 0 after Clean Start")
        self.assertEqual(ack.body[1], 0)
        c.ping()  # nothing queued arrives before the PINGRESP
        # And the session is gone on a too: no node lists it.
        def gone():
            from harness_cluster import mqttctl_json
            listed = mqttctl_json(self.a, "sessions", "--client-id", sub.client_id)
            return all(s.get("nodeId") != self.a.name for s in listed.get("sessions", []))
        wait_until(gone, WAIT_S, "a forgot the session")


if __name__ == "__main__":
    unittest.main()
