#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Version interop: 3.1.1 and 5.0 clients on one broker. A 3.1.1 subscriber gets messages
from a 5.0 publisher with the properties dropped (a 3.1.1 PUBLISH has none), and a 5.0
subscriber gets messages from a 3.1.1 publisher with an empty property list [MQTT-2.2.2-1]."""

from harness5 import *  # noqa: F401,F403
from harness5 import (Broker5TestCase, PacketTypes, main, paho, paho_props, sub_options,
                      Publish5, PUBLISH, USER_PROPERTY, CONTENT_TYPE, MESSAGE_EXPIRY_INTERVAL,
                      PAYLOAD_FORMAT_INDICATOR, CORRELATION_DATA, RESPONSE_TOPIC,
                      WILL_DELAY_INTERVAL)

V5_PROPS = [(PAYLOAD_FORMAT_INDICATOR, 1), (MESSAGE_EXPIRY_INTERVAL, 300),
            (CONTENT_TYPE, "text/plain"), (RESPONSE_TOPIC, "r/t"), (CORRELATION_DATA, b"cd"),
            (USER_PROPERTY, ("k", "v"))]


class Interop(Broker5TestCase):

    def test_v5_publisher_to_v311_subscriber_properties_dropped(self):
        """5.0 PUBLISH with properties, QoS 0/1/2 -> 3.1.1 raw subscriber: a 3.1.1 PUBLISH whose
        payload is exactly the published bytes (no property block)."""
        t = self.topic()
        old = self.raw()  # 3.1.1 (harness default level 4)
        old.subscribe([(t, 2)])
        new = self.raw5()
        for q in (0, 1, 2):
            new.publish5(t, b"payload-%d" % q, qos=q, pid=q + 1, props=V5_PROPS)
            p = old.recv_publish()
            self.assertEqual((p.topic, p.qos, p.payload), (t, q, b"payload-%d" % q))

    def test_v311_publisher_to_v5_subscriber_MQTT_2_2_2_1(self):
        """3.1.1 PUBLISH -> 5.0 subscriber: a 5.0 PUBLISH with Property Length 0
        [MQTT-2.2.2-1], QoS 0/1/2."""
        t = self.topic()
        new = self.raw5()
        new.subscribe5([(t, sub_options(qos=2))])
        old = self.raw()
        for q in (0, 1, 2):
            old.publish(t, b"old-%d" % q, qos=q, pid=q + 1)
            m = new.recv_pub()
            self.assertEqual((m.topic, m.qos, m.payload, list(m.props)),
                             (t, q, b"old-%d" % q, []))

    def test_v5_subscription_id_not_leaked_to_v311(self):
        """Per-receiver 5.0 additions (Subscription Identifier, Topic Alias) appear only for the
        5.0 subscriber; the 3.1.1 one gets the bare message."""
        from harness5 import TOPIC_ALIAS_MAXIMUM
        t = self.topic()
        new = self.raw5(props=[(TOPIC_ALIAS_MAXIMUM, 5)])
        new.subscribe5([(t, sub_options(qos=1))], sub_id=9)
        old = self.raw()
        old.subscribe([(t, 1)])
        pub = self.raw5()
        for i in range(2):
            pub.publish5(t, b"%d" % i, qos=1, props=V5_PROPS)
        for i in range(2):
            self.assertEqual(old.recv_publish().payload, b"%d" % i)
            m = new.recv_pub()
            self.assertEqual((m.payload, m.sub_ids), (b"%d" % i, [9]))

    def test_retained_from_v5_to_v311(self):
        """A retained 5.0 message with properties, sent at subscribe to a 3.1.1 client."""
        t = self.topic()
        self.raw5().publish5(t, b"ret5", qos=1, retain=True, props=V5_PROPS)
        old = self.raw()
        old.subscribe([(t, 1)])
        p = old.recv_publish()
        self.assertEqual((p.payload, p.retain), (b"ret5", True))
        self.raw5().publish5(t, b"", qos=1, retain=True)

    def test_v5_will_to_v311_subscriber(self):
        """A 5.0 will with properties reaches a 3.1.1 subscriber as a plain message."""
        t = self.topic()
        old = self.raw()
        old.subscribe([(t, 1)])
        c = self.raw5(will=dict(topic=t, payload=b"will5", qos=1,
                                props=[(WILL_DELAY_INTERVAL, 0)] + V5_PROPS))
        c.close()
        self.assertEqual(old.recv_publish().payload, b"will5")

    def test_paho_mixed_versions_both_ways(self):
        """paho MQTTv311 and MQTTv5 clients exchange QoS 0/1/2 messages both ways; the 5.0 side
        sees the 3.1.1 messages without properties."""
        t311, t5 = self.topic("/to311"), self.topic("/to5")
        old = self.paho(protocol=paho.MQTTv311)
        new = self.paho5()
        old.subscribe(t311, 2)
        new.subscribe(t5, qos=2)
        for q in (0, 1, 2):
            new.publish(t311, b"n%d" % q, qos=q, properties=paho_props(
                PacketTypes.PUBLISH, UserProperty=[("a", "b")], ContentType="x/y"))
            old.publish(t5, b"o%d" % q, qos=q)
            m = old.recv()
            self.assertEqual((m.payload, m.qos), (b"n%d" % q, q))
            m = new.recv()
            self.assertEqual((m.payload, m.qos), (b"o%d" % q, q))
            self.assertFalse(hasattr(m.properties, "UserProperty"))


if __name__ == "__main__":
    main()
