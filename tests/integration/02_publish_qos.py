#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""PUBLISH at QoS 0/1/2 in both directions, packet ids, exactly-once inbound, inflight window
and the bounded per-client queue behind it."""

import os
import struct
import time

import harness
from harness import (PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, BrokerTestCase, pid_packet,
                     publish_packet)


class PublishQosTest(BrokerTestCase):

    def test_qos0_forward_no_packet_id_no_dup_MQTT_2_3_1_5_MQTT_3_3_1_2(self):
        t = self.topic()
        sub = self.raw()
        sub.subscribe([(t, 2)])
        self.raw().publish(t, b"zero", qos=0)
        p = sub.recv_publish()
        self.assertEqual(p.flags, 0x00, p)  # QoS 0, DUP 0, RETAIN 0
        self.assertEqual(p.body, struct.pack("!H", len(t)) + t.encode() + b"zero")

    def test_qos1_inbound_puback_same_packet_id_MQTT_4_3_2_2_MQTT_2_3_1_6(self):
        c = self.raw()
        c.send(publish_packet(self.topic(), b"x", qos=1, pid=0x1234))
        p = c.expect(PUBACK)
        self.assertEqual((p.flags, p.body), (0, b"\x12\x34"))

    def test_qos2_inbound_pubrec_pubrel_pubcomp_MQTT_4_3_3_2_MQTT_3_3_4_1(self):
        c = self.raw()
        c.send(publish_packet(self.topic(), b"x", qos=2, pid=0xBEEF))
        p = c.expect(PUBREC)
        self.assertEqual((p.flags, p.body), (0, b"\xbe\xef"))
        c.send(pid_packet(PUBREL, 0xBEEF))
        p = c.expect(PUBCOMP)
        self.assertEqual((p.flags, p.body), (0, b"\xbe\xef"))

    def test_pubrel_for_unknown_packet_id_answered_with_pubcomp_MQTT_4_3_3_2(self):
        c = self.raw()
        c.send(pid_packet(PUBREL, 4242))
        self.assertEqual(c.expect(PUBCOMP).pid, 4242)
        c.ping()  # connection still usable

    def qos2_resend(self, resends):
        # Until PUBREL, a PUBLISH with the same packet id is acknowledged with PUBREC and
        # not delivered again. After PUBCOMP the id starts a new publication.
        t = self.topic()
        sub = self.raw()
        sub.subscribe([(t, 2)])
        pub = self.raw()
        pub.send(publish_packet(t, b"once", qos=2, pid=7))
        self.assertEqual(pub.expect(PUBREC).pid, 7)
        for _ in range(resends):
            pub.send(publish_packet(t, b"once", qos=2, pid=7, dup=True))
            self.assertEqual(pub.expect(PUBREC).pid, 7)
        pub.send(pid_packet(PUBREL, 7))
        self.assertEqual(pub.expect(PUBCOMP).pid, 7)
        pub.publish(t, b"new-with-same-id", qos=2, pid=7)
        got = [sub.recv_publish().payload, sub.recv_publish().payload]
        self.assertEqual(got, [b"once", b"new-with-same-id"])
        sub.expect_none()

    def test_qos2_resent_with_same_packet_id_delivered_once_MQTT_4_3_3_2(self):
        self.qos2_resend(1)

    @harness.skip_under_mosquitto("Mosquitto 2.0.11 closes the connection (protocol error) on "
                                  "the second re-send of a QoS 2 PUBLISH before PUBREL, "
                                  "against [MQTT-4.3.3-2]")
    def test_qos2_resent_twice_with_same_packet_id_delivered_once_MQTT_4_3_3_2(self):
        self.qos2_resend(3)

    def test_qos1_same_packet_id_after_puback_is_new_publication_MQTT_4_3_2_2(self):
        t = self.topic()
        sub = self.raw()
        sub.subscribe([(t, 1)])
        pub = self.raw()
        pub.publish(t, b"first", qos=1, pid=9)
        pub.publish(t, b"second", qos=1, pid=9, dup=True)
        self.assertEqual([sub.recv_publish().payload, sub.recv_publish().payload],
                         [b"first", b"second"])

    def test_qos1_outbound_nonzero_packet_id_dup0_MQTT_4_3_2_1_MQTT_2_3_1_1(self):
        t = self.topic()
        sub = self.raw()
        sub.subscribe([(t, 1)])
        self.raw().publish(t, b"q1", qos=1)
        p = sub.recv_publish(ack=False)
        self.assertEqual((p.qos, p.dup, p.retain), (1, False, False))
        self.assertNotEqual(p.publish_pid, 0)
        sub.send(pid_packet(PUBACK, p.publish_pid))

    def test_qos2_outbound_flow_MQTT_4_3_3_1(self):
        t = self.topic()
        sub = self.raw()
        sub.subscribe([(t, 2)])
        self.raw().publish(t, b"q2", qos=2)
        p = sub.recv_publish(ack=False)
        self.assertEqual((p.qos, p.dup, p.payload), (2, False, b"q2"))
        self.assertNotEqual(p.publish_pid, 0)
        sub.send(pid_packet(PUBREC, p.publish_pid))
        rel = sub.expect(PUBREL)
        self.assertEqual((rel.flags, rel.pid), (0x02, p.publish_pid))
        sub.send(pid_packet(PUBCOMP, p.publish_pid))
        sub.ping()

    def test_dup_flag_not_propagated_MQTT_3_3_1_3(self):
        t = self.topic()
        sub = self.raw()
        sub.subscribe([(t, 1)])
        self.raw().publish(t, b"d", qos=1, dup=True, pid=3)
        self.assertFalse(sub.recv_publish().dup)

    def test_outbound_packet_ids_unique_while_unacknowledged_MQTT_2_3_1_2_MQTT_2_3_1_4(self):
        t = self.topic()
        sub = self.raw()
        sub.subscribe([(t, 2)])
        pub = self.raw()
        for i in range(6):
            pub.publish(t, str(i), qos=1 + i % 2, pid=i + 1)
        got = [sub.expect(PUBLISH) for _ in range(6)]
        ids = [p.publish_pid for p in got]
        self.assertEqual(len(set(ids)), 6, ids)
        self.assertNotIn(0, ids)
        self.assertEqual([p.payload for p in got], [str(i).encode() for i in range(6)])

    def test_delivered_qos_is_min_of_published_and_granted_MQTT_3_8_4_6(self):
        t = self.topic()
        sub = self.raw()
        self.assertEqual(sub.subscribe([(t + "/0", 0), (t + "/1", 1), (t + "/2", 2)]),
                         [0, 1, 2])
        pub = self.raw()
        for pq in range(3):
            for gq in range(3):
                with self.subTest(published=pq, granted=gq):
                    pub.publish("%s/%d" % (t, gq), b"p%d" % pq, qos=pq, pid=10 + gq)
                    p = sub.recv_publish()
                    self.assertEqual((p.topic, p.payload), ("%s/%d" % (t, gq), b"p%d" % pq))
                    self.assertEqual(p.qos, min(pq, gq))

    def test_paho_round_trip_each_qos_MQTT_3_3_4_1(self):
        t = self.topic()
        sub = self.paho()
        self.assertEqual(sub.subscribe(t, 2), [2])
        pub = self.paho()
        for q in (0, 1, 2):
            pub.publish(t, b"paho-q%d" % q, qos=q)
            m = sub.recv()
            self.assertEqual((m.payload, m.qos), (b"paho-q%d" % q, q))


class InflightWindowTest(BrokerTestCase):
    """--max-inflight 3: at most 3 unacknowledged QoS 1 PUBLISHes to one client."""
    BROKER_ARGS = ["--max-inflight", "3"]

    def fill_window(self):
        t = self.topic()
        sub = self.raw()
        sub.subscribe([(t, 1)])
        pub = self.raw()
        for i in range(10):
            pub.publish(t, str(i), qos=1, pid=i + 1)  # each PUBACKed: the broker owns it
        first = [sub.expect(PUBLISH) for _ in range(3)]
        self.assertEqual([p.payload for p in first], [b"0", b"1", b"2"])
        sub.expect_none()  # window full: the 4th waits for an ack
        return sub, first

    def test_outbound_inflight_window_fills_then_drains_in_order(self):
        sub, first = self.fill_window()
        for p in first:
            sub.send(pid_packet(PUBACK, p.publish_pid))
        got = [sub.recv_publish().payload for _ in range(7)]
        self.assertEqual(got, [str(i).encode() for i in range(3, 10)])

    @harness.skip_under_mosquitto("Mosquitto 2.0.11 sends 3 queued messages after one PUBACK "
                                  "on a full window of 3 (5 unacknowledged in flight)")
    def test_outbound_inflight_window_one_more_per_ack(self):
        sub, first = self.fill_window()
        sub.send(pid_packet(PUBACK, first[0].publish_pid))
        p = sub.expect(PUBLISH)
        self.assertEqual(p.payload, b"3")
        sub.expect_none()
        for x in first[1:] + [p]:
            sub.send(pid_packet(PUBACK, x.publish_pid))
        got = [sub.recv_publish().payload for _ in range(6)]
        self.assertEqual(got, [str(i).encode() for i in range(4, 10)])


class DefaultLimitsTest(BrokerTestCase):
    """Defaults: --max-inflight 20, --max-queued-messages 1000 (Mosquitto's too)."""

    def test_default_inflight_20_and_queue_1000(self):
        t = self.topic()
        sub = self.raw()
        sub.subscribe([(t, 1)])
        pub = self.raw()
        total = 1100
        for i in range(total):
            pub.publish(t, str(i), qos=1, pid=i % 60000 + 1)
        first = [sub.expect(PUBLISH) for _ in range(20)]
        sub.expect_none()
        for p in first:
            sub.send(pid_packet(PUBACK, p.publish_pid))
        got = [p.payload for p in first]
        while len(got) < 1020:
            got.append(sub.recv_publish().payload)
        pub.publish(t, b"marker", qos=1, pid=60001)
        self.assertEqual(sub.recv_publish().payload, b"marker")
        self.assertEqual(got, [str(i).encode() for i in range(1020)])


class BoundedQueueTest(BrokerTestCase):
    """--max-inflight 2 --max-queued-messages 3: a client that does not ack gets at most 2
    in flight plus 3 queued; the rest is dropped, and the broker keeps working."""
    BROKER_ARGS = ["--max-inflight", "2", "--max-queued-messages", "3"]

    def test_per_client_queue_is_bounded(self):
        t = self.topic()
        sub = self.raw()
        sub.subscribe([(t, 1)])
        pub = self.raw()
        for i in range(20):
            pub.publish(t, str(i), qos=1, pid=i + 1)  # each PUBACKed: the broker owns it
        first = [sub.expect(PUBLISH) for _ in range(2)]
        sub.expect_none()
        for p in first:
            sub.send(pid_packet(PUBACK, p.publish_pid))
        got = [p.payload for p in first]
        while len(got) < 5:
            got.append(sub.recv_publish().payload)
        # Barrier: a message published after the queue drained arrives next.
        pub.publish(t, b"marker", qos=1, pid=100)
        self.assertEqual(sub.recv_publish().payload, b"marker")
        self.assertEqual(got, [b"0", b"1", b"2", b"3", b"4"])


class IdlePollTest(BrokerTestCase):
    """--idle-poll-us: workers that poll before sleeping still deliver every QoS 1 and 2
    message in order across workers, and an idle broker goes back to sleep (no CPU burnt)."""
    BROKER_ARGS = ["--idle-poll-us", "200", "--workers", "2", "--max-queued-messages", "10000"]

    def broker_cpu_seconds(self):
        with open("/proc/%d/stat" % self.broker.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def test_stream_delivered_in_order_then_idle_broker_sleeps_MQTT_4_6_0_2(self):
        for qos in (1, 2):
            t = self.topic()
            sub = self.paho(client_id="idlepoll-sub-%d" % qos)
            sub.subscribe(t, qos)
            pub = self.paho(client_id="idlepoll-pub-%d" % qos)
            infos = [pub.publish(t, str(i), qos=qos, wait=False) for i in range(2000)]
            infos[-1].wait_for_publish(harness.WAIT)
            got = [sub.recv().payload for _ in range(2000)]
            self.assertEqual(got, [str(i).encode() for i in range(2000)])
        time.sleep(0.5)  # the last gaps are long: every worker sleeps at its next idle moment
        before = self.broker_cpu_seconds()
        time.sleep(2)
        self.assertLess(self.broker_cpu_seconds() - before, 0.2, "an idle broker kept polling")


if __name__ == "__main__":
    harness.main()
