#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 PUBLISH properties passed through unchanged and in order (3.3.2.3): Payload Format
Indicator, Content Type, Response Topic, Correlation Data, User Properties; Payload Format
Indicator 1 with invalid UTF-8 is refused (0x99)."""

from harness5 import *  # noqa: F401,F403
from harness5 import (Broker5TestCase, PacketTypes, main, paho_props, sub_options,
                      PAYLOAD_FORMAT_INDICATOR, CONTENT_TYPE, RESPONSE_TOPIC, CORRELATION_DATA,
                      USER_PROPERTY, SUBSCRIPTION_IDENTIFIER, MESSAGE_EXPIRY_INTERVAL,
                      RC_PAYLOAD_FORMAT_INVALID)

USER_PROPS = [("z-first", "1"), ("a", "x"), ("dup", "one"), ("a", "y"), ("dup", "two"),
              ("ünï", "çødé"), ("empty", "")]


class Passthrough(Broker5TestCase):

    def test_all_properties_unchanged_in_order_MQTT_3_3_2_4_to_20(self):
        """Payload Format Indicator [MQTT-3.3.2-4], Response Topic [MQTT-3.3.2-15],
        Correlation Data (binary, with zero bytes) [MQTT-3.3.2-16], User Properties unaltered
        [MQTT-3.3.2-17] and in order, repeated names included [MQTT-3.3.2-18], Content Type
        [MQTT-3.3.2-20]: QoS 0, 1 and 2, 3.3.2.3 order of user properties exact on the wire."""
        t = self.topic()
        sub = self.raw5()
        sub.subscribe5([(t, sub_options(qos=2))])
        pub = self.raw5()
        props = [(PAYLOAD_FORMAT_INDICATOR, 1), (CONTENT_TYPE, "application/json; v=1"),
                 (RESPONSE_TOPIC, t + "/reply"), (CORRELATION_DATA, b"\x00\x01\xffcorr\x00")]
        props += [(USER_PROPERTY, kv) for kv in USER_PROPS]
        for q in (0, 1, 2):
            pub.publish5(t, ('{"q": %d}' % q).encode(), qos=q, pid=q + 1, props=props)
            m = sub.recv_pub()
            self.assertEqual(m.payload, ('{"q": %d}' % q).encode())
            self.assertEqual(m.props.get(PAYLOAD_FORMAT_INDICATOR), 1)
            self.assertEqual(m.props.get(CONTENT_TYPE), "application/json; v=1")
            self.assertEqual(m.props.get(RESPONSE_TOPIC), t + "/reply")
            self.assertEqual(m.props.get(CORRELATION_DATA), b"\x00\x01\xffcorr\x00")
            self.assertEqual(m.user_props, USER_PROPS)
            self.assertEqual(len(m.props.all(CONTENT_TYPE)), 1)

    def test_payload_format_indicator_0_passed_through_MQTT_3_3_2_4(self):
        """Payload Format Indicator 0 (bytes) is forwarded too, and non-UTF-8 is fine there."""
        t = self.topic()
        sub = self.raw5()
        sub.subscribe5([(t, sub_options(qos=1))])
        self.assertEqual(self.raw5().publish5(t, b"\xff\xfe", qos=1,
                                              props=[(PAYLOAD_FORMAT_INDICATOR, 0)]), 0)
        m = sub.recv_pub()
        self.assertEqual((m.payload, m.props.get(PAYLOAD_FORMAT_INDICATOR)), (b"\xff\xfe", 0))

    def test_no_properties_added(self):
        """A message without properties is forwarded without any (property length 0)."""
        t = self.topic()
        sub = self.raw5()
        sub.subscribe5([(t, sub_options(qos=1))])
        self.raw5().publish5(t, b"plain", qos=1)
        self.assertEqual(list(sub.recv_pub().props), [])

    def test_invalid_utf8_with_format_indicator_refused_3_3_2_3_2(self):
        """Payload Format Indicator 1 with invalid UTF-8: PUBACK / PUBREC 0x99 (Payload format
        invalid, 3.3.2.3.2, 3.4.2.1) and not delivered; a valid one right after is."""
        t = self.topic()
        sub = self.raw5()
        sub.subscribe5([(t, sub_options(qos=1))])
        pub = self.raw5()
        pfi = [(PAYLOAD_FORMAT_INDICATOR, 1)]
        self.assertEqual(pub.publish5(t, b"bad\xff\xfe", qos=1, pid=1, props=pfi),
                         RC_PAYLOAD_FORMAT_INVALID)
        self.assertEqual(pub.publish5(t, b"\xed\xa0\x80", qos=2, pid=2, props=pfi),  # surrogate
                         RC_PAYLOAD_FORMAT_INVALID)
        self.assertEqual(pub.publish5(t, "gööd".encode(), qos=1, pid=3, props=pfi), 0)
        m = sub.recv_pub()
        self.assertEqual(m.payload, "gööd".encode())
        sub.expect_no_publish()
        pub.ping()  # the refusing connection stays usable

    def test_request_response_flow_4_10(self):
        """Request/response (4.10): requester with Response Information as its response topic
        base, responder answers on the Response Topic with the Correlation Data."""
        from harness5 import REQUEST_RESPONSE_INFORMATION, RESPONSE_INFORMATION
        req = self.raw5(props=[(REQUEST_RESPONSE_INFORMATION, 1)])
        base = req.connack.props.get(RESPONSE_INFORMATION)
        self.assertTrue(base)
        reply_topic = base + "/" + self.topic()
        req.subscribe5([(reply_topic, sub_options(qos=1))])
        service = self.topic("/svc")
        resp = self.raw5()
        resp.subscribe5([(service, sub_options(qos=1))])
        req.publish5(service, b"ping", qos=1,
                     props=[(RESPONSE_TOPIC, reply_topic), (CORRELATION_DATA, b"#1")])
        r = resp.recv_pub()
        resp.publish5(r.props.get(RESPONSE_TOPIC), b"pong", qos=1,
                      props=[(CORRELATION_DATA, r.props.get(CORRELATION_DATA))])
        a = req.recv_pub()
        self.assertEqual((a.topic, a.payload, a.props.get(CORRELATION_DATA)),
                         (reply_topic, b"pong", b"#1"))

    def test_paho_properties_passthrough(self):
        """paho MQTTv5 publisher and subscriber: the same properties, user property order kept
        [MQTT-3.3.2-17], [MQTT-3.3.2-18]."""
        t = self.topic()
        sub = self.paho5()
        sub.subscribe(t, qos=1)
        props = paho_props(PacketTypes.PUBLISH, PayloadFormatIndicator=1,
                           ContentType="text/plain", ResponseTopic=t + "/r",
                           CorrelationData=b"\x00cd", UserProperty=USER_PROPS)
        self.paho5().publish(t, "héllo".encode(), qos=1, properties=props)
        m = sub.recv()
        p = m.properties
        self.assertEqual(m.payload, "héllo".encode())
        self.assertEqual((p.PayloadFormatIndicator, p.ContentType, p.ResponseTopic,
                          p.CorrelationData), (1, "text/plain", t + "/r", b"\x00cd"))
        self.assertEqual(p.UserProperty, USER_PROPS)


if __name__ == "__main__":
    main()
