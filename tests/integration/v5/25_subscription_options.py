#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 subscription options (3.8.3.1): No Local, Retain As Published, Retain Handling;
Subscription Identifiers (3.8.2.1.2, 3.3.4)."""

from harness5 import *  # noqa: F401,F403
from harness5 import (Broker5TestCase, PacketTypes, SubscribeOptions, main, paho_props,
                      sub_options, publish5_packet, SUBSCRIPTION_IDENTIFIER, RC_PROTOCOL_ERROR)


class NoLocal(Broker5TestCase):

    def test_no_local_MQTT_3_8_3_3(self):
        """No Local 1: the client's own messages are not forwarded to it [MQTT-3.8.3-3];
        others' are; a No Local 0 subscriber that publishes gets its own."""
        t = self.topic()
        nl = self.raw5()
        nl.subscribe5([(t, sub_options(qos=1, no_local=True))])
        plain = self.raw5()
        plain.subscribe5([(t, sub_options(qos=1))])
        nl.publish5(t, b"from-nl", qos=1)
        plain.publish5(t, b"from-plain", qos=1)
        self.assertEqual([plain.recv_pub().payload for _ in range(2)],
                         [b"from-nl", b"from-plain"])
        self.assertEqual(nl.recv_pub().payload, b"from-plain")
        nl.expect_no_publish()

    def test_no_local_applies_per_subscription_MQTT_3_8_3_3(self):
        """One session, two overlapping subscriptions: T with No Local 1 (id 1), T's parent
        /# with No Local 0 (id 2). The own message matches the /# subscription, which has no
        No Local restriction, so it is delivered once [MQTT-3.3.4-2], carrying id 2 only;
        No Local [MQTT-3.8.3-3] holds it back only from the No Local subscription."""
        base = self.topic()
        t = base + "/x"
        c = self.raw5()
        c.subscribe5([(t, sub_options(qos=1, no_local=True))], pid=1, sub_id=1)
        c.subscribe5([(base + "/#", sub_options(qos=1))], pid=2, sub_id=2)
        c.publish5(t, b"own", qos=1)
        m = c.recv_pub()
        self.assertEqual((m.payload, m.sub_ids), (b"own", [2]))

    def test_paho_no_local(self):
        """paho MQTTv5 SubscribeOptions(noLocal=True) [MQTT-3.8.3-3]."""
        t = self.topic()
        c = self.paho5()
        self.assertEqual(c.subscribe(t, options=SubscribeOptions(qos=1, noLocal=True)), [1])
        c.publish(t, b"mine", qos=1)
        self.paho5().publish(t, b"theirs", qos=1)
        self.assertEqual(c.recv().payload, b"theirs")
        c.expect_none()


class RetainOptions(Broker5TestCase):

    def test_retain_as_published_MQTT_3_3_1_12_and_13(self):
        """Live retained message: RETAIN 0 to a Retain As Published 0 subscriber
        [MQTT-3.3.1-12], RETAIN 1 to a Retain As Published 1 subscriber [MQTT-3.3.1-13]."""
        t = self.topic()
        rap0, rap1 = self.raw5(), self.raw5()
        rap0.subscribe5([(t, sub_options(qos=1))])
        rap1.subscribe5([(t, sub_options(qos=1, retain_as_published=True))])
        pub = self.raw5()
        pub.publish5(t, b"r", qos=1, retain=True)
        pub.publish5(t, b"n", qos=1, retain=False)
        a, b = rap0.recv_pub(), rap0.recv_pub()
        self.assertEqual([(a.payload, a.retain), (b.payload, b.retain)],
                         [(b"r", False), (b"n", False)])
        a, b = rap1.recv_pub(), rap1.recv_pub()
        self.assertEqual([(a.payload, a.retain), (b.payload, b.retain)],
                         [(b"r", True), (b"n", False)])
        pub.publish5(t, b"", qos=1, retain=True)  # clear

    def _retained(self, t, payload=b"kept"):
        self.raw5().publish5(t, payload, qos=1, retain=True)

    def test_retain_handling_0_MQTT_3_3_1_9(self):
        """Retain Handling 0: retained messages sent at every subscribe [MQTT-3.3.1-9]."""
        t = self.topic()
        self._retained(t)
        c = self.raw5()
        c.subscribe5([(t, sub_options(qos=1, retain_handling=0))], pid=1)
        m = c.recv_pub()
        self.assertEqual((m.payload, m.retain), (b"kept", True))
        c.subscribe5([(t, sub_options(qos=1, retain_handling=0))], pid=2)
        m = c.recv_pub()
        self.assertEqual((m.payload, m.retain), (b"kept", True))

    def test_retain_handling_1_MQTT_3_3_1_10(self):
        """Retain Handling 1: sent for a new subscription, not when it already existed
        [MQTT-3.3.1-10]."""
        t, barrier = self.topic(), self.topic("/barrier")
        self._retained(t)
        self._retained(barrier, b"barrier")
        c = self.raw5()
        c.subscribe5([(t, sub_options(qos=1, retain_handling=1))], pid=1)
        self.assertEqual(c.recv_pub().payload, b"kept")
        c.subscribe5([(t, sub_options(qos=1, retain_handling=1))], pid=2)
        c.subscribe5([(barrier, sub_options(qos=1))], pid=3)
        self.assertEqual(c.recv_pub().payload, b"barrier")
        c.expect_no_publish()

    def test_retain_handling_2_MQTT_3_3_1_11(self):
        """Retain Handling 2: no retained messages at subscribe [MQTT-3.3.1-11]; live messages
        still arrive."""
        t, barrier = self.topic(), self.topic("/barrier")
        self._retained(t)
        self._retained(barrier, b"barrier")
        c = self.raw5()
        c.subscribe5([(t, sub_options(qos=1, retain_handling=2))], pid=1)
        c.subscribe5([(barrier, sub_options(qos=1))], pid=2)
        self.assertEqual(c.recv_pub().payload, b"barrier")
        c.expect_no_publish()
        self.raw5().publish5(t, b"live", qos=1)
        self.assertEqual(c.recv_pub().payload, b"live")

    def test_paho_retain_handling_and_rap(self):
        """paho MQTTv5 SubscribeOptions(retainHandling=2 / retainAsPublished=True)."""
        t = self.topic()
        self._retained(t)
        c = self.paho5()
        c.subscribe(t, options=SubscribeOptions(qos=1, retainHandling=2,
                                                retainAsPublished=True))
        self.paho5().publish(t, b"live-retained", qos=1, retain=True)
        m = c.recv()
        self.assertEqual((m.payload, m.retain), (b"live-retained", True))
        c.expect_none()


class SubscriptionIdentifiers(Broker5TestCase):

    def test_overlapping_subscriptions_one_message_both_ids_MQTT_3_3_4_4(self):
        """Two overlapping subscriptions with ids 5 and 300: one PUBLISH carrying both ids
        [MQTT-3.3.4-3], [MQTT-3.3.4-4], at the higher granted QoS."""
        base = self.topic()
        c = self.raw5()
        c.subscribe5([(base + "/+", sub_options(qos=0))], pid=1, sub_id=5)
        c.subscribe5([(base + "/#", sub_options(qos=1))], pid=2, sub_id=300)
        self.raw5().publish5(base + "/x", b"m", qos=1)
        m = c.recv_pub()
        self.assertEqual(sorted(m.sub_ids), [5, 300], m)
        self.assertEqual(m.qos, 1)
        c.expect_no_publish()

    def test_only_matching_ids_and_none_without_id_MQTT_3_3_4_3(self):
        """Only the ids of the subscriptions that match; a subscription without an id adds
        none; a large id (varint of 4 bytes) round-trips."""
        base = self.topic()
        c = self.raw5()
        c.subscribe5([(base + "/a", sub_options(qos=1))], pid=1, sub_id=268435455)
        c.subscribe5([(base + "/b", sub_options(qos=1))], pid=2, sub_id=7)
        c.subscribe5([(base + "/#", sub_options(qos=1))], pid=3)
        pub = self.raw5()
        pub.publish5(base + "/a", b"a", qos=1)
        pub.publish5(base + "/c", b"c", qos=1)
        a, cc = c.recv_pub(), c.recv_pub()
        self.assertEqual((a.payload, a.sub_ids), (b"a", [268435455]))
        self.assertEqual((cc.payload, cc.sub_ids), (b"c", []))

    def test_resubscribe_replaces_id_MQTT_3_8_4_3(self):
        """Subscribing again to the same filter replaces the subscription and its id
        [MQTT-3.8.4-3]."""
        t = self.topic()
        c = self.raw5()
        c.subscribe5([(t, sub_options(qos=1))], pid=1, sub_id=1)
        c.subscribe5([(t, sub_options(qos=1))], pid=2, sub_id=2)
        self.raw5().publish5(t, b"x", qos=1)
        self.assertEqual(c.recv_pub().sub_ids, [2])

    def test_retained_message_carries_id(self):
        """A retained message sent because of the SUBSCRIBE carries its id (3.8.2.1.2)."""
        t = self.topic()
        self.raw5().publish5(t, b"ret", qos=1, retain=True)
        c = self.raw5()
        c.subscribe5([(t, sub_options(qos=1))], sub_id=42)
        m = c.recv_pub()
        self.assertEqual((m.payload, m.retain, m.sub_ids), (b"ret", True, [42]))
        self.raw5().publish5(t, b"", qos=1, retain=True)

    def test_publish_with_subscription_identifier_is_protocol_error_MQTT_3_3_4_6(self):
        """A client PUBLISH must not contain a Subscription Identifier [MQTT-3.3.4-6]:
        DISCONNECT 0x82."""
        c = self.raw5()
        c.send(publish5_packet(self.topic(), b"x", qos=1, props=[(SUBSCRIPTION_IDENTIFIER, 3)]))
        c.expect_disconnect(RC_PROTOCOL_ERROR)

    def test_paho_subscription_identifiers(self):
        """paho MQTTv5: SubscriptionIdentifier on two overlapping subscriptions."""
        base = self.topic()
        c = self.paho5()
        c.subscribe(base + "/#", qos=1, properties=paho_props(PacketTypes.SUBSCRIBE,
                                                              SubscriptionIdentifier=11))
        c.subscribe(base + "/+/z", qos=1, properties=paho_props(PacketTypes.SUBSCRIBE,
                                                                SubscriptionIdentifier=22))
        self.paho5().publish(base + "/y/z", b"both", qos=1)
        m = c.recv()
        self.assertEqual(sorted(m.properties.SubscriptionIdentifier), [11, 22])


if __name__ == "__main__":
    main()
