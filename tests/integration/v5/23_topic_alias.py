#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 Topic Alias (3.3.2.3.4): inbound (client -> broker, limited by the broker's
--topic-alias-maximum) and outbound (broker -> client, when the client's CONNECT sets Topic
Alias Maximum)."""

from harness5 import *  # noqa: F401,F403
from harness5 import (Broker5TestCase, main, sub_options, publish5_packet, TOPIC_ALIAS,
                      TOPIC_ALIAS_MAXIMUM, RC_TOPIC_ALIAS_INVALID, RC_PROTOCOL_ERROR, unique)


class InboundTopicAlias(Broker5TestCase):
    BROKER_ARGS = ("--topic-alias-maximum", "5")

    def _sub(self, *topics):
        s = self.raw5()
        for i, t in enumerate(topics):
            s.subscribe5([(t, sub_options(qos=1))], pid=i + 1)
        return s

    def test_set_then_use_MQTT_3_3_2_12(self):
        """A PUBLISH with topic + alias sets the mapping; later ones with an empty topic use it.
        Aliases 1..Topic Alias Maximum (5) are accepted [MQTT-3.3.2-12]."""
        t1, t5 = self.topic("/a"), self.topic("/b")
        sub = self._sub(t1, t5)
        pub = self.raw5()
        self.assertEqual(pub.connack.props.get(TOPIC_ALIAS_MAXIMUM), 5)
        pub.publish5(t1, b"set1", qos=1, pid=1, props=[(TOPIC_ALIAS, 1)])
        pub.publish5("", b"use1", qos=1, pid=2, props=[(TOPIC_ALIAS, 1)])
        pub.publish5(t5, b"set5", qos=1, pid=3, props=[(TOPIC_ALIAS, 5)])
        pub.publish5("", b"use5", qos=1, pid=4, props=[(TOPIC_ALIAS, 5)])
        got = [sub.recv_pub() for _ in range(4)]
        self.assertEqual([(m.topic, m.payload) for m in got],
                         [(t1, b"set1"), (t1, b"use1"), (t5, b"set5"), (t5, b"use5")])
        for m in got:
            self.assertFalse(m.props.has(TOPIC_ALIAS), m)  # subscriber set no maximum

    def test_alias_remapped(self):
        """Setting an alias again replaces its mapping (3.3.2.3.4)."""
        t1, t2 = self.topic("/a"), self.topic("/b")
        sub = self._sub(t1, t2)
        pub = self.raw5()
        pub.publish5(t1, b"1", qos=1, props=[(TOPIC_ALIAS, 2)])
        pub.publish5(t2, b"2", qos=1, props=[(TOPIC_ALIAS, 2)])
        pub.publish5("", b"3", qos=1, props=[(TOPIC_ALIAS, 2)])
        got = [(m.topic, m.payload) for m in (sub.recv_pub() for _ in range(3))]
        self.assertEqual(got, [(t1, b"1"), (t2, b"2"), (t2, b"3")])

    def test_alias_zero_is_invalid_MQTT_3_3_2_8(self):
        """Topic Alias 0 [MQTT-3.3.2-8]: DISCONNECT 0x94 (Topic Alias invalid)."""
        c = self.raw5()
        c.send(publish5_packet(self.topic(), b"x", props=[(TOPIC_ALIAS, 0)]))
        c.expect_disconnect(RC_TOPIC_ALIAS_INVALID)

    def test_alias_above_maximum_is_invalid_MQTT_3_3_2_9(self):
        """Topic Alias 6 > Topic Alias Maximum 5 [MQTT-3.3.2-9]: DISCONNECT 0x94."""
        c = self.raw5()
        c.send(publish5_packet(self.topic(), b"x", props=[(TOPIC_ALIAS, 6)]))
        c.expect_disconnect(RC_TOPIC_ALIAS_INVALID)

    def test_unknown_alias_with_empty_topic_is_protocol_error_3_3_2_3_4(self):
        """Empty topic with an alias that has no mapping: Protocol Error, DISCONNECT 0x82
        (3.3.2.3.4, [MQTT-4.13.1-1]); nothing is delivered."""
        c = self.raw5()
        c.send(publish5_packet("", b"x", qos=1, props=[(TOPIC_ALIAS, 3)]))
        c.expect_disconnect(RC_PROTOCOL_ERROR)

    def test_aliases_not_carried_across_connections_MQTT_3_3_2_7(self):
        """A mapping set on one connection is unknown on the next one of the same client
        [MQTT-3.3.2-7] (session kept or not): DISCONNECT 0x82."""
        from harness5 import SESSION_EXPIRY_INTERVAL
        cid, t = unique("ta"), self.topic()
        c = self.raw5(cid, props=[(SESSION_EXPIRY_INTERVAL, 60)])
        c.publish5(t, b"set", qos=1, props=[(TOPIC_ALIAS, 1)])
        c.disconnect5()
        c2 = self.raw5(cid, clean_start=False, props=[(SESSION_EXPIRY_INTERVAL, 60)])
        c2.send(publish5_packet("", b"use", qos=1, props=[(TOPIC_ALIAS, 1)]))
        c2.expect_disconnect(RC_PROTOCOL_ERROR)


class OutboundTopicAlias(Broker5TestCase):

    def test_second_message_uses_alias_MQTT_3_3_2_11(self):
        """Subscriber CONNECT Topic Alias Maximum 2: the first message on a topic carries the
        topic and an alias in 1..2, the second an empty topic and that alias [MQTT-3.3.2-11],
        [MQTT-3.1.2-26]; a third topic when both aliases are taken goes with its full name
        and no alias above 2."""
        ta, tb, tc = self.topic("/a"), self.topic("/b"), self.topic("/c")
        sub = self.raw5(props=[(TOPIC_ALIAS_MAXIMUM, 2)])
        sub.subscribe5([(ta, sub_options(qos=1)), (tb, sub_options(qos=1)),
                        (tc, sub_options(qos=1))])
        pub = self.raw5()
        for t, p in ((ta, b"a1"), (ta, b"a2"), (tb, b"b1"), (tb, b"b2"), (tc, b"c1"),
                     (tc, b"c2"), (ta, b"a3")):
            pub.publish5(t, p, qos=1)
        m = [sub.recv_pub() for _ in range(7)]
        alias_a, alias_b = m[0].props.get(TOPIC_ALIAS), m[2].props.get(TOPIC_ALIAS)
        self.assertEqual((m[0].topic, m[0].payload), (ta, b"a1"))
        self.assertIn(alias_a, (1, 2), m[0])
        self.assertEqual((m[1].topic, m[1].props.get(TOPIC_ALIAS), m[1].payload),
                         ("", alias_a, b"a2"))
        self.assertEqual(m[2].topic, tb)
        self.assertIn(alias_b, (1, 2), m[2])
        self.assertNotEqual(alias_a, alias_b)
        self.assertEqual((m[3].topic, m[3].props.get(TOPIC_ALIAS), m[3].payload),
                         ("", alias_b, b"b2"))
        for x in m[4:6]:  # no alias left: full topic; a new mapping would have to be <= 2
            self.assertTrue(x.topic == tc or x.props.get(TOPIC_ALIAS) in (1, 2), x)
            self.assertLessEqual(x.props.get(TOPIC_ALIAS, 0), 2, x)
        self.assertEqual(m[6].payload, b"a3")
        self.assertTrue(m[6].topic in (ta, "") and m[6].props.get(TOPIC_ALIAS, 0) <= 2, m[6])

    def test_no_alias_without_client_maximum_MQTT_3_1_2_27(self):
        """No Topic Alias Maximum in CONNECT: the server sends no Topic Alias
        [MQTT-3.1.2-27]."""
        t = self.topic()
        sub = self.raw5()
        sub.subscribe5([(t, sub_options(qos=1))])
        pub = self.raw5()
        for i in range(3):
            pub.publish5(t, b"%d" % i, qos=1)
        for i in range(3):
            m = sub.recv_pub()
            self.assertEqual(m.topic, t)
            self.assertFalse(m.props.has(TOPIC_ALIAS), m)

    def test_outbound_aliases_reset_per_connection_MQTT_3_3_2_7(self):
        """A new connection starts without mappings: its first message carries the topic."""
        from harness5 import SESSION_EXPIRY_INTERVAL
        cid, t = unique("oa"), self.topic()
        props = [(TOPIC_ALIAS_MAXIMUM, 4), (SESSION_EXPIRY_INTERVAL, 60)]
        sub = self.raw5(cid, props=props)
        sub.subscribe5([(t, sub_options(qos=1))])
        pub = self.raw5()
        pub.publish5(t, b"1", qos=1)
        pub.publish5(t, b"2", qos=1)
        self.assertEqual(sub.recv_pub().topic, t)
        self.assertEqual(sub.recv_pub().topic, "")
        sub.disconnect5()
        sub2 = self.raw5(cid, clean_start=False, props=props)
        pub.publish5(t, b"3", qos=1)
        # The new CONNECT may be handled before the old connection's PUBACKs were read: then "1"
        # and "2" come again (DUP) first. Whichever message is first carries the topic.
        m = sub2.recv_pub()
        self.assertEqual(m.topic, t)
        while m.payload != b"3":
            self.assertIn(m.payload, (b"1", b"2"))
            m = sub2.recv_pub()


class NoInboundAliases(Broker5TestCase):
    BROKER_ARGS = ("--topic-alias-maximum", "0")

    def test_maximum_zero_rejects_any_alias_MQTT_3_3_2_9(self):
        """--topic-alias-maximum 0: CONNACK advertises none (absent or 0) and alias 1 gets
        DISCONNECT 0x94 [MQTT-3.3.2-9]."""
        c = self.raw5()
        self.assertEqual(c.connack.props.get(TOPIC_ALIAS_MAXIMUM, 0), 0, c.connack)
        c.send(publish5_packet(self.topic(), b"x", props=[(TOPIC_ALIAS, 1)]))
        c.expect_disconnect(RC_TOPIC_ALIAS_INVALID)


if __name__ == "__main__":
    main()
