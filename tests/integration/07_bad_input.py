#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Bad input: each case closes only the offending connection, publishes its will where the
spec says so (any close after CONNECT that is not a DISCONNECT [MQTT-3.1.2-8]), and another
client, connected throughout, keeps working; the broker does not crash.

Generic rule cited where no statement is more specific: [MQTT-4.8.0-1] (protocol violation:
close the network connection)."""

import struct
import subprocess
import tempfile
import time

import harness
from harness import (DISCONNECT, PINGREQ, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL,
                     BrokerTestCase, PINGREQ_BYTES, connect_packet,
                     mstr, packet, publish_packet, subscribe_packet, unique,
                     unsubscribe_packet)


class BadInputCase(BrokerTestCase):

    def setUp(self):
        super().setUp()
        # A bystander with traffic in flight across every case.
        self.by_topic = unique("bystander")
        self.bystander = self.raw()
        self.bystander.subscribe([(self.by_topic + "/#", 2)])
        self.will_topic = self.by_topic + "/will"

    def tearDown(self):
        try:
            self.assert_broker_alive()
            self.bystander.publish(self.by_topic + "/still", b"alive", qos=2, pid=100)
            p = self.bystander.recv_publish()
            self.assertEqual((p.topic, p.payload), (self.by_topic + "/still", b"alive"))
            self.bystander.ping()
            fresh = harness.RawClient(self.broker)
            fresh.connect()
            fresh.ping()
            fresh.disconnect()
        finally:
            super().tearDown()

    def offender(self, will=True, **kw):
        if will:
            kw["will"] = dict(topic=self.will_topic, payload=b"will:" + self._testMethodName[:40]
                              .encode(), qos=1)
        return self.raw(**kw)

    def assert_closes(self, data, will=True, connected=True):
        """Send data on a (connected, with will) connection: it must be closed; the will
        must be published if `will`."""
        c = self.offender(will=will) if connected else self.raw_unconnected()
        try:
            c.send(data)
        except OSError:  # the broker may close before it has read everything
            pass
        got = c.wait_closed()
        if not connected:
            self.assertEqual(got, [], "no CONNACK/answer expected before CONNECT")
        if connected and will:
            p = self.bystander.recv_publish()
            self.assertEqual((p.topic, p.payload[:5]), (self.will_topic, b"will:"))
        return got


class BadInputTest(BadInputCase):

    # --- fixed header -------------------------------------------------------------------

    def test_malformed_remaining_length_five_bytes_closes_MQTT_4_8_0_1(self):
        # 2.2.3: at most four Remaining Length bytes.
        self.assert_closes(b"\x30\xff\xff\xff\xff\x7f")

    def test_reserved_packet_type_0_closes_MQTT_4_8_0_1(self):
        self.assert_closes(b"\x00\x00")

    def test_reserved_packet_type_15_closes_MQTT_4_8_0_1(self):
        self.assert_closes(b"\xf0\x00")

    def test_subscribe_wrong_flags_closes_MQTT_3_8_1_1(self):
        self.assert_closes(subscribe_packet(1, [("a", 0)]).replace(b"\x82", b"\x80", 1))

    def test_unsubscribe_wrong_flags_closes_MQTT_3_10_1_1(self):
        self.assert_closes(unsubscribe_packet(1, ["a"]).replace(b"\xa2", b"\xa0", 1))

    def test_pubrel_wrong_flags_closes_MQTT_3_6_1_1(self):
        self.assert_closes(packet(PUBREL, 0x00, b"\x00\x01"))

    def test_publish_qos_3_closes_MQTT_3_3_1_4(self):
        self.assert_closes(packet(PUBLISH, 0x06, mstr("a") + b"\x00\x01x"))

    def test_disconnect_wrong_flags_closes_and_publishes_will_MQTT_3_14_1_1(self):
        self.assert_closes(packet(DISCONNECT, 0x01))

    def test_connect_wrong_flags_closes_MQTT_2_2_2_2(self):
        data = bytearray(connect_packet("cflags"))
        data[0] |= 0x01
        self.assert_closes(bytes(data), connected=False)

    @harness.skip_under_mosquitto("Mosquitto 2.0.11 ignores reserved flags on PINGREQ, PUBACK, "
                                  "PUBREC and PUBCOMP for MQTT 3.1.1")
    def test_other_packets_wrong_flags_close_MQTT_2_2_2_2(self):
        for ptype, body in ((PINGREQ, b""), (PUBACK, b"\x00\x01"), (PUBREC, b"\x00\x01"),
                            (PUBCOMP, b"\x00\x01")):
            with self.subTest(packet=harness.NAMES[ptype]):
                self.assert_closes(packet(ptype, 0x02, body))

    # --- packet order --------------------------------------------------------------------

    def test_first_packet_not_connect_closes_MQTT_3_1_0_1(self):
        for name, data in (("PUBLISH", publish_packet(self.by_topic + "/x", b"sneak")),
                           ("PINGREQ", PINGREQ_BYTES),
                           ("SUBSCRIBE", subscribe_packet(1, [("#", 0)]))):
            with self.subTest(first=name):
                self.assert_closes(data, connected=False)
        # The sneaked PUBLISH was not routed: the next message on the topic tree is ours.
        self.raw().publish(self.by_topic + "/x", b"barrier", qos=1)
        self.assertEqual(self.bystander.recv_publish().payload, b"barrier")

    def test_second_connect_closes_MQTT_3_1_0_2(self):
        self.assert_closes(connect_packet(unique("second")), will=False)

    @harness.skip_under_mosquitto("Mosquitto 2.0.11 drops the will when it refuses a second "
                                  "CONNECT (against [MQTT-3.1.2-8])")
    def test_second_connect_publishes_will_MQTT_3_1_0_2_MQTT_3_1_2_8(self):
        self.assert_closes(connect_packet(unique("second")), will=True)

    # --- strings and topics --------------------------------------------------------------

    def test_invalid_utf8_in_publish_topic_closes_MQTT_1_5_3_1_MQTT_3_3_2_1(self):
        for name, raw in (("0xFF", b"a/\xff"), ("overlong", b"a/\xc0\xaf"),
                          ("surrogate U+D800", b"a/\xed\xa0\x80"), ("truncated", b"a/\xe2\x82")):
            with self.subTest(utf8=name):
                self.assert_closes(publish_packet(raw, b"x", qos=1, pid=1))

    def test_nul_in_publish_topic_closes_MQTT_1_5_3_2_MQTT_4_7_3_2(self):
        self.assert_closes(publish_packet(b"a/\x00/b", b"x"))

    def test_wildcard_in_publish_topic_closes_MQTT_3_3_2_2_MQTT_4_7_1_1(self):
        for topic in ("a/+", "a/#", "+", "#", "a/+/b"):
            with self.subTest(topic=topic):
                self.assert_closes(publish_packet(topic, b"x"))

    def test_empty_publish_topic_closes_MQTT_4_7_3_1(self):
        self.assert_closes(publish_packet("", b"x"))

    def test_invalid_utf8_in_subscribe_filter_closes_MQTT_3_8_3_1(self):
        self.assert_closes(subscribe_packet(1, [(b"a/\xff", 0)]))

    def test_nul_in_subscribe_filter_closes_MQTT_1_5_3_2(self):
        self.assert_closes(subscribe_packet(1, [(b"a/\x00", 0)]))

    def test_invalid_utf8_in_unsubscribe_filter_closes_MQTT_3_10_3_1(self):
        self.assert_closes(unsubscribe_packet(1, [b"a/\xff"]))

    def test_invalid_utf8_client_id_closes_without_connack_MQTT_3_1_3_4(self):
        self.assert_closes(connect_packet(b"id\xff"), connected=False)

    def test_invalid_utf8_will_topic_closes_without_connack_MQTT_3_1_3_10(self):
        self.assert_closes(connect_packet("wt", will=dict(topic=b"w\xed\xa0\x80", payload=b"")),
                           connected=False)

    def test_zero_width_no_break_space_is_valid_MQTT_1_5_3_3(self):
        t = self.by_topic + "/\ufeffbom"
        c = self.raw()
        c.publish(t, b"bom", qos=1)
        p = self.bystander.recv_publish()
        self.assertEqual((p.topic, p.payload), (t, b"bom"))
        c.ping()

    # --- other malformed packets ---------------------------------------------------------

    def test_publish_qos1_packet_id_0_closes_MQTT_2_3_1_1(self):
        self.assert_closes(publish_packet("a", b"x", qos=1, pid=0))

    def test_subscribe_packet_id_0_closes_MQTT_2_3_1_1(self):
        self.assert_closes(subscribe_packet(0, [("a", 0)]))

    def test_topic_length_beyond_packet_closes_MQTT_4_8_0_1(self):
        self.assert_closes(packet(PUBLISH, 0, struct.pack("!H", 32) + b"abc"))


class BadInputLogTest(BadInputCase):

    @harness.skip_under_mosquitto("the one-line log contract is mqttd's (Mosquitto logs "
                                  "several lines per connection)")
    def test_bad_input_logged_once_naming_the_client(self):
        cases = [(unique("badutf8"), publish_packet(b"a/\xff", b"x")),
                 (unique("badtype"), b"\xf0\x00"),
                 (unique("badlen"), b"\x30\xff\xff\xff\xff\x7f")]
        for cid, data in cases:
            c = self.raw(client_id=cid)
            c.send(data)
            c.wait_closed()

        def lines(cid):  # besides the "client connected" event every connection logs
            return [l for l in self.broker.logs.splitlines()
                    if cid in l and "client connected" not in l]

        deadline = time.monotonic() + harness.WAIT
        while time.monotonic() < deadline and not all(lines(cid) for cid, _ in cases):
            time.sleep(0.05)  # polling the log with a deadline
        for cid, _ in cases:
            self.assertEqual(len(lines(cid)), 1, "log lines for %s: %r" % (cid, lines(cid)))


class MaxPacketSizeTest(BadInputCase):
    BROKER_ARGS = ["--max-packet-size", "1024"]

    def test_packet_larger_than_max_closes_and_publishes_will(self):
        # Not in MQTT 3.1.1: the configured maximum (--max-packet-size).
        self.assert_closes(publish_packet(self.by_topic + "/big", b"x" * 2000, qos=1, pid=1))

    def test_packet_within_max_is_accepted(self):
        c = self.raw()
        c.publish(self.by_topic + "/fits", b"y" * 900, qos=1)
        p = self.bystander.recv_publish()
        self.assertEqual((p.topic, len(p.payload)), (self.by_topic + "/fits", 900))



class DefaultMaxPacketSizeTest(BadInputCase):
    """Default --max-packet-size is 16 MiB: payloads of a few MiB (firmware chunks, images) pass
    (Mosquitto's default is unlimited, EMQX's 1 MB, HiveMQ's 256 MB)."""

    MIB = 1024 * 1024

    @harness.skip_under_mosquitto("Mosquitto has no default packet size limit")
    def test_default_max_packet_size_16_mib(self):
        c = self.raw()
        c.publish(self.by_topic + "/under", b"u" * (16 * self.MIB - 1024), qos=1)
        p = self.bystander.recv_publish()
        self.assertEqual((p.topic, len(p.payload)), (self.by_topic + "/under",
                                                     16 * self.MIB - 1024))
        self.assert_closes(publish_packet(self.by_topic + "/over", b"o" * (16 * self.MIB + 1024),
                                          qos=1, pid=2))

    def test_mosquitto_pub_of_a_1_mib_file(self):
        """mosquitto_pub -f of a 1 MiB file reaches a subscriber (issue 14's new-user case)."""
        with tempfile.NamedTemporaryFile() as f:
            f.write(b"m" * self.MIB)
            f.flush()
            out = subprocess.run(["mosquitto_pub", "-h", self.broker.host, "-p",
                                  str(self.broker.port), "-t", self.by_topic + "/file", "-q", "1",
                                  "-f", f.name], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        p = self.bystander.recv_publish()
        self.assertEqual((p.topic, len(p.payload)), (self.by_topic + "/file", self.MIB))


if __name__ == "__main__":
    harness.main()
