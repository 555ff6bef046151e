#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 CONNACK properties: what the broker advertises (section 3.2.2.3), Assigned Client
Identifier, Server Keep Alive, Response Information."""

from harness5 import *  # noqa: F401,F403
from harness5 import (Broker5TestCase, PacketTypes, paho_props, main, RC_KEEP_ALIVE_TIMEOUT,
                      RECEIVE_MAXIMUM, MAXIMUM_PACKET_SIZE, TOPIC_ALIAS_MAXIMUM, MAXIMUM_QOS,
                      RETAIN_AVAILABLE, WILDCARD_SUBSCRIPTION_AVAILABLE,
                      SUBSCRIPTION_IDENTIFIER_AVAILABLE, SHARED_SUBSCRIPTION_AVAILABLE,
                      ASSIGNED_CLIENT_IDENTIFIER, SERVER_KEEP_ALIVE, RESPONSE_INFORMATION,
                      REQUEST_RESPONSE_INFORMATION, SESSION_EXPIRY_INTERVAL, sub_options)


class ConnackProperties(Broker5TestCase):
    BROKER_ARGS = ("--receive-maximum", "7", "--max-packet-size", "20000",
                   "--topic-alias-maximum", "5", "--max-keep-alive", "30")

    def test_advertises_limits_and_features_3_2_2_3(self):
        """Receive Maximum (3.2.2.3.3), Maximum Packet Size [MQTT-3.2.2-15], Topic Alias
        Maximum (3.2.2.3.8), Retain/Wildcard/Subscription Identifier/Shared Subscription
        Available (3.2.2.3.5, 3.2.2.3.11-13) = 1; Maximum QoS absent or 2 [MQTT-3.2.2-9]."""
        c = self.raw5(keepalive=10)
        p = c.connack.props
        self.assertEqual(c.connack.rc, 0)
        self.assertEqual(p.get(RECEIVE_MAXIMUM), 7, p)
        self.assertEqual(p.get(MAXIMUM_PACKET_SIZE), 20000, p)
        self.assertEqual(p.get(TOPIC_ALIAS_MAXIMUM), 5, p)
        self.assertEqual(p.get(RETAIN_AVAILABLE), 1, p)
        self.assertEqual(p.get(WILDCARD_SUBSCRIPTION_AVAILABLE), 1, p)
        self.assertEqual(p.get(SUBSCRIPTION_IDENTIFIER_AVAILABLE), 1, p)
        self.assertEqual(p.get(SHARED_SUBSCRIPTION_AVAILABLE), 1, p)
        self.assertIn(p.get(MAXIMUM_QOS, 2), (2,), p)
        self.assertFalse(p.has(ASSIGNED_CLIENT_IDENTIFIER), p)  # the client gave an id
        self.assertFalse(p.has(SERVER_KEEP_ALIVE), p)  # 10 <= 30: not overridden [MQTT-3.2.2-22]
        self.assertFalse(p.has(RESPONSE_INFORMATION), p)  # not requested [MQTT-3.1.2-28]

    def test_assigned_client_identifier_MQTT_3_1_3_6_and_3_2_2_16(self):
        """Empty Client Identifier: the server assigns a unique one [MQTT-3.1.3-6] and returns
        it as Assigned Client Identifier [MQTT-3.1.3-7], [MQTT-3.2.2-16]; the session is
        that id's: resuming it by that id finds it [MQTT-3.1.2-5]."""
        a = self.raw5(client_id="", props=[(SESSION_EXPIRY_INTERVAL, 60)])
        b = self.raw5(client_id="")
        ida = a.connack.props.get(ASSIGNED_CLIENT_IDENTIFIER)
        idb = b.connack.props.get(ASSIGNED_CLIENT_IDENTIFIER)
        self.assertTrue(ida, a.connack)
        self.assertTrue(idb, b.connack)
        self.assertNotEqual(ida, idb)
        topic = self.topic()
        self.assertEqual(a.subscribe5([(topic, sub_options(qos=1))]), [1])
        a.disconnect5()
        again = self.raw5(client_id=ida, clean_start=False,
                          props=[(SESSION_EXPIRY_INTERVAL, 60)])
        self.assertEqual(again.connack.session_present, 1, again.connack)
        self.assertFalse(again.connack.props.has(ASSIGNED_CLIENT_IDENTIFIER))
        b.publish5(topic, b"to-assigned", qos=1)
        self.assertEqual(again.recv_pub().payload, b"to-assigned")

    def test_server_keep_alive_caps_client_value_MQTT_3_2_2_21(self):
        """Client keep alive 100 > --max-keep-alive 30: CONNACK Server Keep Alive 30, which
        the client must use [MQTT-3.2.2-21], [MQTT-3.1.2-21]."""
        c = self.raw5(keepalive=100)
        self.assertEqual(c.connack.props.get(SERVER_KEEP_ALIVE), 30, c.connack)

    def test_server_keep_alive_when_client_sent_zero_MQTT_3_2_2_21(self):
        """Client keep alive 0 (no keep alive) with a server maximum: Server Keep Alive 30."""
        c = self.raw5(keepalive=0)
        self.assertEqual(c.connack.props.get(SERVER_KEEP_ALIVE), 30, c.connack)

    def test_response_information_MQTT_3_1_2_28(self):
        """Request Response Information 1 -> Response Information "response/<client id>";
        0 -> none [MQTT-3.1.2-28]."""
        cid = unique("rri")
        c = self.raw5(client_id=cid, props=[(REQUEST_RESPONSE_INFORMATION, 1)])
        self.assertEqual(c.connack.props.get(RESPONSE_INFORMATION), "response/" + cid)
        d = self.raw5(props=[(REQUEST_RESPONSE_INFORMATION, 0)])
        self.assertFalse(d.connack.props.has(RESPONSE_INFORMATION), d.connack)

    def test_response_information_with_assigned_id(self):
        """Response Information uses the assigned id when the client sent an empty one."""
        c = self.raw5(client_id="", props=[(REQUEST_RESPONSE_INFORMATION, 1)])
        cid = c.connack.props.get(ASSIGNED_CLIENT_IDENTIFIER)
        self.assertEqual(c.connack.props.get(RESPONSE_INFORMATION), "response/%s" % cid)

    def test_paho_connect_with_properties(self):
        """paho MQTTv5 CONNECT with properties; CONNACK properties as paho decodes them."""
        props = paho_props(PacketTypes.CONNECT, SessionExpiryInterval=30, ReceiveMaximum=10,
                           MaximumPacketSize=100000, TopicAliasMaximum=3,
                           RequestResponseInformation=1, UserProperty=[("k", "v")])
        c = self.paho5(connect=False, client_id="", connect_props=props, keepalive=120)
        sp, rc, ack = c.connect()
        self.assertEqual((sp, rc), (0, 0))
        self.assertEqual(ack.ReceiveMaximum, 7)
        self.assertEqual(ack.MaximumPacketSize, 20000)
        self.assertEqual(ack.TopicAliasMaximum, 5)
        self.assertEqual(ack.ServerKeepAlive, 30)
        self.assertTrue(ack.AssignedClientIdentifier)
        self.assertEqual(ack.ResponseInformation, "response/" + ack.AssignedClientIdentifier)
        self.assertEqual(ack.SharedSubscriptionAvailable, 1)


class UncappedKeepAlive(Broker5TestCase):
    """Default --max-keep-alive (65535, no cap)."""

    def test_no_server_keep_alive_without_cap_MQTT_3_2_2_22(self):
        """Without an override the server uses the client's value and sends no Server Keep
        Alive [MQTT-3.2.2-22], also for keep alive 0."""
        for ka in (0, 65535, 20):
            c = self.raw5(keepalive=ka)
            self.assertFalse(c.connack.props.has(SERVER_KEEP_ALIVE), (ka, c.connack))


class ServerKeepAliveEnforced(Broker5TestCase):
    BROKER_ARGS = ("--max-keep-alive", "1")

    def test_server_keep_alive_is_enforced_MQTT_3_1_2_22(self):
        """A client that asked for no keep alive gets Server Keep Alive 1 and, silent, is
        disconnected with 0x8D after 1.5 x 1 s [MQTT-3.1.2-22], [MQTT-3.2.2-21]."""
        c = self.raw5(keepalive=0)
        self.assertEqual(c.connack.props.get(SERVER_KEEP_ALIVE), 1, c.connack)
        c.expect_disconnect(RC_KEEP_ALIVE_TIMEOUT, timeout=15)


if __name__ == "__main__":
    main()
