#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Fan-out with one encoding per (protocol version, QoS, RETAIN) on a worker
(node/session/publish_cache.h): every subscriber still gets exactly the bytes of its own PUBLISH.

Subscribers of 3.1, 3.1.1 and 5.0 at QoS 0/1/2 (downgraded [MQTT-3.8.4-6]), several per variant
so that the shared encoding is used, each with its own packet identifier sequence (offset by
warm-up messages, so bytes copied without their own packet id would show); and 5.0 receivers
that must not share: a Subscription Identifier [MQTT-3.3.4-3], a Topic Alias Maximum, Message
Expiry counted down [MQTT-3.3.2-6], Retain As Published [MQTT-3.3.1-12], and a Maximum Packet
Size that drops what is larger [MQTT-3.1.2-25]. (Read access is checked before the cache is
asked: 15_security.py test_read_denied_at_delivery_for_wildcard_subscription.)
"""

from harness5 import (CONTENT_TYPE, CORRELATION_DATA, MAXIMUM_PACKET_SIZE,
                      MESSAGE_EXPIRY_INTERVAL, PUBLISH, SUBSCRIPTION_IDENTIFIER, TOPIC_ALIAS,
                      TOPIC_ALIAS_MAXIMUM, USER_PROPERTY, Broker5TestCase, Publish5, RawClient,
                      main, packet, publish5_packet, sub_options, unique)
from harness import publish_packet

MESSAGE_PROPS = [(CONTENT_TYPE, "text/plain"), (CORRELATION_DATA, b"\x00c"),
                 (USER_PROPERTY, ("b", "2")), (USER_PROPERTY, ("a", "1"))]
SMALL_MAX_PACKET = 120


def props_in_table_order(props):
    """The broker writes properties in identifier order (user properties in theirs)."""
    return sorted(props, key=lambda p: p[0])


class Receiver:
    """One subscriber: its client, what it subscribed with, and its next packet identifier."""

    def __init__(self, name, client, version, qos, sub_id=None, alias=False, rap=False,
                 max_packet=None):
        self.name, self.client, self.version, self.qos = name, client, version, qos
        self.sub_id, self.alias, self.rap, self.max_packet = sub_id, alias, rap, max_packet
        self.next_pid = 1
        self.aliases = {}

    def expected(self, topic, payload, qos, retain, props, expiry=None):
        """The exact PUBLISH this receiver must get, or None when it must get nothing."""
        q = min(qos, self.qos)
        r = retain and self.rap
        pid = self.next_pid if q else None
        if self.version != 5:
            return publish_packet(topic, payload, q, r, False, pid)
        own = list(props)
        if expiry is not None:
            own.append((MESSAGE_EXPIRY_INTERVAL, expiry))
        if self.sub_id is not None:
            own.append((SUBSCRIPTION_IDENTIFIER, self.sub_id))
        wire_topic = topic
        if self.alias:
            if topic in self.aliases:
                wire_topic = ""
            else:
                self.aliases[topic] = len(self.aliases) + 1
            own.append((TOPIC_ALIAS, self.aliases[topic]))
        data = publish5_packet(wire_topic, payload, q, r, False, pid or 1,
                               props_in_table_order(own))
        if self.max_packet is not None and len(data) > self.max_packet:
            return None
        return data


class FanOutEncodeOnce(Broker5TestCase):
    """All sessions on one worker: deliveries are consecutive and the cache is always used."""

    BROKER_ARGS = ("--workers", "1")

    def connect(self, name, version, qos, warm, topic, **options):
        client_id = unique("fan-" + name)
        if version == 5:
            connect_props = []
            if options.get("alias"):
                connect_props.append((TOPIC_ALIAS_MAXIMUM, 5))
            if options.get("max_packet"):
                connect_props.append((MAXIMUM_PACKET_SIZE, options["max_packet"]))
            c = self.raw5(client_id, props=connect_props)
            subscribe_options = sub_options(qos=qos, retain_as_published=options.get("rap"))
            filters = [(topic, subscribe_options), (topic + "/warm/" + name, sub_options(qos=1))]
            c.subscribe5(filters, sub_id=options.get("sub_id"))
        else:
            c = RawClient(self.broker)
            self._cleanup_clients.append(c)
            level, proto = (3, "MQIsdp") if version == 3 else (4, "MQTT")
            c.connect(client_id, level=level, proto=proto)
            c.subscribe([(topic, qos), (topic + "/warm/" + name, 1)])
        r = Receiver(name, c, version, qos, **options)
        r.warm = warm
        return r

    def receivers(self, topic):
        # In session id order, which is delivery order: the sharing receivers of a variant come
        # first, the Maximum Packet Size one after two of its variant.
        specs = []
        for version in (4, 3, 5):
            for qos in (0, 1, 2):
                for i in range(3 if version != 3 else 1):
                    specs.append(("v%dq%d-%d" % (version, qos, i), version, qos, {}))
        specs += [("subid", 5, 1, {"sub_id": 7}), ("alias", 5, 1, {"alias": True}),
                  ("rap1", 5, 1, {"rap": True}), ("rap2", 5, 1, {"rap": True}),
                  ("small", 5, 1, {"max_packet": SMALL_MAX_PACKET})]
        out = []
        for n, (name, version, qos, options) in enumerate(specs):
            out.append(self.connect(name, version, qos, n % 5, topic, **options))
        return out

    def warm_up(self, pub, topic, receivers):
        """Receiver with warm = k gets k QoS 1 messages first: its packet ids start at k + 1."""
        for r in receivers:
            warm_topic = topic + "/warm/" + r.name
            if r.alias and r.warm:
                r.aliases[warm_topic] = 1
            for i in range(r.warm):
                pub.publish5(warm_topic, b"w%d" % i, qos=1, pid=1)
                got = r.client.recv(timeout=10)
                self.assertEqual(got.type, PUBLISH, (r.name, got))
                r.client.ack(got)
                r.next_pid += 1

    def check(self, receivers, topic, payload, qos, retain=False, props=(), expiry=None):
        for r in receivers:
            want_expiry = None
            got = None
            exp = r.expected(topic, payload, qos, retain, props, None)
            if expiry is not None and r.version == 5:
                got = r.client.recv(timeout=10)
                # Counted down from `expiry` while it waited: the one value that may differ.
                m = Publish5(got) if got.type == PUBLISH else None
                self.assertIsNotNone(m, (r.name, got))
                want_expiry = m.props.get(MESSAGE_EXPIRY_INTERVAL)
                self.assertTrue(expiry - 2 <= want_expiry <= expiry, (r.name, want_expiry))
                exp = r.expected(topic, payload, qos, retain, props, want_expiry)
            if exp is None:  # too large: nothing arrives (checked at the end)
                if min(qos, r.qos):
                    r.next_pid += 1  # the packet id was taken before the size was known
                continue
            if got is None:
                got = r.client.recv(timeout=10)
            self.assertEqual(packet(got.type, got.flags, got.body), exp,
                             "%s: got %r" % (r.name, got))
            r.client.ack(got)
            if min(qos, r.qos):
                r.next_pid += 1

    def test_each_receiver_gets_its_own_bytes(self):
        t = self.topic()
        receivers = self.receivers(t)
        pub = self.raw5(unique("fan-pub"))
        self.warm_up(pub, t, receivers)
        # The shared encoding of 5.0 carries the message's own properties; 3.x none.
        self.check_publish(pub, receivers, t, b"m1", 2, props=MESSAGE_PROPS)
        self.check_publish(pub, receivers, t, b"m2", 1, props=MESSAGE_PROPS)
        self.check_publish(pub, receivers, t, b"m3", 0)
        # Message Expiry: each 5.0 receiver gets the remaining interval, so none shares.
        self.check_publish(pub, receivers, t, b"m4", 2, props=MESSAGE_PROPS, expiry=100)
        # Larger than the small receiver's Maximum Packet Size: dropped for it only.
        self.check_publish(pub, receivers, t, b"x" * (SMALL_MAX_PACKET + 10), 1,
                           props=MESSAGE_PROPS)
        # Retained: RETAIN set only for Retain As Published receivers [MQTT-3.3.1-12].
        self.check_publish(pub, receivers, t, b"m6", 2, retain=True, props=MESSAGE_PROPS)
        # After the messages above, a small one again: the small receiver is still served.
        self.check_publish(pub, receivers, t, b"m7", 1)
        # Nothing more: what was sent arrived together, so one wait covers every receiver.
        for i, r in enumerate(receivers):
            r.client.expect_none(timeout=0.3 if i == 0 else 0.01)
        pub.publish5(t, b"", qos=1, retain=True, pid=9)

    def check_publish(self, pub, receivers, topic, payload, qos, retain=False, props=(),
                      expiry=None):
        wire_props = list(props)
        if expiry is not None:
            wire_props.append((MESSAGE_EXPIRY_INTERVAL, expiry))
        pub.publish5(topic, payload, qos=qos, retain=retain, pid=5,
                     props=props_in_table_order(wire_props))
        self.check(receivers, topic, payload, qos, retain, props, expiry)


class FanOutEncodeOnceTwoWorkers(FanOutEncodeOnce):
    """Sessions on two workers: each worker shares its own encoding."""

    BROKER_ARGS = ("--workers", "2")


if __name__ == "__main__":
    main()
