#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 enhanced authentication (section 4.12) with the broker's HMAC-SHA256-CHALLENGE
method: CONNECT -> AUTH 0x18 (challenge) -> AUTH 0x18 (HMAC) -> CONNACK, failure, unknown
method, AUTH outside an exchange, and re-authentication (AUTH 0x19)."""

import hashlib
import hmac
import unittest

from harness5 import (AUTH, AUTHENTICATION_DATA, AUTHENTICATION_METHOD, CONNACK, Broker5TestCase,  # noqa: E501
                      Connack5, RawClient5, auth5_packet, connect5_packet, decode_properties,
                      is_mosquitto, publish5_packet, reason_of, unique)

METHOD = "HMAC-SHA256-CHALLENGE"
SECRET = b"integration-test-secret"


def auth_data(packet):
    """(reason, method, data) of an AUTH packet."""
    reason = packet.body[0]
    props, _ = decode_properties(packet.body, 1)
    return reason, props.get(AUTHENTICATION_METHOD), props.get(AUTHENTICATION_DATA)


def as_bytes(value):
    return value if isinstance(value, bytes) else value.encode()


@unittest.skipIf(is_mosquitto(), "mqttd's own enhanced authentication method")
class EnhancedAuthTest(Broker5TestCase):
    BROKER_ARGS = ("--auth-hmac-secret", SECRET.decode())

    def start_exchange(self, client_id):
        c = RawClient5(self.broker)
        self._cleanup_clients.append(c)
        c.send(connect5_packet(client_id, props=[(AUTHENTICATION_METHOD, METHOD)]))
        p = c.expect(AUTH)
        reason, method, challenge = auth_data(p)
        self.assertEqual(reason, 0x18)  # Continue authentication [MQTT-4.12.0-2]
        self.assertEqual(method, METHOD)
        self.assertEqual(len(as_bytes(challenge)), 32)
        return c, as_bytes(challenge)

    def test_challenge_answered_with_the_right_hmac_connects_MQTT_4_12_0_2(self):
        c, challenge = self.start_exchange(unique("auth-ok"))
        answer = hmac.new(SECRET, challenge, hashlib.sha256).digest()
        c.send(auth5_packet(0x18, [(AUTHENTICATION_METHOD, METHOD), (AUTHENTICATION_DATA, answer)]))
        ack = Connack5(c.expect(CONNACK))
        self.assertEqual(ack.rc, 0)
        self.assertEqual(ack.props.get(AUTHENTICATION_METHOD), METHOD)  # [MQTT-3.2.2-? method echoed]
        # The connection is usable.
        c.send(publish5_packet("auth/ok", b"x", qos=1, pid=7))
        self.assertEqual(c.wait_for(4, 7).type, 4)

    def test_wrong_hmac_gets_connack_not_authorized_MQTT_4_12_0_3(self):
        c, challenge = self.start_exchange(unique("auth-bad"))
        wrong = hmac.new(b"another secret", challenge, hashlib.sha256).digest()
        c.send(auth5_packet(0x18, [(AUTHENTICATION_METHOD, METHOD), (AUTHENTICATION_DATA, wrong)]))
        ack = Connack5(c.expect(CONNACK))
        self.assertEqual(ack.rc, 0x87)
        c.wait_closed()

    def test_unknown_method_gets_0x8C_MQTT_4_12_0_1(self):
        c = self.raw5_unconnected()
        c.send(connect5_packet(unique("auth-unknown"), props=[(AUTHENTICATION_METHOD, "SCRAM-SHA-1")]))
        self.assertEqual(Connack5(c.expect(CONNACK)).rc, 0x8C)

    def test_other_packet_during_exchange_is_a_protocol_error_MQTT_4_12_0_4(self):
        c, _ = self.start_exchange(unique("auth-proto"))
        c.send(publish5_packet("auth/early", b"x", qos=0))
        ack = Connack5(c.expect(CONNACK))  # before CONNACK: the error goes in CONNACK
        self.assertEqual(ack.rc, 0x82)

    def test_reauthentication_succeeds_and_fails_MQTT_4_12_1_1(self):
        c, challenge = self.start_exchange(unique("auth-re"))
        c.send(auth5_packet(0x18, [(AUTHENTICATION_METHOD, METHOD),
                                   (AUTHENTICATION_DATA, hmac.new(SECRET, challenge, hashlib.sha256).digest())]))
        self.assertEqual(Connack5(c.expect(CONNACK)).rc, 0)
        # Re-authenticate: AUTH 0x19 -> AUTH 0x18 challenge -> answer -> AUTH 0x00.
        c.send(auth5_packet(0x19, [(AUTHENTICATION_METHOD, METHOD)]))
        reason, _, challenge2 = auth_data(c.expect(AUTH))
        self.assertEqual(reason, 0x18)
        self.assertNotEqual(as_bytes(challenge2), challenge)
        c.send(auth5_packet(0x18, [(AUTHENTICATION_METHOD, METHOD),
                                   (AUTHENTICATION_DATA, hmac.new(SECRET, as_bytes(challenge2), hashlib.sha256).digest())]))
        reason, method, _ = auth_data(c.expect(AUTH))
        self.assertEqual((reason, method), (0, METHOD))
        # A failed re-authentication disconnects with 0x87 [MQTT-4.12.1-2].
        c.send(auth5_packet(0x19, [(AUTHENTICATION_METHOD, METHOD)]))
        c.expect(AUTH)
        c.send(auth5_packet(0x18, [(AUTHENTICATION_METHOD, METHOD), (AUTHENTICATION_DATA, b"nope")]))
        c.expect_disconnect(0x87)

    def test_auth_with_another_method_is_a_protocol_error(self):
        c, challenge = self.start_exchange(unique("auth-other"))
        c.send(auth5_packet(0x18, [(AUTHENTICATION_METHOD, "OTHER"), (AUTHENTICATION_DATA, b"x")]))
        self.assertEqual(Connack5(c.expect(CONNACK)).rc, 0x82)


if __name__ == "__main__":
    unittest.main()
