#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 flow control (section 4.9): Receive Maximum in both directions, and the client's
Maximum Packet Size (3.1.2.11.4)."""

from harness5 import *  # noqa: F401,F403
from harness5 import (Broker5TestCase, main, sub_options, publish5_packet, ack5_packet,
                      PUBACK, PUBREC, PUBREL, PUBCOMP, RECEIVE_MAXIMUM, MAXIMUM_PACKET_SIZE,
                      RC_RECEIVE_MAXIMUM_EXCEEDED)


class ClientReceiveMaximum(Broker5TestCase):
    BROKER_ARGS = ("--max-inflight", "20")

    def test_server_respects_client_receive_maximum_qos1_MQTT_3_3_4_9(self):
        """Client Receive Maximum 3: never more than 3 unacknowledged QoS 1 PUBLISH in flight
        to it [MQTT-3.3.4-9], [MQTT-4.9.0-2]; each PUBACK lets exactly one more go."""
        t = self.topic()
        sub = self.raw5(props=[(RECEIVE_MAXIMUM, 3)])
        sub.subscribe5([(t, sub_options(qos=1))])
        pub = self.raw5()
        for i in range(10):
            pub.publish5(t, b"%d" % i, qos=1, pid=i + 1)
        first = [sub.recv_pub(ack=False) for _ in range(3)]
        self.assertEqual([m.payload for m in first], [b"0", b"1", b"2"])
        sub.expect_no_publish()  # quota 0 (pub has had all its PUBACKs: all were routed)
        sub.send(ack5_packet(PUBACK, first[0].pid))
        nxt = sub.recv_pub(ack=False)
        self.assertEqual(nxt.payload, b"3")
        sub.expect_no_publish()
        for m in first[1:] + [nxt]:
            sub.send(ack5_packet(PUBACK, m.pid))
        rest = [sub.recv_pub().payload for _ in range(6)]
        self.assertEqual(rest, [b"%d" % i for i in range(4, 10)])

    def test_qos2_quota_freed_by_pubcomp_not_pubrec_4_9(self):
        """Receive Maximum 2 with QoS 2: PUBREC does not free quota, PUBCOMP does (4.9)."""
        t = self.topic()
        sub = self.raw5(props=[(RECEIVE_MAXIMUM, 2)])
        sub.subscribe5([(t, sub_options(qos=2))])
        pub = self.raw5()
        for i in range(5):
            pub.publish5(t, b"%d" % i, qos=2, pid=i + 1)
        a, b = sub.recv_pub(ack=False), sub.recv_pub(ack=False)
        self.assertEqual((a.payload, b.payload), (b"0", b"1"))
        sub.send(ack5_packet(PUBREC, a.pid))
        rel = sub.expect(PUBREL)
        self.assertEqual(rel.pid, a.pid)
        sub.expect_no_publish()  # still 2 unacknowledged (a awaits PUBCOMP)
        sub.send(ack5_packet(PUBCOMP, a.pid))
        c = sub.recv_pub(ack=False)
        self.assertEqual(c.payload, b"2")
        sub.expect_no_publish()

    def test_receive_maximum_also_bounds_resent_messages_on_resume(self):
        """After a reconnect the client's new Receive Maximum applies (4.9): with 1, one
        PUBLISH at a time."""
        from harness5 import SESSION_EXPIRY_INTERVAL
        cid, t = unique("rm"), self.topic()
        sub = self.raw5(cid, props=[(SESSION_EXPIRY_INTERVAL, 60)])
        sub.subscribe5([(t, sub_options(qos=1))])
        sub.disconnect5()
        pub = self.raw5()
        for i in range(4):
            pub.publish5(t, b"%d" % i, qos=1, pid=i + 1)
        sub2 = self.raw5(cid, clean_start=False,
                         props=[(SESSION_EXPIRY_INTERVAL, 60), (RECEIVE_MAXIMUM, 1)])
        for i in range(4):
            m = sub2.recv_pub(ack=False)
            self.assertEqual(m.payload, b"%d" % i)
            sub2.expect_no_publish(0.3)
            sub2.send(ack5_packet(PUBACK, m.pid))


class BrokerReceiveMaximum(Broker5TestCase):
    BROKER_ARGS = ("--receive-maximum", "3")

    def test_client_exceeding_receive_maximum_gets_0x93_MQTT_3_3_4_7(self):
        """Broker Receive Maximum 3; a client with 3 QoS 2 PUBLISH unreleased (no PUBREL)
        sending a 4th breaks [MQTT-3.3.4-7]: DISCONNECT 0x93 (Receive Maximum exceeded)."""
        c = self.raw5()
        self.assertEqual(c.connack.props.get(RECEIVE_MAXIMUM), 3)
        t = self.topic()
        for pid in (1, 2, 3):
            c.send(publish5_packet(t, b"x", qos=2, pid=pid))
            self.assertEqual(c.wait_for(PUBREC, pid).pid, pid)
        c.send(publish5_packet(t, b"x", qos=2, pid=4))
        c.expect_disconnect(RC_RECEIVE_MAXIMUM_EXCEEDED)

    def test_within_receive_maximum_after_pubrel(self):
        """Control: after PUBREL/PUBCOMP frees one slot, a 4th QoS 2 PUBLISH is accepted."""
        c = self.raw5()
        t = self.topic()
        for pid in (1, 2, 3):
            c.send(publish5_packet(t, b"x", qos=2, pid=pid))
            c.wait_for(PUBREC, pid)
        c.send(ack5_packet(PUBREL, 1))
        c.wait_for(PUBCOMP, 1)
        c.send(publish5_packet(t, b"x", qos=2, pid=4))
        self.assertEqual(c.wait_for(PUBREC, 4).pid, 4)
        c.ping()


class ClientMaximumPacketSize(Broker5TestCase):
    BROKER_ARGS = ("--max-inflight", "5")

    def test_too_big_for_one_subscriber_dropped_for_it_only_MQTT_3_1_2_24(self):
        """Subscriber A: Maximum Packet Size 200. A 1000-byte message is not sent to A
        [MQTT-3.1.2-24] but reaches B; A gets the small one. 12 big QoS 1 messages (more than
        the inflight window) do not block A: they count as sent [MQTT-3.1.2-25]."""
        t = self.topic()
        a = self.raw5(props=[(MAXIMUM_PACKET_SIZE, 200)])
        b = self.raw5()
        a.subscribe5([(t, sub_options(qos=1))])
        b.subscribe5([(t, sub_options(qos=1))])
        pub = self.raw5()
        big = b"B" * 1000
        for i in range(12):
            pub.publish5(t, big, qos=1, pid=i + 1)
        pub.publish5(t, b"small", qos=1, pid=20)
        for i in range(12):
            self.assertEqual(b.recv_pub().payload, big)
        self.assertEqual(b.recv_pub().payload, b"small")
        m = a.recv_pub()
        self.assertEqual(m.payload, b"small")
        a.expect_no_publish()

    def test_limit_counts_whole_packet_MQTT_3_1_2_24(self):
        """The limit applies to the whole PUBLISH packet, properties included: a payload that
        fits alone but not with its user property is dropped for that client."""
        t = self.topic()
        from harness5 import USER_PROPERTY
        a = self.raw5(props=[(MAXIMUM_PACKET_SIZE, 150)])
        a.subscribe5([(t, sub_options(qos=0))])
        pub = self.raw5()
        pub.publish5(t, b"p" * 100, qos=1, pid=1, props=[(USER_PROPERTY, ("k", "v" * 60))])
        pub.publish5(t, b"p" * 100, qos=1, pid=2)
        m = a.recv_pub()
        self.assertEqual((m.payload, m.user_props), (b"p" * 100, []))
        a.expect_no_publish()


if __name__ == "__main__":
    main()
