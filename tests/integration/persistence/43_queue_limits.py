#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Offline queue limits and options (issue 5): the per-client byte bound (--max-queued-bytes)
drops the newest messages and keeps the order of the rest; with --queue-full-policy drop_oldest
(issue 14) the oldest stored entries go, in the batch that stores the new one, and a SIGKILL
keeps exactly the newest; QoS 0 for an offline persistent
session is dropped by default and queued on disk with --queue-qos0-offline on, surviving a
SIGKILL."""

import unittest

from harness_persist import Node, RawClient, unique  # noqa: I100
import harness  # noqa: E402


def received_payloads(sub, count_hint):
    """Payloads of the PUBLISHes that arrive until the broker goes quiet."""
    payloads = []
    while True:
        try:
            p = sub.recv_publish(timeout=harness.QUIET if payloads else harness.WAIT)
        except (TimeoutError, AssertionError):
            return payloads
        payloads.append(bytes(p.payload))
        if len(payloads) > count_hint:
            return payloads


@unittest.skipIf(harness.is_mosquitto(), "mqttd options")
class QueueLimitsTest(unittest.TestCase):
    def start(self, *args):
        self.node = Node(args)
        self.node.start()
        self.addCleanup(self.node.cleanup)

    def offline_subscriber(self, topic, qos):
        cid = unique("ql")
        sub = RawClient(self.node.host, self.node.port)
        sub.connect(cid, clean=False)
        sub.subscribe([(topic, qos)])
        sub.disconnect()
        return cid

    def reconnect(self, cid):
        sub = RawClient(self.node.host, self.node.port)
        self.addCleanup(sub.close)
        sp, _ = sub.connect(cid, clean=False)
        self.assertEqual(sp, 1)  # [MQTT-3.2.2-2]
        return sub

    def publish(self, topic, payloads, qos):
        pub = RawClient(self.node.host, self.node.port)
        pub.connect(unique("qlp"))
        for i, payload in enumerate(payloads):
            pub.publish(topic, payload, qos=qos, pid=i + 1)
        pub.disconnect()

    def test_byte_bound_drops_the_newest_messages(self):
        self.start("--max-queued-bytes", "2500")
        topic = unique("ql/bytes")
        cid = self.offline_subscriber(topic, 1)
        payloads = [bytes([65 + i]) * 1000 for i in range(5)]  # ~1,000 B each with the topic
        self.publish(topic, payloads, qos=1)
        got = received_payloads(self.reconnect(cid), 5)
        self.assertEqual(got, payloads[:2])  # the first two fit in 2,500 bytes, in order

    def test_count_bound_drops_the_newest_messages(self):
        self.start("--max-queued-messages", "3")
        topic = unique("ql/count")
        cid = self.offline_subscriber(topic, 1)
        payloads = [b"m%d" % i for i in range(6)]
        self.publish(topic, payloads, qos=1)
        self.assertEqual(received_payloads(self.reconnect(cid), 6), payloads[:3])

    def test_drop_oldest_keeps_the_newest_across_a_kill(self):
        self.start("--max-queued-messages", "3", "--queue-full-policy", "drop_oldest")
        topic = unique("ql/oldest")
        cid = self.offline_subscriber(topic, 1)
        payloads = [b"m%d" % i for i in range(8)]
        self.publish(topic, payloads, qos=1)  # each PUBACK once its batch (drop + add) is written
        self.node.restart()  # SIGKILL, then the same data directory
        self.assertEqual(received_payloads(self.reconnect(cid), 8), payloads[5:])

    def test_drop_oldest_by_bytes_keeps_the_newest(self):
        self.start("--max-queued-bytes", "2500", "--queue-full-policy", "drop_oldest")
        topic = unique("ql/oldest-bytes")
        cid = self.offline_subscriber(topic, 1)
        payloads = [bytes([65 + i]) * 1000 for i in range(5)]
        self.publish(topic, payloads, qos=1)
        self.assertEqual(received_payloads(self.reconnect(cid), 5), payloads[3:])

    def test_qos0_is_not_queued_for_offline_sessions_by_default(self):
        self.start()
        topic = unique("ql/q0off")
        cid = self.offline_subscriber(topic, 1)
        self.publish(topic, [b"zero"], qos=0)
        self.publish(topic, [b"one"], qos=1)  # barrier: a QoS 1 message that is queued
        self.assertEqual(received_payloads(self.reconnect(cid), 2), [b"one"])

    def test_qos0_queued_on_disk_when_configured_survives_a_kill(self):
        self.start("--queue-qos0-offline", "on")
        topic = unique("ql/q0on")
        cid = self.offline_subscriber(topic, 1)
        self.publish(topic, [b"a", b"b", b"c"], qos=0)
        self.publish(topic, [b"barrier"], qos=1)  # acknowledged only once all is on disk
        self.node.crash()
        self.node.restart()
        got = received_payloads(self.reconnect(cid), 4)
        self.assertEqual(got, [b"a", b"b", b"c", b"barrier"])


if __name__ == "__main__":
    unittest.main()
