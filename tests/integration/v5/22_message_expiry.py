#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 Message Expiry Interval (3.3.2.3.3): expired messages are never delivered
[MQTT-3.3.2-5]; forwarded messages carry the remaining interval [MQTT-3.3.2-6]."""

import time

from harness5 import *  # noqa: F401,F403
from harness5 import (Broker5TestCase, PacketTypes, paho_props, main, sub_options, unique,
                      wait_elapsed, MESSAGE_EXPIRY_INTERVAL, SESSION_EXPIRY_INTERVAL)


class MessageExpiry(Broker5TestCase):

    def _offline_subscriber(self, topic):
        cid = unique("offline")
        c = self.raw5(cid, props=[(SESSION_EXPIRY_INTERVAL, 300)])
        c.subscribe5([(topic, sub_options(qos=1))])
        c.disconnect5()
        return cid

    def _resume(self, cid):
        c = self.raw5(cid, clean_start=False, props=[(SESSION_EXPIRY_INTERVAL, 300)])
        self.assertEqual(c.connack.session_present, 1)
        return c

    def test_expired_queued_message_never_delivered_MQTT_3_3_2_5(self):
        """Queued for an offline session: the message with expiry 1 s is deleted once that
        has passed [MQTT-3.3.2-5]; those without expiry / with 300 s arrive, in order."""
        topic = self.topic()
        cid = self._offline_subscriber(topic)
        pub = self.raw5()
        t0 = time.monotonic()
        pub.publish5(topic, b"short", qos=1, props=[(MESSAGE_EXPIRY_INTERVAL, 1)])
        pub.publish5(topic, b"none", qos=1)
        pub.publish5(topic, b"long", qos=1, props=[(MESSAGE_EXPIRY_INTERVAL, 300)])
        wait_elapsed(t0, 2.2)  # the expiry interval passing is what is tested
        c = self._resume(cid)
        got = [c.recv_pub().payload for _ in range(2)]
        self.assertEqual(got, [b"none", b"long"])
        pub.publish5(topic, b"barrier", qos=1)
        self.assertEqual(c.recv_pub().payload, b"barrier")

    def test_forwarded_with_remaining_interval_MQTT_3_3_2_6(self):
        """Expiry 5 s, waiting about 2.2 s in the server: the PUBLISH sent carries the received
        value minus the waiting time, so at most 3 and at least 1 [MQTT-3.3.2-6]."""
        topic = self.topic()
        cid = self._offline_subscriber(topic)
        pub = self.raw5()
        t0 = time.monotonic()
        pub.publish5(topic, b"m", qos=1, props=[(MESSAGE_EXPIRY_INTERVAL, 5)])
        wait_elapsed(t0, 2.2)
        c = self._resume(cid)
        m = c.recv_pub()
        left = m.props.get(MESSAGE_EXPIRY_INTERVAL)
        self.assertIsNotNone(left, m)
        self.assertTrue(1 <= left <= 3, "remaining expiry %r after 2.2 s of 5 s" % left)

    def test_online_forward_keeps_interval_MQTT_3_3_2_6(self):
        """An online subscriber gets the Message Expiry Interval (at most the sent value);
        a message sent without one gets none."""
        topic = self.topic()
        sub = self.raw5()
        sub.subscribe5([(topic, sub_options(qos=1))])
        pub = self.raw5()
        pub.publish5(topic, b"a", qos=1, props=[(MESSAGE_EXPIRY_INTERVAL, 600)])
        pub.publish5(topic, b"b", qos=1)
        a, b = sub.recv_pub(), sub.recv_pub()
        self.assertTrue(590 <= a.props.get(MESSAGE_EXPIRY_INTERVAL, -1) <= 600, a)
        self.assertFalse(b.props.has(MESSAGE_EXPIRY_INTERVAL), b)

    def test_expired_retained_message_not_sent_MQTT_3_3_2_5(self):
        """A retained message whose expiry has passed is not sent to a new subscriber; one
        still valid is, with the remaining interval [MQTT-3.3.2-5], [MQTT-3.3.2-6]."""
        t_short, t_long = self.topic("/s"), self.topic("/l")
        pub = self.raw5()
        t0 = time.monotonic()
        pub.publish5(t_short, b"gone", qos=1, retain=True,
                     props=[(MESSAGE_EXPIRY_INTERVAL, 1)])
        pub.publish5(t_long, b"here", qos=1, retain=True,
                     props=[(MESSAGE_EXPIRY_INTERVAL, 300)])
        wait_elapsed(t0, 2.2)
        sub = self.raw5()
        sub.subscribe5([(t_short, sub_options(qos=1))], pid=1)
        sub.subscribe5([(t_long, sub_options(qos=1))], pid=2)
        m = sub.recv_pub()
        self.assertEqual((m.topic, m.payload, m.retain), (t_long, b"here", True))
        self.assertTrue(1 <= m.props.get(MESSAGE_EXPIRY_INTERVAL, -1) <= 298, m)
        sub.expect_no_publish()

    def test_paho_message_expiry_property(self):
        """paho MQTTv5 publisher with MessageExpiryInterval; paho subscriber sees it."""
        topic = self.topic()
        sub = self.paho5()
        sub.subscribe(topic, qos=1)
        self.paho5().publish(topic, b"p", qos=1, properties=paho_props(
            PacketTypes.PUBLISH, MessageExpiryInterval=120))
        m = sub.recv()
        self.assertEqual(m.payload, b"p")
        self.assertTrue(110 <= m.properties.MessageExpiryInterval <= 120,
                        m.properties.MessageExpiryInterval)


if __name__ == "__main__":
    main()
