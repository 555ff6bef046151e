#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 server-sent DISCONNECT reason codes (3.14.2.1, 4.13) and enhanced authentication
without a configured method (4.12)."""

import struct

from harness5 import *  # noqa: F401,F403
from harness5 import (Broker5TestCase, main, mstr, packet, start_broker, sub_options, unique,
                      connect5_packet, publish5_packet, subscribe5_packet, auth5_packet,
                      Connack5, RawClient5, CONNACK, PUBLISH, PUBREC,
                      AUTHENTICATION_METHOD, AUTHENTICATION_DATA, RC_BAD_AUTH_METHOD,
                      RC_KEEP_ALIVE_TIMEOUT, RC_MALFORMED, RC_PACKET_TOO_LARGE,
                      RC_PROTOCOL_ERROR, RC_RECEIVE_MAXIMUM_EXCEEDED, RC_SESSION_TAKEN_OVER,
                      RC_SHUTTING_DOWN, RC_TOPIC_ALIAS_INVALID, TOPIC_ALIAS, WAIT)


class DisconnectReasons(Broker5TestCase):
    BROKER_ARGS = ("--max-packet-size", "1000", "--receive-maximum", "2",
                   "--topic-alias-maximum", "2")

    def test_session_taken_over_0x8E_MQTT_3_1_4_3(self):
        """A second connection with the same Client Identifier: the first gets DISCONNECT 0x8E
        and is closed [MQTT-3.1.4-3]; the second works."""
        cid = unique("takeover")
        first = self.raw5(cid)
        second = self.raw5(cid)
        first.expect_disconnect(RC_SESSION_TAKEN_OVER)
        second.ping()

    def test_session_taken_over_v311_gets_no_disconnect_packet(self):
        """A 3.1.1 connection taken over is just closed: DISCONNECT from a server exists only
        in 5.0 (3.14) and would be a malformed packet to a 3.1.1 client."""
        cid = unique("takeover311")
        first = self.raw(cid)
        self.raw(cid)
        self.assertEqual(first.wait_closed(), [])

    def test_keep_alive_timeout_0x8D_MQTT_3_1_2_22(self):
        """Keep alive 1 s and silence: DISCONNECT 0x8D after 1.5 x keep alive [MQTT-3.1.2-22]."""
        c = self.raw5(keepalive=1)
        c.expect_disconnect(RC_KEEP_ALIVE_TIMEOUT, timeout=15)

    def test_packet_too_large_0x95_3_2_2_3_6(self):
        """A PUBLISH larger than the CONNACK Maximum Packet Size (1000) [MQTT-3.2.2-15]:
        DISCONNECT 0x95 (Packet too large, 3.2.2.3.6); the message is not delivered."""
        t = self.topic()
        sub = self.raw5()
        sub.subscribe5([(t, sub_options(qos=1))])
        c = self.raw5()
        self.assertEqual(c.connack.props.get(0x27), 1000)
        c.send(publish5_packet(t, b"x" * 1200, qos=1))
        c.expect_disconnect(RC_PACKET_TOO_LARGE)
        sub.expect_no_publish()

    def test_receive_maximum_exceeded_0x93_MQTT_3_3_4_7(self):
        """Receive Maximum 2; a third unreleased QoS 2 PUBLISH: DISCONNECT 0x93 (4.9)."""
        c = self.raw5()
        t = self.topic()
        for pid in (1, 2):
            c.send(publish5_packet(t, b"x", qos=2, pid=pid))
            c.wait_for(PUBREC, pid)
        c.send(publish5_packet(t, b"x", qos=2, pid=3))
        c.expect_disconnect(RC_RECEIVE_MAXIMUM_EXCEEDED)

    def test_topic_alias_invalid_0x94_MQTT_3_3_2_9(self):
        """Topic Alias 3 > maximum 2 [MQTT-3.3.2-9]: DISCONNECT 0x94."""
        c = self.raw5()
        c.send(publish5_packet(self.topic(), b"x", props=[(TOPIC_ALIAS, 3)]))
        c.expect_disconnect(RC_TOPIC_ALIAS_INVALID)

    def test_protocol_error_second_connect_0x82_MQTT_3_1_0_2(self):
        """A second CONNECT is a Protocol Error [MQTT-3.1.0-2]: DISCONNECT 0x82."""
        c = self.raw5()
        c.send(connect5_packet(unique("again")))
        c.expect_disconnect(RC_PROTOCOL_ERROR)

    def test_protocol_error_duplicate_property_0x82_2_2_2_2(self):
        """A property included twice where it may appear once (Content Type) is a Protocol
        Error (2.2.2.2, 3.3.2.3.9): DISCONNECT 0x82."""
        c = self.raw5()
        c.send(publish5_packet(self.topic(), b"x", props=[(0x03, "a"), (0x03, "b")]))
        c.expect_disconnect(RC_PROTOCOL_ERROR)

    def test_malformed_property_length_0x81_4_13_1(self):
        """Property length past the end of the packet: Malformed Packet, DISCONNECT 0x81
        [MQTT-4.13.1-1]."""
        c = self.raw5()
        topic = self.topic()
        body = mstr(topic) + bytes([0x20]) + bytes([0x01, 0x01])  # claims 32 bytes, has 2
        c.send(packet(PUBLISH, 0, body))
        c.expect_disconnect(RC_MALFORMED)

    def test_malformed_invalid_utf8_topic_0x81_MQTT_1_5_4_1(self):
        """Topic name that is not well-formed UTF-8 [MQTT-1.5.4-1]: Malformed Packet, 0x81."""
        c = self.raw5()
        body = struct.pack("!H", 3) + b"a\xffb" + bytes([0])
        c.send(packet(PUBLISH, 0, body))
        c.expect_disconnect(RC_MALFORMED)

    def test_no_disconnect_before_connack_MQTT_3_14_0_1(self):
        """An error in CONNECT itself is reported with a CONNACK reason code, never with a
        DISCONNECT [MQTT-3.14.0-1]: a property not allowed in CONNECT (Topic Alias)."""
        c = self.raw5_unconnected()
        c.send(connect5_packet(unique("bad"), props=[(TOPIC_ALIAS, 1)]))
        p = c.expect(CONNACK)
        self.assertGreaterEqual(Connack5(p).rc, 0x80)
        self.assertEqual(c.wait_closed(), [])

    def test_connect_with_authentication_method_gets_0x8C_MQTT_4_12_0_1(self):
        """CONNECT with an Authentication Method, none configured: CONNACK 0x8C (Bad
        authentication method) and the connection is closed [MQTT-4.12.0-1]."""
        c = self.raw5_unconnected()
        c.send(connect5_packet(unique("auth"), props=[(AUTHENTICATION_METHOD, "SCRAM-SHA-1"),
                                                      (AUTHENTICATION_DATA, b"n,,n=user")]))
        ack = Connack5(c.expect(CONNACK))
        self.assertEqual(ack.rc, RC_BAD_AUTH_METHOD, ack)
        self.assertFalse(ack.props.has(AUTHENTICATION_METHOD))
        self.assertEqual(c.wait_closed(), [])

    def test_auth_after_plain_connect_is_protocol_error_MQTT_4_12_0_7(self):
        """AUTH from a client whose CONNECT had no Authentication Method [MQTT-4.12.0-7]
        (3.15): DISCONNECT 0x82."""
        c = self.raw5()
        c.send(auth5_packet(0x19, [(AUTHENTICATION_METHOD, "SCRAM-SHA-1")]))
        c.expect_disconnect(RC_PROTOCOL_ERROR)


class ShuttingDown(Broker5TestCase):

    @classmethod
    def setUpClass(cls):
        pass  # each test starts its own broker

    @classmethod
    def tearDownClass(cls):
        pass

    def setUp(self):
        self._cleanup_clients = []
        self.broker = start_broker()

    def tearDown(self):
        super().tearDown()
        self.broker.stop()

    def test_server_shutting_down_0x8B_3_14_2_1(self):
        """SIGTERM: each connected 5.0 client gets DISCONNECT 0x8B (Server shutting down,
        3.14.2.1) and the broker exits 0; a 3.1.1 client is just closed."""
        a, b = self.raw5(), self.raw5()
        old = self.raw()
        self.assertEqual(self.broker.stop(), 0)
        a.expect_disconnect(RC_SHUTTING_DOWN)
        b.expect_disconnect(RC_SHUTTING_DOWN)
        self.assertEqual(old.wait_closed(), [])


if __name__ == "__main__":
    main()
