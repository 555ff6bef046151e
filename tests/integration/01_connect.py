#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""CONNECT / CONNACK: return codes, protocol name and level, client ids, flags, payload.

Return codes 0x03 (server unavailable), 0x04 (bad user name or password) and 0x05 (not
authorized) need authentication, which comes in a later issue; they are not tested here.
"""

import harness
from harness import (CONNACK, connect_packet, mstr, packet,
                     publish_packet, BrokerTestCase)


class ConnectTest(BrokerTestCase):

    def expect_closed_without_connack(self, data):
        """[MQTT-3.1.4-1]: invalid CONNECT → close without CONNACK."""
        c = self.raw_unconnected()
        c.send(data)
        got = c.wait_closed()
        self.assertEqual(got, [], "expected no CONNACK before close")

    def test_accepted_connack_bytes_MQTT_3_1_4_4_MQTT_3_2_0_1_MQTT_3_2_2_1(self):
        # CONNACK is the first packet [MQTT-3.2.0-1], return code 0 [MQTT-3.1.4-4],
        # session present 0 for clean session [MQTT-3.2.2-1].
        c = self.raw_unconnected()
        c.send(connect_packet(self.topic("id")[:23], clean=True))
        p = c.recv()
        self.assertEqual(p.type, CONNACK)
        self.assertEqual(p.flags, 0)
        self.assertEqual(p.body, b"\x00\x00")

    def test_mqtt31_mqisdp_level3_accepted(self):
        # MQTT 3.1: protocol name "MQIsdp", level 3, on the same listener.
        c = self.raw_unconnected()
        c.send(connect_packet("v31client", proto="MQIsdp", level=3))
        self.assertEqual(c.expect(CONNACK).body[1], 0)
        c.ping()

    def test_unsupported_level_connack_0x01_then_close_MQTT_3_1_2_2_MQTT_3_2_2_4_5(self):
        # [MQTT-3.1.2-2] CONNACK 0x01 for an unsupported level; session present 0
        # [MQTT-3.2.2-4]; then the connection is closed [MQTT-3.2.2-5].
        for level in (2, 6):
            with self.subTest(level=level):
                c = self.raw_unconnected()
                c.send(connect_packet("lvl%d" % level, level=level))
                got = c.wait_closed()
                self.assertEqual(len(got), 1, got)
                self.assertEqual(got[0].type, CONNACK)
                self.assertEqual(got[0].body, b"\x00\x01")

    def test_bad_protocol_name_closed_MQTT_3_1_2_1(self):
        # [MQTT-3.1.2-1] the server MAY disconnect; it must not accept the connection. mqttd
        # closes without any CONNACK, whatever the level says (a 3.1.1-shaped CONNACK would
        # not parse as 5.0's).
        for level in (4, 5):
            with self.subTest(level=level):
                c = self.raw_unconnected()
                c.send(connect_packet("badname", proto="MQTX", level=level))
                got = c.wait_closed()
                self.assertFalse([p for p in got if p.type == CONNACK and p.body[1] == 0],
                                 "CONNECT with protocol name MQTX accepted: %r" % got)
                if not harness.is_mosquitto():
                    self.assertEqual(got, [], "mqttd answers a non-MQTT CONNECT with nothing")

    def test_reserved_connect_flag_closed_MQTT_3_1_2_3(self):
        self.expect_closed_without_connack(connect_packet("resv", reserved=True))

    def test_will_qos_without_will_flag_closed_MQTT_3_1_2_13(self):
        self.expect_closed_without_connack(connect_packet("wq", flags_override=0x02 | 0x08))

    def test_will_retain_without_will_flag_closed_MQTT_3_1_2_15(self):
        self.expect_closed_without_connack(connect_packet("wr", flags_override=0x02 | 0x20))

    def test_will_qos_3_closed_MQTT_3_1_2_14(self):
        self.expect_closed_without_connack(
            connect_packet("wq3", will=dict(topic="w/q3", payload=b"x", qos=3)))

    def test_password_without_user_name_closed_MQTT_3_1_2_22(self):
        self.expect_closed_without_connack(connect_packet("pwonly", password="secret"))

    def test_will_flag_without_will_fields_closed_MQTT_3_1_2_9(self):
        # Will flag set but the payload ends after the client id.
        body = mstr("MQTT") + bytes([4, 0x02 | 0x04]) + b"\x00\x3c" + mstr("nowill")
        self.expect_closed_without_connack(packet(1, 0, body))

    def test_user_name_flag_without_user_name_closed_MQTT_3_1_2_19(self):
        body = mstr("MQTT") + bytes([4, 0x02 | 0x80]) + b"\x00\x3c" + mstr("nouser")
        self.expect_closed_without_connack(packet(1, 0, body))

    def test_zero_length_client_id_clean_session_assigned_unique_MQTT_3_1_3_6(self):
        # Two clients with a zero-length id are both accepted and get distinct ids: if they
        # shared one, the second would take over (and close) the first [MQTT-3.1.4-2].
        a = self.raw(client_id="", clean=True)
        b = self.raw(client_id="", clean=True)
        t = self.topic()
        self.assertEqual(a.subscribe([(t, 0)]), [0])
        b.publish(t, b"hello", qos=0)
        self.assertEqual(a.recv_publish().payload, b"hello")
        a.ping()
        b.ping()

    def test_zero_length_client_id_persistent_rejected_0x02_MQTT_3_1_3_8(self):
        # [MQTT-3.1.3-8] CONNACK 0x02 then close; session present 0 [MQTT-3.2.2-4].
        c = self.raw_unconnected()
        c.send(connect_packet("", clean=False))
        got = c.wait_closed()
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0].type, CONNACK)
        self.assertEqual(got[0].body, b"\x00\x02")

    def test_rejected_connect_following_data_ignored_MQTT_3_1_4_5(self):
        # A rejected CONNECT followed (same write) by a retained PUBLISH: the PUBLISH must
        # not be processed.
        t = self.topic()
        c = self.raw_unconnected()
        c.send(connect_packet("", clean=False) + publish_packet(t, b"leak", retain=True))
        c.wait_closed()
        # Barrier: a retained message on a sibling topic that does arrive.
        pub = self.raw()
        pub.publish(t + "/z", b"barrier", qos=1, retain=True)
        sub = self.raw()
        sub.subscribe([(t + "/#", 0), (t, 0)])
        p = sub.recv_publish()
        self.assertEqual(p.payload, b"barrier")
        sub.expect_none()

    def test_client_id_23_chars_accepted_MQTT_3_1_3_5(self):
        cid = "aZ09" * 5 + "xyz"
        self.assertEqual(len(cid), 23)
        self.raw(client_id=cid).ping()

    def test_user_name_password_and_will_parsed_MQTT_3_1_3_1(self):
        # Payload order: client id, will topic, will message, user name, password. Anonymous
        # access is allowed, so the credentials are only parsed; the will proves the payload
        # was split at the right places.
        t = self.topic()
        watcher = self.raw()
        watcher.subscribe([(t, 1)])
        c = self.raw(client_id="withcreds", username="user", password=b"\x00\xffpw",
                     will=dict(topic=t, payload=b"creds-will", qos=1))
        c.close()
        p = watcher.recv_publish()
        self.assertEqual((p.topic, p.payload), (t, b"creds-will"))

    def test_server_closes_after_disconnect(self):
        # 3.14.4: on DISCONNECT the server SHOULD close the network connection.
        c = self.raw()
        c.send(harness.DISCONNECT_BYTES)
        self.assertEqual(c.wait_closed(), [])


if __name__ == "__main__":
    harness.main()
