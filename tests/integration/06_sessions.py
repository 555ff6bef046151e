#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Sessions: clean session 0 keeps subscriptions and queues QoS 1/2 while offline, session
present, redelivery of unacknowledged messages with DUP, inbound QoS 2 state across a
reconnect, takeover by a second connection with the same client id."""

import harness
from harness import (CONNACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, BrokerTestCase, pid_packet,
                     publish_packet, unique)


class SessionTest(BrokerTestCase):

    def test_session_present_flag_MQTT_3_2_2_1_2_3_MQTT_3_1_2_6(self):
        cid = unique("sp")
        c = self.raw(cid, clean=False)
        c.subscribe([(self.topic(), 1)])
        c.disconnect()
        steps = [(False, 1, "[MQTT-3.2.2-2] stored session"),
                 (True, 0, "[MQTT-3.2.2-1] clean session"),
                 (False, 0, "[MQTT-3.2.2-3] no session: clean session 1 discarded it "
                            "[MQTT-3.1.2-6]"),
                 (False, 1, "[MQTT-3.2.2-2] session created by the previous connect")]
        for clean, expected_sp, why in steps:
            c = harness.RawClient(self.broker)
            self._cleanup_clients.append(c)
            sp, _ = c.connect(cid, clean=clean)
            self.assertEqual(sp, expected_sp, why)
            c.disconnect()

    def test_first_persistent_connect_session_present_0_MQTT_3_2_2_3(self):
        c = self.raw_unconnected()
        c.send(harness.connect_packet(unique("fresh"), clean=False))
        self.assertEqual(c.expect(CONNACK).body, b"\x00\x00")

    def test_subscriptions_kept_across_reconnect_MQTT_3_1_2_4(self):
        cid, t = unique("keep"), self.topic()
        c = self.raw(cid, clean=False)
        c.subscribe([(t, 1)])
        c.disconnect()
        c = self.raw(cid, clean=False)
        self.raw().publish(t, b"after-reconnect", qos=1)
        self.assertEqual(c.recv_publish().payload, b"after-reconnect")

    def test_offline_qos1_qos2_queued_in_order_MQTT_3_1_2_5_MQTT_4_6_0_6(self):
        cid, t = unique("offline"), self.topic()
        c = self.raw(cid, clean=False)
        c.subscribe([(t + "/+", 2)])
        c.disconnect()
        pub = self.raw()
        for i in range(5):
            pub.publish(t + "/1", b"a%d" % i, qos=1, pid=2 * i + 1)
            pub.publish(t + "/2", b"b%d" % i, qos=2, pid=2 * i + 2)
        c = self.raw(cid, clean=False)
        got = [c.recv_publish() for _ in range(10)]
        by_topic = {}
        for p in got:
            by_topic.setdefault(p.topic, []).append((p.payload, p.qos))
        self.assertEqual(by_topic[t + "/1"], [(b"a%d" % i, 1) for i in range(5)])
        self.assertEqual(by_topic[t + "/2"], [(b"b%d" % i, 2) for i in range(5)])

    def test_clean_session_1_discards_subscriptions_MQTT_3_1_2_6(self):
        cid, t = unique("discard"), self.topic()
        c = self.raw(cid, clean=False)
        c.subscribe([(t + "/old", 1)])
        c.disconnect()
        c = self.raw(cid, clean=True)
        c.subscribe([(t + "/new", 1)])
        pub = self.raw()
        pub.publish(t + "/old", b"old", qos=1)
        pub.publish(t + "/new", b"new", qos=1)
        self.assertEqual(c.recv_publish().payload, b"new")
        c.expect_none()

    def test_clean_session_1_nothing_queued_after_disconnect_MQTT_3_1_2_6(self):
        cid, t = unique("cs1"), self.topic()
        c = self.raw(cid, clean=True)
        c.subscribe([(t, 1)])
        c.disconnect()
        self.raw().publish(t, b"lost", qos=1)
        c = self.raw(cid, clean=False)
        c.subscribe([(t + "/barrier", 1)])
        self.raw().publish(t + "/barrier", b"barrier", qos=1)
        self.assertEqual(c.recv_publish().payload, b"barrier")
        c.expect_none()

    def unacked_then_reconnect(self, qos):
        cid, t = unique("redeliver"), self.topic()
        c = self.raw(cid, clean=False)
        c.subscribe([(t, 2)])
        self.raw().publish(t, b"unacked", qos=qos)
        first = c.expect(PUBLISH)
        self.assertEqual((first.qos, first.dup), (qos, False))
        return cid, first, c

    def test_qos1_unacked_redelivered_with_dup_same_id_MQTT_4_4_0_1_MQTT_3_3_1_1(self):
        cid, first, c = self.unacked_then_reconnect(1)
        c.close()
        c = harness.RawClient(self.broker)
        self._cleanup_clients.append(c)
        self.assertEqual(c.connect(cid, clean=False)[0], 1)
        p = c.expect(PUBLISH)
        self.assertEqual((p.payload, p.qos, p.dup, p.publish_pid),
                         (b"unacked", 1, True, first.publish_pid))
        c.ack(p)
        c.ping()

    def test_qos2_unacked_publish_redelivered_with_dup_MQTT_4_4_0_1_MQTT_3_3_1_1(self):
        cid, first, c = self.unacked_then_reconnect(2)
        c.close()
        c = self.raw(cid, clean=False)
        p = c.expect(PUBLISH)
        self.assertEqual((p.payload, p.qos, p.dup, p.publish_pid),
                         (b"unacked", 2, True, first.publish_pid))
        c.ack(p)
        c.ping()

    def test_qos2_pubrel_resent_not_publish_after_pubrec_MQTT_4_4_0_1_MQTT_4_3_3_1(self):
        cid, first, c = self.unacked_then_reconnect(2)
        c.send(pid_packet(PUBREC, first.publish_pid))
        self.assertEqual(c.expect(PUBREL).pid, first.publish_pid)
        c.close()  # no PUBCOMP
        c = self.raw(cid, clean=False)
        p = c.recv()
        self.assertEqual((p.type, p.flags, p.pid), (PUBREL, 0x02, first.publish_pid))
        c.send(pid_packet(PUBCOMP, first.publish_pid))
        c.expect_none()

    def test_inbound_qos2_state_kept_across_reconnect_MQTT_4_3_3_2_MQTT_4_4_0_1(self):
        # The publisher loses the connection after PUBREC and re-sends the PUBLISH (DUP, same
        # id) on a new connection of the same session: delivered once.
        cid, t = unique("inq2"), self.topic()
        sub = self.raw()
        sub.subscribe([(t, 2)])
        pub = self.raw(cid, clean=False)
        pub.send(publish_packet(t, b"exactly-once", qos=2, pid=5))
        self.assertEqual(pub.expect(PUBREC).pid, 5)
        pub.close()
        pub = self.raw(cid, clean=False)
        pub.send(publish_packet(t, b"exactly-once", qos=2, pid=5, dup=True))
        self.assertEqual(pub.expect(PUBREC).pid, 5)
        pub.send(pid_packet(PUBREL, 5))
        self.assertEqual(pub.expect(PUBCOMP).pid, 5)
        pub.publish(t, b"barrier", qos=1, pid=6)
        self.assertEqual([sub.recv_publish().payload, sub.recv_publish().payload],
                         [b"exactly-once", b"barrier"])
        sub.expect_none()

    def test_inbound_pubrel_after_reconnect_completes_MQTT_4_4_0_1(self):
        cid, t = unique("inrel"), self.topic()
        sub = self.raw()
        sub.subscribe([(t, 2)])
        pub = self.raw(cid, clean=False)
        pub.send(publish_packet(t, b"released-later", qos=2, pid=11))
        self.assertEqual(pub.expect(PUBREC).pid, 11)
        pub.close()
        pub = self.raw(cid, clean=False)
        pub.send(pid_packet(PUBREL, 11))
        self.assertEqual(pub.expect(PUBCOMP).pid, 11)
        pub.publish(t, b"barrier", qos=1, pid=12)
        self.assertEqual([sub.recv_publish().payload, sub.recv_publish().payload],
                         [b"released-later", b"barrier"])
        sub.expect_none()

    def test_takeover_closes_first_connection_MQTT_3_1_4_2(self):
        cid = unique("take")
        first = self.raw(cid)
        second = self.raw(cid)
        first.wait_closed()
        second.ping()

    def test_takeover_keeps_persistent_session_MQTT_3_1_4_2_MQTT_3_2_2_2(self):
        cid, t = unique("takesess"), self.topic()
        first = self.raw(cid, clean=False)
        first.subscribe([(t, 1)])
        second = harness.RawClient(self.broker)
        self._cleanup_clients.append(second)
        self.assertEqual(second.connect(cid, clean=False)[0], 1)
        first.wait_closed()
        self.raw().publish(t, b"to-second", qos=1)
        self.assertEqual(second.recv_publish().payload, b"to-second")

    def test_takeover_publishes_will_of_first_MQTT_3_1_4_2_MQTT_3_1_2_8(self):
        # The first connection is closed without a DISCONNECT from its client, so its will is
        # published (as Mosquitto does for 3.1.1).
        cid, t = unique("takewill"), self.topic()
        w = self.raw()
        w.subscribe([(t, 1)])
        first = self.raw(cid, will=dict(topic=t, payload=b"first-will", qos=1))
        self.raw(cid)
        first.wait_closed()
        self.assertEqual(w.recv_publish().payload, b"first-will")

    def test_paho_persistent_session_qos2_offline_MQTT_3_1_2_5(self):
        cid, t = unique("pahosess"), self.topic()
        c = self.paho(client_id=cid, clean_session=False)
        c.subscribe(t, 2)
        c.disconnect()
        pub = self.paho()
        for i in range(3):
            pub.publish(t, b"offline-%d" % i, qos=2)
        c = self.paho(client_id=cid, clean_session=False, connect=False)
        self.assertEqual(c.connect()[0], 1)
        self.assertEqual([c.recv().payload for _ in range(3)],
                         [b"offline-%d" % i for i in range(3)])


if __name__ == "__main__":
    harness.main()
